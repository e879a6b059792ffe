"""Make a dataset of your own from a folder of labelled clips, for main.py, test_models.py, the
tools and the scripts, with no code edited.

    python tools/prepare_dataset.py VIDEOS --name NAME [--root_path ROOT] [--val_fraction 0.2] [--seed 0]
                                    [--split VAL_CLIPS.txt] [--no_flip] [--workers N]

VIDEOS holds one folder per class, ``VIDEOS/<class>/<clip>``, where a clip is a video file of any
extension the readers take (.mp4 .avi .mkv .webm .mov .m4v, any letter case) or a folder of
numbered frames. Every clip is opened once with the project's readers (its frame count and frame
size); what cannot be used is left out and reported with the reason, never stopping at the first
bad file. A class folder left without a clip is an error naming it (nothing is written).

Written under ``ROOT/NAME/`` (ROOT: --root_path, else $PAN_DATA_ROOT, else ./data):
  train_videofolder.txt, val_videofolder.txt   ``<clip path relative to VIDEOS> <frames> <label>``
  category.txt                                 the class folders' names, sorted; label = line number
  dataset.json                                 the description that makes NAME a dataset
                                               (ops/dataset_description.py)

The split is stratified by class and seeded (--seed): a --val_fraction of each class's clips goes
to validation, at least one of each class with 2 clips or more, and at least one stays in
training. --split FILE names the validation clips instead, one a line (``class/clip.mp4`` as in the
lists, or a clip's file name when no other clip has it). The same arguments always write the same
files. Horizontal flips are allowed in training unless --no_flip (for classes that depend on
direction: "swipe left" / "swipe right").
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ops.dataset import MIN_FRAMES
from ops.dataset_config import check_own_name
from ops.dataset_description import DESCRIPTION_FILE, description_text
from ops.errors import InputError
from ops.frames.clip_check import check_clip
from ops.frames.frame_source import IMAGE_EXTENSIONS, MissingVideoError, open_frame_source, scan_frame_folder
from ops.frames.image_io import FrameReadError
from ops.frames.video_reader import VideoReadError, is_video_file
from tools._prep_common import (CATEGORY_FILE, PrepError, data_root, list_name, prep_parser, run_cli,
                                write_lines)

DEFAULT_VAL_FRACTION = 0.2
NOT_A_CLIP = 'not a video file or frame folder'


# ---------------------------------------------------------------- one clip


@dataclass(frozen=True)
class ClipProbe:
    """What one read of a clip tells: its frame count and frame size; ``damage``: what is wrong
    with a clip that is kept all the same (a video whose tail does not decode), '' when nothing."""
    num_frames: int
    width: int
    height: int
    damage: str = ''


class ClipRejected(Exception):
    """A clip that cannot be used; the message is the reason shown to the user."""


def _plain(err: BaseException, path: str) -> str:
    """An error's message without the clip's path (the report names it) and errno numbers."""
    text = str(err)
    # the readers may name it absolute where the report has it relative: the longer form first
    for where in dict.fromkeys((os.path.abspath(path), path)):
        for named in (f": '{where}'", f' in {where}', f' {where}', f'{where}: '):
            text = text.replace(named, '')
    return re.sub(r'\[Errno -?\d+\] ', '', text).strip()


def probe_clip(path: str) -> ClipProbe:
    """Open a video file or frame folder once with the project's readers: its frame count (a
    video is decoded through, as training will read it, and its index stored, so that training
    decodes nothing again), its first and last frames read back as a run's check of its lists
    does (:func:`~ops.frames.clip_check.check_clip`), and the size of its first frame. Raises
    :class:`ClipRejected` saying why it cannot be used."""
    try:
        source = open_frame_source(path)
        count = source.num_frames
    except MissingVideoError as err:
        raise ClipRejected(f'cannot be opened ({_plain(err, path)})') from None
    except VideoReadError as err:
        text = _plain(err, path)
        # the reader's words for a file that opens but gives no frame
        undecodable = text.startswith(('no video frames', 'cannot read video'))
        raise ClipRejected(f'{"no decodable frame" if undecodable else "cannot be opened"} ({text})') from None
    except InputError as err:  # a folder without images, a file of another kind
        raise ClipRejected(f'{NOT_A_CLIP} ({_plain(err, path)})') from None
    except OSError as err:
        raise ClipRejected(f'cannot be opened ({_plain(err, path)})') from None
    if count < 1:
        raise ClipRejected('no decodable frame')
    check = check_clip(path)
    if not check.ok:
        raise ClipRejected(_plain(VideoReadError(check.problem), path))
    try:
        first = source.read([1])[1]
    except (VideoReadError, FrameReadError, InputError) as err:
        raise ClipRejected(f'no decodable frame ({_plain(err, path)})') from None
    damage = ''
    if check.header_frames and check.header_frames > count:
        damage = f'decodes {count} of the {check.header_frames} frames its header claims'
    return ClipProbe(count, int(first.shape[1]), int(first.shape[0]), damage)


def _probe_or_reason(path: str) -> ClipProbe | str:
    """:func:`probe_clip` for a worker process: the probe, or the reason it was rejected."""
    try:
        return probe_clip(path)
    except ClipRejected as err:
        return str(err)


def frame_template(folder: str) -> str | None:
    """The template of a frame folder's names when its frames are numbered 1..N under one name
    pattern (``img_{:05d}.jpg``, ``{:d}.png``), else None (the dataset then reads each folder's
    numbered frames, as :func:`~ops.frames.frame_source.scan_frame_folder` orders them)."""
    listing = scan_frame_folder(folder)
    if '<n>' not in listing.pattern:
        return None
    prefix, ext = listing.pattern.split('<n>')  # the pattern's extension is lower case
    names = [os.path.basename(f) for f in listing.files]
    first = names[0]
    digits, real_ext = first[len(prefix):len(first) - len(ext)], first[len(first) - len(ext):]
    for template in (f'{prefix}{{:0{len(digits)}d}}{real_ext}', f'{prefix}{{:d}}{real_ext}'):
        if all(name == template.format(i) for i, name in enumerate(names, start=1)):
            return template
    return None


# ---------------------------------------------------------------- the folder of classes


@dataclass
class LabelledClip:
    """A clip of class ``label``: its path relative to VIDEOS (POSIX, as the lists write it)."""
    rel: str
    label: int
    probe: ClipProbe
    is_folder: bool


@dataclass
class Scan:
    """What the folder of classes holds: the classes (sorted), the usable clips, what was left
    out (path -> reason) and the hidden entries passed over."""
    classes: list[str]
    clips: list[LabelledClip] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    hidden: int = 0


def _holds_videos(folder: Path) -> bool:
    """Whether a folder holds video files (then it is a group of clips, not a clip's frames)."""
    try:
        return any(is_video_file(e.name) for e in os.scandir(folder))
    except OSError:
        return False


def _candidates(videos: Path, scan: Scan) -> list[tuple[str, int]]:
    """(relative path, label) of every entry of every class folder that may be a clip; loose files
    and other kinds go to ``scan.left_out``."""
    found = []
    for entry in sorted(videos.iterdir()):
        if entry.name.startswith('.'):
            scan.hidden += 1
        elif not entry.is_dir():
            scan.left_out[entry.name] = 'not in a class folder'
    for label, name in enumerate(scan.classes):
        images = 0
        try:
            entries = sorted((videos / name).iterdir())
        except OSError as err:
            scan.left_out[f'{name}/'] = f'cannot be read ({err.strerror or err})'
            continue
        for entry in entries:
            rel = f'{name}/{entry.name}'
            if entry.name.startswith('.'):
                scan.hidden += 1
            elif '\n' in entry.name or '\r' in entry.name:
                scan.left_out[rel] = 'its name holds a line break, which a list file cannot'
            elif entry.is_dir() and _holds_videos(entry):
                scan.left_out[rel] = ('a folder of videos, not of frames: clips are looked for one level down '
                                      '(VIDEOS/<class>/<clip>), not in sub-folders')
            elif entry.is_dir() or (entry.is_file() and is_video_file(entry.name)):
                found.append((rel, label))
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                images += 1  # one line for them all: frames put straight into the class folder
            else:
                scan.left_out[rel] = NOT_A_CLIP
        if images:
            scan.left_out[f'{name}/ ({images} image files)'] = \
                "images straight in a class folder: put each clip's frames in a folder of its own"
    return found


def scan_videos(videos: Path, workers: int = 1) -> Scan:
    """Read every clip of ``videos/<class>/`` once (``workers`` processes). Raises PrepError for a
    folder without class folders; an empty class is left for :func:`check_classes`."""
    if not videos.is_dir():
        raise PrepError(f'no such folder of class folders: {videos}')
    classes = sorted(p.name for p in videos.iterdir() if p.is_dir() and not p.name.startswith('.'))
    if not classes:
        raise PrepError(f'{videos} holds no class folder: put each class\'s clips in VIDEOS/<class>/')
    scan = Scan(classes)
    candidates = _candidates(videos, scan)
    paths = [str(videos / rel) for rel, _ in candidates]
    bar = dict(total=len(paths), desc='reading clips', unit='clip', disable=None)
    if workers > 1 and len(paths) > 1:
        with multiprocessing.Pool(min(workers, len(paths))) as pool:
            results = list(tqdm(pool.imap(_probe_or_reason, paths, chunksize=4), **bar))
    else:
        results = [_probe_or_reason(p) for p in tqdm(paths, **bar)]
    for (rel, label), path, result in zip(candidates, paths, results):
        if isinstance(result, str):
            scan.left_out[rel] = result
        else:
            scan.clips.append(LabelledClip(rel, label, result, os.path.isdir(path)))
    return scan


def check_classes(scan: Scan, videos: Path) -> None:
    """PrepError naming every class folder left without a usable clip."""
    used = Counter(c.label for c in scan.clips)
    empty = [scan.classes[i] for i in range(len(scan.classes)) if not used[i]]
    if empty:
        lines = '\n'.join(f'  {videos / name}' for name in empty)
        raise PrepError(f'{len(empty)} class folder(s) hold no usable clip (add clips, or remove the folder):\n'
                        f'{lines}')


# ---------------------------------------------------------------- the split


def split_by_fraction(clips: list[LabelledClip], val_fraction: float, seed: int) -> set[str]:
    """The validation clips: in each class, ``round(n * val_fraction)`` of its ``n`` clips drawn with
    a generator seeded by ``seed`` and the class, at least 1 when ``n >= 2`` and never all of them
    (a class of one clip trains). Each class's draw depends on its own clips alone."""
    by_class: dict[str, list[str]] = {}
    for clip in clips:
        by_class.setdefault(clip.rel.split('/', 1)[0], []).append(clip.rel)
    val = set()
    for cls, names in by_class.items():
        names = sorted(names)
        n = len(names)
        take = 0 if n < 2 else min(max(round(n * val_fraction), 1), n - 1)
        random.Random(f'{seed}/{cls}').shuffle(names)  # seeded by the class's name, not its label
        val.update(names[:take])
    return val


def split_from_file(clips: list[LabelledClip], split_file: Path, left_out: dict[str, str], videos: Path) -> set[str]:
    """The validation clips named in ``split_file``, one a line (``class/clip`` as in the lists, a
    path under ``videos``, or a clip's file name when unique); blank lines and ``#`` comments are skipped.
    A name that matches no clip is an error naming the file and line; a clip that was left out is
    noted on stderr."""
    try:
        lines = split_file.read_text(encoding='utf-8').splitlines()
    except OSError as err:
        raise PrepError(f'--split {split_file}: {err.strerror or err}') from None
    by_rel = {c.rel: c.rel for c in clips}
    by_name: dict[str, list[str]] = {}
    for c in clips:
        by_name.setdefault(c.rel.rsplit('/', 1)[-1], []).append(c.rel)
    val, bad, dropped = set(), [], []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith('#'):
            continue
        key = text
        if os.path.isabs(text) and Path(text).resolve().is_relative_to(videos.resolve()):
            key = Path(text).resolve().relative_to(videos.resolve()).as_posix()
        matches = [by_rel[key]] if key in by_rel else by_name.get(key, [])
        if len(matches) == 1:
            val.add(matches[0])
        elif key in left_out or any(k.endswith('/' + key) for k in left_out):
            dropped.append(text)
        else:
            why = f'{len(matches)} clips are named so; write class/clip' if matches else 'no such clip'
            bad.append(f'  line {number}: {text!r}: {why}')
    if bad:
        raise PrepError(f'--split {split_file}: {len(bad)} line(s) name no single clip:\n' + '\n'.join(bad[:10])
                        + (f'\n  ... and {len(bad) - 10} more' if len(bad) > 10 else ''))
    if dropped:
        print(f'note: --split names {len(dropped)} clip(s) that were left out: {", ".join(dropped[:5])}',
              file=sys.stderr)
    return val


# ---------------------------------------------------------------- the report


def _size_text(probes: list[ClipProbe]) -> str:
    sizes = Counter(f'{p.width}x{p.height}' for p in probes)
    common, _ = sizes.most_common(1)[0]
    return common if len(sizes) == 1 else f'{common} (+{len(sizes) - 1} other size{"s" * (len(sizes) > 2)})'


def report(scan: Scan, val: set[str], videos: Path) -> str:
    """Per class: clips in train and val, frames (min / median / max) and frame size; then every
    entry left out with the reason."""
    width = max(12, *(len(c) for c in scan.classes)) + 2
    lines = [f'{"class":<{width}}{"train":>6}{"val":>6}   frames min / median / max   frame size']
    for label, name in enumerate(scan.classes):
        mine = [c for c in scan.clips if c.label == label]
        if not mine:
            lines.append(f'{name:<{width}}{0:>6}{0:>6}   no usable clip')
            continue
        frames = [c.probe.num_frames for c in mine]
        n_val = sum(c.rel in val for c in mine)
        median = statistics.median(frames)
        lines.append(f'{name:<{width}}{len(mine) - n_val:>6}{n_val:>6}   {min(frames):>10} / {median:>6g} / '
                     f'{max(frames):<6}   {_size_text([c.probe for c in mine])}')
    lines.append(f'{"all classes":<{width}}{len(scan.clips) - len(val):>6}{len(val):>6}')
    short = [c.rel for c in scan.clips if c.probe.num_frames < MIN_FRAMES]
    if short:
        lines.append(f'note: {len(short)} clip(s) have fewer than {MIN_FRAMES} frames, which training and validation '
                     f'leave out: {", ".join(short[:5])}{", ..." if len(short) > 5 else ""}')
    damaged = [c for c in scan.clips if c.probe.damage]
    if damaged:
        lines.append(f'note: {len(damaged)} damaged clip(s) kept with the frames that decode:')
        lines.extend(f'  {videos / c.rel}: {c.probe.damage}' for c in damaged)
    if scan.left_out:
        lines.append(f'left out {len(scan.left_out)} entr{"y" if len(scan.left_out) == 1 else "ies"}:')
        lines.extend(f'  {videos / rel}: {why}' for rel, why in sorted(scan.left_out.items()))
    else:
        lines.append('left out: nothing')
    if scan.hidden:
        lines.append(f'({scan.hidden} hidden entr{"y" if scan.hidden == 1 else "ies"} passed over)')
    return '\n'.join(lines)


# ---------------------------------------------------------------- writing


def _write_if_changed(path: Path, lines: list[str]) -> str:
    """Write ``lines`` unless the file already holds exactly them; 'wrote' or 'unchanged'."""
    text = ''.join(f'{line}\n' for line in lines)
    if path.is_file() and path.read_text(encoding='utf-8') == text:
        return 'unchanged'
    write_lines(path, lines)
    return 'wrote'


def output_folder(root: Path, name: str, videos: Path) -> Path:
    """``ROOT/NAME``, refused when it is VIDEOS itself or holds lists this tool did not make."""
    out = root / name
    if out.resolve() == videos.resolve():
        raise PrepError(f'{videos} is the dataset folder ROOT/{name} itself: put the class folders in a '
                        f'sub-folder (e.g. {out / "videos"}) or elsewhere')
    ours = [out / f for f in (CATEGORY_FILE, list_name('train'), list_name('val'))]
    if not (out / DESCRIPTION_FILE).is_file() and any(p.exists() for p in ours):
        raise PrepError(f'{out} holds list or category files but no {DESCRIPTION_FILE}: not a dataset this tool '
                        'made; choose another --name or --root_path')
    return out


def write_own_dataset(out: Path, videos: Path, scan: Scan, val: set[str], flip: bool, split: dict) -> list[str]:
    """The lists, category.txt and dataset.json; returns a line per file (wrote / unchanged)."""
    entries = {'train': [], 'val': []}
    for clip in sorted(scan.clips, key=lambda c: (c.label, c.rel)):
        entries['val' if clip.rel in val else 'train'].append(f'{clip.rel} {clip.probe.num_frames} {clip.label}')
    folders = [str(videos / c.rel) for c in scan.clips if c.is_folder]
    templates = {frame_template(f) for f in folders}
    template = templates.pop() if len(templates) == 1 else None
    inside = videos.resolve().is_relative_to(out.resolve())
    fields = {
        'num_class': len(scan.classes),
        'categories': CATEGORY_FILE,
        'train_list': list_name('train'),
        'val_list': list_name('val'),
        'clips_root': os.path.relpath(videos.resolve(), out.resolve()) if inside else str(videos.resolve()),
        'image_tmpl': template,
        'flip': flip,
        'source': str(videos.resolve()),
        'split': split,
        'clips': {'train': len(entries['train']), 'val': len(entries['val']), 'frame_folders': len(folders)},
    }
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for path, lines in ((out / list_name('train'), entries['train']), (out / list_name('val'), entries['val']),
                        (out / CATEGORY_FILE, scan.classes),
                        (out / DESCRIPTION_FILE, description_text(fields).splitlines())):
        done.append(f'{_write_if_changed(path, lines)} {path}')
    return done


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument('videos', help='folder of class folders: VIDEOS/<class>/<video file or frame folder>')
    parser.add_argument('--name', required=True, default=argparse.SUPPRESS,
                        help='the dataset\'s name, for main.py NAME ...: a folder name, not a built-in dataset\'s '
                             '(required)')
    parser.add_argument('--val_fraction', type=float, default=None,
                        help=f'share of each class\'s clips for validation (None: {DEFAULT_VAL_FRACTION}; '
                             'not with --split)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the split')
    parser.add_argument('--split', default=None,
                        help='file naming the validation clips, one a line (class/clip, or a unique clip file '
                             'name), instead of a drawn split (None: the split is drawn)')
    parser.add_argument('--no_flip', action='store_true',
                        help='never flip clips horizontally in training (classes that depend on direction)')
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                        help='processes reading the clips')
    return parser


def prepare(args: argparse.Namespace) -> int:
    try:
        name = check_own_name(args.name)
    except InputError as err:
        raise PrepError(f'--name: {err}') from None
    if args.split and args.val_fraction is not None:
        raise PrepError('--split names the validation clips; --val_fraction draws them: give one')
    fraction = DEFAULT_VAL_FRACTION if args.val_fraction is None else args.val_fraction
    if not 0 < fraction < 1:
        raise PrepError(f'--val_fraction {fraction}: must be between 0 and 1')
    videos = Path(args.videos).expanduser()
    out = output_folder(data_root(args.root_path), name, videos)
    scan = scan_videos(videos, args.workers)
    if args.split:
        val = split_from_file(scan.clips, Path(args.split), scan.left_out, videos)
        split = {'file': str(Path(args.split).resolve())}
    else:
        val = split_by_fraction(scan.clips, fraction, args.seed)
        split = {'val_fraction': fraction, 'seed': args.seed}
    print(f'=> {videos}: {len(scan.classes)} classes, {len(scan.clips)} clips')
    print(report(scan, val, videos))
    check_classes(scan, videos)
    if not val:
        raise PrepError('no clip went to validation: every class has a single clip (or --split names none)')
    for line in write_own_dataset(out, videos, scan, val, not args.no_flip, split):
        print(f'=> {line}')
    print(f'=> dataset {name!r} is ready (flips {"off" if args.no_flip else "on"}); train it with\n'
          f'   bash scripts/train/custom.sh {name}        or   python main.py {name} Lite ...'
          + ('' if args.root_path is None else f' --root_path {args.root_path}'))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: prepare(args))


if __name__ == '__main__':
    sys.exit(main())
