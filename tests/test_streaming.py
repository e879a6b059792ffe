"""OnlinePAN: streaming one segment at a time gives the offline model's logits (ops/deploy/streaming.py)."""
import copy

import pytest
import torch
from torch import nn

from ops.deploy.streaming import CausalStep, OnlinePAN
from ops.models import PAN
from ops.temporal_shift import TemporalShift
from reference_fill import fill_state_dict

T, SIZE = 3, 32


def model(modality='Lite', arch='resnet18', vap=True, causal=True, seed=1):
    m = PAN(5, T, modality, base_model=arch, pretrain='scratch', is_shift=True, has_VAP=vap, dropout=0.5,
            print_spec=False, causal_shift=causal)
    m.load_state_dict(fill_state_dict(m.state_dict(), seed))
    return m.eval()


def stream(m, n, seed=0):
    return torch.randn(n, m.new_length * 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def assert_close(out, ref):
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max(), (out, ref)


def whole_stream_logits(m, segments):
    """A causal run over all the segments seen (every shift over len(segments) segments), the head
    on the features of the last T: with a causal shift segment k's feature depends on segments <= k
    only, so these are the features the streaming run must reproduce."""
    ref = copy.deepcopy(m)
    for layer in ref.modules():
        if isinstance(layer, TemporalShift):
            layer.n_segment = len(segments)
    name = ref.base_model.last_layer_name
    head = getattr(ref.base_model, name)
    setattr(ref.base_model, name, nn.Identity())
    with torch.no_grad():
        features = ref.base_model(ref.features(segments.reshape(1, -1, SIZE, SIZE)))  # (t, D)
        return ref.consensus(head(features[-T:]))[0]


@pytest.mark.parametrize('modality, arch, vap', [('Lite', 'resnet18', True), ('PA', 'mobilenetv2', False)])
def test_causal_stream_is_the_offline_then_the_whole_stream_causal_run(modality, arch, vap):
    m = model(modality, arch, vap)
    online = OnlinePAN(m)
    assert online.causal
    segments = stream(m, T + 3)
    for t in range(1, len(segments) + 1):
        out = online.step(segments[t - 1])
        if t < T:
            assert out is None
        elif t == T:
            with torch.no_grad():
                assert_close(out, m(segments[:T].reshape(1, -1, SIZE, SIZE))[0])
        else:
            assert_close(out, whole_stream_logits(m, segments[:t]))


def test_whole_stream_differs_from_the_window_alone():
    """The check above has teeth: after T steps the causal stream remembers what left the window."""
    m = model()
    online = OnlinePAN(m)
    segments = stream(m, T + 1)
    for s in segments:
        out = online.step(s)
    with torch.no_grad():
        window = m(segments[1:].reshape(1, -1, SIZE, SIZE))[0]
    assert (out - window).abs().max() > 1e-2 * window.abs().max()


@pytest.mark.parametrize('modality, vap', [('Lite', True), ('PA', False)])
def test_bidirectional_stream_is_the_offline_model_on_each_window(modality, vap):
    m = model(modality, vap=vap, causal=False)
    online = OnlinePAN(m)
    assert not online.causal
    segments = stream(m, T + 2)
    for t in range(1, len(segments) + 1):
        out = online.step(segments[t - 1])
        if t < T:
            assert out is None
            continue
        with torch.no_grad():
            assert_close(out, m(segments[t - T:t].reshape(1, -1, SIZE, SIZE))[0])


@pytest.mark.parametrize('causal, per_step', [(True, 1), (False, T)])
def test_work_per_step(causal, per_step):
    """A causal step sends one segment through the backbone; a bidirectional one the whole window,
    once the window is full."""
    m = model(causal=causal)
    online = OnlinePAN(m)
    pan = online._step.pan if causal else online._pan
    seen = []
    pan.base_model.conv1.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].size(0)))
    for s in stream(m, T + 2):
        online.step(s)
    assert seen == [per_step] * (T + 2 if causal else 3)


def test_reset_starts_a_new_stream():
    m = model()
    online = OnlinePAN(m)
    for s in stream(m, T + 2, seed=1):
        online.step(s)
    online.reset()
    segments = stream(m, T, seed=2)
    outs = [online.step(s) for s in segments]
    assert outs[:-1] == [None] * (T - 1)
    with torch.no_grad():
        assert_close(outs[-1], m(segments.reshape(1, -1, SIZE, SIZE))[0])


def test_wrapping_leaves_the_model_alone():
    m = model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    OnlinePAN(m).step(stream(m, 1)[0])
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert any(isinstance(x, TemporalShift) for x in m.modules())


def test_bad_segments_are_refused():
    m = model()
    online = OnlinePAN(m)
    with pytest.raises(ValueError, match=r'new_length\*3=12'):
        online.step(torch.randn(3, SIZE, SIZE))
    online.step(torch.randn(12, SIZE, SIZE))
    with pytest.raises(ValueError, match='changed within a stream'):
        online.step(torch.randn(12, SIZE + 8, SIZE))
    with pytest.raises(ValueError, match='causal'):
        CausalStep(model(causal=False))
