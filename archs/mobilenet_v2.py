"""TSM MobileNetV2: torchvision's MobileNetV2 with the temporal shift at the start of the
residual branch of every inverted-residual block that has a skip connection.

Registered as ``mobilenetv2`` (``--arch mobilenetv2``) for RGB, PA and Lite; ImageNet weights are
torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1``. It is the fast option for CPUs and small
devices (about 0.3 G multiply-adds per frame at 224, against 4.1 for ResNet-50).
"""
from __future__ import annotations

import torchvision
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual

from ops.backbone_registry import BackboneEntry, register_backbone
from ops.temporal_shift import TemporalShift


def add_mobilenet_shift(net: nn.Module, n_segment: int, n_div: int = 8, place: str = 'blockres',
                        temporal_pool: bool = False, causal: bool = False) -> None:
    """Shift inside each residual inverted block, before its expansion conv, in place
    (``causal``: the online shift, from the previous segment only).

    Only the residual placement exists for MobileNetV2: shifting the block input would also shift
    the identity path, which TSM found to hurt; ``block`` is therefore refused.
    """
    if place != 'blockres':
        raise ValueError(f"mobilenetv2 supports shift_place 'blockres' only, got '{place}'")
    if temporal_pool:
        raise NotImplementedError('temporal_pool is implemented for ResNets, not mobilenetv2')
    for block in net.modules():
        if isinstance(block, InvertedResidual) and block.use_res_connect:
            block.conv[0] = TemporalShift(block.conv[0], n_segment, n_div, causal)


register_backbone('mobilenetv2', BackboneEntry(
    build=torchvision.models.mobilenet_v2,
    weights=torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1,
    last_layer_name='classifier',
    add_shift=add_mobilenet_shift,
))
