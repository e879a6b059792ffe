"""TSM temporal shift and pooling, and where they go in a ResNet."""
import pytest
import torch
import torchvision
from torch import nn

from ops.temporal_shift import TemporalPool, TemporalShift, make_temporal_shift, temporal_shift


def test_shift_moves_one_fold_each_way():
    n, t, c = 2, 4, 16
    x = torch.arange(n * t * c, dtype=torch.float32).view(n * t, c, 1, 1).expand(n * t, c, 2, 3).contiguous()
    out = temporal_shift(x, n_segment=t, fold_div=8).view(n, t, c, 2, 3)
    x5 = x.view(n, t, c, 2, 3)
    fold = c // 8
    assert torch.equal(out[:, :-1, :fold], x5[:, 1:, :fold])       # from the next segment
    assert (out[:, -1, :fold] == 0).all()
    assert torch.equal(out[:, 1:, fold:2 * fold], x5[:, :-1, fold:2 * fold])  # from the previous segment
    assert (out[:, 0, fold:2 * fold] == 0).all()
    assert torch.equal(out[:, :, 2 * fold:], x5[:, :, 2 * fold:])  # the rest stays
    # clips in a batch never exchange channels
    assert torch.equal(temporal_shift(x[:t], t)[:], out[0].reshape(t, c, 2, 3))


def test_shift_keeps_channels_last():
    x = torch.randn(8, 16, 5, 5).contiguous(memory_format=torch.channels_last)
    assert temporal_shift(x, 4).is_contiguous(memory_format=torch.channels_last)


def test_shift_rejects_partial_clips():
    with pytest.raises(ValueError, match='not divisible by n_segment=8'):
        temporal_shift(torch.randn(12, 8, 2, 2), 8)


@pytest.mark.parametrize('arch, every', [('resnet18', 1), ('resnet50', 1), ('resnet101', 2)])
def test_blockres_placement(arch, every):
    net = getattr(torchvision.models, arch)()
    make_temporal_shift(net, n_segment=8, n_div=8, place='blockres')
    for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
        for i, block in enumerate(stage):
            assert isinstance(block.conv1, TemporalShift) == (i % every == 0)


def test_block_placement_wraps_whole_blocks():
    net = torchvision.models.resnet18()
    make_temporal_shift(net, n_segment=4, place='block')
    assert all(isinstance(b, TemporalShift) for b in net.layer1)
    out = net(torch.randn(8, 3, 32, 32))
    assert out.shape == (8, 1000)


def test_unknown_place():
    with pytest.raises(ValueError, match='shift_place'):
        make_temporal_shift(torchvision.models.resnet18(), 8, place='everywhere')


def test_temporal_pool_halves_segments():
    pool = TemporalPool(nn.Identity(), n_segment=8)
    x = torch.randn(2 * 8, 3, 4, 4)
    out = pool(x)
    assert out.shape == (2 * 4, 3, 4, 4)
    x5 = x.view(2, 8, 3, 4, 4)
    # output step k max-pools input steps 2k-1, 2k, 2k+1 (padding at the start)
    assert torch.equal(out.view(2, 4, 3, 4, 4)[:, 1], x5[:, 1:4].max(dim=1).values)
    assert torch.equal(out.view(2, 4, 3, 4, 4)[:, 0], x5[:, 0:2].max(dim=1).values)


def test_causal_shift_takes_the_previous_segment_only():
    n, t, c = 2, 4, 16
    x = torch.randn(n * t, c, 2, 3)
    out = temporal_shift(x, n_segment=t, fold_div=8, causal=True).view(n, t, c, 2, 3)
    x5 = x.view(n, t, c, 2, 3)
    assert torch.equal(out[:, 1:, :2], x5[:, :-1, :2])       # the first fold from the previous segment
    assert torch.equal(out[:, 0, :2], torch.zeros_like(out[:, 0, :2]))
    assert torch.equal(out[:, :, 2:], x5[:, :, 2:])          # every other channel stays
    # nothing from the future: changing the last segment changes no earlier output
    later = x5.clone()
    later[:, -1] += 1
    out2 = temporal_shift(later.view(n * t, c, 2, 3), t, 8, causal=True).view(n, t, c, 2, 3)
    assert torch.equal(out2[:, :-1], out[:, :-1])


def test_causal_flag_reaches_every_shift():
    net = torchvision.models.resnet18()
    make_temporal_shift(net, n_segment=4, causal=True)
    shifts = [m for m in net.modules() if isinstance(m, TemporalShift)]
    assert shifts and all(m.causal for m in shifts)
