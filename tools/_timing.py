"""Wall-clock time of work on a device: CUDA runs asynchronously, so a timer must wait for the
device's queued work before it reads the clock. Imports torch alone, so that
tools/_release_baseline.py can use it beside the release's own ``ops`` package."""
from __future__ import annotations

import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (nothing to wait for on the CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def call_seconds(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call of ``fn``, the device's work it queued included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start
