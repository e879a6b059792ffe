"""Make ``category.txt`` and the list files of Something-Something V2 from the official annotations.

Reads, from ``--annotation_dir``:
  something-something-v2-labels.json      ``{"<class name>": "<index>", ...}``
  something-something-v2-train.json       ``[{"id", "label", "template", "placeholders"}, ...]``
  something-something-v2-validation.json  same
  something-something-v2-test.json        ``[{"id"}, ...]`` (optional; listed with label 0)
The class of a video is its ``template`` with the ``[`` ``]`` around placeholders removed
("Putting [something] on [something]" -> "Putting something on something"); ``label`` is the
template with the objects filled in and is not used. Frames (``000001.jpg`` ...) are counted in
``--frames_dir/<id>/`` (made by ``vid2img_sthv2.py``). Writes, to ``--out_dir``: ``category.txt``
(classes in index order), ``train_videofolder.txt``, ``val_videofolder.txt`` and
``test_videofolder.txt``, lines ``<id> <num frames> <label>``. The test set has no labels: its
list gives every video label 0, only so that the list format stays the same. Videos without a
frame folder are reported and left out.

    python tools/gen_label_sthv2.py [--root_path DATA] [--annotation_dir DIR] [--frames_dir DIR]
                                    [--out_dir DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools._prep_common import PrepError, SomethingRelease, require_file, something_main, something_parser

PREFIX = 'something-something-v2-'
SPLIT_FILES = {'train': 'train.json', 'val': 'validation.json', 'test': 'test.json'}
TEST_LABEL = 0  # the test set is unlabelled; 0 keeps the list format


def _load_json(path: Path, what: str):
    require_file(path, what)
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise PrepError(f'{path}: not valid JSON ({e})') from None


def read_label_names(path: Path) -> list[str]:
    """Class names ordered by their index in the labels file; the indices must be 0..N-1."""
    data = _load_json(path, 'V2 labels file')
    if not isinstance(data, dict) or not data:
        raise PrepError(f'{path}: expected a JSON object {{"<class name>": "<index>", ...}}')
    names: list[str | None] = [None] * len(data)
    for name, index in data.items():
        try:
            i = int(index)
        except (TypeError, ValueError):
            raise PrepError(f'{path}: class {name!r} has index {index!r}, not an integer') from None
        if not 0 <= i < len(data) or names[i] is not None:
            raise PrepError(f'{path}: class {name!r} has index {i}; indices must be 0..{len(data) - 1}, '
                            'each used once')
        names[i] = name
    return names


def class_of(template: str) -> str:
    """The class name of a V2 template: the template without the ``[`` ``]`` markers."""
    return template.replace('[', '').replace(']', '')


def read_split(path: Path, label_of: dict[str, int] | None) -> list[tuple[str, int]]:
    """``(id, label)`` per entry of a V2 split file; ``label_of`` None reads the test file."""
    data = _load_json(path, 'V2 annotation file')
    if not isinstance(data, list):
        raise PrepError(f'{path}: expected a JSON list of {{"id": ...}} entries')
    videos = []
    for n, item in enumerate(data):
        if not isinstance(item, dict) or 'id' not in item:
            raise PrepError(f'{path}: entry {n} has no "id"')
        if label_of is None:
            videos.append((str(item['id']), TEST_LABEL))
            continue
        if 'template' not in item:
            raise PrepError(f'{path}: entry {n} (id {item["id"]}) has no "template"')
        name = class_of(item['template'])
        if name not in label_of:
            raise PrepError(f'{path}: entry {n} (id {item["id"]}): class {name!r} is not in the labels file')
        videos.append((str(item['id']), label_of[name]))
    return videos


RELEASE = SomethingRelease(
    version='V2', prefix=PREFIX, labels_file='labels.json', split_files=SPLIT_FILES,
    read_label_names=read_label_names, read_split=read_split, frames_hint='extract them with tools/vid2img_sthv2.py',
    dataset='somethingv2')


def build_parser() -> argparse.ArgumentParser:
    return something_parser(RELEASE, __doc__)


def main(argv: list[str] | None = None) -> int:
    return something_main(RELEASE, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
