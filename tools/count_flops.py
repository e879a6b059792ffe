"""FLOPs and parameters of PAN_Lite, RGB, PA, Full and En, beside the paper's table.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one clip (batch 1, one view)
and reported in G multiply-adds (its count / 2), the unit of the paper. Models are built on the
meta device, so nothing is computed and even ResNet-101 counts in a second.

Two PA columns: "paper" convolves every frame, as the paper defines PA (the figure it
reports); "run here" is what this codebase executes, the conv of the frame differences (same
output, one conv fewer per group). The benchmarks take their FLOPs from here too (a training step's
forward and backward, an online step), to say how close to the machine's limit they run.

    python tools/count_flops.py [--arch resnet50 resnet101] [--sizes 224 256] [--num_segments 8]
"""
from __future__ import annotations

import argparse
import json
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ops.deploy.streaming import OnlinePAN
from ops.engine.cli import new_parser
from ops.models import PAN

PAPER = {  # G multiply-adds per view, 8 segments (paper / README tables)
    ('resnet50', 'Lite', 224): 35.7, ('resnet50', 'Full', 224): 67.7,
    ('resnet50', 'Lite', 256): 46.6, ('resnet50', 'Full', 256): 88.4,
    ('resnet101', 'Lite', 256): 85.6, ('resnet101', 'Full', 256): 166.1,
}


def count_gmacs(fn: Callable[[], object]) -> float:
    """G multiply-adds of the convolutions and matrix products that ``fn()`` runs (FlopCounterMode's count / 2)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() / 2e9


def meta_pan(modality: str, arch: str, num_segments: int, num_class: int = 174, causal: bool = False) -> PAN:
    """A PAN as the tools build it (shift, VAP), on the meta device: counted without computing."""
    with torch.device('meta'):
        return PAN(num_class, num_segments, modality, base_model=arch, pretrain='scratch', is_shift=True,
                   has_VAP=True, dropout=0.5, print_spec=False, causal_shift=causal)


def count_model(modality: str, arch: str, size: int, num_segments: int, num_class: int,
                paper_pa: bool, training: bool = False) -> tuple[float, int]:
    """(G multiply-adds, parameter count) of one PAN branch on a single clip: inference, or with
    ``training`` a training step's forward and backward (of the cross-entropy; the optimizer aside)."""
    model = meta_pan(modality, arch, num_segments, num_class).train(training)
    clip = torch.empty(1, num_segments * model.new_length * 3, size, size, device='meta')
    if modality != 'RGB':
        model.PA.conv_frames = paper_pa
    if training:
        target = torch.zeros(1, dtype=torch.long, device='meta')
        gmacs = count_gmacs(lambda: F.cross_entropy(model(clip), target).backward())
    else:
        with torch.no_grad():
            gmacs = count_gmacs(lambda: model(clip))
    return gmacs, sum(p.numel() for p in model.parameters())


def count_online_step(modality: str, arch: str, size: int, num_segments: int, causal: bool) -> float:
    """G multiply-adds of one ``OnlinePAN`` step once its window is full (batch 1): one segment
    through the backbone when ``causal``, else the window of ``num_segments``."""
    online = OnlinePAN(meta_pan(modality, arch, num_segments, causal=causal).eval())
    segment = torch.empty(online.new_length * 3, size, size, device='meta')
    for _ in range(num_segments - 1):
        online.step(segment)
    return count_gmacs(lambda: online.step(segment))


def flops_table(archs: list[str], sizes: list[int], num_segments: int, num_class: int) -> list[dict]:
    """Rows for Lite, RGB, PA, Full (RGB + PA) and En ((Lite + Full) x 2 views) per arch and size."""
    rows = []
    for arch in archs:
        for size in sizes:
            single = {}
            for modality in ('Lite', 'RGB', 'PA'):
                gflops, params = count_model(modality, arch, size, num_segments, num_class, paper_pa=True)
                run_gflops, _ = count_model(modality, arch, size, num_segments, num_class, paper_pa=False)
                single[modality] = (gflops, run_gflops, params)
            combos = {
                'Lite': (['Lite'], 1), 'RGB': (['RGB'], 1), 'PA': (['PA'], 1),
                'Full': (['RGB', 'PA'], 1), 'En': (['Lite', 'RGB', 'PA'], 2),
            }
            for name, (parts, views) in combos.items():
                rows.append({
                    'model': name, 'arch': arch, 'size': size, 'views': views,
                    'gflops_per_view': sum(single[p][0] for p in parts),
                    'gflops_run_here': sum(single[p][1] for p in parts),
                    'params_m': sum(single[p][2] for p in parts) / 1e6,
                    'paper': PAPER.get((arch, name, size)),
                })
    return rows


def format_table(rows: list[dict]) -> str:
    head = (f"{'model':<6}{'arch':<11}{'size':>5}{'views':>6}{'GFLOPs/view':>13}{'run here':>10}"
            f"{'params(M)':>11}{'paper':>8}{'diff':>8}")
    lines = [head, '-' * len(head)]
    for r in rows:
        if r['model'] == 'En':
            # the paper writes En as (Lite + Full) x views; show the parts it adds
            lite = next(x for x in rows if x['model'] == 'Lite' and x['arch'] == r['arch'] and x['size'] == r['size'])
            full = next(x for x in rows if x['model'] == 'Full' and x['arch'] == r['arch'] and x['size'] == r['size'])
            paper = f"({lite['gflops_per_view']:.1f}G+{full['gflops_per_view']:.1f}G)*{r['views']}"
            lines.append(f"{r['model']:<6}{r['arch']:<11}{r['size']:>5}{r['views']:>6}"
                         f"{r['gflops_per_view']:>13.2f}{r['gflops_run_here']:>10.2f}{r['params_m']:>11.2f}  {paper}")
            continue
        paper = f"{r['paper']:.1f}" if r['paper'] else '-'
        diff = f"{100 * (r['gflops_per_view'] / r['paper'] - 1):+.2f}%" if r['paper'] else ''
        lines.append(f"{r['model']:<6}{r['arch']:<11}{r['size']:>5}{r['views']:>6}{r['gflops_per_view']:>13.2f}"
                     f"{r['gflops_run_here']:>10.2f}{r['params_m']:>11.2f}{paper:>8}{diff:>8}")
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    parser.add_argument('--arch', nargs='+', default=['resnet50', 'resnet101'], help='backbones to count')
    parser.add_argument('--sizes', nargs='+', type=int, default=[224, 256], help='input sizes (square) to count')
    parser.add_argument('--num_segments', type=int, default=8, help='segments per clip')
    parser.add_argument('--num_class', type=int, default=174, help='classes of the head (174: Something-Something)')
    parser.add_argument('--json', default=None, help='also write the rows to this JSON file (None: no file)')
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    rows = flops_table(args.arch, args.sizes, args.num_segments, args.num_class)
    print(f'FLOPs in G multiply-adds for one clip of {args.num_segments} segments (one view), '
          f'{args.num_class} classes; "run here" counts PA as this code computes it.')
    print(format_table(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
