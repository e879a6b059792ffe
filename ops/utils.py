"""Small helpers shared by main.py and test_models.py: meters, top-k accuracy, seeding and RNG state."""
from __future__ import annotations

import random

import numpy as np
import torch


class AverageMeter:
    """Running sum, count and average of a scalar (loss, accuracy, time)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.val = 0.0
        self.sum = 0.0
        self.count = 0

    def update(self, val: float, n: int = 1) -> None:
        self.val = float(val)
        self.sum += float(val) * n
        self.count += n

    @property
    def avg(self) -> float:
        return self.sum / self.count if self.count else 0.0


def correct_topk_tensor(output: torch.Tensor, target: torch.Tensor,
                        topk: tuple[int, ...] = (1,)) -> torch.Tensor:
    """Number of samples whose target is among the top-k scores, for each k, as an int64 tensor of
    shape ``(len(topk),)`` on ``output``'s device; nothing is read back to the host.

    Shapes: ``output`` (N, num_class), ``target`` (N,).
    """
    maxk = min(max(topk), output.size(1))
    pred = output.topk(maxk, dim=1).indices  # (N, maxk)
    hits = pred.eq(target.view(-1, 1))
    return torch.stack([hits[:, :min(k, maxk)].any(dim=1).sum() for k in topk])


def correct_topk(output: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1,)) -> list[int]:
    """:func:`correct_topk_tensor` read back as Python ints (waits for the device)."""
    return [int(c) for c in correct_topk_tensor(output, target, topk).tolist()]


def accuracy(output: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1,)) -> list[float]:
    """Top-k accuracy in percent for each k. Shapes: ``output`` (N, num_class), ``target`` (N,)."""
    return [100.0 * c / max(target.size(0), 1) for c in correct_topk(output, target, topk)]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG state a resumed run needs, as plain containers and tensors (loadable with
    ``torch.load(weights_only=True)``)."""
    np_state = np.random.get_state()
    state = {'python': random.getstate(), 'numpy': [np_state[0], torch.from_numpy(np_state[1].copy()),
                                                     *np_state[2:]],
             'torch': torch.get_rng_state()}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    version, *rest = state['python']
    random.setstate((version, tuple(rest[0]), rest[1]) if isinstance(rest[0], list) else state['python'])
    kind, keys, *tail = state['numpy']
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *tail))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'][:torch.cuda.device_count()])


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: give NumPy and ``random`` in each worker the worker's own
    torch seed (a fork copies one global NumPy state into every worker otherwise)."""
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)
