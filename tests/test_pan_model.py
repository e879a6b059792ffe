"""PAN models: released keys and shapes, logits parity, optimizer groups, heads and options."""
import pytest
import torch
from torch import nn

from ops.engine.precision import resolve_precision
from ops.models import PAN
from reference_fill import fill_state_dict, make_input

RELEASED = dict(dropout=0.5, partial_bn=False, pretrain='scratch', is_shift=True, shift_div=8,
                shift_place='blockres', fc_lr5=True, has_VAP=True, print_spec=False)


def released_model(modality, arch='resnet50', num_class=174, num_segments=8, **overrides):
    return PAN(num_class, num_segments, modality, base_model=arch, **{**RELEASED, **overrides})


@pytest.mark.parametrize('arch', ['resnet50', 'resnet101'])
@pytest.mark.parametrize('modality', ['Lite', 'RGB', 'PA'])
def test_state_dict_matches_release(fixture_json, arch, modality):
    ref = fixture_json(f'checkpoint_keys_{arch}.json')[modality]
    with torch.device('meta'):  # keys and shapes only: no need to allocate ResNet-101 weights
        model = released_model(modality, arch)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k[len('module.'):]: v for k, v in ref.items()}
    assert list(ours) == list(theirs)
    assert ours == theirs


def parity_case(ref: dict, modality: str, frames: int) -> tuple[PAN, torch.Tensor, torch.Tensor]:
    """(model with the reference weights in eval mode, input, the released code's fp32 logits) of
    the parity fixture ``ref``."""
    model = released_model(modality, ref['arch'], ref['num_class'], ref['num_segments'])
    model.load_state_dict(fill_state_dict(model.state_dict(), seed=ref['seed'], prefix='module.'))
    x = make_input(ref['batch'], ref['num_segments'], frames, ref['size'], seed=ref['seed'])
    return model.eval(), x, torch.tensor(ref['logits'][modality])


@pytest.mark.parametrize('modality, frames', [('RGB', 1), ('PA', 4), ('Lite', 4)])
def test_logits_match_release(fixture_json, modality, frames):
    model, x, expected = parity_case(fixture_json('parity_resnet50_seg8.json'), modality, frames)
    with torch.no_grad():
        out = model(x)
    assert out.shape == expected.shape
    assert (out - expected).abs().max() <= 1e-4 * expected.abs().max()


# bf16 keeps 8 bits of mantissa: measured 2.9e-3 (RGB) to 4.0e-3 (Lite) of the largest |logit|
BF16_LOGIT_TOLERANCE = 1e-2


@pytest.mark.parametrize('channels_last', [False, True], ids=['nchw', 'channels_last'])
@pytest.mark.parametrize('modality, frames', [('RGB', 1), ('PA', 4), ('Lite', 4)])
def test_bf16_logits_keep_the_fp32_ones(fixture_json, modality, frames, channels_last):
    """CPU bf16 autocast (the tools' --amp) on the released architectures: the released fp32 logits
    within BF16_LOGIT_TOLERANCE of the largest one, and the same top-1 for every clip."""
    model, x, expected = parity_case(fixture_json('parity_resnet50_seg8.json'), modality, frames)
    precision = resolve_precision(True, channels_last, torch.device('cpu'))
    precision.apply(model)
    with torch.no_grad(), precision.autocast():
        out = model(x)
    assert out.dtype == torch.bfloat16  # it did run in bf16
    out = out.float()
    assert (out - expected).abs().max() <= BF16_LOGIT_TOLERANCE * expected.abs().max()
    assert torch.equal(out.argmax(1), expected.argmax(1))


@pytest.mark.parametrize('modality', ['RGB', 'PA', 'Lite'])
def test_optim_policies_match_release(fixture_json, modality):
    with torch.device('meta'):
        model = released_model(modality)
    groups = model.get_optim_policies()
    got = [{'name': g['name'], 'num_params': len(g['params']), 'numel': sum(p.numel() for p in g['params']),
            'lr_mult': g['lr_mult'], 'decay_mult': g['decay_mult']} for g in groups]
    assert got == fixture_json('optim_policies_resnet50.json')[modality]
    # every trainable parameter is in exactly one group
    ids = [id(p) for g in groups for p in g['params']]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_policies_without_fc_lr5_and_with_partial_bn():
    with torch.device('meta'):
        model = released_model('RGB', 'resnet18', fc_lr5=False, partial_bn=True)
    groups = {g['name']: g for g in model.get_optim_policies()}
    assert not groups['lr5_weight']['params'] and not groups['lr10_bias']['params']
    assert len(groups['BN scale/shift']['params']) == 2  # only the first BN learns


def test_train_and_eval_return_the_model():
    model = released_model('RGB', 'resnet18', num_class=5, num_segments=2)
    assert model.train() is model
    assert model.eval() is model
    assert not model.training


def test_partial_bn_freezes_all_but_first():
    model = released_model('PA', 'resnet18', num_class=5, num_segments=2, partial_bn=True).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns[0].training and bns[0].weight.requires_grad
    assert all(not m.training and not m.weight.requires_grad for m in bns[1:])
    unfrozen = released_model('PA', 'resnet18', num_class=5, num_segments=2, partial_bn=False).train()
    assert all(m.training for m in unfrozen.modules() if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize('arch', ['resnet18', 'resnet34'])
@pytest.mark.parametrize('modality', ['RGB', 'PA', 'Lite'])
def test_small_backbones_train_step(arch, modality):
    model = released_model(modality, arch, num_class=4, num_segments=2)
    frames = 1 if modality == 'RGB' else 4
    x = torch.randn(2, 2 * frames * 3, 32, 32)
    out = model.train()(x)
    assert out.shape == (2, 4)
    nn.functional.cross_entropy(out, torch.tensor([0, 3])).backward()
    assert model.base_model.conv1.weight.grad is not None
    if modality != 'RGB':
        assert model.PA.shallow_conv.weight.grad is not None


def test_tsn_head_averages_segments():
    model = PAN(6, 3, 'RGB', base_model='resnet18', pretrain='scratch', dropout=0.5, print_spec=False,
                is_shift=True).eval()
    assert list(model.state_dict())[-2:] == ['new_fc.weight', 'new_fc.bias']
    with torch.no_grad():
        model.new_fc.weight.normal_()
        x = torch.randn(2, 3 * 3, 32, 32)
        per_segment = model.new_fc(model.base_model(x.view(-1, 3, 32, 32))).view(2, 3, 6)
        assert torch.allclose(model(x), per_segment.mean(1), atol=1e-5)


def test_dropout_zero_puts_linear_in_backbone():
    model = PAN(6, 2, 'RGB', base_model='resnet18', pretrain='scratch', dropout=0.0, print_spec=False)
    assert isinstance(model.base_model.fc, nn.Linear) and model.new_fc is None
    assert model(torch.randn(1, 6, 32, 32)).shape == (1, 6)


@pytest.mark.parametrize('has_VAP', [False, True])
def test_temporal_pool(has_VAP):
    model = PAN(5, 8, 'Lite', base_model='resnet18', pretrain='scratch', is_shift=True, temporal_pool=True,
                has_VAP=has_VAP, print_spec=False)
    assert model.base_model.layer2.n_segment == 8
    assert model.base_model.layer3[0].conv1.n_segment == 4  # later stages see half the segments
    assert model(torch.randn(2, 8 * 4 * 3, 32, 32)).shape == (2, 5)


def test_block_shift_place():
    model = PAN(5, 4, 'RGB', base_model='resnet18', pretrain='scratch', is_shift=True, shift_place='block',
                print_spec=False)
    assert any(k.startswith('base_model.layer1.0.net.conv1') for k in model.state_dict())
    assert model(torch.randn(1, 12, 32, 32)).shape == (1, 5)


@pytest.mark.parametrize('modality', ['Flow', 'RGBDiff', 'rgb'])
def test_other_modalities_are_refused(modality):
    with pytest.raises(ValueError, match='PA replaces optical flow'):
        PAN(5, 8, modality, base_model='resnet18', pretrain='scratch')


def test_non_local_not_implemented():
    with pytest.raises(NotImplementedError, match='non_local'):
        PAN(5, 8, 'RGB', base_model='resnet18', pretrain='scratch', non_local=True)


def test_unknown_arch_and_consensus():
    with pytest.raises(ValueError, match='Unknown base_model'):
        PAN(5, 8, 'RGB', base_model='vgg11', pretrain='scratch')
    with pytest.raises(NotImplementedError, match='consensus_type'):
        PAN(5, 8, 'RGB', base_model='resnet18', pretrain='scratch', consensus_type='TRN')


def test_wrong_input_channels():
    model = PAN(5, 8, 'Lite', base_model='resnet18', pretrain='scratch', print_spec=False)
    with pytest.raises(ValueError, match='num_segments\\*new_length\\*3=96'):
        model(torch.randn(1, 24, 32, 32))


def test_lite_stacks_first_frame_and_pa():
    model = PAN(5, 2, 'Lite', base_model='resnet18', pretrain='scratch', print_spec=False)
    x = torch.randn(1, 2 * 4 * 3, 16, 16)
    stem_in = model.features(x)
    assert stem_in.shape == (2, 6, 16, 16)
    assert torch.equal(stem_in[:, :3], x.view(2, 4, 3, 16, 16)[:, 0])
    assert torch.allclose(stem_in[:, 3:], model.PA(x.view(-1, 3, 16, 16)))
