"""How fast is the data path? Clips per second of PANDataSet with the straightforward per-frame
PIL pipeline (the release's Group* transforms: open and convert each JPEG, crop and resize frame
by frame, stack, normalise) and with the project's fast pipeline (each distinct frame decoded once
from its bytes, one slice crop and one resize for the whole clip, one normalisation per clip or
per batch), each reading the frames from their folders and from an LMDB store of the same files;
and how fast training clips are read from video files, in the first epoch and in later ones.

    python tools/benchmark_data.py [--sizes 176x100 340x256] [--videos 8] [--frames 40]
                                   [--segments 8] [--length 4] [--clips 48] [--workers 2]
                                   [--batch 4] [--repeats 3] [--threads 1] [--stores folder lmdb]
                                   [--video_gops 12 250] [--video_size 340x256] [--video_frames 300]
                                   [--video_files 8]

Frames are generated in a temporary folder, or in --out_dir: a random smooth texture drifting
over time with a little noise, saved at PIL's default JPEG quality (75), which gives file sizes
like those of real extracted frames (about 4-5 KB at 176x100, 19 KB at 340x256; the mean is
printed), and packed into an LMDB store beside them with tools/frames_to_lmdb.py ('lmdb' rows:
the same frames through the same pipelines, read as --lmdb reads them). Both pipelines run on
the same clips (train: multi-scale crop and flip; val: scale and centre crop). '1 process' indexes the datasets in this process, both returning float clips.
'N workers' reads through a DataLoader with --workers processes, as training does: the PIL
pipeline ships float clips; the fast pipeline ships uint8 clips (a quarter of the bytes) and the
main process normalises each batch with normalize_uint8_batch, inside the timed loop, so the
figure counts load, decode, crop and normalisation. The table gives clips/s (best of --repeats,
all candidates of a row pair interleaved), their ratio, and the largest difference between the two outputs in
grey levels (1 = 1/255).

Video files: --video_files H.264 MP4s per GOP of --video_gops (libx264, a keyframe every GOP
frames, B-frames, the same drifting texture) of --video_frames frames at --video_size; a training
clip (--segments x --length frames, random segment offsets) is read from each video in turn, as
the fast pipeline reads it (frame-exact seeking, uint8 frames), and timed in four ways: 'first
epoch' (no stored index: each video is decoded whole to index it, then the clip is read; what
every epoch cost when DataLoader workers were not kept and indexes were not stored), 'later
epoch, new process' (the index stored on disk, this process's memory empty: a new run, or a new
worker), 'later epoch, kept worker' (the index in memory too: a persistent worker) and
'sequential span' (a plain decode from the keyframe before the clip's first frame to its last
frame, converting the clip's frames: what a reader without random access pays). Indexes go to a
temporary folder (``$PAN_VIDEO_INDEX`` is set for the run).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Callable

import av
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ops.backbone_registry import scale_size_for
from ops.dataset import PANDataSet
from ops.dataset_config import default_lmdb_path
from ops.frames.frame_source import VideoFrames, read_clip
from ops.frames.video_index import INDEX_ENV
from ops.frames.video_reader import forget_indexes, rgb_frame, video_index
from ops.engine.cli import new_parser
from ops.modalities import DEFAULT_DATA_LENGTH
from ops.sampling import expand_indices, sample_train_indices
from ops.transforms import build_train_transform, build_val_transform, normalize_uint8_batch
from tools._prep_common import parse_size
from tools.frames_to_lmdb import frames_to_lmdb

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TEMPLATE = '{:05d}.jpg'
STORES = ('folder', 'lmdb')
VIDEO_SETTINGS = ('first epoch', 'later epoch, new process', 'later epoch, kept worker', 'sequential span')


def drifting_texture(rng: np.random.Generator, size: tuple[int, int], frames: int):
    """uint8 frames ``(h, w, 3)`` of a random smooth texture drifting 2 pixels a frame, with noise."""
    w, h = size
    coarse = rng.uniform(0, 255, (h // 8 + 4, w // 8 + 4 + frames, 3)).astype(np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((coarse.shape[1] * 8, coarse.shape[0] * 8),
                                                      Image.BICUBIC), dtype=np.float32)
    for t in range(frames):
        yield np.clip(field[:h, 2 * t:2 * t + w] + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


def write_frame_folders(root: Path, size: tuple[int, int], videos: int, frames: int, seed: int = 0) -> Path:
    """Write ``videos`` folders of ``frames`` JPEGs (quality 75) of a random smooth texture that
    drifts over time, and a list file; returns the list file."""
    rng = np.random.default_rng(seed)
    w, h = size
    lines = []
    for v in tqdm(range(videos), desc=f'frames {w}x{h}', leave=False):
        folder = root / f'{w}x{h}' / f'video{v:03d}'
        folder.mkdir(parents=True, exist_ok=True)
        for t, img in enumerate(drifting_texture(rng, size, frames)):
            Image.fromarray(img).save(folder / TEMPLATE.format(t + 1), quality=75)
        lines.append(f'video{v:03d} {frames} {v % 4}')
    list_file = root / f'{w}x{h}' / 'list.txt'
    list_file.write_text('\n'.join(lines) + '\n')
    return list_file


def clips_per_second_single(dataset: PANDataSet, clips: int) -> float:
    """Items per second of indexing the dataset in this process."""
    dataset[0]  # warm-up (first decode, allocator)
    start = time.perf_counter()
    for k in range(clips):
        dataset[k % len(dataset)]
    return clips / (time.perf_counter() - start)


def clips_per_second_loader(dataset: Dataset, clips: int, workers: int, batch: int,
                            after: Callable[[torch.Tensor], object] = lambda x: x) -> float:
    """Steady-state throughput: timed from the first batch (worker start-up excluded) to the
    batch that completes ``clips``, while the sampler still has batches queued, so the prefetch
    buffer is in the same state at both ends (draining it at the end would look faster than it
    is). ``after`` runs on each batch in the main process (the uint8 variant normalises there)."""
    tail = workers * 2 * batch  # the DataLoader's default prefetch: 2 batches per worker
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers,
                        sampler=[k % len(dataset) for k in range(batch + clips + tail)])
    it = iter(loader)
    after(next(it)[0])
    start, seen = time.perf_counter(), 0
    for x, _ in it:
        after(x)
        seen += x.shape[0]
        if seen >= clips:
            break
    elapsed = time.perf_counter() - start
    del it  # stops the workers
    return seen / elapsed


def max_difference(slow: PANDataSet, fast: PANDataSet, clips: int,
                   finish: Callable[[torch.Tensor], torch.Tensor] = lambda x: x) -> float:
    """Largest |slow - finish(fast)| over ``clips`` identically seeded items, in grey levels
    (``finish`` turns the fast item into the float clip the model gets)."""
    std = torch.tensor(STD)
    worst = 0.0
    for k in range(clips):
        outs = []
        for ds in (slow, fast):
            random.seed(k)
            torch.manual_seed(k)
            outs.append(ds[k % len(ds)][0])
        diff = (outs[0] - finish(outs[1])).abs().view(-1, 3, *outs[0].shape[-2:]).amax(dim=(0, 2, 3))
        worst = max(worst, float((diff * std * 255).max()))
    return worst


def pack_store(list_file: Path) -> Path:
    """An LMDB store of the frame folders of ``list_file`` (tools/frames_to_lmdb.py, quietly),
    beside them: ``<frames folder>.lmdb``."""
    out = default_lmdb_path(list_file.parent)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = frames_to_lmdb(list_file.parent, [list_file], TEMPLATE, out)
    if status:
        raise RuntimeError(f'packing {list_file.parent} into {out} failed')
    return out


def benchmark_pipeline(list_file: Path, stores: dict[str, Path | None], train: bool,
                       args: argparse.Namespace) -> list[dict]:
    """Rows of the table for one frame size and one pipeline (train or val), one per store
    (``stores``: name -> LMDB store, None for the frame folders) and setting: in one process,
    float clips from both pipelines; with workers, float clips from the PIL pipeline against
    uint8 clips from the fast one that the main process normalises per batch (timed), which is
    what the training loop does."""
    scale = scale_size_for(args.crop)

    def dataset(store: Path | None, fast: bool, normalize: bool = True) -> PANDataSet:
        if train:
            transform = build_train_transform(args.crop, MEAN, STD, flip=True, fast=fast, normalize=normalize)
        else:
            transform = build_val_transform(args.crop, scale, MEAN, STD, fast=fast, normalize=normalize)
        return PANDataSet(list_file.parent, list_file, num_segments=args.segments, new_length=args.length,
                          modality='Lite' if args.length > 1 else 'RGB', image_tmpl=TEMPLATE,
                          transform=transform, random_shift=train, lmdb_path=store)

    def best(measures: dict[tuple[str, str], Callable[[], float]]) -> dict[tuple[str, str], float]:
        """Best of --repeats rounds, the candidates interleaved so a drifting load hits all alike."""
        rounds = [{name: measure() for name, measure in measures.items()} for _ in range(args.repeats)]
        return {name: max(r[name] for r in rounds) for name in measures}

    def normalize(batch: torch.Tensor) -> torch.Tensor:
        return normalize_uint8_batch(batch, MEAN, STD)

    def rows_of(setting: str, speeds: dict[tuple[str, str], float], diffs: dict[str, float]) -> list[dict]:
        return [dict(mode=mode, store=name, setting=setting, diff=diffs[name], pil=speeds[name, 'pil'],
                     fast=speeds[name, 'fast']) for name in stores]

    slow = {name: dataset(store, False) for name, store in stores.items()}
    fast = {name: dataset(store, True) for name, store in stores.items()}
    compared = min(args.clips, 16)
    mode = 'train' if train else 'val'

    def in_process(ds: PANDataSet) -> Callable[[], float]:
        return lambda: clips_per_second_single(ds, args.clips)
    speeds = best({(name, kind): in_process(pipes[name]) for name in stores
                   for kind, pipes in (('pil', slow), ('fast', fast))})
    rows = rows_of('1 process', speeds, {name: max_difference(slow[name], fast[name], compared) for name in stores})
    if args.workers > 0:
        fast_u8 = {name: dataset(store, True, normalize=False) for name, store in stores.items()}

        def loader(ds: PANDataSet, after: Callable = lambda x: x) -> Callable[[], float]:
            return lambda: clips_per_second_loader(ds, args.clips, args.workers, args.batch, after)
        speeds = best({measure: run for name in stores for measure, run in
                       (((name, 'pil'), loader(slow[name])), ((name, 'fast'), loader(fast_u8[name], normalize)))})
        rows += rows_of(f'{args.workers} workers', speeds,
                        {name: max_difference(slow[name], fast_u8[name], compared, normalize) for name in stores})
    return rows


# ---------------------------------------------------------------- video files

def write_videos(root: Path, size: tuple[int, int], frames: int, gop: int, videos: int, seed: int = 0) -> list[Path]:
    """``videos`` H.264 MP4s (libx264, a keyframe every ``gop`` frames, B-frames) of the drifting
    texture; returns their paths."""
    rng = np.random.default_rng(seed)
    folder = root / f'h264_{size[0]}x{size[1]}_gop{gop}'
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for v in tqdm(range(videos), desc=f'H.264 GOP {gop}', leave=False):
        path = folder / f'video{v:03d}.mp4'
        with av.open(str(path), 'w') as out:
            stream = out.add_stream('libx264', rate=25)
            stream.width, stream.height, stream.pix_fmt = size[0], size[1], 'yuv420p'
            stream.options = {'preset': 'veryfast', 'x264-params': f'keyint={gop}:min-keyint={gop}:scenecut=0'}
            for img in drifting_texture(rng, size, frames):
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format='rgb24')):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        paths.append(path)
    return paths


def read_span(path: str, indices: list[int]) -> torch.Tensor:
    """The clip of 1-based ``indices`` (uint8 ``(F, H, W, 3)``, as :func:`read_clip_of`) by a plain
    sequential decode from the keyframe before its first frame to its last (a seek by pts; frames
    named by pts, which libx264 MP4s keep in order)."""
    index = video_index(path)
    wanted = {i - 1 for i in indices}
    first, last = min(wanted), max(wanted)
    out: dict[int, torch.Tensor] = {}
    with av.open(path) as container:
        stream = container.streams.video[0]
        point = index.seek_point_before(first)
        if point is not None:
            container.seek(int(index.pts[point.position]), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            position = int(np.searchsorted(index.pts, frame.pts))
            if position in wanted:
                out[position] = torch.from_numpy(rgb_frame(frame))
            if position >= last:
                break
    return torch.stack([out[i - 1] for i in indices])


@contextlib.contextmanager
def indexes_stored_in(folder: str):
    """Video indexes go to ``folder`` (and none is in memory) for the body."""
    saved = os.environ.get(INDEX_ENV)
    os.environ[INDEX_ENV] = folder
    forget_indexes()
    try:
        yield
    finally:
        forget_indexes()
        if saved is None:
            os.environ.pop(INDEX_ENV)
        else:
            os.environ[INDEX_ENV] = saved


def _seconds(read: Callable[..., object], *args) -> float:
    start = time.perf_counter()
    read(*args)
    return time.perf_counter() - start


def read_clip_of(path: str, indices: list[int]) -> torch.Tensor:
    """One clip as the fast pipeline reads it: uint8 ``(F, H, W, 3)`` of 1-based ``indices``."""
    clip = read_clip(VideoFrames(path), indices)
    if clip.shape[0] != len(indices):
        raise RuntimeError(f'{path}: read {clip.shape[0]} frames of {len(indices)}')
    return clip


def benchmark_videos(paths: list[Path], args: argparse.Namespace) -> dict[str, float]:
    """Clips/s of reading one training clip from each video in each of :data:`VIDEO_SETTINGS`,
    the settings interleaved video by video (the same clip in each, so only the setting differs,
    and a load that drifts meets all alike); best of --repeats, each drawing new clips."""
    rng = np.random.default_rng(1)
    n = args.video_frames
    rounds = []
    for _ in range(args.repeats):
        seconds = dict.fromkeys(VIDEO_SETTINGS, 0.0)
        with tempfile.TemporaryDirectory() as folder, indexes_stored_in(folder):
            for path in map(str, paths):
                starts = sample_train_indices(n, args.segments, args.length, rng)
                indices = [int(i) for i in expand_indices(starts, args.length, n)]
                for setting in VIDEO_SETTINGS[:2]:  # the first builds and stores the index, the second reads it
                    forget_indexes()
                    seconds[setting] += _seconds(read_clip_of, path, indices)
                seconds['later epoch, kept worker'] += _seconds(read_clip_of, path, indices)
                seconds['sequential span'] += _seconds(read_span, path, indices)
        rounds.append({name: len(paths) / t for name, t in seconds.items()})
    return {name: max(r[name] for r in rounds) for name in VIDEO_SETTINGS}


def print_table(rows: list[dict], kbytes: dict, args: argparse.Namespace) -> None:
    print(f'\nclips of {args.segments} segments x {args.length} frames -> {args.crop}x{args.crop}, '
          f'batch {args.batch}, best of {args.repeats} x {args.clips} clips, torch threads '
          f'{torch.get_num_threads()}, {os.cpu_count()} CPUs; mean JPEG size: '
          + ', '.join(f'{w}x{h} {kb:.1f} KB' for (w, h), kb in kbytes.items()))
    header = (f'{"frames":>8} {"mode":>5} {"store":>6} {"setting":>10} {"PIL clips/s":>12} {"fast clips/s":>13} '
              f'{"speed-up":>9} {"max diff":>9}')
    print(header)
    print('-' * len(header))
    for r in rows:
        print(f'{r["size"]:>8} {r["mode"]:>5} {r["store"]:>6} {r["setting"]:>10} {r["pil"]:12.1f} '
              f'{r["fast"]:13.1f} {r["fast"] / r["pil"]:8.2f}x {r["diff"]:9.3f}')
    print('store: folder = one JPEG file per frame; lmdb = the same JPEGs in an LMDB store (--lmdb)\n'
          'PIL: per-frame PIL pipeline (open, convert, crop, resize, stack, normalise), float clips\n'
          'fast: 1 process: the fast pipeline to float clips; with workers: to uint8 clips, which\n'
          '      the main process normalises per batch (normalize_uint8_batch, timed)\n'
          'max diff: largest |PIL - fast| over the compared clips, in grey levels (1.0 = 1/255)')


def print_video_table(results: dict[int, dict[str, float]], mbytes: dict[int, float],
                      args: argparse.Namespace) -> None:
    w, h = args.video_size
    print(f'\ntraining clips ({args.segments} segments x {args.length} frames, random offsets) read from H.264 '
          f'MP4s of {w}x{h}, {args.video_frames} frames, {args.video_files} per GOP (mean '
          + ', '.join(f'GOP {g} {mb:.2f} MB' for g, mb in mbytes.items())
          + f'); read clips/s, best of {args.repeats}, 1 process')
    header = (f'{"GOP":>5} {"first epoch":>12} {"later, new process":>19} {"later, kept worker":>19} '
              f'{"sequential span":>16} {"later/first":>12} {"later/span":>11}')
    print(header)
    print('-' * len(header))
    for gop, r in results.items():
        later = r['later epoch, new process']
        print(f'{gop:>5} {r["first epoch"]:12.1f} {later:19.1f} {r["later epoch, kept worker"]:19.1f} '
              f'{r["sequential span"]:16.1f} {later / r["first epoch"]:11.2f}x {later / r["sequential span"]:10.2f}x')
    print('first epoch: no stored index (each video decoded whole, then the clip read): every epoch before\n'
          '  indexes were stored; later: the index read from disk (new process) or kept in memory (kept\n'
          '  worker); sequential span: a plain decode from the keyframe before the clip to its last frame')


def build_parser() -> argparse.ArgumentParser:
    intro, usage, details = __doc__.split('\n\n', 2)
    p = new_parser(intro, epilog=details)
    p.add_argument('--sizes', type=parse_size, nargs='*', default=[(176, 100), (340, 256)],
                   help='frame sizes WxH to generate, e.g. 176x100 340x256 (none given: no frame rows)')
    p.add_argument('--videos', type=int, default=8, help='videos per size')
    p.add_argument('--frames', type=int, default=40, help='frames per video')
    p.add_argument('--segments', type=int, default=8, help='segments sampled per clip')
    p.add_argument('--length', type=int, default=DEFAULT_DATA_LENGTH,
                   help=f'frames per segment ({DEFAULT_DATA_LENGTH}: Lite / PA; 1: RGB)')
    p.add_argument('--crop', type=int, default=224, help='network input size')
    p.add_argument('--clips', type=int, default=48, help='clips timed per measurement')
    p.add_argument('--repeats', type=int, default=3, help='measurements per figure; the best is shown')
    p.add_argument('--workers', type=int, default=2, help='DataLoader workers (0: skip that row)')
    p.add_argument('--batch', type=int, default=4, help='DataLoader batch size')
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads of this process (DataLoader workers always use 1); more than '
                        'one on a busy machine makes torch wait on descheduled threads')
    p.add_argument('--pipelines', nargs='+', choices=['train', 'val'], default=['train', 'val'],
                   help='transforms timed: train (multi-scale crop and flip), val (scale and centre crop)')
    p.add_argument('--stores', nargs='+', choices=STORES, default=list(STORES),
                   help='where the frames are read from: their folders, an LMDB store of them')
    p.add_argument('--video_gops', type=int, nargs='*', default=[12, 250],
                   help='keyframe intervals of the H.264 videos of the video rows (none given: no video rows)')
    p.add_argument('--video_size', type=parse_size, default=(340, 256), help='frame size WxH of the videos')
    p.add_argument('--video_frames', type=int, default=300, help='frames per video')
    p.add_argument('--video_files', type=int, default=8, help='videos per GOP (one clip read from each per epoch)')
    p.add_argument('--out_dir', type=str, default=None,
                   help='where to write the frames, kept afterwards (None: a temporary folder, removed)')
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    rows, kbytes = [], {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(args.out_dir or tmp)
            for size in args.sizes:
                list_file = write_frame_folders(root, size, args.videos, args.frames)
                jpegs = list(list_file.parent.glob('*/*.jpg'))
                kbytes[size] = sum(j.stat().st_size for j in jpegs) / len(jpegs) / 1024
                stores = {name: pack_store(list_file) if name == 'lmdb' else None for name in args.stores}
                for pipe in tqdm(args.pipelines, desc=f'{size[0]}x{size[1]}', leave=False):
                    rows += [dict(r, size=f'{size[0]}x{size[1]}')
                             for r in benchmark_pipeline(list_file, stores, pipe == 'train', args)]
            videos, mbytes = {}, {}
            for gop in args.video_gops:
                paths = write_videos(root, args.video_size, args.video_frames, gop, args.video_files)
                mbytes[gop] = sum(p.stat().st_size for p in paths) / len(paths) / 2 ** 20
                videos[gop] = benchmark_videos(paths, args)
        if args.sizes:
            print_table(rows, kbytes, args)
        if videos:
            print_video_table(videos, mbytes, args)
    finally:
        torch.set_num_threads(threads)

if __name__ == '__main__':
    main()
