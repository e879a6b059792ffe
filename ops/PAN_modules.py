"""The two PAN modules: PA (Persistence of Appearance, the motion cue) and VAP (Various-timescale
Aggregated Pooling, the head).

Both are plain ``nn.Module``s with the released parameter names, so they load the released
checkpoints and can be dropped into other networks::

    from ops.PAN_modules import PA, VAP
    PA(n_length=4)(torch.randn(5 * 8 * 4, 3, 224, 224)).shape   # (40, 3, 224, 224)
    VAP(8, 2048, 174, 0.5)(torch.randn(5 * 8, 2048)).shape       # (5, 174)
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

# The release's PairwiseDistance added this to every channel difference before the norm.
PA_EPS = 1e-6


class PA(nn.Module):
    """Persistence of Appearance: per-pixel L2 distance between the low-level features of
    adjacent frames.

    Every frame goes through one shallow 8-channel 7x7 conv; for each group of ``n_length``
    consecutive frames the output holds the ``n_length - 1`` distance maps

        PA[n, i, y, x] = || F[n, i+1, :, y, x] - F[n, i, :, y, x] + eps ||_2 .

    By linearity, ``F[i+1] - F[i]`` is the bias-free conv of the frame difference, so the fast
    path convolves ``n_length - 1`` differences instead of ``n_length`` frames, in the
    channels-last layout that the CPU (oneDNN) and GPU (cuDNN) kernels run fastest.

    Args:
        n_length: frames per group (4 in PAN).
        conv_frames: compute it the paper's way (convolve every frame, then subtract); same
            output, 4/3 of the conv work. Used to count the paper's FLOPs.

    Shapes:
        input ``(N * n_length, 3, H, W)``, frames of a group consecutive;
        output ``(N, n_length - 1, H, W)``.
    """

    def __init__(self, n_length: int, conv_frames: bool = False) -> None:
        super().__init__()
        if n_length < 2:
            raise ValueError(f'PA needs n_length >= 2 frames per group, got n_length={n_length}')
        self.n_length = n_length
        self.conv_frames = conv_frames
        self.shallow_conv = nn.Conv2d(3, 8, kernel_size=7, stride=1, padding=3)
        nn.init.normal_(self.shallow_conv.weight, 0, 0.001)
        nn.init.zeros_(self.shallow_conv.bias)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f'PA expects a 4-D input (N*n_length, 3, H, W), got shape {tuple(x.shape)}')
        if x.size(1) != 3:
            raise ValueError(f'PA expects 3 channels (RGB) in dim 1, got {x.size(1)} '
                             f'(input shape {tuple(x.shape)})')
        if x.size(0) % self.n_length:
            raise ValueError(f'PA: batch dim 0 ({x.size(0)}) is not divisible by n_length={self.n_length}; '
                             'the input must hold whole groups of consecutive frames')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        h, w = x.shape[-2:]
        frames = x.reshape(-1, self.n_length, 3, h, w)
        if self.conv_frames:
            # Under bf16 autocast the features would be rounded before the subtraction, and the small
            # differences of nearly still frames lost (measured: up to 170% off at one grey level of
            # motion), so this path runs in fp32. The default path subtracts the frames first: bf16
            # keeps them (under 1% off, whatever the motion) and it stays in bf16.
            fp32 = torch.autocast(x.device.type, enabled=False) \
                if torch.amp.is_autocast_available(x.device.type) else nullcontext()
            with fp32:
                feats = self.shallow_conv(x.float()).reshape(-1, self.n_length, 8, h, w)
            diff = feats[:, 1:] - feats[:, :-1] + PA_EPS
            return torch.linalg.vector_norm(diff, dim=2)
        delta = (frames[:, 1:] - frames[:, :-1]).reshape(-1, 3, h, w)
        delta = delta.contiguous(memory_format=torch.channels_last)
        # The eps of the distance rides along as the conv's bias: no extra pass over memory. The
        # conv's own bias cancels in the difference; it stays in the graph (with a zero gradient) so
        # that DistributedDataParallel sees every parameter used.
        eps = self.shallow_conv.bias * 0 + PA_EPS
        feats = F.conv2d(delta, self.shallow_conv.weight, eps, stride=1, padding=3)
        # Channels-last makes the 8 values of a pixel contiguous, so the reduction streams.
        dist = torch.linalg.vector_norm(feats, dim=1)
        return dist.reshape(-1, self.n_length - 1, h, w)


def vap_scale_lengths(n_segment: int) -> list[int]:
    """Output length of each VAP time scale 1, 2, 4, ... < n_segment (as powers of two).

    Scale ``t`` max-pools windows of ``n_segment // t`` segments spaced ``t`` apart, giving
    ``n_segment - (n_segment // t - 1) * t`` values: ``t`` when ``t`` divides ``n_segment``.
    """
    scales = []
    t = 1
    while 2 * t <= n_segment:
        scales.append(t)
        t *= 2
    return [n_segment - (n_segment // t - 1) * t for t in scales]


class VAP(nn.Module):
    """Various-timescale Aggregated Pooling head.

    Segment features are max-pooled over time at scales 1, 2, 4, ... (dilated windows), the
    pooled vectors are weighted by a small bias-free MLP (``TES``) over their channel averages
    with a softmax across scales, summed, and classified by ``pred`` after dropout.

    Shapes: input ``(N * n_segment, feature_dim)``, output ``(N, num_class)``.
    """

    def __init__(self, n_segment: int, feature_dim: int, num_class: int, dropout_ratio: float) -> None:
        super().__init__()
        if n_segment < 2:
            raise ValueError(f'VAP needs n_segment >= 2 to pool over time, got n_segment={n_segment}')
        self.n_segment = n_segment
        self.feature_dim = feature_dim
        self.lengths = vap_scale_lengths(n_segment)
        n_pooled = sum(self.lengths)
        self.TES = nn.Sequential(
            nn.Linear(n_pooled, n_pooled * 4, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(n_pooled * 4, n_pooled, bias=False),
        )
        self.dropout = nn.Dropout(p=dropout_ratio)
        self.pred = nn.Linear(feature_dim, num_class)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 2:
            raise ValueError(f'VAP expects a 2-D input (N*n_segment, feature_dim), got shape {tuple(x.shape)}')
        if x.size(1) != self.feature_dim:
            raise ValueError(f'VAP: feature dim 1 is {x.size(1)}, expected feature_dim={self.feature_dim}')
        if x.size(0) % self.n_segment:
            raise ValueError(f'VAP: batch dim 0 ({x.size(0)}) is not divisible by n_segment={self.n_segment}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        seq = x.reshape(-1, self.n_segment, self.feature_dim).transpose(1, 2)  # (N, D, T)
        pooled = []
        for i in range(len(self.lengths)):
            t = 2 ** i
            pooled.append(F.max_pool1d(seq, kernel_size=self.n_segment // t, stride=1, dilation=t))
        pooled = torch.cat(pooled, dim=2)  # (N, D, S), S = sum of the scales' lengths
        weights = torch.softmax(self.TES(pooled.mean(dim=1)), dim=1)  # (N, S)
        fused = torch.einsum('nds,ns->nd', pooled, weights)
        return self.pred(self.dropout(fused))
