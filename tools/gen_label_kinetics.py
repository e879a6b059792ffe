"""Make ``category.txt`` and the list files of Kinetics from the official CSVs and the frame folders.

Reads one or more official annotation CSVs (header ``label,youtube_id,time_start,time_end,split``;
extra columns such as ``is_cc`` are ignored; a test CSV may lack ``label``) and finds each video's
frame folder under ``--frames_dir`` at any depth (``images/<class folder>/<video>/img_00001.jpg``
as written by ``vid2img_kinetics.py``). A folder is matched by its name: the downloaders' clip
name ``<youtube_id>_<start:06d>_<end:06d>`` or the bare ``<youtube_id>``, so the class folder
spelling does not matter. Writes, to ``--out_dir``: ``category.txt`` (the sorted class names of all
labelled rows; pass train and val together so both lists use the same indices) and
``train_videofolder.txt`` / ``val_videofolder.txt`` (``test_videofolder.txt`` for rows whose
split is ``test``, label 0 when unlabelled), lines ``<class folder>/<video> <num frames> <label>``.
Videos without frames are reported and left out.

    python tools/gen_label_kinetics.py --csv train.csv validate.csv [--root_path DATA]
                                       [--frames_dir DIR] [--out_dir DIR]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from tools._prep_common import (IMG_JPG, Entry, PrepError, data_root, dataset_layout, prep_parser,
                                report_skipped, require_dir, require_file, run_cli, write_dataset)

LAYOUT = dataset_layout('kinetics')

REQUIRED_COLUMNS = ('youtube_id', 'time_start', 'time_end', 'split')
SPLIT_NAMES = {'train': 'train', 'training': 'train', 'val': 'val', 'valid': 'val', 'validate': 'val',
               'validation': 'val', 'test': 'test', 'testing': 'test'}
UNLABELLED = 0  # label given to unlabelled test rows, only to keep the list format


@dataclass(frozen=True)
class Clip:
    """One annotated row: a clip of a YouTube video, its split and class name (None if unlabelled)."""
    youtube_id: str
    time_start: int
    time_end: int
    split: str
    label: str | None

    def folder_names(self) -> tuple[str, str]:
        """Frame folder names this clip may have, most specific first."""
        return f'{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}', self.youtube_id


def read_annotations(path: Path) -> list[Clip]:
    """The rows of an official Kinetics CSV; bad rows are errors that name the file and line."""
    require_file(path, 'Kinetics annotation CSV')
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise PrepError(f'{path}:1: header lacks column(s) {", ".join(missing)} '
                            f'(expected label,youtube_id,time_start,time_end,split)')
        clips = []
        for row in reader:
            line = reader.line_num
            if None in row or any(row[c] is None for c in REQUIRED_COLUMNS):
                raise PrepError(f'{path}:{line}: expected {len(columns)} comma-separated fields')
            split = SPLIT_NAMES.get(row['split'].strip().lower())
            if split is None:
                raise PrepError(f'{path}:{line}: unknown split {row["split"]!r} '
                                f'(expected one of {", ".join(sorted(SPLIT_NAMES))})')
            try:
                start, end = int(float(row['time_start'])), int(float(row['time_end']))
            except ValueError:
                raise PrepError(f'{path}:{line}: time_start / time_end are not numbers: '
                                f'{row["time_start"]!r}, {row["time_end"]!r}') from None
            label = (row.get('label') or '').strip() or None
            if label is None and split != 'test':
                raise PrepError(f'{path}:{line}: {split} row without a label')
            clips.append(Clip(row['youtube_id'].strip(), start, end, split, label))
    return clips


def index_frame_folders(frames_dir: Path) -> dict[str, tuple[str, int]]:
    """``{folder name: (path relative to frames_dir, num frames)}`` for every folder under
    ``frames_dir`` (any depth) that holds ``img_*.jpg`` frames. Hidden folders (unfinished
    extractions) are ignored; when two folders share a name the first in sorted order is kept."""
    index: dict[str, tuple[str, int]] = {}
    duplicates = []
    pending = [frames_dir]
    with tqdm(desc='indexing frame folders', unit='folder', leave=False, disable=None) as bar:
        while pending:
            folder = pending.pop()
            frames, subdirs = 0, []
            with os.scandir(folder) as it:
                for e in it:
                    if IMG_JPG.match(e.name) and e.is_file():
                        frames += 1
                    elif not e.name.startswith('.') and e.is_dir():
                        subdirs.append(e.name)
            if frames:
                name = folder.name
                if name in index:
                    duplicates.append(str(folder.relative_to(frames_dir)))
                else:
                    index[name] = (folder.relative_to(frames_dir).as_posix(), frames)
                bar.update()
            pending.extend(folder / name for name in sorted(subdirs, reverse=True))  # sorted walk
    report_skipped(duplicates, f'frame folders under {frames_dir} repeat the name of an earlier one')
    return index


def gen_label_kinetics(csv_paths: list[Path], frames_dir: Path,
                       out_dir: Path) -> dict[str, list[Entry]]:
    """Write category.txt and the list files; return the entries
    ``(relative folder, num_frames, label)`` per split."""
    clips = {path: read_annotations(path) for path in csv_paths}
    categories = sorted({c.label for rows in clips.values() for c in rows if c.label is not None})
    if not categories:
        raise PrepError(f'no labelled row in {", ".join(map(str, csv_paths))}')
    label_of = {name: i for i, name in enumerate(categories)}
    require_dir(frames_dir, 'Kinetics frames folder (made by tools/vid2img_kinetics.py)')
    index = index_frame_folders(frames_dir)
    lists: dict[str, list[Entry]] = {}
    for path, rows in clips.items():
        missing = []
        for clip in rows:
            found = next((index[n] for n in clip.folder_names() if n in index), None)
            if found is None:
                missing.append(clip.folder_names()[0])
                continue
            label = UNLABELLED if clip.label is None else label_of[clip.label]
            lists.setdefault(clip.split, []).append((found[0], found[1], label))
        report_skipped(missing, f'of the {len(rows)} videos in {path} have no frames under {frames_dir}')
    write_dataset(out_dir, categories, lists, frames_dir, 'extract them with tools/vid2img_kinetics.py')
    return lists


def build_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument('--csv', nargs='+', required=True, type=Path, default=argparse.SUPPRESS,
                        help='official annotation CSV(s), e.g. train.csv validate.csv (all at once; required)')
    parser.add_argument('--frames_dir', default=None,
                        help=f'root of the extracted frame folders (None: ROOT/{LAYOUT.frames})')
    parser.add_argument('--out_dir', default=None,
                        help=f'where category.txt and the lists go (None: ROOT/{LAYOUT.lists_dir})')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = data_root(args.root_path)
    frames_dir = Path(args.frames_dir or root / LAYOUT.frames)
    out_dir = Path(args.out_dir or root / LAYOUT.lists_dir)
    return run_cli(lambda: gen_label_kinetics(args.csv, frames_dir, out_dir))


if __name__ == '__main__':
    sys.exit(main())
