"""Streaming speed of OnlinePAN, causal against bidirectional, and ONNX Runtime beside PyTorch.

    python tools/benchmark_online.py [--arch resnet50 mobilenetv2] [--modality Lite] [--size 224]
        [--segments 8] [--steps 8] [--warmup 2] [--no_onnx] [--amp | --no_amp]
        [--channels_last | --no_channels_last]

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
from ops.engine.precision import add_precision_flags, read_cpu_info, resolve_precision
from ops.models import PAN
from tools.benchmark_train import timed

CPU = torch.device('cpu')
STEPS_FOR_25_FPS = 25 / 4  # one 4-frame segment per step


def timed_pair(first, second, iters: int, warmup: int) -> tuple[float, float]:
    """Median seconds of two functions timed in turn, so that both see the same load."""
    for _ in range(warmup):
        first(), second()
    times = ([], [])
    for _ in range(iters):
        for fn, found in zip((first, second), times):
            start = time.perf_counter()
            fn()
            found.append(time.perf_counter() - start)
    return tuple(sorted(t)[len(t) // 2] for t in times)


def build(arch: str, modality: str, segments: int, causal: bool) -> PAN:
    torch.manual_seed(0)
    return PAN(174, segments, modality, base_model=arch, pretrain='scratch', is_shift=True, has_VAP=True,
               dropout=0.5, partial_bn=False, print_spec=False, causal_shift=causal).eval()


def time_steps(model: PAN, size: int, amp: bool, channels_last: bool | None, steps: int, warmup: int) -> dict:
    """Median seconds of a step with a full window, under the precision of ``amp``."""
    precision = resolve_precision(amp, channels_last, CPU)
    online = OnlinePAN(precision.apply(model))
    segment = torch.randn(model.new_length * 3, size, size)

    def step():
        with precision.autocast():
            online.step(segment)

    for _ in range(model.num_segments - 1):   # fill the window, untimed
        step()
    return {'seconds': timed(step, steps, warmup, CPU), 'precision': precision.name, 'layout': precision.layout}


def onnx_rows(arch: str, modality: str, segments: int, size: int, steps: int, warmup: int) -> list[tuple]:
    """(what, PyTorch per s, ONNX Runtime per s) for the offline clip and the causal online step, fp32."""
    rows = []
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        model = build(arch, modality, segments, causal=False)
        path = os.path.join(folder, 'clip.onnx')
        export_offline(model, path, size)
        clip = torch.randn(clip_shape(model, 1, size))
        session = ort_session(path, torch.get_num_threads())
        torch_s, ort_s = timed_pair(lambda: model(clip), lambda: session.run(None, {'clip': clip.numpy()}),
                                    steps, warmup)
        rows.append(('offline clip (clips/s)', 1 / torch_s, 1 / ort_s))

        causal = build(arch, modality, segments, causal=True)
        path = os.path.join(folder, 'step.onnx')
        step = export_online(causal, path, size)
        segment = torch.randn(1, causal.new_length * 3, size, size)
        state = step.initial_state(segment)
        session = ort_session(path, torch.get_num_threads())
        inputs, _ = online_names(step.num_buffers)
        feed = dict(zip(inputs, [t.numpy() for t in (segment, *state)]))
        torch_s, ort_s = timed_pair(lambda: step(segment, *state), lambda: session.run(None, feed), steps, warmup)
        rows.append(('causal online step (steps/s)', 1 / torch_s, 1 / ort_s))
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
    return parser


@torch.no_grad()  # restored on return: tests call main() in-process
def main(argv: list[str] | None = None) -> list[dict]:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, value in (('--steps', args.steps), ('--segments', args.segments)):
        if value < 1:
            parser.error(f'{flag} {value}: must be 1 or more')
    print(f'{read_cpu_info().summary()}, {torch.get_num_threads()} threads; torch {torch.__version__}; '
          f'{args.modality}, {args.segments} segments at {args.size}x{args.size}, batch 1; '
          f'median of {args.steps} steps')
    header = (f"{'arch':<12}{'precision':<10}{'layout':<15}{'shift':<15}{'ms/step':>9}{'steps/s':>9}"
              f"{'x bidir':>9}{'25 fps':>8}")
    print(header)
    print('-' * len(header))
    rows = []
    for arch in args.arch:
        for amp in [a for a in (False, True) if args.amp in (None, a)]:
            timed = {}
            for causal in (False, True):
                r = time_steps(build(arch, args.modality, args.segments, causal), args.size, amp,
                               args.channels_last, args.steps, args.warmup)
                r.update(arch=arch, causal=causal, steps_per_s=1 / r['seconds'])
                timed[causal] = r
                rows.append(r)
                share = f"{r['seconds'] / timed[False]['seconds']:.2f}" if causal else '1.00'
                keeps_up = 'yes' if r['steps_per_s'] >= STEPS_FOR_25_FPS else 'no'
                print(f"{arch:<12}{r['precision']:<10}{r['layout']:<15}"
                      f"{'causal' if causal else 'bidirectional':<15}{r['seconds'] * 1e3:>9.1f}"
                      f"{r['steps_per_s']:>9.2f}{share:>9}{keeps_up:>8}", flush=True)
    if not args.no_onnx:
        print(f"\nONNX Runtime (CPU, {torch.get_num_threads()} threads) beside PyTorch, fp32, batch 1")
        print(f"{'arch':<12}{'graph':<30}{'PyTorch':>10}{'ONNX Runtime':>14}{'x PyTorch':>11}")
        for arch in args.arch:
            for what, torch_rate, ort_rate in onnx_rows(arch, args.modality, args.segments, args.size,
                                                        args.steps, args.warmup):
                rows.append({'arch': arch, 'onnx': what, 'torch': torch_rate, 'ort': ort_rate})
                print(f'{arch:<12}{what:<30}{torch_rate:>10.2f}{ort_rate:>14.2f}{ort_rate / torch_rate:>10.2f}x',
                      flush=True)
    return rows


if __name__ == '__main__':
    main()
