"""From list file to clip tensor: list parsing, TSN frame sampling (pure functions) and the
``PANDataSet`` that reads frame folders or video files.

Frame indices are 1-based as in the release (``img_00001.jpg`` is frame 1). A clip is
``num_segments`` segment starts, each expanded to ``new_length`` consecutive frames (the last frame
repeats at the end of the video); at test time several clips (``twice_sample``: 2,
``dense_sample``: 10) follow one another.
"""
from __future__ import annotations

import multiprocessing
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from ops.image_io import FrameReadError, read_frame_pil, read_frame_uint8
from ops.video_reader import VideoReader, VideoReadError, count_video_frames, is_video_file

MODALITIES = ('RGB', 'PA', 'Lite')
DEFAULT_NEW_LENGTH = {'RGB': 1, 'PA': 4, 'Lite': 4}  # frames per segment of the released models
DENSE_WINDOW = 64  # dense sampling spreads a clip over this many frames
DENSE_TEST_CLIPS = 10
MIN_FRAMES = 3  # the release drops shorter videos from training and validation lists
MAX_REPORTED_LINES = 5


class ListFileError(ValueError):
    """A list file is malformed; the message names the file and each bad line (up to a few)."""


class MissingFrameWarning(UserWarning):
    """A frame was replaced by the nearest readable one (``substitute_missing=True``)."""


@dataclass
class VideoRecord:
    """One list-file line: frame folder or video file (relative to the dataset root), its frame
    count and label. ``source`` is ``"<list file>:<line>"`` for error messages."""
    path: str
    num_frames: int
    label: int
    source: str = ''


# ---------------------------------------------------------------- list files

def _parse_line(line: str, num_class: int | None) -> tuple[VideoRecord | None, str | None]:
    """(record, None) or (None, what is wrong). The path may hold spaces: split from the right."""
    parts = line.strip().rsplit(None, 2)
    if len(parts) != 3:
        return None, f'expected "<path> <num frames> <label>", got {len(parts)} field(s)'
    path, count, label = parts
    try:
        count_i = int(count)
    except ValueError:
        return None, f'frame count {count!r} is not an integer'
    try:
        label_i = int(label)
    except ValueError:
        return None, f'label {label!r} is not an integer'
    if count_i < 0:
        return None, f'negative frame count {count_i}'
    if label_i < 0 or (num_class is not None and label_i >= num_class):
        span = f'0..{num_class - 1}' if num_class is not None else '>= 0'
        return None, f'label {label_i} outside {span}'
    return VideoRecord(path, count_i, label_i), None


def parse_list_file(list_file: str | os.PathLike, num_class: int | None = None) -> list[VideoRecord]:
    """Read ``<video folder or video file> <num frames> <label>`` lines (blank lines skipped).

    Every malformed line (wrong field count, non-integer or negative count, non-integer label,
    label outside ``0..num_class-1``) is collected; a ListFileError then names the file and up to
    five of them with their line numbers.
    """
    list_file = os.fspath(list_file)
    try:
        with open(list_file, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f'list file not found: {list_file}') from None
    records, bad = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, problem = _parse_line(line, num_class)
        if problem:
            bad.append(f'  line {number}: {problem}: {line.strip()[:120]!r}')
        else:
            record.source = f'{list_file}:{number}'
            records.append(record)
    if bad:
        more = f'\n  ... and {len(bad) - MAX_REPORTED_LINES} more' if len(bad) > MAX_REPORTED_LINES else ''
        raise ListFileError(f'{list_file}: {len(bad)} malformed line(s):\n'
                            + '\n'.join(bad[:MAX_REPORTED_LINES]) + more)
    if not records:
        raise ListFileError(f'{list_file}: no entries')
    return records


# ---------------------------------------------------------------- sampling (pure functions)

def _check_counts(num_frames: int, num_segments: int, new_length: int) -> None:
    if num_frames < 1 or num_segments < 1 or new_length < 1:
        raise ValueError(f'need num_frames, num_segments and new_length >= 1, got '
                         f'{num_frames}, {num_segments}, {new_length}')


def _randint(rng, high: int, size: int | None = None):
    """Integers in ``[0, high)`` from a numpy Generator, RandomState or the ``np.random`` module."""
    rng = np.random if rng is None else rng
    return rng.integers(0, high, size) if isinstance(rng, np.random.Generator) else rng.randint(0, high, size)


def _dense_offsets(num_frames: int, num_segments: int, start: int) -> np.ndarray:
    """0-based frames of one dense clip: stride ``64 // num_segments`` from ``start``, wrapping."""
    stride = DENSE_WINDOW // num_segments
    return (np.arange(num_segments) * stride + start) % num_frames


def _centres(num_frames: int, num_segments: int, new_length: int, half: bool = True) -> np.ndarray:
    """0-based segment centres (``half``) or starts, computed as the release does in floating point;
    clamped at 0 where videos shorter than ``new_length`` made the release go negative."""
    tick = (num_frames - new_length + 1) / float(num_segments)
    pos = (tick / 2.0 if half else 0.0) + tick * np.arange(num_segments)
    return np.maximum(np.floor(pos), 0).astype(np.int64)


def sample_train_indices(num_frames: int, num_segments: int, new_length: int = 1, rng=None,
                  dense_sample: bool = False) -> np.ndarray:
    """1-based segment starts ``(num_segments,)`` for training: a random frame inside each of the
    ``num_segments`` equal segments of the ``num_frames - new_length + 1`` possible starts. Videos
    with fewer starts than segments get sorted random starts, or all frame 1.

    ``rng``: numpy Generator or RandomState (default: the global ``np.random``).
    """
    _check_counts(num_frames, num_segments, new_length)
    if dense_sample:
        sample_pos = max(1, 1 + num_frames - DENSE_WINDOW)
        start = 0 if sample_pos == 1 else int(_randint(rng, sample_pos - 1))
        return _dense_offsets(num_frames, num_segments, start) + 1
    starts = num_frames - new_length + 1
    duration = starts // num_segments
    if duration > 0:
        offsets = np.arange(num_segments) * duration + _randint(rng, duration, num_segments)
    elif num_frames > num_segments and starts > 0:
        offsets = np.sort(_randint(rng, starts, num_segments))
    else:
        offsets = np.zeros(num_segments, dtype=np.int64)
    return np.asarray(offsets, dtype=np.int64) + 1


def sample_val_indices(num_frames: int, num_segments: int, new_length: int = 1,
                dense_sample: bool = False) -> np.ndarray:
    """1-based segment starts for validation: the centre of each segment (frame 1 everywhere for
    videos with at most ``num_segments + new_length - 1`` frames). Dense: the clip in the middle
    of the possible dense windows (the release drew it at random; validation should not)."""
    _check_counts(num_frames, num_segments, new_length)
    if dense_sample:
        sample_pos = max(1, 1 + num_frames - DENSE_WINDOW)
        return _dense_offsets(num_frames, num_segments, (sample_pos - 1) // 2) + 1
    if num_frames > num_segments + new_length - 1:
        return _centres(num_frames, num_segments, new_length) + 1
    return np.ones(num_segments, dtype=np.int64)


def sample_test_indices(num_frames: int, num_segments: int, new_length: int = 1, twice_sample: bool = False,
                 dense_sample: bool = False) -> np.ndarray:
    """1-based segment starts of every test clip, clips concatenated: the centred clip
    ``(num_segments,)``; ``twice_sample``: then the segment-start clip ``(2*num_segments,)``;
    ``dense_sample``: 10 dense clips evenly spread ``(10*num_segments,)``."""
    _check_counts(num_frames, num_segments, new_length)
    if dense_sample:
        sample_pos = max(1, 1 + num_frames - DENSE_WINDOW)
        starts = np.linspace(0, sample_pos - 1, num=DENSE_TEST_CLIPS, dtype=int)
        return np.concatenate([_dense_offsets(num_frames, num_segments, int(s)) for s in starts]) + 1
    offsets = _centres(num_frames, num_segments, new_length)
    if twice_sample:
        offsets = np.concatenate([offsets, _centres(num_frames, num_segments, new_length, half=False)])
    return offsets + 1


def expand_indices(starts: Sequence[int] | np.ndarray, new_length: int, num_frames: int) -> np.ndarray:
    """Every 1-based frame read for the segment ``starts``: ``new_length`` consecutive frames from
    each, repeating the last frame of the video where they run past it. Shape
    ``(len(starts) * new_length,)``, segment-major."""
    starts = np.asarray(starts, dtype=np.int64)
    frames = starts[:, None] + np.arange(new_length)
    return np.minimum(frames, np.maximum(starts, num_frames)[:, None]).reshape(-1)


# ---------------------------------------------------------------- the dataset

class PANDataSet(Dataset):
    """Clips of ``num_segments`` segments x ``new_length`` frames from a list file.

    Items are ``(clip, label)``. ``transform`` receives the clip's frames in temporal order: a
    list of RGB PIL images (release compatible), or, when ``transform.input_format == 'uint8'``
    (the fast pipelines of ``ops.transforms``), one uint8 tensor ``(F, H, W, 3)`` with each
    distinct frame decoded once. Without a transform the clip is ``(F*3, H, W)`` float in [0, 1].
    With the project's transforms, ``F = num_segments * new_length`` (times the clips of
    ``twice_sample`` / ``dense_sample`` at test time) and the clip is ``(views*F*3, H, W)``, float
    (uint8 when built with ``normalize=False``, for ``normalize_uint8_batch`` on the device).

    Paths in the list are frame folders under ``root_path`` (frames named by ``image_tmpl``) or
    video files (``.mp4``, ``.webm``, ``.avi``, ``.mkv``, frame count 0 = read from the file).

    Release behaviour kept: outside ``test_mode`` (or with ``remove_missing``) videos with fewer
    than 3 frames are dropped. Unlike the release, a missing or unreadable frame or video raises
    an error naming its path and list line; ``substitute_missing=True`` instead uses the nearest
    readable frame of the same video, warns once per video (per worker process) and counts the
    replacements in :attr:`substituted_frames` (summed over DataLoader workers).
    """

    def __init__(self, root_path: str | os.PathLike, list_file: str | os.PathLike, num_segments: int = 3,
                 new_length: int = 1, modality: str = 'RGB', image_tmpl: str = 'img_{:05d}.jpg',
                 transform: Callable | None = None, random_shift: bool = True, test_mode: bool = False,
                 remove_missing: bool = False, dense_sample: bool = False, twice_sample: bool = False,
                 *, num_class: int | None = None, substitute_missing: bool = False) -> None:
        if modality not in MODALITIES:
            raise ValueError(f'modality {modality!r} is not supported; use one of {", ".join(MODALITIES)} '
                             '(PAN\'s PA modality replaces optical flow, so Flow and RGBDiff are not read)')
        if modality in ('PA', 'Lite') and new_length < 2:
            raise ValueError(f'modality {modality} needs new_length >= 2 consecutive frames per segment '
                             f'(the released models use {DEFAULT_NEW_LENGTH[modality]}), got {new_length}')
        self.root_path = os.fspath(root_path)
        self.list_file = os.fspath(list_file)
        self.num_segments, self.new_length, self.modality = num_segments, new_length, modality
        self.image_tmpl, self.transform = image_tmpl, transform
        self.random_shift, self.test_mode, self.remove_missing = random_shift, test_mode, remove_missing
        self.dense_sample, self.twice_sample = dense_sample, twice_sample
        self.substitute_missing = substitute_missing
        self._substituted = multiprocessing.Value('q', 0)  # shared with forked DataLoader workers
        self._warned: set[str] = set()

        records = parse_list_file(self.list_file, num_class)
        self._count_video_frames(records)
        if not test_mode or remove_missing:
            kept = [r for r in records if r.num_frames >= MIN_FRAMES]
            self.num_removed = len(records) - len(kept)
            if not kept:
                raise ListFileError(f'{self.list_file}: no video has {MIN_FRAMES} frames or more '
                                    f'({self.num_removed} dropped)')
            records = kept
        else:
            self.num_removed = 0
            empty = [r.source for r in records if r.num_frames < 1]
            if empty:
                raise ListFileError(f'{self.list_file}: {len(empty)} video(s) with 0 frames, e.g. line(s) '
                                    + ', '.join(s.rsplit(':', 1)[-1] for s in empty[:MAX_REPORTED_LINES]))
        self.video_list = records

    # -- set-up helpers

    def _full_path(self, record: VideoRecord) -> str:
        return os.path.join(self.root_path, record.path)

    def _count_video_frames(self, records: list[VideoRecord]) -> None:
        """Fill in frame counts given as 0 for video files (cached per process by the reader)."""
        todo = [r for r in records if r.num_frames == 0 and is_video_file(r.path)]
        for r in tqdm(todo, desc='counting video frames', disable=len(todo) < 100):
            try:
                r.num_frames = count_video_frames(self._full_path(r))
            except VideoReadError as e:
                raise VideoReadError(f'{e} [{r.source}]') from None

    # -- sampling

    @staticmethod
    def _sampling_rng() -> np.random.Generator:
        """A generator drawn from torch's RNG, which DataLoader seeds differently in every worker
        and epoch and ``torch.manual_seed`` fixes in the main process (a generator made in
        __init__ would be copied into every worker, which would then repeat each other's offsets)."""
        return np.random.default_rng(int(torch.randint(0, 2 ** 62, ())))

    def segment_starts(self, record: VideoRecord) -> np.ndarray:
        """1-based starts of the clip(s) of ``record`` for the dataset's mode."""
        n, segs, length = record.num_frames, self.num_segments, self.new_length
        if self.test_mode:
            return sample_test_indices(n, segs, length, self.twice_sample, self.dense_sample)
        if self.random_shift:
            return sample_train_indices(n, segs, length, self._sampling_rng(), self.dense_sample)
        return sample_val_indices(n, segs, length, self.dense_sample)

    def clip_indices(self, record: VideoRecord) -> np.ndarray:
        """Every 1-based frame of the clip(s), in the order the transform receives them."""
        return expand_indices(self.segment_starts(record), self.new_length, record.num_frames)

    # -- reading

    @property
    def substituted_frames(self) -> int:
        """Frames replaced by a neighbour so far (``substitute_missing``), over all workers."""
        return int(self._substituted.value)

    def _note_substitution(self, record: VideoRecord, replaced: dict[int, int], reason: str) -> None:
        with self._substituted.get_lock():
            self._substituted.value += len(replaced)
        if record.path not in self._warned:
            self._warned.add(record.path)
            pairs = ', '.join(f'{a}->{b}' for a, b in list(replaced.items())[:5])
            warnings.warn(f'{self._full_path(record)} ({record.source}): substituted frame(s) {pairs} '
                          f'({reason}); further substitutions in this video are not reported',
                          MissingFrameWarning, stacklevel=3)

    def _read_folder(self, record: VideoRecord, wanted: list[int], read: Callable) -> dict[int, object]:
        folder = self._full_path(record)
        frames: dict[int, object] = {}
        unreadable: dict[int, FrameReadError] = {}
        for i in wanted:
            try:
                frames[i] = read(os.path.join(folder, self.image_tmpl.format(i)))
            except FrameReadError as e:
                if not os.path.isdir(folder):
                    raise FrameReadError(f'missing video folder: {folder} [{record.source}]') from None
                if not self.substitute_missing:
                    raise FrameReadError(f'{e} [video {record.path}, {record.source}]') from None
                unreadable[i] = e
        if unreadable:
            replaced = {i: self._nearest_readable(record, i, frames, unreadable, read) for i in unreadable}
            for i, j in replaced.items():
                frames[i] = frames[j]
            self._note_substitution(record, replaced, str(next(iter(unreadable.values()))))
        return frames

    def _nearest_readable(self, record: VideoRecord, i: int, frames: dict, unreadable: dict,
                          read: Callable) -> int:
        """The closest frame index to ``i`` (earlier first on ties) that reads; loads it into
        ``frames``."""
        folder = self._full_path(record)
        for d in range(1, max(record.num_frames, i) + 1):
            for j in (i - d, i + d):
                if not 1 <= j <= record.num_frames or j in unreadable:
                    continue
                if j in frames:
                    return j
                try:
                    frames[j] = read(os.path.join(folder, self.image_tmpl.format(j)))
                    return j
                except FrameReadError as e:
                    unreadable[j] = e
        raise FrameReadError(f'no readable frame in {folder} [{record.source}] to substitute for frame {i}')

    def _read_video(self, record: VideoRecord, wanted: list[int]) -> dict[int, np.ndarray]:
        path = self._full_path(record)
        try:
            reader = VideoReader(path)  # a video that cannot be opened has nothing to substitute
        except VideoReadError as e:
            raise VideoReadError(f'{e} [{record.source}]') from None
        try:
            got = reader.read([i - 1 for i in wanted])
            return {i: got[i - 1] for i in wanted}
        except VideoReadError as e:
            if not self.substitute_missing:
                raise VideoReadError(f'{e} [{record.source}]') from None
            error = e
        decoded = reader.read_all()  # the decodable prefix of a damaged video
        if not decoded:
            raise VideoReadError(f'{error}; no frame decodes [{record.source}]') from None
        last = len(decoded)  # 1-based index of the last decodable frame
        replaced = {i: last for i in wanted if i > last}
        if replaced:
            self._note_substitution(record, replaced, str(error))
        return {i: decoded[min(i, last) - 1] for i in wanted}

    def load_frames(self, record: VideoRecord, indices: Sequence[int], as_uint8: bool):
        """The frames at 1-based ``indices`` in order: uint8 tensor ``(F, H, W, 3)`` or a list of
        PIL images. Each distinct frame is read once."""
        indices = [int(i) for i in indices]
        wanted = sorted(set(indices))
        if is_video_file(record.path):
            arrays = self._read_video(record, wanted)
            if not as_uint8:
                images = {i: Image.fromarray(a) for i, a in arrays.items()}
                return [images[i] for i in indices]
            frames = {i: torch.from_numpy(a) for i, a in arrays.items()}
        else:
            frames = self._read_folder(record, wanted, read_frame_uint8 if as_uint8 else read_frame_pil)
            if not as_uint8:
                return [frames[i] for i in indices]
        shapes = {tuple(f.shape) for f in frames.values()}
        if len(shapes) > 1:
            raise ValueError(f'frames of {self._full_path(record)} differ in size {sorted(shapes)} '
                             f'[{record.source}]')
        return torch.stack([frames[i] for i in indices])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        record = self.video_list[index]
        indices = self.clip_indices(record)
        if self.transform is None:
            clip = self.load_frames(record, indices, as_uint8=True)
            f, h, w, c = clip.shape
            return clip.permute(0, 3, 1, 2).reshape(f * c, h, w).float().div_(255), record.label
        as_uint8 = getattr(self.transform, 'input_format', 'pil') == 'uint8'
        return self.transform(self.load_frames(record, indices, as_uint8)), record.label

    def __len__(self) -> int:
        return len(self.video_list)
