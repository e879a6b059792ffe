"""Make ``category.txt`` and the list files of Something-Something V1 from the official annotations.

Reads, from ``--annotation_dir``:
  something-something-v1-labels.csv       one class name per line (the label is the line number)
  something-something-v1-train.csv        ``<id>;<class name>`` per line
  something-something-v1-validation.csv   ``<id>;<class name>`` per line
  something-something-v1-test.csv         ``<id>`` per line (optional; listed with label 0)
and counts the frames (``00001.jpg`` ...) of each video in ``--frames_dir/<id>/``. Writes, to
``--out_dir``: ``category.txt``, ``train_videofolder.txt``, ``val_videofolder.txt`` (and
``test_videofolder.txt``), lines ``<id> <num frames> <label>``. Videos without a frame folder are
reported and left out.

    python tools/gen_label_sthv1.py [--root_path DATA] [--annotation_dir DIR] [--frames_dir DIR]
                                    [--out_dir DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools._prep_common import PrepError, SomethingRelease, require_file, something_main, something_parser

PREFIX = 'something-something-v1-'
SPLIT_FILES = {'train': 'train.csv', 'val': 'validation.csv', 'test': 'test.csv'}


def _lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of the non-blank lines of ``path``."""
    with open(path, encoding='utf-8-sig') as f:
        return [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]


def read_label_names(path: Path) -> list[str]:
    """Class names in file order (the label is the index); duplicates are an error."""
    names, seen = [], {}
    for n, name in _lines(require_file(path, 'V1 labels file')):
        if name in seen:
            raise PrepError(f'{path}:{n}: class {name!r} already on line {seen[name]}')
        seen[name] = n
        names.append(name)
    if not names:
        raise PrepError(f'{path}: no class names')
    return names


def read_split(path: Path, label_of: dict[str, int] | None) -> list[tuple[str, int]]:
    """``(id, label)`` per line of a split file; ``label_of`` None reads a test file (ids only,
    label 0)."""
    videos = []
    for n, line in _lines(path):
        if label_of is None:
            videos.append((line.split(';', 1)[0], 0))
            continue
        vid, sep, name = line.partition(';')
        if not sep or not vid:
            raise PrepError(f'{path}:{n}: expected "<id>;<class name>", got {line!r}')
        if name not in label_of:
            raise PrepError(f'{path}:{n}: class {name!r} is not in the labels file')
        videos.append((vid, label_of[name]))
    return videos


RELEASE = SomethingRelease(
    version='V1', prefix=PREFIX, labels_file='labels.csv', split_files=SPLIT_FILES,
    read_label_names=read_label_names, read_split=read_split, frames_hint='unpack the official V1 frame archives there',
    dataset='something')


def build_parser() -> argparse.ArgumentParser:
    return something_parser(RELEASE, __doc__)


def main(argv: list[str] | None = None) -> int:
    return something_main(RELEASE, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
