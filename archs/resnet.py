"""TSM ResNets: torchvision's ResNet-18/34/50/101 with the temporal shift in each residual block
(``blockres``: on the residual branch; ``block``: on the block input), as in the released models."""
from __future__ import annotations

import torchvision
from torch import nn

from ops.backbone_registry import BackboneEntry, register_backbone
from ops.temporal_shift import make_temporal_shift


def add_resnet_shift(net: nn.Module, n_segment: int, n_div: int = 8, place: str = 'blockres',
                     temporal_pool: bool = False, causal: bool = False) -> None:
    """Insert the shift (``causal``: the online one) into every residual block of ``net``, in place."""
    make_temporal_shift(net, n_segment, n_div, place, temporal_pool, causal)


for _depth in (18, 34, 50, 101):
    register_backbone(f'resnet{_depth}', BackboneEntry(
        build=getattr(torchvision.models, f'resnet{_depth}'),
        weights=getattr(torchvision.models, f'ResNet{_depth}_Weights').IMAGENET1K_V1,
        last_layer_name='fc',
        add_shift=add_resnet_shift,
    ))
