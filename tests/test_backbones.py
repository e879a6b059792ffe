"""ImageNet weights through torchvision's weights API, the offline error, and first-conv inflation."""
import os
from urllib.error import URLError

import pytest
import torch
import torchvision

from ops.backbones import BACKBONES, build_backbone, imagenet_cache_path, inflate_first_conv
from ops.models import PAN


def _place_weights(seed=0):
    """Put a resnet18 state_dict in the hub cache under torchvision's file name."""
    weights = BACKBONES['resnet18'].weights
    torch.manual_seed(seed)
    sd = torchvision.models.resnet18().state_dict()
    path = imagenet_cache_path(weights)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(sd, path)
    return sd


def test_imagenet_weights_from_cache(hub_dir):
    sd = _place_weights()
    net = build_backbone('resnet18', 'imagenet')
    assert torch.equal(net.conv1.weight, sd['conv1.weight'])
    assert str(hub_dir) in imagenet_cache_path(BACKBONES['resnet18'].weights)


def test_lite_inflates_imagenet_stem(hub_dir):
    sd = _place_weights()
    model = PAN(5, 2, 'Lite', base_model='resnet18', pretrain='imagenet', print_spec=False)
    stem = model.base_model.conv1.weight
    assert stem.shape == (64, 6, 7, 7)
    mean = sd['conv1.weight'].mean(dim=1)
    for c in range(6):
        assert torch.allclose(stem[:, c], mean)
    # the rest of the backbone is ImageNet's
    assert torch.equal(model.base_model.layer1[0].conv1.weight, sd['layer1.0.conv1.weight'])


def test_offline_error_names_the_file(hub_dir, monkeypatch):
    def no_network(*args, **kwargs):
        raise URLError('no route to host')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    with pytest.raises(RuntimeError) as info:
        build_backbone('resnet50', 'imagenet')
    text = str(info.value)
    assert imagenet_cache_path(BACKBONES['resnet50'].weights) in text
    assert '--pretrain scratch' in text


def test_unknown_pretrain():
    with pytest.raises(ValueError, match="pretrain must be one of"):
        build_backbone('resnet18', 'kinetics')


def test_inflate_first_conv_generic():
    net = torchvision.models.resnet18()
    old = net.conv1.weight.detach().clone()
    inflate_first_conv(net, 2)
    assert net.conv1.in_channels == 2
    assert torch.allclose(net.conv1.weight[:, 1], old.mean(1))
