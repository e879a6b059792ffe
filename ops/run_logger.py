"""A training run's records: ``log/<name>/args.txt``, the text lines of ``log.csv`` and
tensorboardX events. Only the main process writes; the others get a logger that does nothing."""
from __future__ import annotations

import os

from tensorboardX import SummaryWriter


class RunLogger:
    """``resume``: append to log.csv instead of starting it anew. ``tensorboard``: write events too
    (an evaluation-only run writes log.csv alone)."""

    def __init__(self, log_dir: str, enabled: bool = True, resume: bool = False, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.log_dir = log_dir
        self._csv = None
        self._tb = None
        if enabled:
            os.makedirs(log_dir, exist_ok=True)
            self._csv = open(os.path.join(log_dir, 'log.csv'), 'a' if resume else 'w')
            if tensorboard:
                self._tb = SummaryWriter(log_dir=log_dir)

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
        if self.enabled and self._tb is not None:
            for tag, value in values.items():
                self._tb.add_scalar(tag, value, step)
            self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self._csv.close()
            if self._tb is not None:
                self._tb.close()
