"""Frames as a stream, in order, for online use: a video file, a frame folder or a camera; the
segments a streaming model takes from them; and a live source's dropping of late frames.

    stream = open_frame_stream('clip.mp4')           # or a folder, or /dev/video0 (PyAV, v4l2)
    for start, frames in segments(stream.frames(), new_length=4, stride=8):
        ...                                          # frames: new_length uint8 (H, W, 3), consecutive
    cutter = SegmentCutter(new_length=4, stride=8)   # the same, for frames pushed one at a time

Unlike :mod:`ops.frames.frame_source` (frames by index, for clips), nothing here needs the whole video:
frames are decoded one after another, as a camera delivers them.
"""
from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
import torch

from ops.errors import InputError
from ops.frames.frame_source import header_note, scan_frame_folder
from ops.frames.image_io import read_frame_uint8
from ops.frames.video_reader import (VIDEO_EXTENSIONS, VideoReadError, decoded_frames, is_video_file, rgb_frame,
                                     video_index)

CAMERA_PREFIX = '/dev/video'

IndexedFrame = tuple[int, torch.Tensor]  # 0-based frame index, uint8 (H, W, 3)


def is_camera(path: str) -> bool:
    """Whether ``path`` names a V4L2 camera device (``/dev/video0``, ...)."""
    return path.startswith(CAMERA_PREFIX)


@dataclass
class FrameStream:
    """One source's frames in order. ``rate``: its exact frame rate (30000/1001 for 29.97; None:
    unknown, a frame folder), ``fps`` the same as a float; ``num_frames``: its length (a video's
    decodable frames, from its stored index; None: a camera); ``live``: frames arrive in real
    time (a camera); ``note``: what a folder's reading left out, or that a video decodes fewer
    frames than its header claims ('' when nothing)."""
    path: str
    rate: Fraction | None
    num_frames: int | None
    live: bool
    _frames: Callable[[], Iterator[torch.Tensor]] = field(repr=False)
    note: str = ''

    @property
    def fps(self) -> float | None:
        return float(self.rate) if self.rate else None

    def frames(self) -> Iterator[IndexedFrame]:
        """``(index, frame)`` for each frame, index 0-based, frame uint8 ``(H, W, 3)`` RGB."""
        return enumerate(self._frames())


def _decode(path: str, options: dict) -> Iterator[torch.Tensor]:
    decoded = 0
    errors: list[av.FFmpegError] = []
    try:
        with av.open(path, **options) as container:
            # the frames the random-access reader counts: damaged packets passed over, a cut ends them
            for frame in decoded_frames(container.demux(container.streams.video[0]), errors):
                decoded += 1
                yield torch.from_numpy(rgb_frame(frame))
    except av.FFmpegError as err:
        errors.append(err)
    if not decoded and errors:
        raise VideoReadError(f'cannot decode {path}: {errors[0]}')


def open_frame_stream(path: str) -> FrameStream:
    """The stream of a video file, a frame folder (its numbered RGB series) or a camera device.
    FileNotFoundError / VideoReadError / InputError name ``path`` when it is none of them."""
    if is_camera(path):
        if not os.path.exists(path):
            raise FileNotFoundError(f'no camera at {path} (this machine has none, or another number)')
        try:
            with av.open(path, format='v4l2') as container:
                rate = container.streams.video[0].average_rate
        except av.FFmpegError as err:
            raise VideoReadError(f'cannot open camera {path}: {err}') from err
        return FrameStream(path, rate or None, None, True, lambda: _decode(path, {'format': 'v4l2'}))
    if os.path.isdir(path):
        listing = scan_frame_folder(path)
        return FrameStream(path, None, len(listing.files), False,
                           lambda: (read_frame_uint8(f) for f in listing.files), listing.note)
    if not os.path.exists(path):
        raise FileNotFoundError(f'no such video file, frame folder or camera: {path}')
    if not is_video_file(path):
        raise InputError(f'{path} is neither a frame folder, a video file ({", ".join(VIDEO_EXTENSIONS)}) '
                         f'nor a camera ({CAMERA_PREFIX}N)')
    try:
        with av.open(path) as container:
            video = container.streams.video[0]
            rate = video.average_rate or video.guessed_rate
    except (av.FFmpegError, IndexError) as err:
        raise VideoReadError(f'cannot open video {path}: {err}') from err
    # the length is what decodes (the stored index's), not what the header claims
    index = video_index(path)
    return FrameStream(path, rate or None, index.num_frames, False, lambda: _decode(path, {}), header_note(index))


def segments(frames: Iterable[IndexedFrame], new_length: int, stride: int
             ) -> Iterator[tuple[int, list[torch.Tensor]]]:
    """``(start, frames)`` for each segment: ``new_length`` consecutive frames starting at every
    ``stride``-th frame (0, stride, 2 * stride, ...; overlapping when ``stride < new_length``).
    A segment missing a frame (dropped by :class:`LateFrameDropper`) is skipped."""
    cutter = SegmentCutter(new_length, stride)
    for index, frame in frames:
        segment = cutter.push(index, frame)
        if segment is not None:
            yield segment


class SegmentCutter:
    """:func:`segments` for frames pushed one at a time (a browser's camera): ``push(index, frame)``
    returns ``(start, frames)`` when ``frame`` completes a segment, else None."""

    def __init__(self, new_length: int, stride: int) -> None:
        if new_length < 1 or stride < 1:
            raise ValueError(f'segments need new_length >= 1 and stride >= 1, got {new_length} and {stride}')
        self.new_length, self.stride = new_length, stride
        self._recent: deque[IndexedFrame] = deque(maxlen=new_length)

    def push(self, index: int, frame: torch.Tensor) -> tuple[int, list[torch.Tensor]] | None:
        self._recent.append((index, frame))
        start = index - self.new_length + 1
        if start >= 0 and start % self.stride == 0 and len(self._recent) == self.new_length \
                and self._recent[0][0] == start:
            return start, [f for _, f in self._recent]
        return None


class LateFrameDropper:
    """What a live source does when its reader falls behind: frame ``i`` is shown from
    ``t0 + i / fps`` to ``t0 + (i + 1) / fps``; asked for later, it is gone (dropped). A reader
    ahead of the source waits for the frame, unless the source is live and its reads block anyway.
    ``t0`` is the moment the first frame is asked for; ``dropped`` counts the frames lost."""

    def __init__(self, fps: float, live: bool = False, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if fps <= 0:
            raise ValueError(f'fps must be positive, got {fps}')
        self.fps = fps
        self.live = live
        self.dropped = 0
        self._clock, self._sleep = clock, sleep

    def __call__(self, frames: Iterable[IndexedFrame]) -> Iterator[IndexedFrame]:
        t0 = None
        for index, frame in frames:
            now = self._clock()
            if t0 is None:
                t0 = now - index / self.fps
            shown = t0 + index / self.fps
            if now >= shown + 1 / self.fps:
                self.dropped += 1
                continue
            if now < shown and not self.live:
                self._sleep(shown - now)
            yield index, frame
