"""TSN frame sampling as pure functions: which frames of a video of ``num_frames`` a clip reads.

Indices are 1-based as in the release (``img_00001.jpg`` is frame 1). A clip is ``num_segments``
segment starts, each expanded to ``new_length`` consecutive frames (:func:`expand_indices`; the
last frame repeats at the end of the video). Training draws a random start in each segment,
validation takes segment centres, and testing may take several clips one after another
(``twice_sample``: 2, ``dense_sample``: :data:`DENSE_TEST_CLIPS`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

DENSE_WINDOW = 64  # dense sampling spreads a clip over this many frames
DENSE_TEST_CLIPS = 10


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
