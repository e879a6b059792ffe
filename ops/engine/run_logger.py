"""A training run's records: ``log/<name>/args.txt``, the text lines of ``log.csv`` and
tensorboardX events. Only the main process writes; the others get a logger that does nothing.

Resuming keeps the records as an unbroken run would have left them. A checkpoint stores
:meth:`RunLogger.position`: the length of log.csv and every scalar written so far. A run resumed
from it cuts log.csv back to that length (the lines after it describe work that is done again)
and writes the events anew from the stored scalars, so no epoch is logged twice and none is
missing, wherever the previous run was killed.
"""
from __future__ import annotations

import glob
import os
import time

from tensorboardX import SummaryWriter

EVENTS_GLOB = 'events.out.tfevents.*'


class RunLogger:
    """``resume``: append to log.csv instead of starting it anew. ``tensorboard``: write events too
    (an evaluation-only run writes log.csv alone). ``position``: a checkpoint's
    :meth:`position` to continue from (log.csv cut back to its length, its scalars rewritten)."""

    def __init__(self, log_dir: str, enabled: bool = True, resume: bool = False, tensorboard: bool = True,
                 position: dict | None = None) -> None:
        self.enabled = enabled
        self.log_dir = log_dir
        self._csv = None
        self._tb = None
        self.history: list[list] = [list(s) for s in (position or {}).get('scalars', [])]
        if not enabled:
            return
        os.makedirs(log_dir, exist_ok=True)
        csv_path = os.path.join(log_dir, 'log.csv')
        length = (position or {}).get('log_bytes')
        if resume and length is not None and os.path.exists(csv_path) and os.path.getsize(csv_path) > length:
            os.truncate(csv_path, length)
        self._csv = open(csv_path, 'a' if resume else 'w')
        if tensorboard:
            # events of earlier attempts hold scalars that are written again (or were never kept)
            for old in glob.glob(os.path.join(glob.escape(log_dir), EVENTS_GLOB)):
                os.remove(old)
            self._tb = SummaryWriter(log_dir=log_dir)
            for tag, value, step, walltime in self.history:
                self._tb.add_scalar(tag, value, step, walltime=walltime)
            self._tb.flush()

    def write_args(self, args_text: str) -> None:
        if self.enabled:
            with open(os.path.join(self.log_dir, 'args.txt'), 'w') as f:
                f.write(args_text + '\n')

    def line(self, text: str) -> None:
        """One line of the release's text log (log.csv)."""
        if self.enabled:
            self._csv.write(text + '\n')
            self._csv.flush()

    def scalars(self, values: dict[str, float], step: int) -> None:
        now = time.time()
        for tag, value in values.items():
            self.history.append([tag, float(value), int(step), now])
            if self.enabled and self._tb is not None:
                self._tb.add_scalar(tag, value, step, walltime=now)
        if self.enabled and self._tb is not None:
            self._tb.flush()

    def position(self) -> dict:
        """Where the records stand, for a checkpoint: log.csv's length and the scalars so far."""
        length = self._csv.tell() if self.enabled and self._csv is not None else None
        return {'log_bytes': length, 'scalars': [list(s) for s in self.history]}

    def close(self) -> None:
        if self.enabled:
            self._csv.close()
            if self._tb is not None:
                self._tb.close()
