"""How fast is PA? Frames per second of this project's PA module, of the release's loop
formulation, and of OpenCV's Farneback and TV-L1 optical flow, on the same 224x224 frames.

    python tools/benchmark_pa.py [--clips 4] [--segments 8] [--size 224] [--repeats 5]

The loop formulation is the released PA's algorithm (convolve every frame, then one
PairwiseDistance-style reduction per adjacent frame pair in a Python loop, concatenated), with
the distance taken over the 8 channels as the paper defines it; it is written out below as the
baseline. TV-L1 needs ``pip install -r requirements-flow.txt`` (opencv-contrib) and is skipped
with a note otherwise. Runs on the CPU, and also on the GPU when CUDA is present.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ops.cli import new_parser
from ops.PAN_modules import PA
from ops.modalities import DEFAULT_DATA_LENGTH


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


def time_per_call(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median seconds per call after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


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


def bench_pa(frames: torch.Tensor, n_length: int, repeats: int, device: torch.device) -> dict:
    """fps of this PA and of the loop formulation with the same weights and input, and their max diff."""
    module = PA(n_length).to(device).eval()
    with torch.no_grad():
        module.shallow_conv.weight.normal_(0, 0.05)
        module.shallow_conv.bias.normal_(0, 0.1)
    x = frames.to(device)
    with torch.no_grad():
        ours = module(x)
        ref = loop_pa(x, module.shallow_conv, n_length)
        t_ours = time_per_call(lambda: module(x), repeats, device)
        t_loop = time_per_call(lambda: loop_pa(x, module.shallow_conv, n_length), repeats, device)
    n = x.size(0)
    return {'pa_fps': n / t_ours, 'loop_fps': n / t_loop, 'max_diff': (ours - ref).abs().max().item()}


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    parser.add_argument('--clips', type=int, default=4, help='clips per batch')
    parser.add_argument('--segments', type=int, default=8, help='segments per clip (each one PA group)')
    parser.add_argument('--n_length', type=int, default=DEFAULT_DATA_LENGTH, help='frames per PA group')
    parser.add_argument('--size', type=int, default=224, help='frame height and width in pixels')
    parser.add_argument('--repeats', type=int, default=5, help='timed calls per figure (the median is reported)')
    parser.add_argument('--flow_pairs', type=int, default=8, help='frame pairs timed for each optical flow')
    parser.add_argument('--no_flow', action='store_true', help='skip the optical-flow baselines')
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    frames = random_clips(args.clips, args.segments, args.n_length, args.size)
    print(f'{frames.size(0)} frames of {args.size}x{args.size} ({args.clips} clips x {args.segments} segments x '
          f'{args.n_length} frames); torch {torch.__version__}, {torch.get_num_threads()} CPU threads')
    devices = [torch.device('cpu')] + ([torch.device('cuda')] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        name = torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'
        r = bench_pa(frames, args.n_length, args.repeats, device)
        rows.append((f'PA, this project ({name})', r['pa_fps']))
        rows.append((f'PA, release loop formulation ({name})', r['loop_fps']))
        print(f'[{name}] max |PA - loop formulation| = {r["max_diff"]:.2e}; '
              f'speed-up over the loop formulation: {r["pa_fps"] / r["loop_fps"]:.2f}x')
    flows = {}
    if not args.no_flow:
        grey = to_gray_uint8(frames)
        for method, label in (('farneback', 'Farneback flow (OpenCV, CPU)'), ('tvl1', 'TV-L1 flow (OpenCV, CPU)')):
            fps = bench_flow(grey, args.flow_pairs, method)
            if fps is None:
                print(f'{label}: skipped (needs {"opencv-python-headless" if method == "farneback" else "opencv-contrib-python-headless"};'
                      ' pip install -r requirements-flow.txt)')
                continue
            flows[method] = fps
            rows.append((label, fps))
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{'method':<{width}}{'frames/s':>12}")
    for label, fps in rows:
        print(f'{label:<{width}}{fps:>12.1f}')
    cpu_pa = rows[0][1]
    print(f'\nPA (CPU) vs loop formulation (CPU): {cpu_pa / rows[1][1]:.2f}x')
    for method, fps in flows.items():
        print(f'PA (CPU) vs {method} (CPU): {cpu_pa / fps:.0f}x')
    if len(devices) > 1:
        gpu_pa = rows[2][1]
        for method, fps in flows.items():
            print(f'PA (GPU) vs {method} (CPU): {gpu_pa / fps:.0f}x')


if __name__ == '__main__':
    main()
