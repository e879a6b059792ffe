"""Writing files that must survive any crash: checkpoints and their best copy (:mod:`ops.engine`),
the stored frame indexes of videos (:mod:`ops.frames.video_index`). A leaf: it imports nothing of
the project, so both concerns share it.

A file is written to a temporary name beside its target, flushed to disk, then renamed over it and
the rename flushed too, so the target is at every moment either the old file whole or the new one
whole. The new file gets the permissions of any file the user writes (0666 less the umask), not a
temporary file's 0600. A write that fails (a full disk, a quota, an I/O error) removes its
temporary file and raises :class:`CheckpointWriteError` naming the file and the cause.
"""
from __future__ import annotations

import errno
import glob
import os
import shutil
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

TMP_SUFFIX = '.tmp'


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the previous file at the path is left as it was."""


def _os_cause(err: BaseException) -> OSError | None:
    """The OSError behind ``err``: torch.save reports a full disk as a RuntimeError of its zip
    writer ('unexpected pos ...') whose context is the OSError of the failed write."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _temp_path(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f'.{name}.{os.getpid()}{TMP_SUFFIX}')


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename itself is still atomic
        pass
    finally:
        os.close(fd)


def _fail(path: str, err: BaseException) -> CheckpointWriteError:
    cause = _os_cause(err)
    if cause is None:
        reason = f'{type(err).__name__}: {err}'
        code = errno.EIO
    else:
        code = cause.errno or errno.EIO
        reason = os.strerror(code) if cause.errno else str(cause)
    kept = 'the previous file there is left as it was' if os.path.exists(path) else 'no file was written there'
    return CheckpointWriteError(code, f'cannot write {path}: {reason}; {kept}')


@contextmanager
def _replacing(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path`` for the body to fill; then rename it over ``path`` and
    flush the rename. On any failure the temporary file goes and CheckpointWriteError is raised."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = _temp_path(path)
    try:
        if os.path.exists(tmp):  # a killed writer of this pid's name (pids are reused)
            os.remove(tmp)
        yield tmp
        os.replace(tmp, path)
        _fsync_folder(folder)
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise _fail(path, err) from err


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file and rename it to ``path`` once it is on disk."""
    with _replacing(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())


def publish_copy(src: str, dst: str) -> None:
    """Make ``dst`` a copy of ``src`` atomically: a hard link where the file system has them (no
    second copy on disk; ``src`` is later replaced by a rename, never rewritten in place), else a
    byte copy."""
    with _replacing(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def remove_stale_temporaries(folder: str) -> list[str]:
    """Delete the temporary files that runs killed while writing left in ``folder``; returns them.
    Call it only while holding the folder's run lock (no live writer then)."""
    stale = glob.glob(os.path.join(glob.escape(folder), f'.*{TMP_SUFFIX}'))
    for path in stale:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    return stale
