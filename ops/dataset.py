"""From list file to clip tensor: list parsing and the ``PANDataSet`` that samples frames
(:mod:`ops.sampling`) and reads them from frame folders or video files (:mod:`ops.frames.frame_source`),
or from an LMDB store (:mod:`ops.frames.lmdb_source`).

Frame indices are 1-based as in the release (``img_00001.jpg`` is frame 1).
"""
from __future__ import annotations

import multiprocessing
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ops.dataset_config import resolve_list_path
from ops.errors import InputError
from ops.frames.frame_source import (FolderFrames, FrameSource, MissingVideoError, VideoFrames, open_frame_source,
                                     read_clip, stack_clip)
from ops.frames.image_io import FrameReadError
from ops.frames.lmdb_source import LmdbFrames, check_lmdb_path
from ops.frames.video_reader import VideoReadError, count_video_frames, is_video_file
from ops.list_check import CheckReport, LineCheck, check_records
from ops.modalities import DEFAULT_DATA_LENGTH, check_modality
from ops.sampling import expand_indices, sample_test_indices, sample_train_indices, sample_val_indices
from ops.transforms.deferred import ENCODED_INPUT, FramesToDecode

MIN_FRAMES = 3  # the release drops shorter videos from training and validation lists
MAX_REPORTED_LINES = 5


class ListFileError(InputError):
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

    Paths in the list are frame folders (frames named by ``image_tmpl``) or video files (see
    ``VIDEO_EXTENSIONS``; frame count 0 = read from the file), relative to ``root_path`` (the
    dataset's frame folder) unless absolute (:func:`~ops.dataset_config.resolve_list_path`).
    With ``lmdb_path``, the frames of frame-folder lines come from that LMDB store instead, under
    the release's keys (:mod:`ops.frames.lmdb_source`); video-file lines still read the video.

    With ``line_check`` every line is checked before any clip is read (:mod:`ops.list_check`: the
    file opens, holds the listed frames, its first and last frames read), all bad lines reported at
    once, or left out with ``line_check.skip_bad``; :attr:`check_report` says what was found.

    Release behaviour kept: outside ``test_mode`` (or with ``remove_missing``) videos with fewer
    than 3 frames are dropped (:attr:`num_removed` counts them, :attr:`removed_lines` names them).
    Unlike the release, a missing or unreadable frame or video raises an error naming its path and
    list line; ``substitute_missing=True`` instead uses the nearest readable frame of the same
    video, warns once per video (per worker process) and counts the replacements in
    :attr:`substituted_frames` (summed over DataLoader workers).
    """

    def __init__(self, root_path: str | os.PathLike, list_file: str | os.PathLike, num_segments: int = 3,
                 new_length: int = 1, modality: str = 'RGB', image_tmpl: str = 'img_{:05d}.jpg',
                 transform: Callable | None = None, random_shift: bool = True, test_mode: bool = False,
                 remove_missing: bool = False, dense_sample: bool = False, twice_sample: bool = False,
                 *, num_class: int | None = None, substitute_missing: bool = False,
                 lmdb_path: str | os.PathLike | None = None, line_check: LineCheck | None = None) -> None:
        check_modality(modality)
        if modality in ('PA', 'Lite') and new_length < 2:
            raise ValueError(f'modality {modality} needs new_length >= 2 consecutive frames per segment '
                             f'(the released models use {DEFAULT_DATA_LENGTH}), got {new_length}')
        self.root_path = os.fspath(root_path)
        self.list_file = os.fspath(list_file)
        self.num_segments, self.new_length, self.modality = num_segments, new_length, modality
        self.image_tmpl, self.transform = image_tmpl, transform
        self.random_shift, self.test_mode, self.remove_missing = random_shift, test_mode, remove_missing
        self.dense_sample, self.twice_sample = dense_sample, twice_sample
        self.substitute_missing = substitute_missing
        self.lmdb_path = None if lmdb_path is None else os.fspath(lmdb_path)
        if self.lmdb_path is not None:
            check_lmdb_path(self.lmdb_path)  # here, not in the first DataLoader worker to read
        self._substituted = multiprocessing.Value('q', 0)  # shared with forked DataLoader workers
        self._warned: set[str] = set()

        records = parse_list_file(self.list_file, num_class)
        drop_short = not test_mode or remove_missing
        self.check_report: CheckReport | None = None
        if line_check is not None:
            records = self._check_lines(records, line_check, drop_short)
        self._count_video_frames(records)
        if drop_short:
            kept = [r for r in records if r.num_frames >= MIN_FRAMES]
            self.num_removed = len(records) - len(kept)
            self.removed_lines = [r.source for r in records if r.num_frames < MIN_FRAMES]
            if not kept:
                raise ListFileError(f'{self.list_file}: no video has {MIN_FRAMES} frames or more '
                                    f'({self.num_removed} dropped)')
            records = kept
        else:
            self.num_removed, self.removed_lines = 0, []
            empty = [r.source for r in records if r.num_frames < 1]
            if empty:
                raise ListFileError(f'{self.list_file}: {len(empty)} video(s) with 0 frames, e.g. line(s) '
                                    + ', '.join(s.rsplit(':', 1)[-1] for s in empty[:MAX_REPORTED_LINES]))
        self.video_list = records

    # -- set-up helpers

    def _full_path(self, record: VideoRecord) -> str:
        return str(resolve_list_path(self.root_path, record.path))

    def _count_video_frames(self, records: list[VideoRecord]) -> None:
        """Fill in frame counts given as 0 for video files (cached per process by the reader)."""
        todo = [r for r in records if r.num_frames == 0 and is_video_file(r.path)]
        for r in tqdm(todo, desc='counting video frames', disable=len(todo) < 100):
            try:
                r.num_frames = count_video_frames(self._full_path(r))
            except VideoReadError as e:
                raise VideoReadError(f'{e} [{r.source}]') from None

    def _check_lines(self, records: list[VideoRecord], settings: LineCheck,
                     drop_short: bool) -> list[VideoRecord]:
        """The records that read as listed (all of them, or BadListLinesError); video counts of 0
        filled in from the check. Lines the short-video rule drops anyway are not checked."""
        todo = [r for r in records if not (drop_short and 0 < r.num_frames < MIN_FRAMES)]
        checks, self.check_report = check_records(todo, self._full_path, self.list_file, self.image_tmpl,
                                                  self.lmdb_path, settings, self.substitute_missing)
        bad = {b.source for b in self.check_report.bad}
        for r in todo:
            if r.num_frames == 0 and is_video_file(r.path) and checks[r.source].frames:
                r.num_frames = checks[r.source].frames
        return [r for r in records if r.source not in bad]

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

    def frame_source(self, record: VideoRecord) -> FrameSource:
        """The reader of ``record``'s frames: a video file, else the LMDB store when the dataset has
        one, else a frame folder (``image_tmpl``)."""
        if is_video_file(record.path):
            return VideoFrames(self._full_path(record))
        if self.lmdb_path is not None:
            return LmdbFrames(self.lmdb_path, record.path, record.num_frames)
        return FolderFrames(self._full_path(record), self.image_tmpl, record.num_frames)

    def load_frames(self, record: VideoRecord, indices: Sequence[int], form: str = 'uint8'):
        """The frames at 1-based ``indices`` in order, in ``form``: 'uint8', a tensor ``(F, H, W, 3)``;
        'pil', a list of PIL images; 'encoded', the JPEGs for the GPU to decode
        (:class:`~ops.transforms.deferred.FramesToDecode`). Each distinct frame is read once;
        errors name the file and the list line."""
        indices = [int(i) for i in indices]
        as_pil, encoded = form == 'pil', form == ENCODED_INPUT
        try:
            source = self.frame_source(record)
            if self.substitute_missing:
                frames, replaced, reason = source.read_substituting(indices, as_pil=as_pil, encoded=encoded)
                if replaced:
                    self._note_substitution(record, replaced, reason)
            else:
                frames = source.read(indices, as_pil=as_pil, encoded=encoded)
        except FrameReadError as e:
            # a whole missing video needs only its list line; a frame of it, the video too
            where = record.source if isinstance(e, MissingVideoError) else \
                f'video {record.path}, {record.source}'
            raise type(e)(f'{e} [{where}]') from None
        except VideoReadError as e:
            raise VideoReadError(f'{e} [{record.source}]') from None
        if as_pil:
            return [frames[i] for i in indices]
        if encoded:
            sizes = {(f.width, f.height) for f in frames.values()}
            if len(sizes) > 1:
                raise InputError(f'frames of {self._full_path(record)} differ in size {sorted(sizes)} '
                                 f'[{record.source}]')
            position = {i: n for n, i in enumerate(frames)}
            return FramesToDecode(list(frames.values()), [position[i] for i in indices])
        try:
            return stack_clip(frames, indices, self._full_path(record))
        except ValueError as e:
            raise type(e)(f'{e} [{record.source}]') from None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        record = self.video_list[index]
        indices = self.clip_indices(record)
        if self.transform is None:
            clip = self.load_frames(record, indices)
            f, h, w, c = clip.shape
            return clip.permute(0, 3, 1, 2).reshape(f * c, h, w).float().div_(255), record.label
        form = getattr(self.transform, 'input_format', 'pil')
        return self.transform(self.load_frames(record, indices, form)), record.label

    def __len__(self) -> int:
        return len(self.video_list)


def sample_clip(path: str, num_segments: int, new_length: int) -> tuple[torch.Tensor, np.ndarray, FrameSource]:
    """The validation clip of a video file or frame folder: segment centres, ``new_length``
    consecutive frames each. Returns uint8 frames ``(num_segments * new_length, H, W, 3)``, their
    1-based indices and the source they came from (its ``num_frames`` and ``note``)."""
    source = open_frame_source(path)
    starts = sample_val_indices(source.num_frames, num_segments, new_length)
    indices = expand_indices(starts, new_length, source.num_frames)
    return read_clip(source, indices), indices, source
