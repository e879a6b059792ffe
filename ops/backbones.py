"""Building PAN's 2D backbones from the registry: ImageNet weights, temporal modelling and
first-conv inflation.

A backbone is a torchvision classification network whose last layer is named by its
``last_layer_name`` attribute (``fc`` for ResNets); PAN replaces that layer with its head. The
architectures themselves live in ``archs/`` and register in :mod:`ops.backbone_registry`.
"""
from __future__ import annotations

import os
from urllib.error import URLError

import torch
import torchvision
from torch import nn

import archs  # noqa: F401  (registers every architecture before any lookup)
from ops.backbone_registry import BACKBONES, BackboneEntry, register_backbone  # noqa: F401
from ops.temporal_shift import make_temporal_pool

PRETRAIN_CHOICES = ('imagenet', 'scratch')


def backbone_entry(arch: str) -> BackboneEntry:
    """The registry entry of ``arch``; a ValueError lists the registered names."""
    if arch not in BACKBONES:
        raise ValueError(f"Unknown base_model '{arch}'; available: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[arch]


def imagenet_cache_path(weights: torchvision.models.WeightsEnum) -> str:
    """Where torch hub looks for (and downloads) a weights file."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(weights.url))


def load_imagenet_state_dict(weights: torchvision.models.WeightsEnum) -> dict:
    """The ImageNet state_dict of ``weights``, from the torch hub cache or downloaded into it."""
    try:
        return weights.get_state_dict(progress=True)
    except (URLError, OSError, RuntimeError) as err:
        raise RuntimeError(
            f'Could not get the ImageNet weights {weights} ({err}). Download {weights.url} on a machine '
            f'with internet access and place it at {imagenet_cache_path(weights)} (the torch hub cache, '
            'set by $TORCH_HOME), or train from random initialisation with --pretrain scratch.') from err


def build_backbone(arch: str, pretrain: str = 'imagenet') -> nn.Module:
    """A torchvision network for ``arch`` with ImageNet weights or random initialisation.

    The returned module has ``last_layer_name`` set; its input is ``(B, 3, H, W)``.
    """
    if pretrain not in PRETRAIN_CHOICES:
        raise ValueError(f"pretrain must be one of {PRETRAIN_CHOICES}, got '{pretrain}'")
    entry = backbone_entry(arch)
    net = entry.build(weights=None)
    if pretrain == 'imagenet':
        net.load_state_dict(load_imagenet_state_dict(entry.weights))
    net.last_layer_name = entry.last_layer_name
    return net


def add_temporal_modelling(net: nn.Module, arch: str, n_segment: int, shift: bool, shift_div: int,
                           shift_place: str, temporal_pool: bool, causal_shift: bool = False) -> None:
    """Insert TSM shift (``causal_shift``: the online one) and/or temporal pooling into a backbone
    from :func:`build_backbone`, in place."""
    if shift:
        backbone_entry(arch).add_shift(net, n_segment, shift_div, shift_place, temporal_pool, causal_shift)
    if temporal_pool:
        if not hasattr(net, 'layer2'):
            raise NotImplementedError(f'temporal_pool is implemented for ResNets, not {arch}')
        make_temporal_pool(net, n_segment)


def first_conv(net: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    """The first Conv2d of ``net`` with its parent module and attribute name."""
    for parent in net.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                return parent, name, child
    raise ValueError(f'{type(net).__name__} has no Conv2d')


def inflate_first_conv(net: nn.Module, in_channels: int) -> None:
    """Give the first conv ``in_channels`` inputs, each filter set to the mean of its old input
    filters (the release's initialisation of PAN_Lite's 6-channel RGB+PA stem), in place."""
    parent, name, conv = first_conv(net)
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight.mean(dim=1, keepdim=True).expand_as(new.weight))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    setattr(parent, name, new)
