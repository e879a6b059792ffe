"""What the data-preparation tools share: the data root, clean failures on missing inputs, frame
counting, list and category files, and parallel frame extraction with PyAV.

List files hold one line per video, ``<folder relative to the frames root> <num frames> <label>``;
``category.txt`` holds one class name per line, the label being the 0-based line number.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, NoReturn, Sequence

from tqdm import tqdm

from ops.engine.cli import new_parser

# data_root and dataset_layout are re-exported: the tools import them from here. Where each
# dataset lives under the data root comes from the registry (ops/dataset_config.py), which the
# loaders read too.
from ops.dataset_config import ENV_ROOT as DATA_ROOT_ENV, DatasetLayout, data_root, dataset_layout  # noqa: F401
from ops.frames.video_reader import VIDEO_EXTENSIONS, decoded_frames

CATEGORY_FILE = 'category.txt'
DIGITS_JPG = re.compile(r'^\d+\.jpg$')  # Something-Something frames: 00001.jpg / 000001.jpg
IMG_JPG = re.compile(r'^img_\d+\.jpg$')  # Kinetics frames: img_00001.jpg
PARTIAL_SUFFIX = '.partial'
Entry = tuple[str, int, int]  # a list-file line: (folder, num frames, label)
MAX_NAMES_SHOWN = 20
DEFAULT_QUALITY = 90  # JPEG quality of extracted frames


class PrepError(Exception):
    """A bad or missing input; the tools print its message and exit with status 2."""


class ErrorExit(SystemExit):
    """The end of a tool on a user's mistake outside :func:`run_cli` (demo.py, visualize_pa.py):
    exit status 2, as run_cli gives; its str() is the ``error:`` line, already on stderr."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def exit_with_error(err: object) -> NoReturn:
    """Print ``error: <err>`` on stderr and end with status 2 (an :class:`ErrorExit`, no traceback)."""
    message = f'error: {err}'
    print(message, file=sys.stderr)
    raise ErrorExit(message) from None


def prep_parser(doc: str) -> argparse.ArgumentParser:
    """A data tool's argument parser (ops/engine/cli.py's: ``doc`` shown as written, every flag's default
    shown) with ``--root_path``, the data root every default path hangs from."""
    parser = new_parser(doc)
    parser.add_argument('--root_path', default=None,
                        help=f'data root (None: ${DATA_ROOT_ENV}, else ./data)')
    return parser


def parse_size(text: str) -> tuple[int, int]:
    """``'64x48'`` -> (64, 48); ``'64'`` -> (64, 64)."""
    try:
        parts = [int(v) for v in text.lower().split('x')]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT such as 64x64, got {text!r}')
    return parts[0], parts[1]


def list_name(split: str) -> str:
    """File name of a split's list: ``train_videofolder.txt`` etc."""
    return f'{split}_videofolder.txt'


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a PrepError naming it and what it should be."""
    if not path.is_file():
        raise PrepError(f'{what} not found: {path}')
    return path


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a directory, else a PrepError naming it and what it should be."""
    if not path.is_dir():
        raise PrepError(f'{what} not found (no such directory): {path}')
    return path


def run_cli(body: Callable[[], object]) -> int:
    """Run a tool's body and return its exit status: the body's own if it returns an int (not a
    bool), else 0; a PrepError becomes one ``error:`` line on stderr and status 2."""
    try:
        result = body()
        return result if type(result) is int else 0
    except PrepError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2


def count_frame_files(folder: Path, pattern: re.Pattern = DIGITS_JPG) -> int:
    """Number of frame files (names matching ``pattern``) in ``folder``; 0 if it does not exist."""
    try:
        with os.scandir(folder) as it:
            return sum(1 for e in it if pattern.match(e.name) and e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return 0


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines`` to ``path`` through a temporary file, so a crash never leaves half a list."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
        f.writelines(f'{line}\n' for line in lines)
    os.replace(tmp, path)


def write_categories(path: Path, names: Sequence[str]) -> None:
    """``category.txt``: one class name per line, the label index being the line number."""
    write_lines(path, names)


def write_list(path: Path, entries: Sequence[Entry]) -> None:
    """A list file of ``(folder, num_frames, label)`` entries."""
    write_lines(path, (f'{folder} {num} {label}' for folder, num, label in entries))
    print(f'wrote {path} ({len(entries)} videos)')


def collect_entries(videos: Sequence[tuple[str, int]], frames_dir: Path, source: str,
                    pattern: re.Pattern = DIGITS_JPG) -> list[Entry]:
    """``(folder, num_frames, label)`` for each ``(folder, label)`` whose frame folder under
    ``frames_dir`` holds frames; the others are reported on stderr (``source`` names the annotation
    file they come from) and skipped, since real downloads always miss a few videos."""
    entries, missing = [], []
    for folder, label in tqdm(videos, desc=f'counting frames ({Path(source).name})', unit='video',
                              leave=False, disable=None):
        num = count_frame_files(frames_dir / folder, pattern)
        if num:
            entries.append((folder, num, label))
        else:
            missing.append(folder)
    report_skipped(missing, f'of the {len(videos)} videos in {source} have no frames under {frames_dir}')
    return entries


def report_skipped(names: Sequence[str], why: str) -> None:
    """One warning on stderr listing (the first few) ``names``, if there are any."""
    if names:
        shown = ', '.join(names[:MAX_NAMES_SHOWN]) + (', ...' if len(names) > MAX_NAMES_SHOWN else '')
        print(f'warning: {len(names)} {why}; skipped: {shown}', file=sys.stderr)


def write_dataset(out_dir: Path, categories: Sequence[str], lists: dict[str, Sequence[Entry]],
                  frames_dir: Path, how_to_make: str) -> None:
    """Write ``out_dir/category.txt`` and ``out_dir/<split>_videofolder.txt`` for each split.

    A PrepError (and nothing written) when no list got a single video: the frames are elsewhere or
    not extracted yet (``how_to_make`` says how to get them).
    """
    if not any(lists.values()):
        raise PrepError(f'no frame folder found for any annotated video under {frames_dir}; '
                        f'{how_to_make}, or pass the right frames directory')
    write_categories(out_dir / CATEGORY_FILE, categories)
    for split, entries in lists.items():
        write_list(out_dir / list_name(split), entries)


# ---------------------------------------------------------------------------------------------
# Frame extraction


@dataclass(frozen=True)
class ExtractJob:
    """One video to turn into ``out_dir/<name_template.format(i)>`` frames, i = 1, 2, ...

    ``resize`` is ``('height', n)`` (height n, width keeping the aspect ratio) or
    ``('short_side', n)``.
    """
    video: str
    out_dir: str
    name_template: str
    resize: tuple[str, int]
    quality: int = DEFAULT_QUALITY


def extraction_size(width: int, height: int, resize: tuple[str, int]) -> tuple[int, int]:
    """(width, height) after resizing per ``resize`` (see :class:`ExtractJob`), aspect kept."""
    rule, target = resize
    if rule == 'short_side' and width < height:
        return target, max(1, round(height * target / width))
    if rule in ('height', 'short_side'):
        return max(1, round(width * target / height)), target
    raise ValueError(f'unknown resize rule {rule!r}')


def partial_dir(out_dir: Path) -> Path:
    """Where a video's frames are written before they are complete (hidden, beside the final one)."""
    return out_dir.with_name(f'.{out_dir.name}{PARTIAL_SUFFIX}')


def extract_frames(job: ExtractJob) -> int:
    """Decode ``job.video`` with PyAV and write every frame as a JPEG; return the frame count.

    Frames go to a hidden partial folder renamed to ``job.out_dir`` only once all are written, so
    the final folder existing is the completion marker: a crash leaves only the partial folder,
    which the next run removes and redoes. Raises on any decoding error (the folder is removed).
    """
    import av  # imported here so the label tools do not pay for it

    out_dir = Path(job.out_dir)
    tmp = partial_dir(out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        count = 0
        with av.open(job.video) as container:
            if not container.streams.video:
                raise ValueError('no video stream')
            stream = container.streams.video[0]
            for frame in decoded_frames(container.demux(stream)):  # damaged packets passed over, as ffmpeg does
                w, h = extraction_size(frame.width, frame.height, job.resize)
                image = frame.to_image(width=w, height=h, interpolation='BICUBIC')
                count += 1
                image.save(tmp / job.name_template.format(count), quality=job.quality)
        if count == 0:
            raise ValueError('no frame could be decoded')
        os.replace(tmp, out_dir)
        return count
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _extract_or_error(job: ExtractJob) -> tuple[str, str | None]:
    """(video, None) on success, (video, error message) on failure: workers never raise."""
    try:
        extract_frames(job)
        return job.video, None
    except Exception as e:  # any decoding failure is reported at the end, not fatal
        return job.video, f'{type(e).__name__}: {e}'


def find_videos(video_dir: Path, exts: Sequence[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """Every video file under ``video_dir`` (any depth), sorted; a PrepError if there is none."""
    require_dir(video_dir, 'video folder')
    exts = tuple(e.lower() for e in exts)
    videos = sorted(p for p in video_dir.rglob('*') if p.suffix.lower() in exts and p.is_file())
    if not videos:
        raise PrepError(f'no video file ({", ".join(exts)}) found under {video_dir}')
    return videos


def check_output_clashes(jobs: Sequence[ExtractJob]) -> None:
    """A PrepError listing every frame folder that two or more videos would write (``a.mp4`` and
    ``a.webm`` both become ``a/``), so nothing is extracted from an ambiguous set."""
    by_folder: dict[str, list[str]] = {}
    for job in jobs:
        by_folder.setdefault(os.path.normpath(job.out_dir), []).append(job.video)
    clashes = {folder: videos for folder, videos in by_folder.items() if len(videos) > 1}
    if clashes:
        lines = [f'  {folder} <- {", ".join(sorted(videos))}' for folder, videos in sorted(clashes.items())]
        raise PrepError(f'{len(clashes)} frame folder(s) would be written by more than one video; rename or '
                        'move one of each before extracting:\n' + '\n'.join(lines))


def run_extraction(jobs: Sequence[ExtractJob], workers: int, desc: str = 'extracting') -> int:
    """Extract ``jobs`` whose output folder does not exist yet, in ``workers`` processes, after
    checking that no two videos share an output folder (:func:`check_output_clashes`).

    Returns the exit status: 0 when every video is done, 1 when some failed (they are listed on
    stderr at the end; the others are still extracted).
    """
    check_output_clashes(jobs)
    todo = [j for j in jobs if not Path(j.out_dir).is_dir()]
    if len(todo) < len(jobs):
        print(f'{len(jobs) - len(todo)} of {len(jobs)} videos already extracted, skipped')
    failed: list[tuple[str, str]] = []
    if workers <= 1 or len(todo) <= 1:
        results: Iterable = map(_extract_or_error, todo)
        pool = None
    else:  # started before the bar's monitor thread exists, so no thread is forked
        pool = multiprocessing.Pool(min(workers, len(todo)))
        results = pool.imap_unordered(_extract_or_error, todo)
    bar = tqdm(total=len(todo), desc=desc, unit='video', disable=None)
    try:
        for video, error in results:
            if error is not None:
                failed.append((video, error))
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    print(f'extracted {len(todo) - len(failed)} videos, {len(failed)} failed')
    if failed:
        print(f'{len(failed)} videos failed:', file=sys.stderr)
        for video, error in sorted(failed):
            print(f'  {video}: {error}', file=sys.stderr)
        return 1
    return 0


def add_extraction_args(parser: argparse.ArgumentParser, layout: DatasetLayout, videos_what: str) -> None:
    """The options both frame extractors take; folder defaults from the dataset's ``layout``."""
    parser.add_argument('--video_dir', default=None, help=f'{videos_what} (None: ROOT/{layout.videos})')
    parser.add_argument('--frames_dir', default=None, help=f'output frames root (None: ROOT/{layout.frames})')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                        help="parallel extraction processes; the default is this machine's CPU count")
    parser.add_argument('--quality', type=int, default=DEFAULT_QUALITY, help='JPEG quality of the frames, 1..95')


def extraction_dirs(args: argparse.Namespace, layout: DatasetLayout) -> tuple[Path, Path]:
    """``(video folder, frames folder)`` of an extractor's command line, defaults under the data root."""
    root = data_root(args.root_path)
    return Path(args.video_dir or root / layout.videos), Path(args.frames_dir or root / layout.frames)


@dataclass(frozen=True)
class SomethingRelease:
    """What differs between the Something-Something V1 and V2 annotation releases."""
    version: str                      # 'V1' or 'V2', for messages
    prefix: str                       # file name prefix, e.g. 'something-something-v1-'
    labels_file: str                  # e.g. 'labels.csv'
    split_files: dict[str, str]       # split -> file name after the prefix
    read_label_names: Callable[[Path], list[str]]
    read_split: Callable[[Path, dict[str, int] | None], list[tuple[str, int]]]
    frames_hint: str                  # how to make the frame folders, for the missing-folder error
    dataset: str                      # its name in the registry: 'something' or 'somethingv2'


def something_lists(release: SomethingRelease, annotation_dir: Path, frames_dir: Path,
                    out_dir: Path) -> dict[str, list[Entry]]:
    """Write category.txt and the list files of one Something-Something release; return the
    entries ``(id, num_frames, label)`` per split. The test split is optional."""
    categories = release.read_label_names(annotation_dir / f'{release.prefix}{release.labels_file}')
    label_of = {name: i for i, name in enumerate(categories)}
    split_paths = {split: annotation_dir / f'{release.prefix}{name}' for split, name in release.split_files.items()}
    for split in ('train', 'val'):
        require_file(split_paths[split], f'{release.version} {split} annotation file')
    require_dir(frames_dir, f'{release.version} frames folder')
    lists = {}
    for split, path in split_paths.items():
        if split == 'test' and not path.is_file():
            continue
        videos = release.read_split(path, None if split == 'test' else label_of)
        lists[split] = collect_entries(videos, frames_dir, str(path))
    write_dataset(out_dir, categories, lists, frames_dir, release.frames_hint)
    return lists


def something_parser(release: SomethingRelease, doc: str) -> argparse.ArgumentParser:
    """The argument parser of ``gen_label_sthv1.py`` / ``gen_label_sthv2.py``."""
    parser = prep_parser(doc)
    ext = Path(release.labels_file).suffix
    layout = dataset_layout(release.dataset)
    parser.add_argument('--annotation_dir', default=None,
                        help=f'folder of the official {release.prefix}*{ext} files (None: OUT_DIR)')
    parser.add_argument('--frames_dir', default=None,
                        help=f'folder of the <id>/ frame folders (None: ROOT/{layout.frames})')
    parser.add_argument('--out_dir', default=None,
                        help=f'where category.txt and the lists go (None: ROOT/{layout.lists_dir})')
    return parser


def something_main(release: SomethingRelease, doc: str, argv: list[str] | None) -> int:
    """The command line of ``gen_label_sthv1.py`` / ``gen_label_sthv2.py``."""
    args = something_parser(release, doc).parse_args(argv)
    layout = dataset_layout(release.dataset)
    root = data_root(args.root_path)
    out_dir = Path(args.out_dir or root / layout.lists_dir)
    annotation_dir = Path(args.annotation_dir or out_dir)
    frames_dir = Path(args.frames_dir or root / layout.frames)
    return run_cli(lambda: something_lists(release, annotation_dir, frames_dir, out_dir))
