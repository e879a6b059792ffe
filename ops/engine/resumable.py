"""What makes a training epoch resumable at any batch: a data order that is a function of
(seed, epoch) alone, augmentation that is a function of (seed, epoch, sample) alone, and the RNG
state of every process gathered into one checkpoint.

With these a run killed after batch ``b`` of epoch ``e`` and resumed there draws exactly the clips,
crops, flips and dropout masks that the unbroken run drew after ``b``: the data order is the
shuffled permutation of ``(seed, epoch)`` with its first ``b`` batches skipped, each clip's random
draws are seeded by its own ``(seed, epoch, index)`` (so neither the number of DataLoader workers
nor the resume point changes them), and the model's own RNG (dropout) is restored per process.
"""
from __future__ import annotations

import io
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from ops.engine.distributed import DistContext
from ops.utils import rng_state, set_rng_state


@contextmanager
def seeded_draws(seed_words: tuple[int, ...]) -> Iterator[None]:
    """Seed ``random``, NumPy's global RNG and torch's CPU RNG from ``seed_words`` for the body,
    then put back the states they had: a sample drawn in the main process (``-j 0``) must not move
    the RNG that dropout draws from."""
    words = np.random.SeedSequence([int(w) % 2 ** 63 for w in seed_words]).generate_state(2, np.uint64)
    seed = int(words[0]) % 2 ** 63
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    random.seed(seed)
    np.random.seed(int(words[1]) % 2 ** 32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


class SeededSamples(Dataset):
    """``dataset`` whose item ``i`` in epoch ``e`` draws its randomness (segment offsets, crops,
    flips) from a seed of ``(seed, e, i)`` alone. The epoch comes with the key, ``data[(e, i)]``
    (a :class:`ResumableSampler` with ``tag_epoch`` yields such keys, which persistent DataLoader
    workers need: they keep the copy of this object made when they started), or, for a plain
    index ``data[i]``, from :meth:`set_epoch`, called before each epoch's DataLoader iterator is
    made."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, key: int | tuple[int, int]):
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        with seeded_draws((self.seed, epoch, index)):
            return self.dataset[index]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        # the wrapped dataset's attributes (video_list, substituted_frames, ...) read through
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)


class ResumableSampler(DistributedSampler):
    """DistributedSampler (shuffled by ``seed + epoch``, this process's share, the last uneven
    batch dropped) that can start an epoch at batch ``start_batch``: the batches before it are
    skipped, the rest are the unbroken epoch's. ``batch_size`` is per process. With ``tag_epoch``
    it yields ``(epoch, index)`` keys for :class:`SeededSamples` instead of indices."""

    def __init__(self, dataset: Dataset, batch_size: int, num_replicas: int, rank: int, seed: int,
                 tag_epoch: bool = False) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.start_batch = 0
        self.tag_epoch = tag_epoch

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.batch_size

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f'start_batch {start_batch} outside 0..{self.batches_per_epoch}')
        super().set_epoch(epoch)
        self.start_batch = start_batch

    def __iter__(self):
        indices = list(super().__iter__())
        indices = indices[self.start_batch * self.batch_size:self.batches_per_epoch * self.batch_size]
        return iter([(self.epoch, i) for i in indices] if self.tag_epoch else indices)

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size


def gather_rng_states(ctx: DistContext) -> list[dict]:
    """The RNG states (:func:`ops.utils.rng_state`) of every process, indexed by rank; a
    collective: every process calls it at the same point."""
    own = rng_state()
    if not ctx.distributed:
        return [own]
    # as bytes: all_gather_object's own unpickling of tensors fails on some torch versions
    buffer = io.BytesIO()
    torch.save(own, buffer)
    gathered: list = [None] * ctx.world_size
    dist.all_gather_object(gathered, buffer.getvalue())
    return [torch.load(io.BytesIO(b), weights_only=True) for b in gathered]


def restore_rng_state(states: list[dict] | None, ctx: DistContext) -> bool:
    """Set this process's RNG states from a checkpoint's per-rank list; False (nothing set) when
    the list is missing or was written by another number of processes."""
    if not states or len(states) != ctx.world_size:
        return False
    set_rng_state(states[ctx.rank])
    return True
