"""Random access to the frames of a video file with PyAV, so a list file may name videos
(``.mp4``, ``.webm``, ``.avi``, ``.mkv``, ``.mov``, ``.m4v``, animated ``.gif``, and the older
``.3gp``, ``.mpg``, ``.mpeg``, ``.ts``, ``.mts``, ``.m2ts``, ``.flv``, ``.wmv``) instead of extracted frame folders.

Frame-exact by construction. Frame ``i`` (0-based) of a video is, by definition, the ``i``-th frame
that a sequential decode outputs (:func:`decoded_frames`: every packet in order, passing over a
packet the decoder refuses, a damaged part of the file, as FFmpeg's own tools do, and ending at a
demuxing error, a cut file); that is also what the frame extractors in ``tools/`` write to disk. Container timestamps cannot define it: an XviD
AVI with packed B-frames (UCF101, HMDB51) has packets that hold two frames and placeholder packets
that hold none, and its decoded frames carry timestamps out of order (1, 2, 4, 3, ...); H.264 in
AVI has the same disorder. So:

* **Index pass** (once per file: stored on disk and shared by every process and later run, see
  :mod:`ops.frames.video_index`): one sequential *decode* of the whole video. For each decoded frame it records a CRC of its decoded pixels (the
  native planes, not converted) and its pts; the pts are *trusted* only if every frame has one and
  they strictly increase in output order. It also records the keyframe packets (byte position,
  pts, dts) and pairs each with the display position of the frame it decodes to: by equal pts when
  pts are trusted, otherwise the m-th keyframe packet with the m-th frame the decoder flags as a
  keyframe (keyframes are never reordered among themselves), if the two counts agree. Those pairs
  are the seek points. The frame count is the number of decoded frames, so it is right even where
  packets and frames differ (a damaged file counts the frames that decode around its damage).
* **Read**: for each wanted frame (ascending) take the last seek point at or before it; if it lies
  beyond the frame being decoded, seek there and read which packet the demuxer resumes at: only a
  known keyframe packet at or before the wanted frame is accepted. Demuxers seek by pts (MKV), by
  dts (AVI) or by dts shifted to start at 0 (MP4), so the offsets tried are the keyframe packet's
  pts and dts, then just below the next seek point's; the one that lands is remembered. Decoded
  frames are then named by their pts (when trusted) or by counting from the first frame the
  decoder flags as a keyframe (the landing packet's frame; frames displayed before it, as in open
  GOPs, are passed over). The first frame named after a seek and every frame returned must match
  the CRC of that position from the index pass, so a frame is only returned if it is bit for bit
  what the sequential decode gives. Anything unexpected (landing elsewhere, an unknown pts, a CRC
  mismatch, a decoder error) marks that seek point unusable and the remaining frames are read
  sequentially from the start.
  A video without seek points (a single keyframe, as in many XviD files, or keyframes that cannot
  be paired) is read sequentially, up to the last wanted frame.

Why not a cheaper demux-only index: packets do not match the decoded frames one for one (packed
B-frames, N-VOP placeholders, reordered stamps) and only a decode reveals it. On the XviD fixture
in ``tests/fixtures`` the packets' pts are unique, sort to 1..164 and are as many as the decoded
frames, yet the demux-only reader this replaced returned a neighbouring frame for 54 of its 164
indices. The index pass costs one decode per file, once: its result is stored on disk (about 20
bytes per frame) and read back by every process and DataLoader worker, and each process keeps the
indexes it read last in memory, so a :class:`VideoReader` made for each clip seeks instead of
decoding the video again.
"""
from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Hashable, Iterable, Iterator
from functools import lru_cache
from itertools import chain, pairwise
from pathlib import Path

import av
import numpy as np

from ops.frames.video_index import (SeekPoint, VideoIndex, VideoKey, index_folder, load_index, packet_identity,
                                    store_index)

VIDEO_EXTENSIONS = ('.mp4', '.webm', '.avi', '.mkv', '.mov', '.m4v', '.gif',  # GIF: animated clips (TGIF)
                    '.3gp', '.mpg', '.mpeg', '.ts', '.mts', '.m2ts', '.flv', '.wmv')  # phones, camcorders, DVD, web


class VideoReadError(OSError):
    """A video file is missing, cannot be opened or decoded, or lacks a wanted frame; the message
    names the file."""


def is_video_file(path: str) -> bool:
    """True for the extensions read as videos (case-insensitive)."""
    return path.lower().endswith(VIDEO_EXTENSIONS)


def frame_digest(frame: av.VideoFrame) -> int:
    """CRC-32 of a decoded frame's pixels in its native format (no colour conversion, which would
    cost more than the decode): equal digests mean the same decoded picture, hence the same RGB."""
    try:
        pixels = frame.to_ndarray()
    except ValueError:  # a pixel format PyAV cannot export as is: hash the RGB picture we return
        pixels = frame.to_ndarray(format='rgb24')
    return zlib.crc32(np.ascontiguousarray(pixels))


def rgb_frame(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as uint8 RGB ``(H, W, 3)``, turned upright as a player shows it: phones
    store a portrait clip as landscape pictures plus a display rotation, which frame extraction
    (ffmpeg's autorotate) applies, and so does every reader here."""
    pixels = frame.to_ndarray(format='rgb24')
    # PyAV: the counterclockwise angle of the stream's display matrix (0 where it has none)
    turns = round(getattr(frame, 'rotation', 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


def ffmpeg_reason(err: av.error.FFmpegError) -> str:
    """FFmpeg's reason alone (its str() repeats the errno and the file name the message gives)."""
    return err.strerror or str(err)


def decoded_frames(packets: Iterable[av.Packet], errors: list[av.error.FFmpegError] | None = None
                   ) -> Iterator[av.VideoFrame]:
    """The frames of ``packets`` in decode order. A packet the decoder refuses (damaged data) is
    passed over and decoding goes on with the next, as the ``ffmpeg`` command does: a video with a
    damaged stretch keeps the frames after it (decord's damaged test clip: 49 of its 50 frames, where
    stopping at the first error kept 28). A demuxing error (a file cut short) ends the frames.
    ``errors`` collects what went wrong, in order."""
    packets = iter(packets)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as err:
            if errors is not None:
                errors.append(err)
            return
        try:
            frames = packet.decode()
        except av.error.FFmpegError as err:
            if errors is not None:
                errors.append(err)
            continue
        yield from frames


def _open(path: str) -> av.container.InputContainer:
    if not os.path.isfile(path):
        raise VideoReadError(f'missing video: {path}')
    if os.path.getsize(path) == 0:  # FFmpeg would only say "Invalid data found"
        raise VideoReadError(f'cannot open video {path}: empty file (0 bytes), an interrupted copy or download?')
    try:
        container = av.open(path)
    except av.error.FFmpegError as e:
        raise VideoReadError(f'cannot open video {path}: {ffmpeg_reason(e)}') from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(f'no video stream in {path}')
    return container


def _pair_seek_points(key_packets: list[tuple[Hashable, int | None, int | None]], frame_pts: list[int | None],
                      frame_is_key: list[bool], pts_trusted: bool) -> tuple[SeekPoint, ...]:
    """Seek points from the keyframe packets ``(identity, pts, dts)`` in decode order and the
    decoded frames' pts and keyframe flags in output order (see the module docstring)."""
    positions: list[int | None]
    if pts_trusted:
        where = {p: i for i, p in enumerate(frame_pts)}
        positions = [where.get(pts) for _, pts, _ in key_packets]
    else:
        flagged = [i for i, key in enumerate(frame_is_key) if key]
        if len(flagged) != len(key_packets):
            return ()  # cannot tell which frame a keyframe packet decodes to
        positions = list(flagged)
    points: list[SeekPoint] = []
    for (identity, pts, dts), position in zip(key_packets, positions):
        stamps = tuple(dict.fromkeys(t for t in (pts, dts) if t is not None))
        if position is not None and stamps:
            points.append(SeekPoint(position, stamps, identity))
    # keyframes display in the order they are decoded; if not, the pairing is wrong
    if any(a.position >= b.position for a, b in pairwise(points)):
        return ()
    return tuple(points)


# Indexes a process keeps in memory (a few KB each); the rest are read back from disk
MEMORY_INDEXES = 256


@lru_cache(maxsize=MEMORY_INDEXES)
def _cached_index(path: str, mtime_ns: int, size: int, folder: str | None) -> VideoIndex:
    """The index of the video at absolute ``path`` with that mtime and size: the one stored in
    ``folder`` if it holds, else a new one (stored there)."""
    key = VideoKey(path, size, mtime_ns)
    store = None if folder is None else Path(folder)
    stored = load_index(key, store)
    if stored is not None:
        return stored
    index = build_index(path)
    store_index(key, index, store)
    return index


def build_index(path: str) -> VideoIndex:
    """Decode the whole video once and index it (see the module docstring)."""
    container = _open(path)
    header_frames = container.streams.video[0].frames or None
    digests: list[int] = []
    frame_pts: list[int | None] = []
    frame_is_key: list[bool] = []
    key_packets: list[tuple[Hashable, int | None, int | None]] = []
    end_stamp: int | None = None
    errors: list[av.error.FFmpegError] = []

    def noted(packets: Iterable[av.Packet]) -> Iterator[av.Packet]:
        nonlocal end_stamp
        for packet in packets:
            if packet.size and packet.is_keyframe:
                key_packets.append((packet_identity(packet), packet.pts, packet.dts))
            end_stamp = max((t for t in (packet.pts, packet.dts, end_stamp) if t is not None), default=None)
            yield packet

    try:
        for frame in decoded_frames(noted(container.demux(container.streams.video[0])), errors):
            digests.append(frame_digest(frame))
            frame_pts.append(frame.pts)
            frame_is_key.append(bool(frame.key_frame))
    finally:
        container.close()
    if not digests:  # damage around frames still leaves them readable; none at all is an error
        if errors:
            raise VideoReadError(f'cannot read video {path}: {ffmpeg_reason(errors[0])}')
        raise VideoReadError(f'no video frames in {path}')
    pts_trusted = all(p is not None for p in frame_pts) and all(
        b > a for a, b in pairwise(frame_pts))
    return VideoIndex(
        num_frames=len(digests),
        digests=np.array(digests, dtype=np.uint32),
        pts=np.array(frame_pts, dtype=np.int64) if pts_trusted else None,
        seek_points=_pair_seek_points(key_packets, frame_pts, frame_is_key, pts_trusted),
        end_stamp=end_stamp, header_frames=header_frames)


def _key(path: str) -> VideoKey:
    try:
        return VideoKey.of(path)
    except FileNotFoundError:
        raise VideoReadError(f'missing video: {path}') from None


def video_index(path: str) -> VideoIndex:
    """The :class:`VideoIndex` of a video file: from this process's memory, else from the index
    folder (:func:`~ops.frames.video_index.index_folder`), else built by one decode and stored."""
    key = _key(path)
    folder = index_folder()
    return _cached_index(key.path, key.mtime_ns, key.size, None if folder is None else str(folder))


def forget_indexes() -> None:
    """Drop the indexes this process keeps in memory (the stored ones stay): the state of a process
    or DataLoader worker that has read nothing yet."""
    _cached_index.cache_clear()


def count_video_frames(path: str) -> int:
    """Number of frames a sequential decode of the video's first video stream gives (the index's)."""
    return video_index(path).num_frames


def read_ends(path: str) -> VideoIndex:
    """Read the first and last frames of a video through :class:`VideoReader` (seeking as a clip
    read does) unless its stored index says this was done; record it in the index. Returns the
    index; VideoReadError when a frame does not read."""
    index = video_index(path)
    if index.ends_read:
        return index
    VideoReader(path).read([0, index.num_frames - 1])
    index.ends_read = True  # the copy this process keeps in memory, and the stored one
    store_index(_key(path), index, index_folder())
    return index


class _NeedSequential(Exception):
    """Seeking did not give the frames the index promised; read sequentially instead."""


class _Cursor:
    """Decoded frames of one decoding run, each named by its display position.

    ``identify(frame)`` gives a frame's position, or None for a frame to pass over (displayed
    before the keyframe a seek landed at). From the start of the file the position is the output
    count (the definition); after a seek it comes from pts or from counting, and ``check`` compares
    the first frame named (is the landing where the index says?) and every frame returned with
    the index's digest. Frames only passed through are not checked: a mismatch there says nothing
    about the frames returned, and would needlessly retire the seek point.
    """

    def __init__(self, frames: Iterator[av.VideoFrame], identify: Callable[[av.VideoFrame], int | None],
                 check: Callable[[int, av.VideoFrame], None], seek_point: SeekPoint | None) -> None:
        self.frames, self.identify, self.check, self.seek_point = frames, identify, check, seek_point
        self.position = -1  # last frame decoded

    def advance_to(self, target: int, on_decoded: Callable[[], None]) -> av.VideoFrame:
        """Decode up to frame ``target`` and return it; _NeedSequential if it does not come."""
        for frame in self.frames:
            on_decoded()
            pos = self.identify(frame)
            if pos is None:
                continue
            if pos <= self.position or pos > target:  # out of order, or the target was skipped
                raise _NeedSequential
            if pos == target or self.position < 0:  # what we return, and the frame we landed at
                self.check(pos, frame)
            self.position = pos
            if pos == target:
                return frame
        raise _NeedSequential


class VideoReader:
    """Decode chosen frames of one video, exactly the frames a sequential decode gives at those
    positions. ``frames_decoded`` counts decoded frames (seeking keeps it near the number of
    wanted frames plus GOP lead-ins)."""

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
        out: dict[int, np.ndarray] = {}
        if self.index.seekable:
            try:
                self._read_seeking(wanted, out)
            except _NeedSequential:
                pass  # frames already in ``out`` were verified; read the rest from the start
        rest = [i for i in wanted if i not in out]
        if rest:
            try:
                out.update(self._read_sequential(rest))
            except av.error.FFmpegError as e:
                raise VideoReadError(f'cannot decode video {self.path}: {ffmpeg_reason(e)}') from None
        return {i: out[i] for i in wanted}

    def read_all(self) -> list[np.ndarray]:
        """Every frame that decodes, in order (:func:`decoded_frames`; used to substitute frames
        of damaged videos)."""
        container = _open(self.path)
        try:
            frames = [rgb_frame(frame) for frame in decoded_frames(container.demux(container.streams.video[0]))]
        finally:
            container.close()
        self.frames_decoded += len(frames)
        return frames

    # -- seeking

    def _count_decoded(self) -> None:
        self.frames_decoded += 1

    def _check(self, pos: int, frame: av.VideoFrame) -> None:
        if frame_digest(frame) != self.index.digests[pos]:
            raise _NeedSequential

    def _from_start(self, container: av.container.InputContainer) -> _Cursor:
        counter = iter(range(len(self)))
        # no seek yet: this is the sequential decode itself, so counting is the definition
        return _Cursor(decoded_frames(container.demux(container.streams.video[0])), lambda frame: next(counter, None),
                       lambda pos, frame: None, None)

    def _seek(self, container: av.container.InputContainer, point: SeekPoint, target: int) -> _Cursor:
        """Seek to ``point`` and return a cursor that names the frames decoded from there."""
        stream = container.streams.video[0]

        def land(stamp: int) -> tuple[int | None, av.Packet | None, Iterator[av.Packet]]:
            container.seek(stamp, stream=stream, backward=True, any_frame=False)  # also flushes the decoder
            packets = container.demux(stream)
            first = next((p for p in packets if p.size), None)
            return (None if first is None else self.index.landing_position(first)), first, packets

        best: tuple[int, int] | None = None  # (landing, stamp): the latest landing at or before target
        stamp = None
        for stamp in self.index.seek_stamps(point):
            landing, first, packets = land(stamp)
            if landing is None or landing > target:
                continue  # an unknown packet, or past the target
            if best is None or landing > best[0]:
                best = (landing, stamp)
            if landing >= point.position:
                break
        if best is None:
            self.index.unusable.add(point.position)
            raise _NeedSequential
        if best[0] == point.position:
            self.index.stamp_for[point.position] = best[1]
        if stamp != best[1]:  # the best landing was not the last one tried: go back there
            landing, first, packets = land(best[1])
            if landing != best[0]:
                raise _NeedSequential
        landing = best[0]
        frames = decoded_frames(chain((first,), packets))
        return _Cursor(frames, self._identifier(landing), self._check, point)

    def _identifier(self, landing: int) -> Callable[[av.VideoFrame], int | None]:
        """How frames decoded after landing at the keyframe of display position ``landing`` are
        named: by pts when trusted, else by counting from the first frame flagged as a keyframe.
        Frames displayed before the landing keyframe (open GOPs) are passed over."""
        pts = self.index.pts
        if pts is not None:
            def by_pts(frame: av.VideoFrame) -> int | None:
                i = int(np.searchsorted(pts, frame.pts)) if frame.pts is not None else len(pts)
                if i >= len(pts) or pts[i] != frame.pts:
                    raise _NeedSequential  # a pts the sequential decode never gave
                return i if i >= landing else None
            return by_pts
        last = [None]  # position of the previous frame; None until the keyframe is out

        def by_count(frame: av.VideoFrame) -> int | None:
            if last[0] is None:
                if not frame.key_frame:
                    return None
                last[0] = landing
            else:
                last[0] += 1
            return last[0]
        return by_count

    def _read_seeking(self, wanted: list[int], out: dict[int, np.ndarray]) -> None:
        """Fill ``out`` with the wanted frames, seeking to the keyframe before each where that
        skips decoding; _NeedSequential (``out`` holding the verified frames so far) if the video
        does not behave as indexed."""
        container = _open(self.path)
        cursor: _Cursor | None = None
        try:
            for target in wanted:
                point = self.index.seek_point_before(target)
                if cursor is None or (point is not None and point.position > cursor.position + 1):
                    if point is None:
                        cursor = self._from_start(container)
                    else:
                        try:
                            cursor = self._seek(container, point, target)
                        except av.error.FFmpegError:  # a seek the demuxer refused
                            self.index.unusable.add(point.position)
                            raise _NeedSequential from None
                try:
                    frame = cursor.advance_to(target, self._count_decoded)
                except (_NeedSequential, av.error.FFmpegError):
                    if cursor.seek_point is not None:
                        self.index.unusable.add(cursor.seek_point.position)
                    raise _NeedSequential from None
                out[target] = rgb_frame(frame)
        finally:
            container.close()

    def _read_sequential(self, wanted: list[int]) -> dict[int, np.ndarray]:
        want = set(wanted)
        out: dict[int, np.ndarray] = {}
        container = _open(self.path)
        try:
            for i, frame in enumerate(decoded_frames(container.demux(container.streams.video[0]))):
                self.frames_decoded += 1
                if i in want:
                    out[i] = rgb_frame(frame)
                    if len(out) == len(want):
                        break
        finally:
            container.close()
        missing = sorted(want - out.keys())
        if missing:
            raise VideoReadError(f'{self.path}: frames {missing[:5]} (0-based) did not decode '
                                 f'(the index counted {len(self)} frames)')
        return out
