"""Random access to the frames of a video file with PyAV, so a list file may name videos
(``.mp4``, ``.webm``, ``.avi``, ``.mkv``, ``.mov``, ``.m4v``) instead of extracted frame folders.

A video is indexed once per process (demuxing only, no decoding): the presentation timestamps of
its frames and which of them are keyframes. The index gives the frame count (list files may say 0
frames for a video) and lets :meth:`VideoReader.read` seek to the keyframe before each wanted
frame instead of decoding everything before it. Containers without usable timestamps are read
sequentially. Frame indices here are 0-based, in presentation order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

import av
import numpy as np

VIDEO_EXTENSIONS = ('.mp4', '.webm', '.avi', '.mkv', '.mov', '.m4v')


class VideoReadError(OSError):
    """A video file is missing, cannot be opened or decoded, or lacks a wanted frame; the message
    names the file."""


def is_video_file(path: str) -> bool:
    """True for the extensions read as videos (case-insensitive)."""
    return path.lower().endswith(VIDEO_EXTENSIONS)


@dataclass(frozen=True)
class VideoIndex:
    """Frames of one video in presentation order: ``pts`` (sorted, or None when the container has
    no usable timestamps) and the index of the keyframe at or before each frame."""
    num_frames: int
    pts: np.ndarray | None
    keyframe_before: np.ndarray | None

    @property
    def seekable(self) -> bool:
        return self.pts is not None


def _open(path: str) -> av.container.InputContainer:
    if not os.path.isfile(path):
        raise VideoReadError(f'missing video: {path}')
    try:
        container = av.open(path)
    except av.error.FFmpegError as e:
        raise VideoReadError(f'cannot open video {path}: {e}') from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(f'no video stream in {path}')
    return container


@lru_cache(maxsize=4096)
def _cached_index(path: str, mtime_ns: int, size: int) -> VideoIndex:
    """Demux (without decoding) and index; keyed on mtime and size so an edited file is re-read."""
    container = _open(path)
    entries: list[tuple[int | None, bool]] = []
    try:
        for packet in container.demux(container.streams.video[0]):
            if packet.size:  # size 0: the demuxer's end-of-stream flush packet
                entries.append((packet.pts, packet.is_keyframe))
    except av.error.FFmpegError as e:
        if not entries:  # a damaged tail still leaves the frames before it readable
            raise VideoReadError(f'cannot read video {path}: {e}') from None
    finally:
        container.close()
    if not entries:
        raise VideoReadError(f'no video frames in {path}')
    if any(pts is None for pts, _ in entries):
        return VideoIndex(len(entries), None, None)
    entries.sort()
    pts = np.array([p for p, _ in entries], dtype=np.int64)
    if len(np.unique(pts)) != len(pts):
        return VideoIndex(len(entries), None, None)
    key_pos = np.where([k for _, k in entries], np.arange(len(entries)), 0)
    return VideoIndex(len(entries), pts, np.maximum.accumulate(key_pos))


def video_index(path: str) -> VideoIndex:
    """The (cached) :class:`VideoIndex` of a video file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoReadError(f'missing video: {path}') from None
    return _cached_index(os.path.abspath(path), st.st_mtime_ns, st.st_size)


def count_video_frames(path: str) -> int:
    """Number of frames in the video's first video stream, counted once per process and cached."""
    return video_index(path).num_frames


class _NeedSequential(Exception):
    """Seeking did not land where the index said; read from the start instead."""


class VideoReader:
    """Decode chosen frames of one video. ``frames_decoded`` counts decoded frames (seeking keeps
    it near the number of wanted frames plus GOP lead-ins)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.index = video_index(path)
        self.frames_decoded = 0

    def __len__(self) -> int:
        return self.index.num_frames

    def read(self, indices: Iterable[int]) -> dict[int, np.ndarray]:
        """Frames at the given 0-based indices as uint8 RGB arrays ``(H, W, 3)``, by index."""
        wanted = sorted({int(i) for i in indices})
        outside = [i for i in wanted if not 0 <= i < len(self)]
        if outside:
            raise VideoReadError(f'{self.path}: frame indices {outside[:5]} (0-based) out of range, '
                                 f'the video has {len(self)} frames')
        if not wanted:
            return {}
        try:
            if self.index.seekable:
                try:
                    return self._read_seeking(wanted)
                except _NeedSequential:
                    pass
            return self._read_sequential(wanted)
        except av.error.FFmpegError as e:
            raise VideoReadError(f'cannot decode video {self.path}: {e}') from None

    def read_all(self) -> list[np.ndarray]:
        """Every frame that decodes, in order, stopping at the first decoding error (used to
        substitute frames of damaged videos)."""
        frames: list[np.ndarray] = []
        container = _open(self.path)
        try:
            for frame in container.decode(container.streams.video[0]):
                frames.append(frame.to_ndarray(format='rgb24'))
        except av.error.FFmpegError:
            pass
        finally:
            container.close()
        self.frames_decoded += len(frames)
        return frames

    def _read_seeking(self, wanted: list[int]) -> dict[int, np.ndarray]:
        pts, key_before = self.index.pts, self.index.keyframe_before
        out: dict[int, np.ndarray] = {}
        container = _open(self.path)
        try:
            stream = container.streams.video[0]
            frames: Iterator | None = None
            pos = -1  # presentation index of the last decoded frame
            for target in wanted:
                key = int(key_before[target])
                if frames is None or key > pos + 1:  # jumping to the keyframe skips decoding
                    if frames is not None or key > 0:
                        container.seek(int(pts[key]), stream=stream, backward=True, any_frame=False)
                    frames = container.decode(stream)
                for frame in frames:
                    self.frames_decoded += 1
                    i = int(np.searchsorted(pts, frame.pts)) if frame.pts is not None else -1
                    if i < 0 or i >= len(pts) or pts[i] != frame.pts or i > target:
                        raise _NeedSequential
                    pos = i
                    if i == target:
                        out[i] = frame.to_ndarray(format='rgb24')
                        break
                else:
                    raise _NeedSequential
        finally:
            container.close()
        return out

    def _read_sequential(self, wanted: list[int]) -> dict[int, np.ndarray]:
        want = set(wanted)
        out: dict[int, np.ndarray] = {}
        container = _open(self.path)
        try:
            for i, frame in enumerate(container.decode(container.streams.video[0])):
                self.frames_decoded += 1
                if i in want:
                    out[i] = frame.to_ndarray(format='rgb24')
                    if len(out) == len(want):
                        break
        finally:
            container.close()
        missing = sorted(want - out.keys())
        if missing:
            raise VideoReadError(f'{self.path}: frames {missing[:5]} (0-based) did not decode '
                                 f'(the container lists {len(self)} frames)')
        return out
