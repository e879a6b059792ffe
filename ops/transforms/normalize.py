"""The one uint8 -> float normalisation of the fast pipeline, ``(x / 255 - mean) / std``, used by
``ClipNormalize`` in loader workers and by the training loop on whole batches."""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch


@lru_cache(maxsize=16)
def _scale_shift(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``1 / (255 std)`` and ``mean / std`` as float32 ``(C, 1, 1)`` on ``device``, made once per
    setting: building them costs a few percent of normalising one clip in a loader worker."""
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
    return 1.0 / (255.0 * std_t), mean_t / std_t


def normalize_uint8_batch(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 clips ``(..., F*3, H, W)`` of any strides (from :class:`ClipToUint8Tensor`, or one
    clip ``(F, 3, H, W)``) -> contiguous float32 ``(x / 255 - mean) / std`` of the same shape, on
    the batch's device, as one multiply and one subtract. The uint8 -> float copy also does any
    channels-last -> channels-first transpose, so nothing else copies."""
    scale, shift = _scale_shift(tuple(mean), tuple(std), batch.device)
    *lead, fc, h, w = batch.shape
    if batch.device.type == 'cpu':
        # A batch is tens of MB of fresh memory, and on the CPU its first-touch page faults cost
        # as much as the arithmetic. numpy asks the kernel for huge pages on such blocks (torch's
        # CPU allocator does not by default), which makes them several times cheaper.
        x = torch.from_numpy(np.empty(tuple(batch.shape), np.float32)).copy_(batch)
    else:
        x = batch.to(torch.float32, memory_format=torch.contiguous_format)
    x = x.view(*lead, fc // len(mean), len(mean), h, w)
    return x.mul_(scale).sub_(shift).view(*lead, fc, h, w)
