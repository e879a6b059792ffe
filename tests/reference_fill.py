"""Deterministic weights and inputs, re-implemented from the rules of the reference's fill.py.

Each state_dict entry gets a value drawn from a generator seeded by crc32(key) + seed, so any
model with the released key names and shapes receives exactly the reference weights.
"""
import math
import zlib

import torch


def fill_tensor(key: str, shape, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(zlib.crc32(key.encode()) + seed)
    shape = tuple(shape)
    if key.endswith('num_batches_tracked'):
        return torch.zeros(shape, dtype=torch.long)
    if key.endswith('running_var'):
        return 0.75 + 0.5 * torch.rand(shape, generator=gen)
    if key.endswith('running_mean'):
        return 0.1 * torch.randn(shape, generator=gen)
    if len(shape) == 1:
        if key.endswith('weight'):  # a BatchNorm scale
            return 0.5 + 0.5 * torch.rand(shape, generator=gen)
        return 0.1 * torch.randn(shape, generator=gen)  # a bias
    return torch.randn(shape, generator=gen) * math.sqrt(2.0 / math.prod(shape[1:]))


def fill_state_dict(state_dict: dict, seed: int = 0, prefix: str = '') -> dict:
    """Fill every entry; `prefix` is prepended to the key for seeding only (the released
    checkpoints' keys carry 'module.'), the returned dict keeps the model's own keys."""
    return {k: fill_tensor(prefix + k, v.shape, seed) for k, v in state_dict.items()}


def make_input(batch: int, num_segments: int, frames_per_segment: int, size: int, seed: int = 0) -> torch.Tensor:
    """A clip batch shaped like the loader's output, (N, T*L*3, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch, num_segments * frames_per_segment * 3, size, size), generator=gen)
