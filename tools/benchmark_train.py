"""Training and inference throughput of PAN's RGB, PA and Lite models, with peak memory.

    python tools/benchmark_train.py [--arch resnet50 mobilenetv2] [--size 224] [--batch 4] [--infer_batch 1]
                                    [--segments 8] [--iters 5] [--device cpu|cuda]
                                    [--amp | --no_amp] [--channels_last | --no_channels_last]
                                    [--compile] [--no_train] [--profile] [--release_dir DIR]

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

How close to the limit: each row also gives the model's GFLOP/s (FLOPs of tools/count_flops.py: a
training step's forward and backward, an inference pass) and its share of the machine's limit,
the matrix-product rate in the row's precision measured between the row's own timed calls on the
same threads (tools/_machine_limit.py), so that both see the same load. ``--compile`` adds, after
each row, the same configuration under ``torch.compile`` (ops/engine/compile.py: the training
step's model compiled for training, then the inference model with freezing), with the seconds its
first calls took (compilation included) and its speed-up over the eager row. ``--profile`` prints
after each row where its inference time goes, by part of PAN and by operator (torch.profiler,
tools/_op_profile.py; compiled rows then name their kernels, which costs them a little speed).

The release as the baseline: ``--release_dir DIR`` takes a checkout of zhang-can/PAN-PyTorch that
you provide (``git clone https://github.com/zhang-can/PAN-PyTorch``; nothing of it is part of this
project) and adds, before each model's rows, a row whose layout column reads ``release code``: the released model code training
the same clips in fp32 (what it runs), in a child process inside the checkout
(tools/_release_baseline.py, which corrects the released PA's distance at run time as README "The
PA correction" describes). Every row of that model then ends with its training speed-up over the
release (``x release``). A configuration that does not fit in GPU memory prints ``out of memory``
and the run goes on.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from functools import lru_cache

import torch
import torch.nn.functional as F

from ops.engine.cli import new_parser
from ops.engine.compile import add_compile_flags, compile_for_inference, compile_for_training
from ops.engine.optim import build_optimizer
from ops.engine.precision import add_precision_flags, precision_grid, resolve_precision
from ops.models import PAN
from tools._machine_limit import LimitProbe, limit_note, machine_name, timed_with_limit
from tools._op_profile import format_profile, kernel_names, profile_by_part
from tools._timing import call_seconds
from tools.count_flops import count_model


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


def bench_config(arch: str, modality: str, size: int, batch: int, infer_batch: int, segments: int,
                 channels_last: bool, amp: bool, iters: int, warmup: int, device: torch.device,
                 compiled: bool = False, profiled: bool = False, train: bool = True) -> dict:
    """Clips/s of a training step of ``batch`` clips (``train`` False: None) and of inference on
    ``infer_batch`` clips, the peak memory of training, the limit of the row's precision sampled
    between the timed calls, with ``compiled`` the seconds of the first training step and the first
    inference pass, and with ``profiled`` where the inference time goes
    (:func:`tools._op_profile.profile_by_part`); ``oom`` True, and no speeds, where the
    configuration does not fit in GPU memory."""
    try:
        with kernel_names() if profiled else nullcontext():
            return {'oom': False, **_bench_config(arch, modality, size, batch, infer_batch, segments, channels_last,
                                                  amp, iters, warmup, device, compiled, profiled, train)}
    except torch.cuda.OutOfMemoryError:
        precision = resolve_precision(amp, channels_last, device)
        return {'oom': True, 'arch': arch, 'modality': modality, 'layout': precision.layout,
                'precision': precision.name, 'compiled': compiled, 'train': None, 'infer': None}
    finally:
        if device.type == 'cuda':
            torch.cuda.empty_cache()  # what this configuration cached is the next one's


def _bench_config(arch, modality, size, batch, infer_batch, segments, channels_last, amp, iters, warmup, device,
                  compiled, profiled, train) -> dict:
    torch.manual_seed(0)
    if compiled:
        torch._dynamo.reset()   # a fresh start for each configuration sharing this process
    idle = 0.0 if device.type == 'cuda' else resident_mb()
    precision = resolve_precision(amp, channels_last, device)
    model = precision.apply(PAN(174, segments, modality, base_model=arch, pretrain='scratch', is_shift=True,
                                has_VAP=True, dropout=0.5, partial_bn=False, print_spec=False).to(device))
    optimizer = build_optimizer(model.get_optim_policies(), 0.01, 0.9, 5e-4)
    clips = torch.randn(max(batch, infer_batch), segments * model.new_length * 3, size, size, device=device)
    target = torch.randint(0, 174, (batch,), device=device)
    train_clips = clips[:batch]
    scaler = torch.amp.GradScaler(device.type) if precision.needs_scaler else None
    probe = LimitProbe(precision.name, device)

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

    first, rate, peak = {}, {}, None
    if train:
        reset_peak_memory(device)
        model.train()
        if compiled:
            compile_for_training(model)
            first['train'] = call_seconds(train_step, device)  # compilation included
        rate['train'] = batch / timed_with_limit(train_step, iters, warmup, device, probe)
        peak = peak_memory_mb(device) - idle
    model.eval()
    if compiled:
        compile_for_inference(model)
        first['infer'] = call_seconds(infer, device)
    rate['infer'] = infer_batch / timed_with_limit(infer, iters, warmup, device, probe)
    return {'arch': arch, 'modality': modality, 'layout': precision.layout, 'precision': precision.name,
            'compiled': compiled, 'train': rate.get('train'), 'infer': rate['infer'], 'peak_mb': peak,
            'limit': probe.gflops, 'first_s': first, 'profile': profile_by_part(infer, iters) if profiled else None}


def release_row(release_dir: str, arch: str, modality: str, size: int, batch: int, segments: int, iters: int,
                warmup: int, device: torch.device) -> dict:
    """The release's model code training ``batch`` clips in fp32, timed in a child process run inside
    the checkout (tools/_release_baseline.py), as a row of the table; its limit is the fp32
    matrix-product rate sampled here just before and after."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_release_baseline.py')
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    probe = LimitProbe('fp32', device)
    probe.sample()
    if device.type == 'cuda':
        torch.cuda.empty_cache()  # leave the child the memory this process cached
    cmd = [sys.executable, script, os.path.abspath(release_dir), '--modality', modality, '--arch', arch,
           '--batch', str(batch), '--segments', str(segments), '--size', str(size), '--iters', str(iters),
           '--warmup', str(warmup), '--device', str(device)]
    done = subprocess.run(cmd, cwd=release_dir, env=env, capture_output=True, text=True)
    probe.sample()
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith('{'):
        raise SystemExit(f'error: the release baseline failed in {release_dir} (status {done.returncode}):\n'
                         + '\n'.join((done.stdout + done.stderr).strip().splitlines()[-15:]))
    result = json.loads(lines[-1])
    return {'arch': arch, 'modality': modality, 'layout': 'default', 'precision': 'fp32', 'compiled': False,
            'release': True, 'oom': result.get('oom', False), 'train': result.get('train'), 'infer': None,
            'peak_mb': result.get('peak_mb'), 'limit': probe.gflops, 'first_s': {}, 'profile': None}


def check_release_dir(path: str) -> str | None:
    """Why ``path`` is not a checkout of the release (None where it is one)."""
    for name in ('ops/models.py', 'ops/PAN_modules.py', 'ops/temporal_shift.py'):
        if not os.path.isfile(os.path.join(path, name)):
            return f'{os.path.join(path, name)} is missing: --release_dir takes a checkout of zhang-can/PAN-PyTorch'
    return None


@lru_cache(maxsize=None)
def clip_gmacs(modality: str, arch: str, size: int, segments: int, training: bool) -> float:
    """G multiply-adds of one clip's training step (forward and backward) or inference pass."""
    return count_model(modality, arch, size, segments, 174, paper_pa=False, training=training)[0]


def row_gflops(row: dict, size: int, segments: int) -> dict:
    """The row's GFLOP/s in training and inference, from the counted FLOPs per clip, and their
    shares of its limit."""
    out = {}
    for key, training in (('train', True), ('infer', False)):
        if row.get(key) is not None:
            rate = 2 * clip_gmacs(row['modality'], row['arch'], size, segments, training) * row[key]
            out[key] = (rate, rate / row['limit'])
    return out


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
    add_compile_flags(parser, 'off: eager rows only; --compile adds a compiled row after each eager one')
    parser.add_argument('--no_train', action='store_true',
                        help='time inference alone (the training columns show -)')
    parser.add_argument('--profile', action='store_true',
                        help='after each row, where its inference time goes, by part of PAN and by operator')
    parser.add_argument('--release_dir', default=None,
                        help="a checkout of zhang-can/PAN-PyTorch: adds the released model code's fp32 training "
                             'as the baseline row of each model (None: no baseline rows)')
    return parser


def main(argv: list[str] | None = None) -> list[dict]:
    parser = build_parser()
    args = parser.parse_args(argv)
    infer_batch = args.infer_batch or args.batch
    for flag, value in (('--batch', args.batch), ('--infer_batch', infer_batch), ('--iters', args.iters)):
        if value < 1:
            parser.error(f'{flag} {value}: must be 1 or more')
    if args.release_dir and check_release_dir(args.release_dir):
        parser.error(check_release_dir(args.release_dir))
    if args.release_dir and args.no_train:
        parser.error('--release_dir times training: it does not go with --no_train')
    device = torch.device(args.device)
    print(f'{machine_name(device)}; torch {torch.__version__}; clips of {args.segments} segments at '
          f'{args.size}x{args.size}, {args.batch} per training step, {infer_batch} per inference pass; median of '
          f'{args.iters} steps')
    print(f"the tools' default here {resolve_precision(None, None, device).describe()[3:]}")
    print(limit_note(device) + '; compile s: the first training step and inference pass, compilation included')
    rows = []
    header = (f"{'arch':<12}{'model':<6}{'precision':<10}{'layout':<15}{'compile':<8}{'train clips/s':>14}"
              f"{'x fp32':>8}{'GFLOP/s':>9}{'%limit':>7}{'infer clips/s':>15}{'x fp32':>8}{'GFLOP/s':>9}"
              f"{'%limit':>7}{'limit GFLOP/s':>14}{'peak MB':>9}{'x eager':>13}{'compile s':>11}"
              + (f"{'x release':>11}" if args.release_dir else ''))
    print(header)
    print('-' * len(header))
    variants = [False, True] if args.compile else [False]
    for arch in args.arch:
        for modality in args.modalities:
            base = None  # the fp32 default-layout eager row of this model, when it is run
            release = None
            if args.release_dir:
                release = release_row(args.release_dir, arch, modality, args.size, args.batch, args.segments,
                                      args.iters, args.warmup, device)
                release['gflops'] = row_gflops(release, args.size, args.segments)
                rows.append(release)
                print(format_train_row(release, None, release, release), flush=True)
            for amp, channels_last in precision_grid(args.amp, args.channels_last):
                eager = None
                for compiled in variants:
                    config = (arch, modality, args.size, args.batch, infer_batch, args.segments, channels_last, amp,
                              args.iters, args.warmup, device, compiled, args.profile, not args.no_train)
                    r = run_config(config, device)
                    r['gflops'] = row_gflops(r, args.size, args.segments)
                    rows.append(r)
                    if r['oom']:
                        print(format_train_row(r, None, r, None), flush=True)
                        continue
                    base = base or (r if not amp and not channels_last and not compiled else None)
                    eager = eager or r
                    print(format_train_row(r, base, eager, release), flush=True)
                    if r['profile']:
                        print(format_profile(r['profile']), flush=True)
    return rows


def run_config(config: tuple, device: torch.device) -> dict:
    """One configuration's row (:func:`bench_config`)."""
    if device.type == 'cpu':
        # a fresh process per configuration: the CPU allocator keeps what earlier
        # configurations freed, which would hide this one's peak
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as pool:
            return pool.submit(bench_config, *config).result()
    return bench_config(*config)


def format_train_row(r: dict, base: dict | None, eager: dict, release: dict | None = None) -> str:
    """One row of the table: speeds against the fp32 default-layout eager row (``base``), for a
    compiled row against its eager row, and in training against the release's row (``release``,
    when --release_dir gave one; its own row reads ``release code`` in the layout column)."""
    label = f"{r['arch']:<12}{r['modality']:<6}"
    if r.get('oom'):
        compiled = 'on' if r['compiled'] else 'off'
        return f"{label}{r['precision']:<10}{r['layout']:<15}{compiled:<8}  out of memory"
    keys = [k for k in ('train', 'infer') if r[k] is not None]
    rate = {k: f'{r[k]:.2f}' if k in keys else '-' for k in ('train', 'infer')}
    ratio = {k: f"{r[k] / base[k]:.2f}x" if base and k in keys else '-' for k in ('train', 'infer')}
    gf = {k: f'{r["gflops"][k][0]:>9.1f}{r["gflops"][k][1]:>7.0%}' if k in keys else f"{'-':>9}{'-':>7}"
          for k in ('train', 'infer')}
    versus = '/'.join(f'{r[k] / eager[k]:.2f}' for k in keys) + 'x' if r['compiled'] else '-'
    first = '/'.join(f"{r['first_s'][k]:.0f}" for k in keys) if r['compiled'] else '-'
    peak = f"{r['peak_mb']:.0f}" if r['peak_mb'] is not None else '-'
    versus_release = ''
    if release is not None:
        usable = not release.get('oom') and r['train'] is not None and not r.get('release')
        versus_release = f"{r['train'] / release['train']:>10.2f}x" if usable else f"{'-':>11}"
    layout = 'release code' if r.get('release') else r['layout']
    return (f"{label}{r['precision']:<10}{layout:<15}"
            f"{'on' if r['compiled'] else 'off':<8}{rate['train']:>14}{ratio['train']:>8}{gf['train']}"
            f"{rate['infer']:>15}{ratio['infer']:>8}{gf['infer']}{r['limit']:>14.0f}{peak:>9}"
            f"{versus:>13}{first:>11}{versus_release}")


if __name__ == '__main__':
    main()
