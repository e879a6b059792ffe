"""One training run per run folder at a time.

The lock is a POSIX record lock (``fcntl.lockf``) on ``<run folder>/run.lock``: the kernel drops it
when the process holding it ends, however it ends (SIGKILL, a crash, a lost node), so a crashed run
never leaves it stuck, while a live one keeps a second run with the same name from writing the same
checkpoint and logs. Record locks belong to the process, so DataLoader workers forked from it do not
hold it after their parent dies. The file's text says who holds it, for the refusal message.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import time

from ops.errors import InputError

LOCK_NAME = 'run.lock'


class RunLockedError(InputError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """Hold ``<folder>/run.lock`` from :meth:`acquire` until :meth:`release` or process exit."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunLockedError` naming the holder."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise RunLockedError(f'{self.path}: another run is training in this folder ({self.holder()}); '
                                 'wait for it to end, or give this run another --store_name') from None
        os.ftruncate(fd, 0)
        os.write(fd, f'pid {os.getpid()} on {socket.gethostname()}, since '
                     f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n'.encode())
        self._fd = fd

    def holder(self) -> str:
        try:
            with open(self.path) as f:
                return f.read().strip() or 'holder unknown'
        except OSError:
            return 'holder unknown'

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the record lock
            self._fd = None

    def __enter__(self) -> 'RunLock':
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
