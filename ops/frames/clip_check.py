"""Is a clip readable as its list line says? The check of one video file, frame folder or video of
an LMDB store, made before a run reads it (:mod:`ops.list_check` runs it over a list, in parallel)
and by the tools that prepare lists.

:func:`check_clip` opens the clip, counts the frames it holds (the frames a sequential decode of a
video gives, which a damaged file's header overstates; the numbered frames of a folder; the frame
keys of a store), compares the count with the list's, and reads the first and the last frame.

A video must decode exactly the list's count: a list that says otherwise was made from another
file (or a damaged copy of it), and its sampling would be spread over frames that are not there,
or leave out frames that are. A folder or a store must hold the listed frames; more are never read
and are no problem. A count of 0 (or None) in the list means "read it from the clip". A video's
count and the outcome of reading its ends are kept in its stored index
(:mod:`ops.frames.video_index`), so checking it again, in this run or a later one, decodes nothing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ops.errors import InputError
from ops.frames.frame_source import scan_frame_folder
from ops.frames.image_io import FrameReadError, read_frame_uint8
from ops.frames.lmdb_source import LmdbFrames, LmdbStoreError, open_lmdb, video_prefix
from ops.frames.video_reader import VideoReadError, is_video_file, read_ends, video_index

MISSING_SHOWN = 3  # missing frame names quoted in a problem


@dataclass(frozen=True)
class ClipCheck:
    """What the check of one clip found. ``frames``: the frames it holds (None: it cannot be
    opened); ``problem``: why it does not read as listed ('' when it does); ``header_frames``: the
    count a video's header claims (None: not a video, or no count in its header)."""
    path: str
    frames: int | None
    problem: str = ''
    header_frames: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def readable(self) -> bool:
        """Some frame reads: substituting the nearest readable frame can stand in for the rest."""
        return bool(self.frames)


def _count_problem(listed: int | None, found: int, holds: str, note: str = '') -> str:
    """'' when the list's count is ``found`` (or the list gives none: None or 0), else the
    disagreement, e.g. 'the list says 300 frames, the file decodes 74 (its header claims 164)'."""
    if not listed or listed == found:
        return ''
    return f'the list says {listed} frames, {holds} {found}' + (f' ({note})' if note else '')


def check_video(path: str, listed: int | None = None) -> ClipCheck:
    """Check a video file: it opens, its decodable frames (the stored index's, else one decode)
    against ``listed``, its first and last frames read back."""
    try:
        index = video_index(path)
    except VideoReadError as err:
        return ClipCheck(path, None, str(err))
    header = index.header_frames
    note = f'its header claims {header}' if index.header_overstates else ''
    try:
        read_ends(path)
    except VideoReadError as err:
        return ClipCheck(path, index.num_frames, f'its first or last frame does not read: {err}', header)
    return ClipCheck(path, index.num_frames, _count_problem(listed, index.num_frames, 'the file decodes', note),
                     header)


def _present_run(names: set[str], image_tmpl: str) -> int:
    """How many frames ``image_tmpl.format(1)``, ``(2)``, ... are present without a gap."""
    n = 0
    while image_tmpl.format(n + 1) in names:
        n += 1
    return n


def check_folder(folder: str, image_tmpl: str | None = None, listed: int | None = None) -> ClipCheck:
    """Check a folder of frames: frames 1..``listed`` named by ``image_tmpl`` are all there (without
    a template, or without a count: its numbered frames), and the first and last of them decode.
    Frames beyond the list's count are no problem: a run reads the listed ones, and nothing else."""
    if not os.path.isdir(folder):
        return ClipCheck(folder, None, f'missing video folder: {folder}')
    try:
        if image_tmpl is None:
            files = scan_frame_folder(folder).files
            held = len(files)
        else:
            names = set(os.listdir(folder))
            held = _present_run(names, image_tmpl)
            files = [os.path.join(folder, image_tmpl.format(i)) for i in range(1, (listed or held) + 1)]
            missing = [os.path.basename(f) for f in files if os.path.basename(f) not in names]
            if missing:
                shown = ', '.join(missing[:MISSING_SHOWN]) + (', ...' if len(missing) > MISSING_SHOWN else '')
                return ClipCheck(folder, len(files) - len(missing),
                                 f'the list says {len(files)} frames, the folder lacks {len(missing)} of them '
                                 f'({shown})')
    except (OSError, InputError) as err:
        return ClipCheck(folder, None, str(err))
    if not files:
        return ClipCheck(folder, 0, f'no frames in {folder}' + (f' named {image_tmpl}' if image_tmpl else ''))
    try:
        for f in dict.fromkeys((files[0], files[-1])):
            read_frame_uint8(f)
    except FrameReadError as err:
        return ClipCheck(folder, held, str(err))
    short = listed and listed > held  # (with a template, missing frames were named above)
    return ClipCheck(folder, held, f'the list says {listed} frames, the folder has {held}' if short else '')


def check_lmdb_video(lmdb_path: str, video: str, listed: int) -> ClipCheck:
    """Check the frames of ``video`` (a list's path column) in an LMDB store: it has the ``listed``
    frames' keys, its first and last frames decode."""
    where = f'{lmdb_path}:{video}'
    prefix = video_prefix(video)
    try:
        with open_lmdb(lmdb_path).begin() as txn:
            cursor = txn.cursor()
            count = 0
            if cursor.set_range(prefix):
                for key in cursor.iternext(values=False):
                    if not key.startswith(prefix):
                        break
                    count += 1
    except LmdbStoreError as err:
        return ClipCheck(where, None, str(err))
    if not count:
        return ClipCheck(where, None, f'missing video in LMDB: {where}')
    if listed > count:  # as for folders, keys past the listed frames are never read
        return ClipCheck(where, count, f'the list says {listed} frames, the store holds {count}')
    try:
        LmdbFrames(lmdb_path, video, listed or count).read([1, listed or count])
    except FrameReadError as err:
        return ClipCheck(where, count, str(err))
    return ClipCheck(where, count)


def check_clip(path: str, listed: int | None = None, image_tmpl: str | None = None,
               lmdb_path: str | None = None, lmdb_video: str | None = None) -> ClipCheck:
    """Check one clip as a run would read it: a video file (by its extension), else with
    ``lmdb_path`` the video ``lmdb_video`` of that store, else a folder of frames named by
    ``image_tmpl`` (None: its numbered frames). ``listed``: the list's frame count (None or 0: none
    to compare with). Never raises for a bad clip: the :class:`ClipCheck` says what is wrong."""
    if is_video_file(path):
        return check_video(path, listed)
    if lmdb_path is not None:
        return check_lmdb_video(lmdb_path, lmdb_video if lmdb_video is not None else path, listed or 0)
    return check_folder(path, image_tmpl, listed)
