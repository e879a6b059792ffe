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
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools._prep_common import (STHV1_DIR, STHV1_FRAMES, Entry, PrepError, collect_entries,  # noqa: E402
                                data_root, new_parser, require_dir, require_file, run_cli, write_dataset)

PREFIX = 'something-something-v1-'
SPLIT_FILES = {'train': 'train.csv', 'val': 'validation.csv', 'test': 'test.csv'}


def _lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of the non-blank lines of ``path``."""
    with open(path, encoding='utf-8-sig') as f:
        return [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]


def read_categories(path: Path) -> list[str]:
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


def gen_label_sthv1(annotation_dir: Path, frames_dir: Path,
                    out_dir: Path) -> dict[str, list[Entry]]:
    """Write category.txt and the list files; return the entries ``(id, num_frames, label)`` per
    split."""
    categories = read_categories(annotation_dir / f'{PREFIX}labels.csv')
    label_of = {name: i for i, name in enumerate(categories)}
    split_paths = {split: annotation_dir / f'{PREFIX}{name}' for split, name in SPLIT_FILES.items()}
    for split in ('train', 'val'):
        require_file(split_paths[split], f'V1 {split} annotation file')
    require_dir(frames_dir, 'V1 frames folder')
    lists = {}
    for split, path in split_paths.items():
        if split == 'test' and not path.is_file():
            continue
        videos = read_split(path, None if split == 'test' else label_of)
        lists[split] = collect_entries(videos, frames_dir, str(path))
    write_dataset(out_dir, categories, lists, frames_dir, 'unpack the official V1 frame archives there')
    return lists


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    parser.add_argument('--annotation_dir', default=None,
                        help=f'folder of the official {PREFIX}*.csv files (default: OUT_DIR)')
    parser.add_argument('--frames_dir', default=None,
                        help=f'folder of the <id>/ frame folders (default: ROOT/{STHV1_DIR}/{STHV1_FRAMES})')
    parser.add_argument('--out_dir', default=None,
                        help=f'where category.txt and the lists go (default: ROOT/{STHV1_DIR})')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = data_root(args.root_path) / STHV1_DIR
    out_dir = Path(args.out_dir or root)
    annotation_dir = Path(args.annotation_dir or out_dir)
    frames_dir = Path(args.frames_dir or root / STHV1_FRAMES)
    return run_cli(lambda: gen_label_sthv1(annotation_dir, frames_dir, out_dir))


if __name__ == '__main__':
    sys.exit(main())
