"""Training throughput of the released PAN model code, run inside a checkout of the release.

    python tools/_release_baseline.py RELEASE_DIR --modality Lite --arch resnet50 --batch 32
                                      [--segments 8] [--size 224] [--iters 5] [--warmup 2] [--device cuda]

tools/benchmark_train.py ``--release_dir`` starts this file in a child process whose working
folder is the checkout and which loads the checkout's ``ops`` package under its own name, so that
``ops`` is the release's package, not this project's: that is why this file imports nothing of
the project but tools/_timing.py, which imports torch alone. It
builds the release's ``ops.models.PAN`` as the release's ``main.py`` does for a training run
(ImageNet weights off, the temporal shift and VAP on, dropout 0.5, no partial BN), trains it with
SGD over its ``get_optim_policies()`` groups in fp32 and the default layout (what the release
runs), and prints one JSON line: clips/s (median of the timed steps), peak memory in MB (the CUDA
allocator's peak; on the CPU the process's peak resident memory above what it held before the
model was built) or ``{"oom": true}``.

Two corrections make the released code run on current PyTorch, both at run time, nothing written
into the checkout: torchvision's constructors take ``pretrained`` as a keyword only now (the
release passes it by position), and ``nn.PairwiseDistance`` in the release's PA now reduces over
the last dimension (pixels) instead of the 8 channels, which is the fix of README "The PA
correction": the distance is taken over dim 1, with PairwiseDistance's eps of 1e-6, as before.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import resource
import statistics
import sys
from typing import Callable

import torch
import torchvision
from torch import nn

from tools._timing import call_seconds

DATA_LENGTH = {'RGB': 1, 'PA': 4, 'Lite': 4}  # frames per segment, as the release's main.py sets them


class ChannelPairwiseDistance(nn.Module):
    """The PairwiseDistance of PyTorch before 1.10 for (N, C, P) inputs: one L2 distance per pixel
    over the C channels, (N, C, P) x 2 -> (N, P)."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.p, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return torch.norm(x1 - x2 + self.eps, p=self.p, dim=1, keepdim=self.keepdim)


def positional_pretrained(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """torchvision's model constructor accepting the release's ``resnet50(False)``."""
    @functools.wraps(constructor)
    def build(pretrained=False, *args, **kwargs):
        if pretrained:
            raise SystemExit('the baseline runs without ImageNet weights (pretrain scratch)')
        return constructor(*args, **kwargs)
    return build


def load_release(release_dir: str) -> type:
    """The release's PAN class, with its two run-time corrections."""
    # the checkout's ops package, registered under its own name; its modules import each other as
    # ``ops.<module>``, which then resolve inside the checkout
    package = os.path.join(os.path.abspath(release_dir), 'ops')
    spec = importlib.util.spec_from_file_location('ops', os.path.join(package, '__init__.py'),
                                                  submodule_search_locations=[package])
    sys.modules['ops'] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules['ops'])
    for name in ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'mobilenet_v2'):
        if hasattr(torchvision.models, name):
            setattr(torchvision.models, name, positional_pretrained(getattr(torchvision.models, name)))
    import ops.PAN_modules as release_modules
    from ops.models import PAN
    if not os.path.abspath(release_modules.__file__).startswith(os.path.abspath(release_dir)):
        raise SystemExit(f'imported {release_modules.__file__}, not the release in {release_dir}')
    release_modules.nn = _CorrectedNN()
    return PAN


class _CorrectedNN:
    """``torch.nn`` as the release's PAN_modules sees it, with the corrected PairwiseDistance."""

    def __getattr__(self, name: str) -> object:
        return ChannelPairwiseDistance if name == 'PairwiseDistance' else getattr(nn, name)


def peak_mb(device: torch.device) -> float:
    """Peak memory so far: the CUDA allocator's, or on the CPU the process's resident set."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    idle = 0.0 if device.type == 'cuda' else peak_mb(device)
    PAN = load_release(args.release_dir)
    data_length = DATA_LENGTH[args.modality]
    model = PAN(174, args.segments, args.modality, base_model=args.arch, dropout=0.5, partial_bn=False,
                pretrain='scratch', is_shift=True, shift_div=8, shift_place='blockres', fc_lr5=False,
                data_length=data_length, has_VAP=True)
    policies = [g for g in model.get_optim_policies() if g['params']]
    model.to(device)
    model.train()  # the release's train() returns None, so not chained
    optimizer = torch.optim.SGD(policies, 0.01, momentum=0.9, weight_decay=5e-4)
    clips = torch.randn(args.batch, args.segments * data_length * 3, args.size, args.size, device=device)
    target = torch.randint(0, 174, (args.batch,), device=device)

    def step():
        loss = nn.functional.cross_entropy(model(clips), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times = [call_seconds(step, device) for _ in range(args.warmup + args.iters)][args.warmup:]
    return {'train': args.batch / statistics.median(times), 'peak_mb': peak_mb(device) - idle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('release_dir', help='a checkout of zhang-can/PAN-PyTorch')
    parser.add_argument('--modality', choices=sorted(DATA_LENGTH), default='Lite')
    parser.add_argument('--arch', default='resnet50')
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--segments', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    try:
        result = bench(args)
    except torch.cuda.OutOfMemoryError:
        result = {'oom': True}
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
