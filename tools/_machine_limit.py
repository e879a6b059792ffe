"""How close to the machine's limit a benchmark runs: matrix-product GFLOP/s in a precision,
measured between the benchmark's own timed calls, on the same threads, so that the model and the
limit see the same machine (other jobs, clock) and the share of one in the other means something.

    probe = LimitProbe('bf16', device)
    seconds = timed_with_limit(lambda: model(x), iters=5, warmup=2, device=device, probe=probe)
    rate = 2 * gmacs / seconds                 # the model's GFLOP/s (FLOPs: tools/count_flops.py)
    print(f'{rate:.0f} GFLOP/s, {probe.share(rate):.0%} of {probe.gflops:.0f}')

The limit is the rate of ``torch.matmul`` on two square matrices in the precision (fp32, or bf16 /
fp16 tensors for autocast rows; the best of a few products at each sample, the median of the
samples), which is what the CPU's GEMM library (oneDNN / MKL) or the GPU's reaches on the
arithmetic a convolution network spends its time in.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from ops.engine.precision import read_cpu_info
from tools._timing import call_seconds, sync

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
# Square matrices large enough for the GEMM library's peak on the device, small enough that a
# sample between two timed calls costs little (on the CPU ~10 ms at 200 GFLOP/s).
MATMUL_SIZE = {'cpu': 1024, 'cuda': 8192}
PRODUCTS_PER_SAMPLE = 3


class LimitProbe:
    """The matrix-product rate of one precision on ``device``, sampled whenever :meth:`sample` is
    called; :attr:`gflops` is the median over the samples."""

    def __init__(self, precision: str, device: torch.device | str = 'cpu', size: int | None = None) -> None:
        if precision not in DTYPES:
            raise ValueError(f'precision {precision!r}: expected one of {sorted(DTYPES)}')
        self.precision = precision
        self.device = torch.device(device)
        self.size = size or MATMUL_SIZE.get(self.device.type, 4096)
        gen = torch.Generator().manual_seed(0)
        self._a, self._b = (torch.randn(self.size, self.size, generator=gen).to(self.device, DTYPES[precision])
                            for _ in range(2))
        self.samples: list[float] = []
        torch.matmul(self._a, self._b)   # the library's first call sets itself up
        sync(self.device)

    def sample(self) -> float:
        """GFLOP/s of the best of a few products now; recorded."""
        best = float('inf')
        for _ in range(PRODUCTS_PER_SAMPLE):
            start = time.perf_counter()
            torch.matmul(self._a, self._b)
            sync(self.device)
            best = min(best, time.perf_counter() - start)
        rate = 2 * self.size ** 3 / best / 1e9
        self.samples.append(rate)
        return rate

    @property
    def gflops(self) -> float:
        """The limit: the median of the samples (one is taken if there is none yet)."""
        if not self.samples:
            self.sample()
        return statistics.median(self.samples)

    def share(self, gflops: float) -> float:
        """``gflops`` as a fraction of the limit."""
        return gflops / self.gflops


def timed_with_limit(fn: Callable[[], object], iters: int, warmup: int, device: torch.device,
                     probe: LimitProbe | None) -> float:
    """Median seconds per call of ``fn`` over ``iters`` calls after ``warmup`` untimed ones, with a
    limit sample after each timed call (``probe`` None: none)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        times.append(call_seconds(fn, device))
        if probe is not None:
            probe.sample()
    return statistics.median(times)


def machine_name(device: torch.device) -> str:
    """The GPU's name, or the processor's with its AMX / AVX-512 BF16 flags and torch's thread count."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{read_cpu_info().summary()}, {torch.get_num_threads()} threads'


def limit_note(device: torch.device) -> str:
    """What the limit columns mean, for a benchmark's header."""
    size = MATMUL_SIZE.get(device.type, 4096)
    return (f'limit: torch.matmul of {size}x{size} matrices in the row\'s precision, sampled after each timed '
            'call on the same threads; GFLOP/s from tools/count_flops.py (2 FLOPs per multiply-add)')
