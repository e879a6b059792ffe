"""TSM temporal shift and temporal pooling, and their insertion into a torchvision ResNet.

The wrappers keep the wrapped layer as ``.net`` so that state_dict keys read
``layerK.B.conv1.net.weight`` exactly as in the released TSM/PAN checkpoints.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pad_segments(x5: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Zero segments before / after dim 1 of ``(N, T, C, H, W)``."""
    return F.pad(x5, (0, 0, 0, 0, 0, 0, before, after))


def temporal_shift(x: torch.Tensor, n_segment: int, fold_div: int = 8, causal: bool = False) -> torch.Tensor:
    """Shift 1/fold_div of the channels one segment back in time and 1/fold_div forward.

    ``causal``: only the first 1/fold_div of the channels move, taken from the previous segment
    (nothing from the future, as TSM's online models); the rest stay.

    Shapes: ``x`` is ``(N * n_segment, C, H, W)``; the output has the same shape (and memory
    format), with zeros where a shifted channel runs off the clip's ends.
    """
    nt, c, h, w = x.shape
    if nt % n_segment:
        raise ValueError(f'temporal_shift: batch dim 0 ({nt}) is not divisible by n_segment={n_segment}')
    fold = c // fold_div
    # Slices, pads and one cat, with the batch read as -1: an exporter (ONNX) sees real ops and a
    # dynamic batch, where the in-place writes into zeros_like were traced into constants.
    x5 = x.reshape(-1, n_segment, c, h, w)
    # The moved channels take the input's layout, so that the cat keeps it (channels-last stays
    # channels-last) and runs its fast path (measured: a 5-D cat of strided slices was 10x slower).
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format

    def moved(part: torch.Tensor, before: int, after: int) -> torch.Tensor:
        return _pad_segments(part, before, after).reshape(-1, part.size(2), h, w).contiguous(memory_format=layout)

    if causal:
        parts = [moved(x5[:, :-1, :fold], 1, 0), x[:, fold:]]          # the previous segment's channels
    else:
        parts = [moved(x5[:, 1:, :fold], 0, 1),                        # the next segment's channels
                 moved(x5[:, :-1, fold:2 * fold], 1, 0),               # the previous segment's channels
                 x[:, 2 * fold:]]
    return torch.cat(parts, dim=1)


class TemporalShift(nn.Module):
    """Runs ``net`` on the temporally shifted input. Shapes: ``(N*T, C, H, W)`` in and out of the shift.

    ``causal``: the online shift of :func:`temporal_shift` (previous segment only)."""

    def __init__(self, net: nn.Module, n_segment: int = 8, n_div: int = 8, causal: bool = False) -> None:
        super().__init__()
        self.net = net
        self.n_segment = n_segment
        self.fold_div = n_div
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(temporal_shift(x, self.n_segment, self.fold_div, self.causal))

    def extra_repr(self) -> str:
        return f'n_segment={self.n_segment}, fold_div={self.fold_div}, causal={self.causal}'


class TemporalPool(nn.Module):
    """Max-pools over time (kernel 3, stride 2) before ``net``, halving the segments.

    Shapes: ``(N*T, C, H, W)`` -> ``(N*T/2, C, H, W)`` into ``net``.
    """

    def __init__(self, net: nn.Module, n_segment: int) -> None:
        super().__init__()
        if n_segment % 2:
            raise ValueError(f'temporal_pool needs an even number of segments, got {n_segment}')
        self.net = net
        self.n_segment = n_segment

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        clip = x.view(nt // self.n_segment, self.n_segment, c, h, w).transpose(1, 2)  # N, C, T, H, W
        clip = F.max_pool3d(clip, kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        return self.net(clip.transpose(1, 2).reshape(nt // 2, c, h, w))


SHIFT_PLACES = ('blockres', 'block')


def make_temporal_shift(net: nn.Module, n_segment: int, n_div: int = 8, place: str = 'blockres',
                        temporal_pool: bool = False, causal: bool = False) -> None:
    """Insert temporal shift into every residual stage of a torchvision ResNet, in place.

    ``blockres`` shifts inside the residual branch, before each block's ``conv1``; ``block``
    shifts the whole block's input. Very deep stages (ResNet-101's 23-block ``layer3``) shift
    every other block in all stages, as TSM does. With ``temporal_pool`` the stages after
    ``layer1`` see half the segments. ``causal``: every shift is the online one.
    """
    if place not in SHIFT_PLACES:
        raise ValueError(f"shift_place must be one of {SHIFT_PLACES}, got '{place}'")
    stages = [getattr(net, f'layer{i}', None) for i in range(1, 5)]
    if any(s is None for s in stages):
        raise ValueError(f'temporal shift: {type(net).__name__} is not a ResNet with layer1..layer4')
    segments = [n_segment] + [n_segment // 2 if temporal_pool else n_segment] * 3
    every = 2 if len(net.layer3) >= 23 else 1
    for stage, this_segment in zip(stages, segments):
        for i, block in enumerate(stage):
            if i % every:
                continue
            if place == 'blockres':
                block.conv1 = TemporalShift(block.conv1, this_segment, n_div, causal)
            else:
                stage[i] = TemporalShift(block, this_segment, n_div, causal)


def make_temporal_pool(net: nn.Module, n_segment: int) -> None:
    """Pool over time after ``layer1`` of a ResNet, in place (``layer2`` becomes ``layer2.net``)."""
    net.layer2 = TemporalPool(net.layer2, n_segment)
