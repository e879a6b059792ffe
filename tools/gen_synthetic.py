"""Generate a small video dataset whose classes differ only in motion, for trying PAN on a CPU.

Each video shows a square patch of fine random texture sliding in a straight line at constant
speed over a smooth random background. The class is the direction (left, right, up, down, then the
four diagonals). Textures are drawn independently per video and the patch starts anywhere, wrapping
around the frame edges, so in every frame the patch is equally likely to be anywhere whatever the
class: no single frame tells the class, only the motion between frames does.

Layout under ``ROOT/synthetic/`` (the ``synthetic`` dataset of the registry):
  frames/<video>/00001.jpg ...     frames, 1-based
  train_videofolder.txt            ``<video> <num frames> <label>`` per line
  val_videofolder.txt
  category.txt                     class names, the label being the line number
  meta.json                        the options used; a second run with the same options does nothing

    python tools/gen_synthetic.py [--root_path DATA] [--num_videos 320] [--num_val 80] [--num_frames 16]
                                  [--size 64x64] [--num_classes 4] [--speed 2] [--seed 0] [--force]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from tools._prep_common import (CATEGORY_FILE, Entry, PrepError, data_root, dataset_layout, list_name, parse_size,
                                prep_parser, run_cli, write_categories, write_list)

# Where the registry (ops/dataset_config.py) reads the dataset: frames in <lists dir>/<FRAMES_DIR>.
LAYOUT = dataset_layout('synthetic')
SYNTHETIC_DIR = LAYOUT.lists_dir
FRAMES_DIR = os.path.relpath(LAYOUT.frames, SYNTHETIC_DIR)
FRAME_TEMPLATE = LAYOUT.image_tmpl
META_FILE = 'meta.json'
META_FORMAT = 1  # bump when the generator changes what a seed produces
JPEG_QUALITY = 95
_D = 1 / math.sqrt(2)
# (class name, unit (dx, dy) per frame, image y pointing down)
DIRECTIONS = (('moving left', (-1.0, 0.0)), ('moving right', (1.0, 0.0)),
              ('moving up', (0.0, -1.0)), ('moving down', (0.0, 1.0)),
              ('moving up-left', (-_D, -_D)), ('moving up-right', (_D, -_D)),
              ('moving down-left', (-_D, _D)), ('moving down-right', (_D, _D)))
SPLIT_IDS = {'train': 0, 'val': 1}  # part of each video's seed, so the splits never share a video


def direction_names(num_classes: int) -> list[str]:
    """The first ``num_classes`` direction names; the label is the index."""
    return [name for name, _ in DIRECTIONS[:num_classes]]


def smooth_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random smooth colour field, float32 ``(height, width, 3)`` in [0, 255]: random values on
    a coarse grid of random spacing, bilinearly interpolated, with a random mean and contrast."""
    cell = rng.uniform(4, 16)
    gh, gw = int(height / cell) + 2, int(width / cell) + 2
    grid = rng.uniform(-1, 1, (gh, gw, 3)).astype(np.float32)
    ys = np.linspace(0, gh - 1.001, height)
    xs = np.linspace(0, gw - 1.001, width)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    field = top * (1 - fy) + bottom * fy
    mean = rng.uniform(40, 215, 3).astype(np.float32)
    return np.clip(mean + field * rng.uniform(20, 60), 0, 255)


def noise_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random fine-grained colour patch, float32 ``(size, size, 3)`` in [0, 255]: per-pixel noise
    around a random colour, so the patch stands out from the smooth background by texture."""
    mean = rng.uniform(40, 215, 3).astype(np.float32)
    return np.clip(mean + rng.normal(0, 60, (size, size, 3)).astype(np.float32), 0, 255)


def render_video(rng: np.random.Generator, direction: tuple[float, float], num_frames: int, width: int,
                 height: int, speed: float, object_size: int) -> np.ndarray:
    """One video, uint8 ``(num_frames, height, width, 3)``: the patch moves ``speed`` pixels per frame
    along the unit vector ``direction`` (dx, dy), wrapping around the edges, from a uniform random
    start."""
    frames = np.repeat(smooth_texture(rng, height, width)[None], num_frames, axis=0)
    patch = noise_texture(rng, object_size)
    start = rng.uniform(0, (width, height))
    t = np.arange(num_frames)[:, None]
    pos = np.rint(start + t * speed * np.asarray(direction)).astype(np.int64)  # (T, 2): x, y
    span = np.arange(object_size)
    cols = (pos[:, :1] + span) % width  # (T, S)
    rows = (pos[:, 1:] + span) % height  # (T, S)
    frames[t[:, :, None], rows[:, :, None], cols[:, None, :]] = patch
    return np.rint(frames).astype(np.uint8)


def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one video: it depends only on the seed, split and index, so a video is the
    same whatever the number of videos asked for."""
    return np.random.default_rng([seed, SPLIT_IDS[split], index])


def generate(out_dir: Path, num_videos: int, num_val: int, num_frames: int, width: int, height: int,
             num_classes: int, speed: float, seed: int) -> dict[str, list[Entry]]:
    """Write the frames, list files and category.txt under ``out_dir``; return the list entries
    ``(video, num_frames, label)`` per split. Labels cycle through the classes, so the splits are
    balanced."""
    object_size = max(4, min(width, height) // 4)
    frames_root = out_dir / FRAMES_DIR
    lists = {}
    with tqdm(total=num_videos + num_val, desc='synthetic videos', unit='video', disable=None) as bar:
        for split, count in (('train', num_videos), ('val', num_val)):
            entries = []
            for i in range(count):
                label = i % num_classes
                name = f'{split}_{i:05d}'
                video = render_video(video_rng(seed, split, i), DIRECTIONS[label][1], num_frames, width,
                                     height, speed, object_size)
                folder = frames_root / name
                folder.mkdir(parents=True, exist_ok=True)
                for k, frame in enumerate(video, 1):
                    Image.fromarray(frame).save(folder / FRAME_TEMPLATE.format(k), quality=JPEG_QUALITY)
                entries.append((name, num_frames, label))
                bar.update()
            lists[split] = entries
    write_categories(out_dir / CATEGORY_FILE, direction_names(num_classes))
    for split, entries in lists.items():
        write_list(out_dir / list_name(split), entries)
    return lists


def _owned_paths(out_dir: Path) -> list[Path]:
    """Everything this tool writes under ``out_dir`` (removed before regenerating)."""
    return [out_dir / FRAMES_DIR, out_dir / CATEGORY_FILE, out_dir / META_FILE,
            *(out_dir / list_name(s) for s in SPLIT_IDS)]


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def make_synthetic(out_dir: Path, num_videos: int = 320, num_val: int = 80, num_frames: int = 16,
                   width: int = 64, height: int = 64, num_classes: int = 4, speed: float = 2.0, seed: int = 0,
                   force: bool = False) -> bool:
    """Generate the dataset in ``out_dir`` (normally ``ROOT/synthetic``) unless it is already there
    with these options; return whether anything was written.

    ``meta.json`` records the options once generation completes. Files of an earlier generation
    (meta.json present) are replaced; files of unknown origin (no meta.json) only with ``force``.
    """
    if not 2 <= num_classes <= len(DIRECTIONS):
        raise PrepError(f'--num_classes must be 2..{len(DIRECTIONS)}, got {num_classes}')
    if num_videos < 1 or num_val < 0 or num_frames < 2 or width < 8 or height < 8 or speed <= 0:
        raise PrepError('need --num_videos >= 1, --num_val >= 0, --num_frames >= 2, a size of at least '
                        '8x8 and --speed > 0')
    options = {'format': META_FORMAT, 'num_videos': num_videos, 'num_val': num_val, 'num_frames': num_frames,
               'size': [width, height], 'num_classes': num_classes, 'speed': speed, 'seed': seed}
    meta_path = out_dir / META_FILE
    meta = None
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            meta = {}  # ours but damaged: regenerate
    if not force and meta is not None and meta.get('options') == options and meta.get('complete') \
            and all(p.exists() for p in _owned_paths(out_dir)):
        print(f'{out_dir} already holds this synthetic dataset (see {meta_path}); use --force to redo it')
        return False
    stale = [p for p in _owned_paths(out_dir) if p.exists()]
    if stale and meta is None and not force:
        names = ', '.join(p.name for p in stale)
        raise PrepError(f'{out_dir} holds files not written by this tool ({names}); '
                        'use --force to replace them')
    _remove(stale)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Written first so that a crash leaves files marked as ours, which the next run replaces.
    meta_path.write_text(json.dumps({'options': options, 'complete': False}, indent=1))
    generate(out_dir, num_videos, num_val, num_frames, width, height, num_classes, speed, seed)
    done = {'options': options, 'complete': True, 'classes': direction_names(num_classes)}
    meta_path.write_text(json.dumps(done, indent=1))
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument('--num_videos', type=int, default=320, help='training videos')
    parser.add_argument('--num_val', type=int, default=80, help='validation videos')
    parser.add_argument('--num_frames', type=int, default=16, help='frames per video')
    parser.add_argument('--size', type=parse_size, default='64x64', help='frame size WxH')
    parser.add_argument('--num_classes', type=int, default=4,
                        help='classes, 2..8: left, right, up, down, then up-left, up-right, down-left, down-right')
    parser.add_argument('--speed', type=float, default=2.0, help='pixels per frame the square moves')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--force', action='store_true', help='regenerate even if the dataset exists')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out_dir = data_root(args.root_path) / SYNTHETIC_DIR
    return run_cli(lambda: make_synthetic(out_dir, args.num_videos, args.num_val, args.num_frames, *args.size,
                                          args.num_classes, args.speed, args.seed, args.force))


if __name__ == '__main__':
    sys.exit(main())
