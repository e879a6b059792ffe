"""PA and VAP: the paper README's usage, the reference outputs, and shape errors."""
import pytest
import torch

from ops.PAN_modules import PA, VAP, vap_scale_lengths
from reference_fill import fill_state_dict


def _filled(module):
    module.load_state_dict(fill_state_dict(module.state_dict(), seed=0))
    return module.eval()


def test_readme_shapes():
    assert PA(n_length=4)(torch.randn(5 * 8 * 4, 3, 224, 224)).shape == torch.Size([40, 3, 224, 224])
    vap = VAP(n_segment=8, feature_dim=2048, num_class=174, dropout_ratio=0.5)
    assert vap(torch.randn(5 * 8, 2048)).shape == torch.Size([5, 174])


def test_released_parameter_names():
    assert list(PA(4).state_dict()) == ['shallow_conv.weight', 'shallow_conv.bias']
    assert list(VAP(8, 64, 10, 0.5).state_dict()) == ['TES.0.weight', 'TES.2.weight', 'pred.weight', 'pred.bias']
    assert VAP(8, 64, 10, 0.5).TES[0].weight.shape == (28, 7)


@pytest.mark.parametrize('conv_frames', [False, True])
def test_pa_matches_reference(fixture_json, conv_frames):
    ref = fixture_json('modules.json')['PA']
    module = _filled(PA(n_length=ref['n_length'], conv_frames=conv_frames))
    x = torch.randn((8, 3, 16, 16), generator=torch.Generator().manual_seed(1))
    out = module(x)
    assert list(out.shape) == ref['output_shape']
    assert (out.flatten() - torch.tensor(ref['output'])).abs().max() <= 1e-4


def test_pa_definition_per_pixel_channel_norm():
    """PA is the L2 norm over the 8 conv channels of adjacent frames' feature difference."""
    module = PA(3)
    with torch.no_grad():
        module.shallow_conv.weight.normal_(0, 0.1)
        module.shallow_conv.bias.normal_(0, 1.0)
    x = torch.randn(6, 3, 9, 11)
    feats = module.shallow_conv(x).view(2, 3, 8, 9, 11)
    expected = (feats[:, 1:] - feats[:, :-1]).pow(2).sum(2).sqrt()
    out = module(x)
    assert out.shape == (2, 2, 9, 11)
    assert torch.allclose(out, expected, atol=1e-4)
    # a static clip has no motion: PA vanishes (to the eps)
    still = x[:1].repeat(3, 1, 1, 1)
    assert module(still).abs().max() < 1e-4


@pytest.mark.parametrize('conv_frames', [False, True], ids=['frame_differences', 'paper_way'])
def test_pa_keeps_small_differences_under_bf16_autocast(conv_frames):
    """Frames one grey level apart: under CPU bf16 autocast every PA value stays within 2% of its
    fp32 value (measured: at most 0.9% on the default path; 172% on the paper's way were it left in
    bf16, which is why that path runs in fp32 and gives the fp32 values exactly)."""
    module = PA(4, conv_frames=conv_frames).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        module.shallow_conv.weight.copy_(0.05 * torch.randn(module.shallow_conv.weight.shape, generator=gen))
        module.shallow_conv.bias.copy_(0.1 * torch.randn(8, generator=gen))
    base = torch.rand((4, 1, 3, 24, 24), generator=gen) * 255
    steps = torch.randint(-1, 2, (4, 4, 3, 24, 24), generator=gen).float()  # -1, 0 or +1 grey level
    x = (((base + steps).clamp(0, 255) / 255 - 0.45) / 0.225).reshape(-1, 3, 24, 24)  # as the model sees it
    with torch.no_grad():
        ref = module(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = module(x).float()
    assert ((low - ref).abs() / ref.clamp_min(1e-3 * ref.max())).max() <= 2e-2
    if conv_frames:
        assert torch.equal(low, ref)


def test_pa_backward_reaches_the_conv():
    module = PA(4)
    module(torch.randn(8, 3, 12, 12)).sum().backward()
    assert module.shallow_conv.weight.grad is not None
    assert module.shallow_conv.weight.grad.abs().sum() > 0
    assert torch.isfinite(module.shallow_conv.weight.grad).all()


def test_vap_matches_reference(fixture_json):
    ref = fixture_json('modules.json')['VAP']
    module = _filled(VAP(ref['n_segment'], ref['feature_dim'], ref['num_class'], ref['dropout_ratio']))
    x = torch.randn((16, 64), generator=torch.Generator().manual_seed(2))
    out = module(x)
    assert list(out.shape) == ref['output_shape']
    assert (out.flatten() - torch.tensor(ref['output'])).abs().max() <= 1e-4


def test_vap_scales():
    assert vap_scale_lengths(8) == [1, 2, 4]
    assert vap_scale_lengths(16) == [1, 2, 4, 8]
    assert vap_scale_lengths(2) == [1]
    # segment counts that are not powers of two still give a consistent head
    for n in (3, 6, 10, 12):
        out = VAP(n, 16, 5, 0.0)(torch.randn(2 * n, 16))
        assert out.shape == (2, 5)


@pytest.mark.parametrize('shape, words', [
    ((10, 3, 8, 8), 'not divisible by n_length=4'),
    ((8, 4, 8, 8), 'expects 3 channels'),
    ((8, 3, 8), '4-D input'),
])
def test_pa_bad_shapes(shape, words):
    with pytest.raises(ValueError, match=words):
        PA(4)(torch.randn(*shape))


def test_pa_needs_two_frames():
    with pytest.raises(ValueError, match='n_length >= 2'):
        PA(1)


@pytest.mark.parametrize('shape, words', [
    ((12, 64), 'not divisible by n_segment=8'),
    ((16, 32), 'feature dim 1 is 32'),
    ((16, 64, 1), '2-D input'),
])
def test_vap_bad_shapes(shape, words):
    with pytest.raises(ValueError, match=words):
        VAP(8, 64, 10, 0.5)(torch.randn(*shape))


def test_vap_needs_two_segments():
    with pytest.raises(ValueError, match='n_segment >= 2'):
        VAP(1, 64, 10, 0.5)
