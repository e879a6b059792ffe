"""TSM MobileNetV2 as a PAN backbone."""
import os

import pytest
import torch
import torchvision
from torchvision.models.mobilenetv2 import InvertedResidual

from ops.backbones import BACKBONES, imagenet_cache_path
from ops.models import PAN
from ops.temporal_shift import TemporalShift


def build(modality, **kw):
    return PAN(5, 4, modality, base_model='mobilenetv2', pretrain=kw.pop('pretrain', 'scratch'), is_shift=True,
               has_VAP=True, dropout=0.5, print_spec=False, **kw)


def test_shift_in_residual_blocks_only():
    model = build('RGB')
    blocks = [m for m in model.base_model.modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17
    for block in blocks:
        assert isinstance(block.conv[0], TemporalShift) == block.use_res_connect
    assert sum(b.use_res_connect for b in blocks) == 10


@pytest.mark.parametrize('modality, frames, stem', [('RGB', 1, 3), ('PA', 4, 3), ('Lite', 4, 6)])
def test_modalities_forward_backward(modality, frames, stem):
    model = build(modality)
    assert model.base_model.features[0][0].in_channels == stem
    out = model.train()(torch.randn(2, 4 * frames * 3, 64, 64))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert model.base_model.features[0][0].weight.grad is not None


def test_imagenet_weights(hub_dir):
    weights = BACKBONES['mobilenetv2'].weights
    sd = torchvision.models.mobilenet_v2().state_dict()
    os.makedirs(os.path.dirname(imagenet_cache_path(weights)), exist_ok=True)
    torch.save(sd, imagenet_cache_path(weights))
    model = build('Lite', pretrain='imagenet')
    assert torch.allclose(model.base_model.features[0][0].weight[:, 4], sd['features.0.0.weight'].mean(1))
    assert torch.equal(model.base_model.features[3].conv[0].net[0].weight, sd['features.3.conv.0.0.weight'])


def test_block_place_and_tpool_refused():
    with pytest.raises(ValueError, match='blockres'):
        PAN(5, 4, 'RGB', base_model='mobilenetv2', pretrain='scratch', is_shift=True, shift_place='block')
    with pytest.raises(NotImplementedError, match='temporal_pool'):
        PAN(5, 4, 'RGB', base_model='mobilenetv2', pretrain='scratch', is_shift=True, temporal_pool=True)
