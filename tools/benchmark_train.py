"""Training and inference throughput of PAN's RGB, PA and Lite models, with peak memory.

    python tools/benchmark_train.py [--arch resnet50 mobilenetv2] [--size 224] [--batch 4] [--infer_batch 1]
                                    [--segments 8] [--iters 5] [--device cpu|cuda]
                                    [--amp | --no_amp] [--channels_last | --no_channels_last]

Training is one SGD step over the release's optimizer groups (forward, cross-entropy, backward,
step); inference is a forward pass under ``torch.no_grad`` in eval mode. Inputs are random
tensors of the loader's shape, so the figures are the model's alone (see
tools/benchmark_data.py for the data path). Each configuration runs in fp32 and with autocast
(``--amp`` of main.py: bf16 on the CPU, bf16 or fp16 on a GPU), each in the default layout and in
channels-last; ``--amp`` / ``--no_amp`` keep only the autocast or the fp32 rows,
``--channels_last`` / ``--no_channels_last`` only one layout. Each row gives its speed-up over the
fp32 default-layout row of the same model, and the header the processor and whether it has AMX /
AVX-512 BF16 (ops/engine/precision.py). Peak memory of training is the GPU allocator's peak on CUDA, and on
the CPU the process's peak resident memory above what it held before the model was built (weights,
activations, gradients, optimizer).
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F

from ops.engine.cli import new_parser
from ops.engine.optim import build_optimizer
from ops.engine.precision import add_precision_flags, precision_grid, read_cpu_info, resolve_precision
from ops.models import PAN


def reset_peak_memory(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets the resident-set high-water mark (VmHWM)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def _proc_status_mb(field: str) -> float | None:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def resident_mb() -> float:
    """Current resident memory of this process (0 where /proc is missing)."""
    return _proc_status_mb('VmRSS') or 0.0


def peak_memory_mb(device: torch.device) -> float:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    peak = _proc_status_mb('VmHWM')
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, iters: int, warmup: int, device: torch.device) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def bench_config(arch: str, modality: str, size: int, batch: int, infer_batch: int, segments: int,
                 channels_last: bool, amp: bool, iters: int, warmup: int, device: torch.device) -> dict:
    """Clips/s of a training step of ``batch`` clips and of inference on ``infer_batch`` clips, and
    the peak memory of training."""
    torch.manual_seed(0)
    idle = 0.0 if device.type == 'cuda' else resident_mb()
    precision = resolve_precision(amp, channels_last, device)
    model = precision.apply(PAN(174, segments, modality, base_model=arch, pretrain='scratch', is_shift=True,
                                has_VAP=True, dropout=0.5, partial_bn=False, print_spec=False).to(device))
    optimizer = build_optimizer(model.get_optim_policies(), 0.01, 0.9, 5e-4)
    clips = torch.randn(max(batch, infer_batch), segments * model.new_length * 3, size, size, device=device)
    target = torch.randint(0, 174, (batch,), device=device)
    train_clips = clips[:batch]
    scaler = torch.amp.GradScaler(device.type) if precision.needs_scaler else None

    def train_step():
        with precision.autocast():
            loss = F.cross_entropy(model(train_clips).float(), target)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    def infer():
        with torch.no_grad(), precision.autocast():
            model(clips[:infer_batch])

    reset_peak_memory(device)
    model.train()
    t_train = timed(train_step, iters, warmup, device)
    peak = peak_memory_mb(device) - idle
    model.eval()
    t_infer = timed(infer, iters, warmup, device)
    return {'arch': arch, 'modality': modality, 'layout': precision.layout, 'precision': precision.name,
            'train': batch / t_train, 'infer': infer_batch / t_infer, 'peak_mb': peak}


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    parser.add_argument('--arch', nargs='+', default=['resnet50', 'mobilenetv2'], help='backbones to time')
    parser.add_argument('--modalities', nargs='+', default=['RGB', 'PA', 'Lite'], choices=['RGB', 'PA', 'Lite'],
                        help='PAN models to time')
    parser.add_argument('--size', type=int, default=224, help='input height and width in pixels')
    parser.add_argument('--batch', type=int, default=4, help='clips per training step')
    parser.add_argument('--infer_batch', type=int, default=None,
                        help='clips per inference pass (None: --batch); batch 1 is a single video\'s latency')
    parser.add_argument('--segments', type=int, default=8, help='segments per clip')
    parser.add_argument('--iters', type=int, default=5, help='timed steps (the median is reported)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps before the timed ones')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='device to run on; the default is cuda where CUDA is present, else cpu')
    add_precision_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> list[dict]:
    parser = build_parser()
    args = parser.parse_args(argv)
    infer_batch = args.infer_batch or args.batch
    for flag, value in (('--batch', args.batch), ('--infer_batch', infer_batch), ('--iters', args.iters)):
        if value < 1:
            parser.error(f'{flag} {value}: must be 1 or more')
    device = torch.device(args.device)
    name = (torch.cuda.get_device_name(device) if device.type == 'cuda'
            else f'{read_cpu_info().summary()}, {torch.get_num_threads()} threads')
    print(f'{name}; torch {torch.__version__}; clips of {args.segments} segments at {args.size}x{args.size}, '
          f'{args.batch} per training step, {infer_batch} per inference pass; median of {args.iters} steps')
    print(f"the tools' default here {resolve_precision(None, None, device).describe()[3:]}")
    rows = []
    header = (f"{'arch':<12}{'model':<6}{'precision':<10}{'layout':<15}{'train clips/s':>14}{'x fp32':>8}"
              f"{'infer clips/s':>15}{'x fp32':>8}{'peak MB':>10}")
    print(header)
    print('-' * len(header))
    for arch in args.arch:
        for modality in args.modalities:
            base = None  # the fp32 default-layout row of this model, when it is run
            for amp, channels_last in precision_grid(args.amp, args.channels_last):
                config = (arch, modality, args.size, args.batch, infer_batch, args.segments, channels_last, amp,
                          args.iters, args.warmup, device)
                if device.type == 'cpu':
                    # a fresh process per configuration: the CPU allocator keeps what earlier
                    # configurations freed, which would hide this one's peak
                    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as pool:
                        r = pool.submit(bench_config, *config).result()
                else:
                    r = bench_config(*config)
                rows.append(r)
                base = base or (r if not amp and not channels_last else None)
                ratio = {k: f"{r[k] / base[k]:.2f}x" if base else '-' for k in ('train', 'infer')}
                print(f"{r['arch']:<12}{r['modality']:<6}{r['precision']:<10}{r['layout']:<15}"
                      f"{r['train']:>14.2f}{ratio['train']:>8}{r['infer']:>15.2f}{ratio['infer']:>8}"
                      f"{r['peak_mb']:>10.0f}", flush=True)
    return rows


if __name__ == '__main__':
    main()
