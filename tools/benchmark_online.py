"""Streaming speed of OnlinePAN, causal against bidirectional, and ONNX Runtime beside PyTorch.

    python tools/benchmark_online.py [--arch resnet50 mobilenetv2] [--modality Lite] [--size 224]
        [--segments 8] [--steps 8] [--warmup 2] [--no_onnx] [--amp | --no_amp]
        [--channels_last | --no_channels_last] [--compile]

Per backbone, precision and way of stepping: the median time of one ``OnlinePAN.step`` once the
window is full (random segments, batch 1; a causal step runs one segment, a bidirectional one the
last ``--segments``), the steps (segments) per second, and the causal step's share of the
bidirectional one. A step is one segment of ``new_length`` frames: at 25 fps video, one segment
of 4 frames per step needs 6.25 steps/s to keep up. Precision rows: fp32, then bf16 autocast
(``--amp`` / ``--no_amp`` keep one), each in the tools' layout for it (channels-last with bf16 on
a CPU) unless ``--channels_last`` / ``--no_channels_last`` say otherwise.

ONNX Runtime (CPU, as many threads as torch uses, timed in turn with PyTorch so that both see
the same load) runs the exported fp32 graphs of ops/deploy/onnx_export.py: the offline clip model (clips/s, batch 1, beside PyTorch's fp32 forward) and
the causal online step (steps/s, beside PyTorch's fp32 causal step). Weights are random
(``pretrain='scratch'``): speed does not depend on them.

How close to the limit: each row gives the step's GFLOP/s (FLOPs of tools/count_flops.py: a causal
step is one segment through the backbone, a bidirectional one the window) and its share of the
machine's limit, the matrix-product rate in the row's precision sampled between the row's timed
steps on the same threads (tools/_machine_limit.py). ``--compile`` adds, after each row, the same
stream with the step compiled (``OnlinePAN(model, compiler=...)``, ops/engine/compile.py), with the
seconds of its slowest first step (compilation) and its speed-up over the eager row.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from ops.deploy.onnx_export import clip_shape, export_offline, export_online, online_names, ort_session
from ops.deploy.streaming import OnlinePAN
from ops.engine.cli import new_parser
from ops.engine.compile import add_compile_flags, compile_for_inference
from ops.engine.precision import add_precision_flags, resolve_precision
from ops.models import PAN
from tools._machine_limit import LimitProbe, limit_note, machine_name, timed_with_limit
from tools.count_flops import count_model, count_online_step

CPU = torch.device('cpu')
STEPS_FOR_25_FPS = 25 / 4  # one 4-frame segment per step


def timed_pair(first, second, iters: int, warmup: int, probe: LimitProbe | None = None) -> tuple[float, float]:
    """Median seconds of two functions timed in turn, so that both see the same load (and the
    limit of ``probe``, sampled after each pair)."""
    for _ in range(warmup):
        first(), second()
    times = ([], [])
    for _ in range(iters):
        for fn, found in zip((first, second), times):
            start = time.perf_counter()
            fn()
            found.append(time.perf_counter() - start)
        if probe is not None:
            probe.sample()
    return tuple(sorted(t)[len(t) // 2] for t in times)


def build(arch: str, modality: str, segments: int, causal: bool) -> PAN:
    torch.manual_seed(0)
    return PAN(174, segments, modality, base_model=arch, pretrain='scratch', is_shift=True, has_VAP=True,
               dropout=0.5, partial_bn=False, print_spec=False, causal_shift=causal).eval()


def time_steps(model: PAN, size: int, amp: bool, channels_last: bool | None, steps: int, warmup: int,
               compiled: bool = False) -> dict:
    """Median seconds of a step with a full window, under the precision of ``amp``, with the
    limit of that precision sampled between the timed steps; ``compiled``: the step compiled, and
    ``first_s`` the slowest of the steps up to the first full window (the one that compiled)."""
    precision = resolve_precision(amp, channels_last, CPU)
    if compiled:
        torch._dynamo.reset()   # each compiled row starts afresh
    online = OnlinePAN(precision.apply(model), compiler=compile_for_inference if compiled else None)
    segment = torch.randn(model.new_length * 3, size, size)
    probe = LimitProbe(precision.name, CPU)

    def step():
        with precision.autocast():
            online.step(segment)

    first = 0.0
    for _ in range(model.num_segments):   # up to the first full window, untimed
        start = time.perf_counter()
        step()
        first = max(first, time.perf_counter() - start)
    return {'seconds': timed_with_limit(step, steps, warmup, CPU, probe), 'precision': precision.name,
            'layout': precision.layout, 'limit': probe.gflops, 'compiled': compiled, 'first_s': first}


def onnx_rows(arch: str, modality: str, segments: int, size: int, steps: int, warmup: int) -> list[tuple]:
    """(what, PyTorch per s, ONNX Runtime per s, G multiply-adds per call, fp32 limit GFLOP/s) for
    the offline clip and the causal online step, fp32."""
    rows = []
    clip_gmacs, _ = count_model(modality, arch, size, segments, 174, paper_pa=False)
    step_gmacs = count_online_step(modality, arch, size, segments, causal=True)
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        model = build(arch, modality, segments, causal=False)
        path = os.path.join(folder, 'clip.onnx')
        export_offline(model, path, size)
        clip = torch.randn(clip_shape(model, 1, size))
        session = ort_session(path, torch.get_num_threads())
        probe = LimitProbe('fp32', CPU)
        torch_s, ort_s = timed_pair(lambda: model(clip), lambda: session.run(None, {'clip': clip.numpy()}),
                                    steps, warmup, probe)
        rows.append(('offline clip (clips/s)', 1 / torch_s, 1 / ort_s, clip_gmacs, probe.gflops))

        causal = build(arch, modality, segments, causal=True)
        path = os.path.join(folder, 'step.onnx')
        step = export_online(causal, path, size)
        segment = torch.randn(1, causal.new_length * 3, size, size)
        state = step.initial_state(segment)
        session = ort_session(path, torch.get_num_threads())
        inputs, _ = online_names(step.num_buffers)
        feed = dict(zip(inputs, [t.numpy() for t in (segment, *state)]))
        probe = LimitProbe('fp32', CPU)
        torch_s, ort_s = timed_pair(lambda: step(segment, *state), lambda: session.run(None, feed), steps, warmup,
                                    probe)
        rows.append(('causal online step (steps/s)', 1 / torch_s, 1 / ort_s, step_gmacs, probe.gflops))
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    parser.add_argument('--arch', nargs='+', default=['resnet50', 'mobilenetv2'], help='backbones to time')
    parser.add_argument('--modality', default='Lite', choices=['RGB', 'PA', 'Lite'], help='PAN model to time')
    parser.add_argument('--size', type=int, default=224, help='input height and width in pixels')
    parser.add_argument('--segments', type=int, default=8, help='segments in the window')
    parser.add_argument('--steps', type=int, default=8, help='timed steps (the median is reported)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps after the window is full')
    parser.add_argument('--no_onnx', action='store_true', help='leave out the ONNX Runtime rows (default: off)')
    add_precision_flags(parser)
    add_compile_flags(parser, 'off: eager rows only; --compile adds a compiled row after each eager one')
    return parser


@torch.no_grad()  # restored on return: tests call main() in-process
def main(argv: list[str] | None = None) -> list[dict]:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, value in (('--steps', args.steps), ('--segments', args.segments)):
        if value < 1:
            parser.error(f'{flag} {value}: must be 1 or more')
    print(f'{machine_name(CPU)}; torch {torch.__version__}; {args.modality}, {args.segments} segments at '
          f'{args.size}x{args.size}, batch 1; median of {args.steps} steps')
    print(limit_note(CPU) + '; compile s: the slowest step up to the first full window, compilation included')
    header = (f"{'arch':<12}{'precision':<10}{'layout':<15}{'shift':<15}{'compile':<8}{'ms/step':>9}{'steps/s':>9}"
              f"{'x bidir':>9}{'25 fps':>8}{'GFLOP/s':>9}{'%limit':>7}{'limit GFLOP/s':>14}{'x eager':>9}"
              f"{'compile s':>11}")
    print(header)
    print('-' * len(header))
    rows = []
    variants = [False, True] if args.compile else [False]
    for arch in args.arch:
        gmacs = {causal: count_online_step(args.modality, arch, args.size, args.segments, causal)
                 for causal in (False, True)}
        for amp in [a for a in (False, True) if args.amp in (None, a)]:
            timed = {}
            for causal in (False, True):
                for compiled in variants:
                    r = time_steps(build(arch, args.modality, args.segments, causal), args.size, amp,
                                   args.channels_last, args.steps, args.warmup, compiled)
                    r.update(arch=arch, causal=causal, steps_per_s=1 / r['seconds'],
                             gflops=2 * gmacs[causal] / r['seconds'])
                    timed[causal, compiled] = r
                    rows.append(r)
                    print(format_step_row(r, timed), flush=True)
    if not args.no_onnx:
        print(f"\nONNX Runtime (CPU, {torch.get_num_threads()} threads) beside PyTorch, fp32, batch 1")
        print(f"{'arch':<12}{'graph':<30}{'PyTorch':>10}{'GFLOP/s':>9}{'%limit':>7}{'ONNX Runtime':>14}"
              f"{'GFLOP/s':>9}{'%limit':>7}{'x PyTorch':>11}{'limit GFLOP/s':>14}")
        for arch in args.arch:
            for what, torch_rate, ort_rate, gmacs, limit in onnx_rows(arch, args.modality, args.segments, args.size,
                                                                     args.steps, args.warmup):
                rows.append({'arch': arch, 'onnx': what, 'torch': torch_rate, 'ort': ort_rate, 'limit': limit})
                print(f'{arch:<12}{what:<30}{torch_rate:>10.2f}{2 * gmacs * torch_rate:>9.1f}'
                      f'{2 * gmacs * torch_rate / limit:>7.0%}{ort_rate:>14.2f}{2 * gmacs * ort_rate:>9.1f}'
                      f'{2 * gmacs * ort_rate / limit:>7.0%}{ort_rate / torch_rate:>10.2f}x{limit:>14.0f}', flush=True)
    return rows


def format_step_row(r: dict, timed: dict) -> str:
    """One row: ``timed`` holds the rows so far of this backbone and precision, by (causal, compiled)."""
    bidir = timed.get((False, r['compiled']))
    share = f"{r['seconds'] / bidir['seconds']:.2f}" if r['causal'] and bidir else '1.00' if not r['causal'] else '-'
    keeps_up = 'yes' if r['steps_per_s'] >= STEPS_FOR_25_FPS else 'no'
    eager = timed[r['causal'], False]
    versus = f"{eager['seconds'] / r['seconds']:.2f}x" if r['compiled'] else '-'
    first = f"{r['first_s']:.1f}" if r['compiled'] else '-'
    return (f"{r['arch']:<12}{r['precision']:<10}{r['layout']:<15}{'causal' if r['causal'] else 'bidirectional':<15}"
            f"{'on' if r['compiled'] else 'off':<8}{r['seconds'] * 1e3:>9.1f}{r['steps_per_s']:>9.2f}{share:>9}"
            f"{keeps_up:>8}{r['gflops']:>9.1f}{r['gflops'] / r['limit']:>7.0%}{r['limit']:>14.0f}{versus:>9}"
            f"{first:>11}")


if __name__ == '__main__':
    main()
