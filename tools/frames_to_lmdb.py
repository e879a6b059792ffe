"""Pack a dataset's frame folders into an LMDB store, for main.py / test_models.py --lmdb.

Keys are the released code's, "<video>/000/<frame index - 1:08d>" (<video>: a list file's path
column), values the frame files' bytes unchanged, so a store built here also works with the
release's --lmdb, and one built for the release works here. Which videos: those of --lists
(default: the dataset's train and val lists), each with the list's frame count of --image_tmpl
files (default: the dataset's, from the registry). Video-file lines are skipped (they are read
from the video itself). A folder with missing or empty frames is reported and left out, with a
summary at the end and exit status 1.

--workers threads read the frame files; one writer in this process puts them in the store and
commits every 64 MiB, each video with a "<video>/__done__" entry, so a crash loses only the last
uncommitted batch and a second run packs only what is missing (videos of a store built elsewhere
have no such entry and are packed again, to the same keys). --verify re-reads every key of the
listed videos and compares it with its file (mismatches: exit status 1). The store is a folder
(data.mdb, lock.mdb) whose file grows as it fills, up to --map_size.

    python tools/frames_to_lmdb.py something [--root_path DATA] [--out PATH] [--workers N] [--verify]
    python tools/frames_to_lmdb.py --frames_dir DIR --lists train.txt val.txt --image_tmpl '{:05d}.jpg'
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import lmdb
from tqdm import tqdm

from ops.dataset import ListFileError, parse_list_file
from ops.dataset_config import dataset_help, default_lmdb_path, get_dataset_info, is_builtin
from ops.frames.frame_source import list_frame_files
from ops.frames.lmdb_source import done_key, frame_key
from ops.frames.video_reader import is_video_file
from tools._prep_common import (MAX_NAMES_SHOWN, PrepError, data_root, dataset_layout, prep_parser, report_skipped,
                                require_dir, require_file, run_cli)

DEFAULT_MAP_SIZE = 1 << 40  # 1 TiB of address space; the file only grows as far as it is filled
DEFAULT_MAP_SIZE_TEXT = '1T'  # DEFAULT_MAP_SIZE as --map_size reads it (argparse converts it)
# A crash loses at most this much packing work; it also bounds a write transaction's dirty pages
# well below LMDB's limit of 128K pages (512 MiB) per transaction.
COMMIT_BYTES = 64 << 20
_SIZE_UNITS = {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}

T = TypeVar('T')
R = TypeVar('R')


@dataclass(frozen=True)
class PackJob:
    """One list line to pack: ``video`` (its path column, the key prefix), the folder of its frame
    files and the list's frame count."""
    video: str
    folder: Path
    num_frames: int


@dataclass
class PackReport:
    """What a run did: videos packed now, already in the store, left out (video -> problem) and,
    with --verify, the keys that do not match their files."""
    packed: int = 0
    frames: int = 0
    bytes: int = 0
    already: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed or self.mismatches else 0


def parse_bytes(text: str) -> int:
    """``'1T'``, ``'500G'``, ``'4096'`` -> bytes (binary units)."""
    unit = text[-1:].upper() if text[-1:].isalpha() else ''
    try:
        value = float(text[:-1] if unit else text) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f'expected a size like 1T, 500G or 4096, got {text!r}') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'the size must be positive, got {text!r}')
    return int(value)


def listed_videos(lists: Iterable[Path], frames_dir: Path) -> tuple[list[PackJob], list[str]]:
    """The frame-folder lines of ``lists`` (each video once, first line wins) and the video-file
    lines, which are not packed."""
    videos: dict[str, PackJob] = {}
    video_files: list[str] = []
    for path in lists:
        try:
            records = parse_list_file(require_file(Path(path), 'list file'))
        except ListFileError as e:
            raise PrepError(str(e)) from None
        for r in records:
            if is_video_file(r.path):
                video_files.append(r.path)
            elif r.path not in videos:
                videos[r.path] = PackJob(r.path, frames_dir / r.path, r.num_frames)
    return list(videos.values()), video_files


def read_frame_files(video: PackJob, image_tmpl: str | None) -> tuple[list[bytes], str]:
    """The bytes of frames 1..num_frames of ``video``, or ``([], problem)`` when any is missing or
    empty (the problem names the first few). ``image_tmpl`` None: the folder's numbered frames in
    order (a dataset of your own whose frame folders are named in several ways)."""
    if not video.folder.is_dir():
        return [], f'no folder {video.folder}'
    listed = None if image_tmpl is not None else [os.path.basename(f) for f in list_frame_files(str(video.folder))]
    frames, bad = [], []
    for i in range(1, video.num_frames + 1):
        if listed is not None and i > len(listed):
            bad.append(f'frame {i} (the folder has {len(listed)})')
            continue
        name = image_tmpl.format(i) if listed is None else listed[i - 1]
        try:
            data = (video.folder / name).read_bytes()
        except OSError as e:
            bad.append(f'{name} ({e.strerror or e})')
            continue
        if not data:
            bad.append(f'{name} (empty)')
        frames.append(data)
    if bad:
        more = f' and {len(bad) - 3} more' if len(bad) > 3 else ''
        return [], f'{len(bad)} of {video.num_frames} frames unreadable: {", ".join(bad[:3])}{more}'
    return frames, ''


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in order, ``fn`` running in ``workers`` threads (file reads release
    the GIL) with only a few items ahead of the consumer, so memory stays bounded however many
    videos there are."""
    if workers <= 1:
        yield from ((item, fn(item)) for item in items)
        return
    items = iter(items)
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= 4 * workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def open_store(out: Path, map_size: int, readonly: bool = False) -> lmdb.Environment:
    """The store being built (created when missing), or read back for --verify."""
    try:
        return lmdb.open(str(out), map_size=map_size, readonly=readonly, readahead=False, meminit=False,
                         subdir=not out.is_file())
    except lmdb.Error as e:
        raise PrepError(f'cannot open LMDB store {out}: {e}') from None


def pack(env: lmdb.Environment, videos: list[PackJob], image_tmpl: str, workers: int,
         report: PackReport) -> None:
    """Put every video of ``videos`` without a done entry into ``env``: its frames under the
    release's keys, then its done entry (its frame count), in the same transaction."""
    with env.begin() as txn:
        todo = [v for v in videos if txn.get(done_key(v.video)) is None]
    report.already = len(videos) - len(todo)
    if report.already:
        print(f'{report.already} of {len(videos)} videos already in the store, skipped')
    txn = env.begin(write=True)
    pending = 0
    try:
        bar = tqdm(bounded_map(lambda v: read_frame_files(v, image_tmpl), todo, workers), total=len(todo),
                   desc='packing', unit='video', disable=None)
        for video, (frames, problem) in bar:
            if problem:
                report.failed[video.video] = problem
                continue
            for i, data in enumerate(frames, start=1):
                txn.put(frame_key(video.video, i), data)
            txn.put(done_key(video.video), str(video.num_frames).encode('ascii'))
            size = sum(len(d) for d in frames)
            report.packed += 1
            report.frames += len(frames)
            report.bytes += size
            pending += size
            if pending >= COMMIT_BYTES:
                txn.commit()
                txn, pending = env.begin(write=True), 0
        txn.commit()
    except lmdb.MapFullError:
        txn.abort()
        raise PrepError('the store reached --map_size: run again with a larger one '
                        '(what was committed so far is kept)') from None
    except BaseException:
        txn.abort()
        raise


def verify(env: lmdb.Environment, videos: list[PackJob], image_tmpl: str, workers: int,
           report: PackReport) -> None:
    """Compare every key of the readable videos of ``videos`` with its frame file; each key
    missing from the store or holding other bytes goes to ``report.mismatches``."""
    readable = [v for v in videos if v.video not in report.failed]
    bar = tqdm(bounded_map(lambda v: read_frame_files(v, image_tmpl), readable, workers), total=len(readable),
               desc='verifying', unit='video', disable=None)
    with env.begin(buffers=False) as txn:
        for video, (frames, problem) in bar:
            if problem:  # the folder changed since it was packed: report it with the others
                report.failed[video.video] = problem
                continue
            for i, data in enumerate(frames, start=1):
                key = frame_key(video.video, i)
                stored = txn.get(key)
                if stored != data:
                    what = 'missing' if stored is None else f'{len(stored)} bytes stored, {len(data)} in the file'
                    report.mismatches.append(f'{key.decode()}: {what}')


def size_on_disk(path: Path) -> int:
    """Bytes the store occupies (allocated blocks: its file is sparse until filled)."""
    files = [path] if path.is_file() else [p for p in path.iterdir() if p.is_file()]
    return sum(p.stat().st_blocks * 512 for p in files)


def print_summary(report: PackReport, out: Path, env: lmdb.Environment, verified: bool) -> None:
    print(f'packed {report.packed} videos ({report.frames} frames, {report.bytes / 2 ** 20:.1f} MiB of frame '
          f'files) into {out}; {report.already} were already there')
    print(f'store: {env.stat()["entries"]} entries, {size_on_disk(out) / 2 ** 20:.1f} MiB on disk')
    if report.failed:
        print(f'{len(report.failed)} video folders miss frames and were left out:', file=sys.stderr)
        for video, problem in list(report.failed.items())[:MAX_NAMES_SHOWN]:
            print(f'  {video}: {problem}', file=sys.stderr)
        if len(report.failed) > MAX_NAMES_SHOWN:
            print(f'  ... and {len(report.failed) - MAX_NAMES_SHOWN} more', file=sys.stderr)
    if verified:
        print(f'verify: {len(report.mismatches)} keys differ from their files')
        for line in report.mismatches[:MAX_NAMES_SHOWN]:
            print(f'  {line}', file=sys.stderr)


def frames_to_lmdb(frames_dir: Path, lists: list[Path], image_tmpl: str | None, out: Path, workers: int = 1,
                   map_size: int = DEFAULT_MAP_SIZE, check: bool = False) -> int:
    """Pack the frame folders of ``lists`` under ``frames_dir`` into the store ``out`` (and with
    ``check``, verify it); returns the exit status (0, or 1 when videos were left out or keys
    differ from their files)."""
    if not all(Path(p).is_file() for p in lists):  # the frames folder is named first, as the way to make lists
        require_dir(frames_dir, 'frames folder')
    videos, video_files = listed_videos(lists, frames_dir)
    report_skipped(video_files, 'list lines are video files, read directly without a store')
    if not videos:
        raise PrepError(f'nothing to pack: no frame-folder line in {", ".join(map(str, lists))} (video-file lines '
                        'are read from the videos, without a store)')
    if any(not os.path.isabs(v.video) for v in videos):  # relative frame folders live under frames_dir
        require_dir(frames_dir, 'frames folder')
    try:
        if image_tmpl is not None:
            image_tmpl.format(1)
    except (ValueError, IndexError, KeyError) as e:
        raise PrepError(f'--image_tmpl {image_tmpl!r} does not format a frame number: {e}') from None
    env = open_store(out, map_size)
    report = PackReport()
    try:
        pack(env, videos, image_tmpl, workers, report)
        if check:
            verify(env, videos, image_tmpl, workers, report)
        print_summary(report, out, env, check)
    finally:
        env.close()
    return report.exit_status


def build_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument('dataset', nargs='?',
                        help=f'{dataset_help()}: its frame folder, lists and frame names are the defaults '
                             '(None: give --frames_dir, --lists and --image_tmpl)')
    parser.add_argument('--frames_dir', default=None, help='folder of the <video>/ frame folders '
                        "(None: the dataset's, e.g. ROOT/something/v1/20bn-something-something-v1)")
    parser.add_argument('--lists', nargs='+', default=None, help="list files naming the videos to pack "
                        "(None: the dataset's train and val lists)")
    parser.add_argument('--image_tmpl', default=None, help="frame file names, e.g. '{:05d}.jpg' "
                        "(None: the dataset's)")
    parser.add_argument('--out', default=None, help='the store (None: the frames folder with .lmdb appended; for a '
                        'dataset of your own ROOT/NAME/frames.lmdb)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                        help="threads reading frame files (one process writes); the default is this machine's "
                             'CPU count')
    parser.add_argument('--map_size', type=parse_bytes, default=DEFAULT_MAP_SIZE_TEXT,
                        help='largest size the store may reach, e.g. 500G (the file grows only as needed)')
    parser.add_argument('--verify', action='store_true',
                        help='afterwards, compare every key of the listed videos with its frame file')
    return parser


def resolve_inputs(args: argparse.Namespace) -> tuple[Path, list[Path], str | None, Path]:
    """``(frames folder, list files, frame name template, output store)`` of the command line."""
    if args.dataset and is_builtin(args.dataset):  # no category file needed to pack a built-in dataset's frames
        layout, root = dataset_layout(args.dataset), data_root(args.root_path)
        frames_dir = Path(args.frames_dir or root / layout.frames)
        lists = [Path(p) for p in args.lists] if args.lists else [root / layout.train_list, root / layout.val_list]
        image_tmpl = args.image_tmpl or layout.image_tmpl
        default_out = default_lmdb_path(frames_dir)
    elif args.dataset:  # a dataset of your own: its description file says where everything is
        try:
            info = get_dataset_info(args.dataset, args.root_path)
        except (OSError, ValueError) as err:
            raise PrepError(str(err)) from None
        frames_dir = Path(args.frames_dir or info.frames_root)
        lists = [Path(p) for p in args.lists] if args.lists else [info.train_list, info.val_list]
        image_tmpl = args.image_tmpl or info.image_tmpl
        default_out = info.lmdb_path() if not args.frames_dir else default_lmdb_path(frames_dir)
    else:
        missing = [flag for flag, value in (('--frames_dir', args.frames_dir), ('--lists', args.lists),
                                            ('--image_tmpl', args.image_tmpl)) if not value]
        if missing:
            raise PrepError(f'name a dataset, or give {" and ".join(missing)}')
        frames_dir, lists, image_tmpl = Path(args.frames_dir), [Path(p) for p in args.lists], args.image_tmpl
        default_out = default_lmdb_path(frames_dir)
    out = Path(args.out) if args.out else default_out
    return frames_dir, lists, image_tmpl, out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        frames_dir, lists, image_tmpl, out = resolve_inputs(args)
        return frames_to_lmdb(frames_dir, lists, image_tmpl, out, args.workers, args.map_size, args.verify)
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
