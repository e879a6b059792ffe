"""Extract Kinetics videos into frame folders for training, keeping the class sub-folders.

Every video under ``--video_dir`` becomes a folder of ``img_00001.jpg, img_00002.jpg, ...``
(every decoded frame, short side resized to 256 pixels, aspect kept) at the same relative place
under ``--frames_dir``: ``videos/<class>/<video>.mp4`` -> ``images/<class>/<video>/``. The
documented layout is ``ROOT/kinetics/images/<class folder>/<video>/img_{:05d}.jpg``, so run it once
per split with ``--video_dir`` on the folder that holds the class folders (Kinetics video ids are
unique across splits). ``gen_label_kinetics.py`` finds video folders at any depth, so extracting a
tree with ``train/`` and ``val/`` levels works as well.

Videos are decoded with PyAV in parallel processes. A video whose frame folder already exists is
skipped; frames are written to a hidden ``.<video>.partial`` folder first and renamed when
complete, so a run killed half-way redoes that video. Videos that fail to decode are listed at
the end (exit status 1) and do not stop the others.

    python tools/vid2img_kinetics.py --video_dir DATA/kinetics/videos/train [--frames_dir DIR] [--workers N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools._prep_common import (DEFAULT_QUALITY, ExtractJob, add_extraction_args, dataset_layout,
                                extraction_dirs, find_videos, prep_parser, run_cli, run_extraction)

LAYOUT = dataset_layout('kinetics')
FRAME_TEMPLATE = LAYOUT.image_tmpl


def extract_kinetics(video_dir: Path, frames_dir: Path, short_side: int = 256, workers: int = 1,
                     quality: int = DEFAULT_QUALITY) -> int:
    """Extract every video under ``video_dir`` to the same relative folder under ``frames_dir``
    (``<class>/<video stem>/``); exit status (0 all done, 1 some failed)."""
    jobs = [ExtractJob(str(v), str(frames_dir / v.relative_to(video_dir).parent / v.stem), FRAME_TEMPLATE,
                       ('short_side', short_side), quality)
            for v in find_videos(video_dir)]
    return run_extraction(jobs, workers, desc='kinetics frames')


def build_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument('--short_side', type=int, default=256,
                        help='length of the shorter frame side in pixels')
    add_extraction_args(parser, LAYOUT, 'folder of class folders of videos')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    video_dir, frames_dir = extraction_dirs(args, LAYOUT)
    return run_cli(lambda: extract_kinetics(video_dir, frames_dir, args.short_side, args.workers,
                                            args.quality))


if __name__ == '__main__':
    sys.exit(main())
