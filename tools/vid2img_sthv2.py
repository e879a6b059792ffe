"""Extract Something-Something V2 videos (``<id>.webm``) into frame folders for training.

Each video becomes ``<frames_dir>/<id>/000001.jpg, 000002.jpg, ...`` (every decoded frame,
resized to a height of 256 pixels, aspect kept), the layout ``gen_label_sthv2.py`` and the
``somethingv2`` dataset read. Videos are decoded with PyAV in parallel processes. A video whose
folder already exists is skipped; frames are written to a hidden ``.<id>.partial`` folder first
and renamed when complete, so a run killed half-way redoes that video. Videos that fail to decode
are listed at the end (exit status 1) and do not stop the others.

    python tools/vid2img_sthv2.py [--root_path DATA] [--video_dir DIR] [--frames_dir DIR] [--workers N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools._prep_common import (DEFAULT_QUALITY, ExtractJob, add_extraction_args, dataset_layout,
                                extraction_dirs, find_videos, prep_parser, run_cli, run_extraction)

LAYOUT = dataset_layout('somethingv2')
FRAME_TEMPLATE = LAYOUT.image_tmpl


def extract_sthv2(video_dir: Path, frames_dir: Path, height: int = 256, workers: int = 1,
                  quality: int = DEFAULT_QUALITY) -> int:
    """Extract every video under ``video_dir`` to ``frames_dir/<video stem>/``; exit status
    (0 all done, 1 some failed)."""
    jobs = [ExtractJob(str(v), str(frames_dir / v.stem), FRAME_TEMPLATE, ('height', height), quality)
            for v in find_videos(video_dir)]
    return run_extraction(jobs, workers, desc='sth-v2 frames')


def build_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument('--height', type=int, default=256, help='frame height in pixels')
    add_extraction_args(parser, LAYOUT, 'folder of the .webm videos')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    video_dir, frames_dir = extraction_dirs(args, LAYOUT)
    return run_cli(lambda: extract_sthv2(video_dir, frames_dir, args.height, args.workers, args.quality))


if __name__ == '__main__':
    sys.exit(main())
