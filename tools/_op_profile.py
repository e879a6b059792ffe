"""Where a model's time goes, by operator: a torch.profiler run grouped into the parts of PAN
(convolutions, batch norm, the temporal shift's pads and concatenations, layout and dtype changes,
activations and residual adds, PA's norm, pooling, the head), for tools/benchmark_train.py
``--profile``.

Eager operators are grouped by their aten names; a compiled graph's own kernels are named after
the operators they fuse (``cpp_fused_cat_constant_pad_nd_3``), which inductor reports to the profiler
only when asked to (``cpp.enable_kernel_profile``, set by :func:`kernel_names`); their time, with
the graph's Python wrapper, forms one part. Its convolutions remain library calls
(``mkldnn::_convolution_pointwise``, with the batch norm folded in and the activation fused).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

from torch.profiler import ProfilerActivity, profile

# (part, fragments of operator names): the first part whose fragment an operator's name holds
PARTS = (
    ('compiled graph (its fused kernels, wrapper)', ('compiledfxgraph', 'compiled region', 'dynamo', 'cpp_fused')),
    ('convolution', ('convolution', 'conv2d')),
    ('batch norm', ('batch_norm',)),
    ('temporal shift (pad, cat)', ('cat', 'constant_pad', 'fill_', 'zero')),
    ('PA (difference, norm)', ('vector_norm', 'linalg', 'sub')),
    ('layout / dtype changes', ('copy', 'clone', 'contiguous', 'reorder', 'to_dense', 'to_mkldnn')),
    ('activation, residual add', ('relu', 'clamp', 'add')),
    ('pooling', ('pool',)),
    ('head (matmul, softmax, mean)', ('mm', 'linear', 'softmax', 'einsum', 'mean', 'sum', 'max')),
)
OTHER = 'other'


def part_of(name: str) -> str:
    """The part of PAN an operator (or a compiled kernel named after its operators) belongs to."""
    low = name.lower()
    return next((part for part, fragments in PARTS if any(f in low for f in fragments)), OTHER)


@contextmanager
def kernel_names():
    """Compiled CPU kernels show in the profiler under their names (set while a model compiles)."""
    import torch._inductor.config as inductor_config   # here: importing it costs seconds
    with inductor_config.patch({'cpp.enable_kernel_profile': True}):
        yield


def profile_by_part(fn: Callable[[], object], calls: int) -> dict:
    """Profile ``calls`` calls of ``fn``: ``{'parts': [(part, seconds per call, share)], 'ops':
    [(name, seconds per call, share)]}``, each by self CPU time, largest first; shares of the total."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    ops = [(e.key, e.self_cpu_time_total / 1e6 / calls) for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(t for _, t in ops) or 1.0
    parts: dict[str, float] = {}
    for name, seconds in ops:
        parts[part_of(name)] = parts.get(part_of(name), 0.0) + seconds
    by_time = sorted(ops, key=lambda op: -op[1])
    return {'parts': [(p, t, t / total) for p, t in sorted(parts.items(), key=lambda kv: -kv[1])],
            'ops': [(n, t, t / total) for n, t in by_time]}


def format_profile(result: dict, top: int = 8) -> str:
    """The parts, then the ``top`` operators, as indented lines."""
    lines = ['    by part:  ' + ', '.join(f'{p} {s:.0%} ({t * 1e3:.1f} ms)' for p, t, s in result['parts'])]
    lines += [f'    {n[:70]:<72}{t * 1e3:>9.2f} ms {s:>6.1%}' for n, t, s in result['ops'][:top]]
    return '\n'.join(lines)
