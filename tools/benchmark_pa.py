"""How fast is PA? Frames per second of this project's PA module, of the release's loop
formulation, and of OpenCV's Farneback and TV-L1 optical flow, on the same 224x224 frames.

    python tools/benchmark_pa.py [--clips 4] [--segments 8] [--size 224] [--repeats 5] [--device cpu cuda]
                                 [--amp | --no_amp] [--channels_last | --no_channels_last] [--raft]

The loop formulation is the released PA's algorithm (convolve every frame, then one
PairwiseDistance-style reduction per adjacent frame pair in a Python loop, concatenated), with
the distance taken over the 8 channels as the paper defines it; it is written out below as the
baseline. TV-L1 needs ``pip install -r requirements-flow.txt`` (opencv-contrib) and is skipped
with a note otherwise. This project's PA runs in fp32 and under autocast (bf16 on the CPU), each
in the default layout and channels-last (``--amp`` / ``--no_amp``, ``--channels_last`` /
``--no_channels_last`` keep one side), with each row's largest difference from the loop
formulation in fp32, relative to the largest PA value. Runs on the CPU, and also on the GPU when
CUDA is present (``--device`` picks); the header names the processor and whether it has AMX /
AVX-512 BF16.

``--raft`` adds torchvision's RAFT (``raft_small``, ``raft_large``; random weights, since only
the speed is compared; 12 flow updates, its default) on each device, in fp32 and under the rows'
autocast, on ``--flow_pairs`` pairs of the same frames in one batch: the learned optical flow that
two-stream models use today, where the paper compared with TV-L1. RAFT needs frames of at least
128 pixels. Flow rows count frame pairs (one flow field each), PA rows input frames.

How close to the limit: each PA row also gives its GFLOP/s (the convolution's FLOPs, counted as
tools/count_flops.py counts them; the norm adds none) and its share of the machine's limit, the
matrix-product rate in the row's precision sampled between the row's timed calls on the same
threads (tools/_machine_limit.py). PA is a thin convolution and a norm over many pixels: it moves
memory more than it multiplies, so its share is small by nature; the flows have no such count.
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from ops.engine.cli import new_parser
from ops.engine.precision import add_precision_flags, precision_grid, read_cpu_info, resolve_precision
from ops.modalities import DEFAULT_DATA_LENGTH
from ops.PAN_modules import PA
from tools._machine_limit import LimitProbe, limit_note, timed_with_limit
from tools.count_flops import count_gmacs


def loop_pa(frames: torch.Tensor, conv: torch.nn.Conv2d, n_length: int) -> torch.Tensor:
    """The release's formulation. Shapes: ``(N*L, 3, H, W)`` -> ``(N, L-1, H, W)``."""
    h, w = frames.shape[-2:]
    feats = conv(frames).view(-1, n_length, conv.out_channels, h * w)
    maps = None
    for i in range(n_length - 1):
        # (N, HW, 8) pairs: the distance runs over the channel (last) dim
        d = F.pairwise_distance(feats[:, i].transpose(1, 2), feats[:, i + 1].transpose(1, 2)).unsqueeze(1)
        maps = d if maps is None else torch.cat((maps, d), 1)
    return maps.view(-1, n_length - 1, h, w)


def random_clips(clips: int, segments: int, n_length: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random frames with a moving square, normalised like the model's input: (N*T*L, 3, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    count = clips * segments * n_length
    base = F.interpolate(torch.rand(count // n_length, 3, size // 8, size // 8, generator=gen), size=(size, size),
                         mode='bilinear', align_corners=False)
    frames = base.repeat_interleave(n_length, dim=0).clone()
    side = size // 4
    for i in range(count):
        off = (i % n_length) * 4 + size // 3
        frames[i, :, off:off + side, off:off + side] = 0.9
    return (frames - 0.45) / 0.225


def to_gray_uint8(frames: torch.Tensor) -> list[np.ndarray]:
    """Frames as OpenCV wants them for flow: HxW uint8 grey images."""
    grey = (frames * 0.225 + 0.45).clamp(0, 1).mean(dim=1).mul(255).round().byte()
    return [g.numpy() for g in grey]


def bench_flow(grey: list[np.ndarray], pairs: int, method: str) -> float | None:
    """Frames per second of OpenCV optical flow (one flow field per frame pair); None if unavailable."""
    try:
        import cv2
    except ImportError:
        return None
    if method == 'farneback':
        def flow(a, b):
            return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    else:
        make = getattr(getattr(cv2, 'optflow', None), 'DualTVL1OpticalFlow_create', None)
        if make is None:
            return None
        tvl1 = make()
        def flow(a, b):
            return tvl1.calc(a, b, None)
    pairs = min(pairs, len(grey) - 1)
    flow(grey[0], grey[1])
    start = time.perf_counter()
    for i in range(pairs):
        flow(grey[i], grey[i + 1])
    return pairs / (time.perf_counter() - start)


def bench_raft(frames: torch.Tensor, pairs: int, repeats: int, device: torch.device,
               settings: list[tuple[bool, bool]]) -> list[dict]:
    """Frame pairs per second of torchvision's RAFT small and large (random weights) on ``pairs``
    adjacent frame pairs of ``frames`` (N, 3, H, W), batched, in each precision of ``settings``."""
    from torchvision.models.optical_flow import raft_large, raft_small
    pairs = min(pairs, frames.size(0) - 1)
    # RAFT takes images in [-1, 1]; the frames are normalised like the model's input
    images = ((frames * 0.225 + 0.45).clamp(0, 1) * 2 - 1).to(device)
    first, second = images[:pairs], images[1:pairs + 1]
    precisions = {resolve_precision(amp, False, device).name: amp for amp, _ in settings}
    rows = []
    for name, build in (('small', raft_small), ('large', raft_large)):
        torch.manual_seed(0)
        model = build(weights=None).to(device).eval()
        for precision_name, amp in precisions.items():
            precision = resolve_precision(amp, False, device)
            probe = LimitProbe(precision.name, device)

            def call(model=model, precision=precision):
                with torch.no_grad(), precision.autocast():
                    return model(first, second)
            seconds = timed_with_limit(call, repeats, 1, device, probe)
            rows.append({'model': name, 'precision': precision.name, 'fps': pairs / seconds})
    return rows


def bench_pa(frames: torch.Tensor, n_length: int, repeats: int, device: torch.device,
             settings: list[tuple[bool, bool]]) -> dict:
    """fps of the loop formulation (fp32) and of this PA in each (autocast, channels-last) of
    ``settings``, with the same weights and input; each row's max difference from the loop's
    output relative to its largest value, its GFLOP/s and the limit of its precision."""
    module = PA(n_length).to(device).eval()
    with torch.no_grad():
        module.shallow_conv.weight.normal_(0, 0.05)
        module.shallow_conv.bias.normal_(0, 0.1)
    x = frames.to(device)
    n = x.size(0)
    rows = []
    with torch.no_grad():
        ref = loop_pa(x, module.shallow_conv, n_length)
        gmacs = count_gmacs(lambda: module(x))
        probe = LimitProbe('fp32', device)
        t_loop = timed_with_limit(lambda: loop_pa(x, module.shallow_conv, n_length), repeats, 1, device, probe)
        loop = {'fps': n / t_loop, 'gflops': 2 * count_gmacs(lambda: loop_pa(x, module.shallow_conv, n_length)) / t_loop,
                'limit': probe.gflops}
        for amp, channels_last in settings:
            precision = resolve_precision(amp, channels_last, device)
            pa = precision.apply(copy.deepcopy(module))
            xs = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            probe = LimitProbe(precision.name, device)

            def call(pa=pa, xs=xs, precision=precision):
                with precision.autocast():
                    return pa(xs)
            diff = (call().float() - ref).abs().max().item()
            seconds = timed_with_limit(call, repeats, 1, device, probe)
            rows.append({'precision': precision.name, 'layout': precision.layout,
                         'fps': n / seconds, 'max_diff': diff, 'rel_diff': diff / ref.abs().max().item(),
                         'gflops': 2 * gmacs / seconds, 'limit': probe.gflops})
    return {'loop_fps': loop['fps'], 'loop': loop, 'rows': rows}


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    parser.add_argument('--clips', type=int, default=4, help='clips per batch')
    parser.add_argument('--segments', type=int, default=8, help='segments per clip (each one PA group)')
    parser.add_argument('--n_length', type=int, default=DEFAULT_DATA_LENGTH, help='frames per PA group')
    parser.add_argument('--size', type=int, default=224, help='frame height and width in pixels')
    parser.add_argument('--repeats', type=int, default=5, help='timed calls per figure (the median is reported)')
    parser.add_argument('--flow_pairs', type=int, default=8, help='frame pairs timed for each optical flow')
    parser.add_argument('--no_flow', action='store_true', help='skip the optical-flow baselines')
    parser.add_argument('--raft', action='store_true',
                        help="add torchvision's RAFT small and large (random weights: speed only) on each device")
    parser.add_argument('--device', nargs='+', choices=['cpu', 'cuda'],
                        default=['cpu'] + (['cuda'] if torch.cuda.is_available() else []),
                        help='devices to time PA (and RAFT) on; the default is cpu, and cuda where CUDA is present')
    add_precision_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if 'cuda' in args.device and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available here')
    if args.raft and args.size < 128:
        parser.error(f'--raft: RAFT needs frames of at least 128 pixels, --size is {args.size}')

    frames = random_clips(args.clips, args.segments, args.n_length, args.size)
    print(f'{frames.size(0)} frames of {args.size}x{args.size} ({args.clips} clips x {args.segments} segments x '
          f'{args.n_length} frames); torch {torch.__version__}; {read_cpu_info().summary()}, '
          f'{torch.get_num_threads()} CPU threads')
    print(limit_note(torch.device('cpu')))
    devices = [torch.device(d) for d in dict.fromkeys(args.device)]
    settings = precision_grid(args.amp, args.channels_last)
    rows = []  # (method, precision, layout, frames/s, max diff from the loop relative to its max, GFLOP/s, limit)
    pa_fps, loop_fps = {}, {}  # device name -> frames/s of this PA's first row, of the loop formulation
    raft = {}  # device name -> {'RAFT small (<device>, fp32)': frame pairs/s, ...}
    flows = {}  # OpenCV flow method (CPU) -> frame pairs/s
    for device in devices:
        name = torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'
        r = bench_pa(frames, args.n_length, args.repeats, device, settings)
        for row in r['rows']:
            rows.append((f'PA, this project ({name})', row['precision'], row['layout'], row['fps'],
                         f"{row['rel_diff']:.1e}", row['gflops'], row['limit']))
            print(f"[{name}] {row['precision']} {row['layout']}: max |PA - loop formulation| = "
                  f"{row['max_diff']:.2e} ({row['rel_diff']:.1e} of the largest PA value)")
        rows.append((f'PA, release loop formulation ({name})', 'fp32', 'default', r['loop_fps'], '',
                     r['loop']['gflops'], r['loop']['limit']))
        pa_fps[name], loop_fps[name] = r['rows'][0]['fps'], r['loop_fps']
        print(f'[{name}] speed-up of PA ({r["rows"][0]["precision"]}, {r["rows"][0]["layout"]}) over the loop '
              f'formulation: {pa_fps[name] / r["loop_fps"]:.2f}x')
        if args.raft:
            raft[name] = {}
            for row in bench_raft(frames, args.flow_pairs, args.repeats, device, settings):
                label = f"RAFT {row['model']} flow, random weights ({name})"
                rows.append((label, row['precision'], '-', row['fps'], '', None, None))
                raft[name][f"RAFT {row['model']} ({name}, {row['precision']})"] = row['fps']
    if not args.no_flow:
        grey = to_gray_uint8(frames)
        for method, label in (('farneback', 'Farneback flow (OpenCV, CPU)'), ('tvl1', 'TV-L1 flow (OpenCV, CPU)')):
            fps = bench_flow(grey, args.flow_pairs, method)
            if fps is None:
                print(f'{label}: skipped (needs {"opencv-python-headless" if method == "farneback" else "opencv-contrib-python-headless"};'
                      ' pip install -r requirements-flow.txt)')
                continue
            flows[method] = fps
            rows.append((label, 'fp32', '-', fps, '', None, None))
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{'method':<{width}}{'precision':<11}{'layout':<15}{'frames/s':>10}{'rel. diff':>11}{'GFLOP/s':>9}"
          f"{'%limit':>8}{'limit GFLOP/s':>14}")
    for label, prec, layout, fps, diff, gflops, limit in rows:
        rate = f'{gflops:>9.1f}{gflops / limit:>8.1%}{limit:>14.0f}' if gflops is not None else f"{'-':>9}{'-':>8}{'-':>14}"
        print(f'{label:<{width}}{prec:<11}{layout:<15}{fps:>10.1f}{diff:>11}{rate}')
    print()
    for name, fps_pa in pa_fps.items():
        print(f'PA ({name}) vs loop formulation ({name}): {fps_pa / loop_fps[name]:.2f}x')
        for method, fps in raft.get(name, {}).items():  # RAFT against PA on the same device
            print(f'PA ({name}) vs {method}: {fps_pa / fps:.0f}x')
        for method, fps in flows.items():
            print(f'PA ({name}) vs {method} (CPU): {fps_pa / fps:.0f}x')


if __name__ == '__main__':
    main()
