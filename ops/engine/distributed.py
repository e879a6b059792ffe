"""Process-group set-up for torchrun (DistributedDataParallel) and the single-process fallback.

``torchrun --nproc_per_node=N main.py ...`` sets RANK / WORLD_SIZE / LOCAL_RANK (and MASTER_ADDR /
MASTER_PORT, TORCHELASTIC_RESTART_COUNT); without them the run is one process on one device. NCCL is
used on GPUs, gloo on the CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device('cpu')

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(gpus: list[int] | None = None, local_rank: int = 0) -> torch.device:
    """CUDA when present (the local rank's GPU, or the first of ``gpus``), else the CPU."""
    if not torch.cuda.is_available():
        return torch.device('cpu')
    if gpus:
        return torch.device('cuda', gpus[local_rank % len(gpus)])
    return torch.device('cuda', local_rank % torch.cuda.device_count())


def setup_distributed(gpus: list[int] | None = None) -> DistContext:
    """Join the torchrun process group when launched by torchrun; otherwise a single process."""
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return DistContext(device=pick_device(gpus))
    rank = int(os.environ['RANK'])
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    device = pick_device(gpus, local_rank)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    # torchrun keeps one store over the restarts of a job: without a prefix per attempt, restarted
    # workers read the addresses the killed ones left there and fail to connect
    store, _, _ = next(dist.rendezvous('env://', rank=rank, world_size=world_size))
    attempt = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')
    dist.init_process_group(backend=backend, store=dist.PrefixStore(f'pan/attempt{attempt}/', store), rank=rank,
                            world_size=world_size, device_id=device if device.type == 'cuda' else None)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_tensor(t: torch.Tensor, ctx: DistContext, op: str = 'sum') -> torch.Tensor:
    """``t`` reduced over all processes (``op``: 'sum', 'min' or 'max'), as a new tensor on ``t``'s
    device, ``t`` itself left as it was; in a single process ``t`` itself. Nothing is read back to
    the host, so on a GPU this does not wait for the device; ``t`` must be on ``ctx.device`` (NCCL)."""
    if not ctx.distributed:
        return t
    ops = {'sum': dist.ReduceOp.SUM, 'min': dist.ReduceOp.MIN, 'max': dist.ReduceOp.MAX}
    if op not in ops:
        raise ValueError(f'unknown reduction {op!r}; expected one of {sorted(ops)}')
    out = t.clone()
    dist.all_reduce(out, op=ops[op])
    return out


def all_reduce_sum(values: list[float], ctx: DistContext) -> list[float]:
    """Sum a few scalars over all processes (identity in a single process)."""
    if not ctx.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    return all_reduce_tensor(t, ctx, 'sum').tolist()


def broadcast_object(obj, ctx: DistContext):
    """Rank 0's value of a picklable object, on every process."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_objects(obj, ctx: DistContext) -> list:
    """Every process's value of a picklable object, in rank order (``[obj]`` in a single process)."""
    if not ctx.distributed:
        return [obj]
    gathered: list = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


class ShardSampler(torch.utils.data.Sampler):
    """Every ``world_size``-th index from ``rank``, in order and without padding: each sample is
    evaluated exactly once over all processes (DistributedSampler repeats some to even out)."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
