"""Frames of one video from an LMDB store, in the layout of the released code's ``--lmdb``.

A store holds, for each video, one entry per frame::

    key   "<video>/000/<frame index - 1:08d>"   (UTF-8; <video> is the list file's path column)
    value the frame file's bytes as they were (JPEG or PNG)

so ``something/v1/20bn-something-something-v1.lmdb`` built for the release reads unchanged, and
frame 1 of video ``100218`` is key ``100218/000/00000000``. ``tools/frames_to_lmdb.py`` builds
stores; it also writes one ``"<video>/__done__"`` entry per packed video (the reader ignores it).

An LMDB handle must not cross a fork, so each process opens the store itself, read-only, on first
use (:func:`open_lmdb` caches the handle per process id): a DataLoader worker forked from a
process that has read frames opens its own.
"""
from __future__ import annotations

import os

import lmdb

from ops.frames.frame_source import Frame, IndexedFrames, MissingVideoError
from ops.frames.image_io import FRAME_FORMS, FrameReadError

# Readers do not take reader-table slots with lock=False, so this only bounds what LMDB would
# allow; high, so that many DataLoader workers of many processes never hit it.
MAX_READERS = 2048
DONE_SUFFIX = '__done__'

_ENVIRONMENTS: dict[tuple[int, str], lmdb.Environment] = {}  # (pid, absolute path) -> handle


class LmdbStoreError(FileNotFoundError):
    """An LMDB frame store is missing or cannot be opened; the message names its path."""


def video_prefix(video: str) -> bytes:
    """What every frame key of ``video`` (a list file's path) starts with: ``"<video>/000/"``."""
    return f'{video}/000/'.encode('utf-8')


def frame_key(video: str, index: int) -> bytes:
    """The release's key of the 1-based frame ``index`` of ``video``."""
    return video_prefix(video) + f'{index - 1:08d}'.encode('ascii')


def done_key(video: str) -> bytes:
    """The key ``tools/frames_to_lmdb.py`` writes, with the frame count, once ``video`` is packed."""
    return f'{video}/{DONE_SUFFIX}'.encode('utf-8')


def check_lmdb_path(path: str | os.PathLike) -> None:
    """LmdbStoreError naming ``path`` unless it exists (an LMDB folder, or a single-file store)."""
    if not os.path.exists(path):
        raise LmdbStoreError(f'LMDB frame store not found: {os.fspath(path)} '
                             '(build one with: python tools/frames_to_lmdb.py <dataset>)')


def _drop_inherited_handles(pid: int) -> None:
    """Close, in this process, the handles a fork copied from its parent. lmdb refuses to open
    files a live handle of this process holds, and the copies must not be used; closing one only
    unmaps this process's copy of the map and closes its copies of the descriptors (opened with
    lock=False, there is no shared lock table to release), so the parent is not affected."""
    for key in [k for k in _ENVIRONMENTS if k[0] != pid]:
        _ENVIRONMENTS.pop(key).close()


def open_lmdb(path: str | os.PathLike) -> lmdb.Environment:
    """This process's read-only handle on the store at ``path``, opened on first use.

    Keyed by process id: a forked DataLoader worker does not use the handles it inherited, it
    closes them and opens its own. ``lock=False``: readers take no lock (the store must not be
    written while it is read); ``readahead=False``: frames are read at random, and readahead would
    fill the page cache with neighbours nobody asked for.
    """
    where = os.path.abspath(os.fspath(path))
    pid = os.getpid()
    key = (pid, where)
    env = _ENVIRONMENTS.get(key)
    if env is None:
        _drop_inherited_handles(pid)
        check_lmdb_path(where)
        try:
            env = lmdb.open(where, subdir=os.path.isdir(where), readonly=True, lock=False,
                            readahead=False, meminit=False, max_readers=MAX_READERS)
        except lmdb.Error as e:
            raise LmdbStoreError(f'cannot open LMDB frame store {where}: {e}') from None
        _ENVIRONMENTS[key] = env
    return env


class LmdbFrames(IndexedFrames):
    """The frames of ``video`` (a list file's path column) in the LMDB store at ``lmdb_path``;
    ``num_frames`` comes from the list file, as for frame folders named by a template.

    Missing keys are FrameReadErrors ``missing frame: <lmdb path>:<key>``; a video with no frame
    key at all is a :class:`MissingVideoError`. Substitution (``read_substituting``) is that of
    every :class:`IndexedFrames` source.
    """

    def __init__(self, lmdb_path: str | os.PathLike, video: str, num_frames: int) -> None:
        self.lmdb_path = os.fspath(lmdb_path)
        self.video = video
        self.path = f'{self.lmdb_path}:{video}'
        self._num_frames = num_frames

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def _read_one(self, index: int, form: str) -> Frame:
        key = frame_key(self.video, index)
        # a read transaction without a reader lock costs about a microsecond: one per frame keeps
        # no snapshot alive between reads
        with open_lmdb(self.lmdb_path).begin(buffers=False) as txn:
            data = txn.get(key)
        name = f'{self.lmdb_path}:{key.decode()}'
        if data is None:
            raise FrameReadError(f'missing frame: {name}')
        return FRAME_FORMS[form](data, name)

    def _missing_video(self) -> MissingVideoError | None:
        prefix = video_prefix(self.video)
        with open_lmdb(self.lmdb_path).begin() as txn:
            cursor = txn.cursor()
            present = cursor.set_range(prefix) and cursor.key().startswith(prefix)
        if present:
            return None
        return MissingVideoError(f'missing video in LMDB: {self.lmdb_path}:{prefix.decode()}')
