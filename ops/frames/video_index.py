"""The frame index of a video file, and where it is kept.

A :class:`VideoIndex` is what one sequential decode of a video found (built by
:func:`ops.frames.video_reader.build_index`): the frame count, a CRC of every decoded frame, their
pts, and the keyframes a read may seek to. Building it decodes the whole video, so it is stored on
disk, one small JSON file per video, and read back by every process, DataLoader worker, epoch and
later run: a video is decoded whole once, not once per worker and epoch.

**Where.** ``$PAN_VIDEO_INDEX`` when set (``off``: keep indexes in memory only), else
``$XDG_CACHE_HOME/pan/video_index`` (``~/.cache/pan/video_index``). A cache folder rather than
beside the dataset's lists: dataset folders are often read-only or shared between users, one video
can be named by several lists (or by none: ``tools/demo.py``), and an index depends on the decoder
that made it (its CRCs are of decoded pixels), which a per-user cache on the machine that decodes
matches. Point ``$PAN_VIDEO_INDEX`` at a shared folder to share indexes between machines with the
same PyAV build.

**Trust.** An entry is named by a hash of the video's absolute path and holds its key: the path,
the file's size and modification time (ns), the decoder (PyAV and libavcodec versions) and the
format version. An entry whose key differs (the video was replaced, edited or touched; another
decoder), or that does not parse or does not hold together, is never used: the video is indexed
again and the entry rewritten. Entries are written atomically (:func:`ops.safe_files.write_atomically`),
so a reader sees a whole entry or none, whatever process is killed when. A folder that cannot be
written is warned about once per process; reading goes on with indexes in memory.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import warnings
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import av
import numpy as np

from ops.safe_files import write_atomically

INDEX_ENV = 'PAN_VIDEO_INDEX'
INDEX_OFF = 'off'
FORMAT_VERSION = 2  # 2: frames after a damaged packet are counted (decoded_frames)


class IndexStoreWarning(UserWarning):
    """The index folder cannot be written: indexes stay in memory, built again by each process."""


def packet_identity(packet: av.Packet) -> Hashable:
    """What names a packet again after a seek: its byte position in the file, or its timestamps
    where the demuxer gives no position."""
    return ('pos', packet.pos) if packet.pos is not None else ('ts', packet.pts, packet.dts)


@dataclass(frozen=True)
class SeekPoint:
    """A keyframe packet that decoding may restart from."""
    position: int  # 0-based display position of the keyframe's frame in the sequential decode
    timestamps: tuple[int, ...]  # offsets for ``container.seek`` (stream time base), first choice first
    packet: Hashable  # :func:`packet_identity` of the keyframe packet


@dataclass(eq=False)  # identity equality: the arrays do not compare to a bool
class VideoIndex:
    """What one sequential decode of a video found.

    ``digests`` ``(num_frames,)`` uint32: a CRC of each frame's decoded pixels in decode output
    order. ``pts`` ``(num_frames,)`` int64, strictly increasing, or None when the frames' pts are
    missing or out of order (then frames are identified by counting). ``seek_points``: sorted by
    position (one at position 0 is only a landing: decoding from the start needs no seek).
    ``end_stamp``: the largest packet timestamp, a seek offset past the last keyframe.
    ``header_frames``: the frame count the container's header claims (None: it gives none), which
    a damaged or truncated file overstates. ``ends_read``: the first and last frames were read back
    through the reader (the pre-flight check of :mod:`ops.frames.clip_check`), so a later check
    need not decode them again (set, in memory and on disk, by
    :func:`ops.frames.video_reader.read_ends`).

    Learnt while reading (per process, shared by the readers of the file, never stored):
    ``unusable``, the positions of seek points that failed once (not retried), and ``stamp_for``,
    the seek offset that landed exactly at each seek point.
    """
    num_frames: int
    digests: np.ndarray
    pts: np.ndarray | None
    seek_points: tuple[SeekPoint, ...]
    end_stamp: int | None = None
    header_frames: int | None = None
    ends_read: bool = False
    unusable: set[int] = field(default_factory=set, compare=False, repr=False)
    stamp_for: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def pts_trusted(self) -> bool:
        return self.pts is not None

    @property
    def seekable(self) -> bool:
        return any(p.position > 0 for p in self.seek_points)

    @property
    def header_overstates(self) -> bool:
        """The header claims more frames than decode (a truncated or damaged file)."""
        return self.header_frames is not None and self.header_frames > self.num_frames

    @cached_property
    def _landings(self) -> dict[Hashable, int]:
        return {p.packet: p.position for p in self.seek_points}

    @cached_property
    def _seek_positions(self) -> list[int]:
        return [p.position for p in self.seek_points]

    def landing_position(self, packet: av.Packet) -> int | None:
        """Display position of the keyframe packet a seek resumed at; None if not a seek point."""
        return self._landings.get(packet_identity(packet))

    def seek_point_before(self, target: int) -> SeekPoint | None:
        """The last usable seek point at or before frame ``target``; None: decode from the start."""
        i = bisect.bisect_right(self._seek_positions, target)
        for point in reversed(self.seek_points[:i]):
            if point.position == 0:
                break
            if point.position not in self.unusable:
                return point
        return None

    def seek_stamps(self, point: SeekPoint) -> list[int]:
        """Offsets to try for ``container.seek`` to land at ``point``: the one that worked before,
        else its keyframe packet's pts and dts (demuxers index by either), then just below the next
        seek point's (demuxers such as MP4's index by dts shifted to start at 0, which lies
        between the two)."""
        if point.position in self.stamp_for:
            return [self.stamp_for[point.position]]
        i = self.seek_points.index(point)
        if i + 1 < len(self.seek_points):
            above = [t - 1 for t in self.seek_points[i + 1].timestamps]
        else:
            above = [self.end_stamp] if self.end_stamp is not None else []
        lowest = min(point.timestamps)
        return list(dict.fromkeys([*point.timestamps, *(t for t in above if t > lowest)]))


# ---------------------------------------------------------------- where indexes are kept

def index_folder() -> Path | None:
    """The folder of stored indexes (see the module docstring); None when ``$PAN_VIDEO_INDEX`` is
    ``off``."""
    chosen = os.environ.get(INDEX_ENV, '').strip()
    if chosen.lower() == INDEX_OFF:
        return None
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get('XDG_CACHE_HOME', '').strip() or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(cache) / 'pan' / 'video_index'


def decoder_version() -> str:
    """What decoded the frames an index describes: the CRCs hold for this decoder alone."""
    return f"av {av.__version__}, libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}"


@dataclass(frozen=True)
class VideoKey:
    """What identifies the content of a video file: absolute path, size, modification time (ns)."""
    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str) -> VideoKey:
        """The key of the file at ``path`` now (FileNotFoundError when there is none)."""
        st = os.stat(path)
        return cls(os.path.abspath(path), st.st_size, st.st_mtime_ns)

    def entry(self, folder: Path) -> Path:
        """The entry file of this video in ``folder``."""
        name = hashlib.sha1(self.path.encode('utf-8', 'surrogateescape')).hexdigest()
        return folder / name[:2] / f'{name}.json'


def _encode(index: VideoIndex, key: VideoKey) -> bytes:
    entry = {
        'format': FORMAT_VERSION, 'decoder': decoder_version(),
        'path': key.path, 'size': key.size, 'mtime_ns': key.mtime_ns,
        'num_frames': index.num_frames, 'header_frames': index.header_frames, 'ends_read': index.ends_read,
        'digests': index.digests.tolist(), 'pts': None if index.pts is None else index.pts.tolist(),
        'seek_points': [[p.position, list(p.timestamps), list(p.packet)] for p in index.seek_points],
        'end_stamp': index.end_stamp,
    }
    return json.dumps(entry, separators=(',', ':')).encode('utf-8')


def _decode(data: bytes, key: VideoKey) -> VideoIndex:
    """The index in an entry's bytes; ValueError (or another parse error) unless it is whole and
    for ``key`` and this decoder."""
    entry = json.loads(data)
    expected = {'format': FORMAT_VERSION, 'decoder': decoder_version(), 'path': key.path, 'size': key.size,
                'mtime_ns': key.mtime_ns}
    stale = [name for name, value in expected.items() if entry.get(name) != value]
    if stale:
        raise ValueError(f'stale entry ({", ".join(stale)} differ)')
    n = int(entry['num_frames'])
    digests = np.array(entry['digests'], dtype=np.uint32)
    pts = None if entry['pts'] is None else np.array(entry['pts'], dtype=np.int64)
    points = tuple(SeekPoint(int(pos), tuple(int(t) for t in stamps), tuple(packet))
                   for pos, stamps, packet in entry['seek_points'])
    if n < 1 or digests.shape != (n,) or (pts is not None and (pts.shape != (n,) or np.any(np.diff(pts) <= 0))):
        raise ValueError('frame arrays do not match the frame count')
    positions = [p.position for p in points]
    if any(not 0 <= q < n for q in positions) or positions != sorted(set(positions)) or \
            any(not p.timestamps for p in points):
        raise ValueError('seek points out of order or out of range')
    header = entry['header_frames']
    return VideoIndex(n, digests, pts, points, end_stamp=entry['end_stamp'],
                      header_frames=None if header is None else int(header), ends_read=bool(entry['ends_read']))


def load_index(key: VideoKey, folder: Path | None) -> VideoIndex | None:
    """The stored index of ``key``'s video; None when there is none, or it is stale or corrupt
    (never trusted: the caller indexes the video again and stores the result over it)."""
    if folder is None:
        return None
    try:
        data = key.entry(folder).read_bytes()
    except OSError:
        return None
    try:
        return _decode(data, key)
    except (ValueError, KeyError, TypeError, IndexError, OverflowError):
        return None


_warned_folders: set[str] = set()


def store_index(key: VideoKey, index: VideoIndex, folder: Path | None) -> bool:
    """Write ``index`` as the entry of ``key``'s video, atomically; False (warned once per folder
    and process) when the folder cannot be written."""
    if folder is None:
        return False
    data = _encode(index, key)
    try:
        write_atomically(str(key.entry(folder)), lambda f: f.write(data))
    except OSError as err:
        if str(folder) not in _warned_folders:
            _warned_folders.add(str(folder))
            warnings.warn(f'video indexes cannot be stored in {folder} ({err}); each process indexes its '
                          f'videos again (set ${INDEX_ENV} to a writable folder)', IndexStoreWarning, stacklevel=2)
        return False
    return True
