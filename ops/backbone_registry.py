"""The backbone registry: one entry per architecture PAN can be built on.

A leaf module: it imports no architecture. Each module in ``archs/`` imports it and registers its
networks; :mod:`ops.backbones` imports ``archs`` (so every entry is present before a lookup) and
builds networks from the entries.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torchvision
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneEntry:
    """How to build one architecture and what input it expects.

    ``build``: the torchvision-style constructor (``weights=None`` gives random initialisation);
    ``weights``: its ImageNet weights enum member; ``last_layer_name``: the classifier layer PAN
    replaces by its head; ``add_shift(net, n_segment, n_div, place, temporal_pool, causal)``:
    inserts the temporal shift in place (``causal``: from the previous segment only).
    ``input_size`` (square crop side), ``input_mean`` and ``input_std`` (per RGB channel, for images in [0, 1]) are those the ImageNet weights were trained with.
    """
    build: Callable[..., nn.Module]
    weights: torchvision.models.WeightsEnum
    last_layer_name: str
    add_shift: Callable[..., None]
    input_size: int = 224
    input_mean: tuple[float, float, float] = IMAGENET_MEAN
    input_std: tuple[float, float, float] = IMAGENET_STD


def scale_size_for(crop_size: int) -> int:
    """Short side that frames are resized to before a centre crop of ``crop_size`` (256 for 224,
    the ImageNet convention every released PAN model was evaluated with)."""
    return crop_size * 256 // 224


BACKBONES: dict[str, BackboneEntry] = {}


def register_backbone(name: str, entry: BackboneEntry) -> None:
    """Make ``name`` available as ``--arch`` / ``PAN(base_model=name)``; a name registers once."""
    if name in BACKBONES and BACKBONES[name] != entry:
        raise ValueError(f"backbone '{name}' is already registered")
    BACKBONES[name] = entry
