"""torch.compile of the project's models (ops/engine/compile.py): compiled gives eager's logits and
training steps, keeps checkpoints as they were, streams without recompiling, and each tool
decides by the run's length.

Compiling is slow on a small CPU (a tiny ResNet takes 10-30 s per graph), so the default suite
holds the decisions and one compiled stream; the rest runs with ``pytest -m compile``.
"""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters
from torchvision.models.resnet import BasicBlock, ResNet

import main
import test_models
from ops.backbone_registry import BACKBONES, BackboneEntry
from ops.deploy.streaming import OnlinePAN
from ops.engine.checkpoint import read_checkpoint
from ops.engine.compile import (PAYS_AFTER, compile_for_inference, compile_for_training, is_compiled,
                                resolve_compile)
from ops.engine.optim import build_optimizer
from ops.models import PAN
from reference_fill import fill_state_dict

T, SIZE, TINY = 2, 32, 'resnet_tiny'


@pytest.fixture
def tiny_backbone(monkeypatch):
    """A ResNet of one basic block per stage ('resnet_tiny'): the ResNet-18 entry's shift and head
    on a quarter of its graph, so that each compilation takes seconds, not minutes."""
    base = BACKBONES['resnet18']
    entry = BackboneEntry(lambda weights=None, **kw: ResNet(BasicBlock, [1, 1, 1, 1], **kw), base.weights,
                          base.last_layer_name, base.add_shift)
    monkeypatch.setitem(BACKBONES, TINY, entry)
    torch._dynamo.reset()
    counters.clear()
    yield TINY
    torch._dynamo.reset()


def tiny_pan(modality='Lite', causal=False, dropout=0.5, seed=1, num_class=5):
    m = PAN(num_class, T, modality, base_model=TINY, pretrain='scratch', is_shift=True, has_VAP=True,
            dropout=dropout, print_spec=False, causal_shift=causal)
    m.load_state_dict(fill_state_dict(m.state_dict(), seed))
    return m.eval()


def clips(m, n=2, seed=0):
    return torch.randn(n, T * m.new_length * 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def assert_close(out, ref, tol=1e-4):
    assert (out - ref).abs().max() <= tol * ref.abs().max(), ((out - ref).abs().max(), ref.abs().max())


# ---------------------------------------------------------------- the default suite

def test_each_run_compiles_where_it_pays():
    assert resolve_compile(True, 1, 1000, 'clips').enabled            # --compile
    assert not resolve_compile(False, 10 ** 6, 1000, 'clips').enabled  # --no_compile
    long, short = resolve_compile(None, 1000, 1000, 'test clips'), resolve_compile(None, 999, 1000, 'test clips')
    assert long.enabled and not short.enabled
    assert long.describe() == 'compile on (default: 1000 test clips, compile pays after about 1000)'
    assert short.describe().endswith('--compile to force it)')
    camera = resolve_compile(None, None, PAYS_AFTER['stream'], 'steps')
    assert camera.enabled and 'unknown length' in camera.describe()
    # the quick start's runs (12 epochs of 40 steps; 80 test clips) and one video stay eager
    assert not resolve_compile(None, 480, PAYS_AFTER['train'], 'training steps').enabled
    assert not resolve_compile(None, 80, PAYS_AFTER['test'], 'test clips').enabled
    # a Something-Something V1 run (86017 videos, batch 64, 80 epochs; 11522 test videos) compiles
    assert resolve_compile(None, 86017 // 64 * 80, PAYS_AFTER['train'], 'training steps').enabled
    assert resolve_compile(None, 11522, PAYS_AFTER['test'], 'test clips').enabled


def test_compiled_stream_gives_eager_logits_and_never_recompiles(tiny_backbone):
    """The causal step compiles once: the state goes in and out of the graph as tensors, so later
    steps and a new stream run the same graph; logits within 1e-4 of eager's in fp32."""
    m = tiny_pan(causal=True)
    eager, compiled = OnlinePAN(m), OnlinePAN(m, compiler=compile_for_inference)
    segments = torch.randn(T + 4, m.new_length * 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    graphs = []
    for stream in (segments, segments.flip(0)):
        for s in stream:
            ref, out = eager.step(s), compiled.step(s)
            assert (ref is None) == (out is None)
            if ref is not None:
                assert_close(out, ref)
            graphs.append(counters['stats']['unique_graphs'])
        eager.reset()
        compiled.reset()
    assert is_compiled(compiled._run)
    # step 1 of a stream runs eagerly (no state yet); step 2 compiles the one graph of them all
    assert graphs == [0] + [1] * (2 * len(segments) - 1), graphs
    assert not is_compiled(m)   # the model given is left as it was


# ---------------------------------------------------------------- pytest -m compile

@pytest.mark.compile
@pytest.mark.parametrize('modality', ['RGB', 'PA', 'Lite'])
def test_compiled_inference_gives_eager_logits(tiny_backbone, modality):
    """fp32: logits within 1e-4 relative; bf16 autocast, channels-last: the same top-1. Keys stay."""
    m = tiny_pan(modality)
    x = clips(m, n=4)
    with torch.no_grad():
        ref = m(x)
        fp32 = compile_for_inference(copy.deepcopy(m))
        assert_close(fp32(x), ref)
        bf16_eager = copy.deepcopy(m).to(memory_format=torch.channels_last)
        bf16 = compile_for_inference(copy.deepcopy(bf16_eager))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert torch.equal(bf16(x).argmax(1), bf16_eager(x).argmax(1))
    assert list(fp32.state_dict()) == list(m.state_dict())


@pytest.mark.compile
def test_frozen_model_keeps_its_weights_so_training_compiles_without_freezing(tiny_backbone):
    """Why main.py never freezes: a frozen graph keeps the convolution weights it was compiled with
    (folded with batch norm, packed for oneDNN), where the training compile sees every update."""
    m = tiny_pan('RGB')
    x = clips(m)
    results = {}
    for name, compiler in (('frozen', compile_for_inference), ('trained', compile_for_training)):
        torch._dynamo.reset()   # dynamo's cache is per function: one compiled model at a time
        model = compiler(copy.deepcopy(m))
        with torch.no_grad():
            before = model(x)
            model.base_model.conv1.weight.mul_(2.0)
            results[name] = (before, model(x))
    with torch.no_grad():
        m.base_model.conv1.weight.mul_(2.0)
        after = m(x)
    before, frozen = results['frozen']
    assert (after - before).abs().max() > 1e-2 * before.abs().max()
    assert torch.equal(frozen, before)
    assert_close(results['trained'][1], after)


@pytest.mark.compile
@pytest.mark.parametrize('bf16', [False, True])
def test_compiled_streams_match_eager_in_both_ways_of_stepping(tiny_backbone, bf16):
    """Causal and bidirectional streams, fp32 (1e-4) and bf16 channels-last (same top-1), and the
    causal one never recompiles in either."""
    for causal in (True, False):
        m = tiny_pan(causal=causal)
        if bf16:
            m = m.to(memory_format=torch.channels_last)
        eager, compiled = OnlinePAN(m), OnlinePAN(m, compiler=compile_for_inference)
        torch._dynamo.reset()
        counters.clear()
        segments = torch.randn(T + 3, m.new_length * 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            for t, s in enumerate(segments):
                ref, out = eager.step(s), compiled.step(s)
                if ref is not None:
                    if bf16:
                        assert ref.argmax() == out.argmax()
                    else:
                        assert_close(out, ref)
                if t == 1:
                    graphs = counters['stats']['unique_graphs']
        assert counters['stats']['unique_graphs'] == graphs == 1


def train_step(model, optimizer, x, y):
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@pytest.mark.compile
def test_compiled_training_step_matches_eager(tiny_backbone):
    """Loss and updated weights within 1e-4 relative in fp32, dropout on, with inductor drawing
    eager's masks (fallback_random); without it, the same seed gives the same compiled run."""
    models = [tiny_pan('Lite').train() for _ in range(2)]
    compile_for_training(models[1])
    x, y = clips(models[0], n=4), torch.tensor([0, 1, 2, 3])
    losses = []
    with torch._inductor.config.patch(fallback_random=True):
        for m in models:
            optimizer = build_optimizer(m.get_optim_policies(), 0.1, 0.9, 5e-4)
            torch.manual_seed(7)
            losses.append([train_step(m, optimizer, x, y) for _ in range(2)])
    for ref, out in zip(*losses):
        assert_close(out, ref)
    updated = models[1].state_dict()
    for name, ref in models[0].state_dict().items():
        if ref.is_floating_point() and ref.abs().max() > 0:
            assert_close(updated[name], ref)
        else:
            assert torch.equal(updated[name], ref), name

    runs = []
    for _ in range(2):
        torch._dynamo.reset()
        m = compile_for_training(tiny_pan('Lite').train())
        optimizer = build_optimizer(m.get_optim_policies(), 0.1, 0.9, 5e-4)
        torch.manual_seed(7)
        runs.append([train_step(m, optimizer, x, y) for _ in range(2)])
    assert runs[0] == runs[1]   # --seed makes compiled runs repeatable


@pytest.mark.compile
def test_compiled_model_under_distributed_data_parallel(tiny_backbone, tmp_path):
    """A compiled model wrapped by DistributedDataParallel (one gloo process) trains as eager."""
    torch.distributed.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        results = []
        for compiled in (False, True):
            m = tiny_pan('PA', dropout=0.0).train()
            if compiled:
                compile_for_training(m)
            net = torch.nn.parallel.DistributedDataParallel(m)
            optimizer = build_optimizer(m.get_optim_policies(), 0.1, 0.9, 5e-4)
            x, y = clips(m, n=2), torch.tensor([0, 1])
            results.append((train_step(net, optimizer, x, y), m.PA.shallow_conv.weight.detach().clone()))
        assert_close(results[1][0], results[0][0])
        assert_close(results[1][1], results[0][1])
    finally:
        torch.distributed.destroy_process_group()


TRAIN = ['--arch', TINY, '--pretrain', 'scratch', '--num_segments', str(T), '--input_size', str(SIZE), '-b', '4',
         '--lr', '0.01', '-j', '0', '--eval-freq', '1', '--print-freq', '1', '--dropout', '0']


@pytest.mark.compile
def test_main_compiles_checkpoints_unchanged_and_resumes(tiny_backbone, synthetic_root, tmp_path, capsys):
    """main.py --compile: the precision line says so, the checkpoint has the eager model's keys, a
    resumed compiled run goes on, and validation saw the trained weights (not frozen ones)."""
    common = ['synthetic', 'Lite', *TRAIN, '--root_path', str(synthetic_root), '--root_log', str(tmp_path / 'log'),
              '--root_model', str(tmp_path / 'ckpt'), '--store_name', 'run']
    main.main([*common, '--epochs', '1', '--compile'])
    out = capsys.readouterr().out
    assert ', compile on (--compile)' in out
    ckpt = read_checkpoint(str(tmp_path / 'ckpt' / 'run' / 'ckpt.pth.tar'))
    keys = {k.removeprefix('module.') for k in ckpt['state_dict']}
    assert not any('_orig_mod' in k for k in keys)
    assert keys == set(tiny_pan().state_dict())
    validated = float(out.split('Testing Results:')[-1].split('Loss')[1].split()[0])

    main.main([*common, '--epochs', '2', '--compile', '--resume', 'auto'])
    out = capsys.readouterr().out
    assert 'resumed' in out and read_checkpoint(str(tmp_path / 'ckpt' / 'run' / 'ckpt.pth.tar'))['epoch'] == 2

    # the first epoch's weights, evaluated eagerly, give the loss the compiled run validated
    first = tmp_path / 'first.pth.tar'
    torch.save(ckpt, first)
    main.main([*common, '-e', '--resume', str(first), '--no_compile'])
    again = capsys.readouterr().out
    assert abs(float(again.split('Testing Results:')[-1].split('Loss')[1].split()[0]) - validated) <= 1e-4 * validated


@pytest.mark.compile
def test_test_models_compiled_gives_the_eager_scores(tiny_backbone, synthetic_root, tmp_path, capsys):
    m = tiny_pan('Lite', num_class=4)
    weights = tmp_path / 'lite.pth.tar'
    torch.save({'state_dict': m.state_dict(), 'model_options': dict(
        num_class=4, num_segments=T, modality='Lite', base_model=TINY, is_shift=True, dropout=0.5)}, weights)
    scores = {}
    for flag in ('--no_compile', '--compile'):
        out = tmp_path / f'{flag}.npz'
        test_models.main(['synthetic', f'--weights={weights}', f'--test_segments={T}', '--input_size', str(SIZE),
                          '--root_path', str(synthetic_root), '-j', '0', '--batch_size', '3', '--save_scores',
                          str(out), '--no_confusion_png', flag])
        assert f'compile {"on" if flag == "--compile" else "off"} ({flag})' in capsys.readouterr().out
        scores[flag] = torch.from_numpy(np.load(out)['scores'])
    assert_close(scores['--compile'], scores['--no_compile'])


@pytest.mark.compile
def test_benchmarks_add_compiled_rows(tiny_backbone, capsys):
    from tools import benchmark_online, benchmark_train
    rows = benchmark_online.main(['--arch', TINY, '--size', str(SIZE), '--segments', str(T), '--steps', '2',
                                  '--warmup', '1', '--no_onnx', '--no_amp', '--compile'])
    assert [(r['causal'], r['compiled']) for r in rows] == [(False, False), (False, True), (True, False), (True, True)]
    assert all(r['first_s'] > 0 and r['limit'] > 0 for r in rows)
    # a spawned process per row: the registry's own ResNet-18
    rows = benchmark_train.main(['--arch', 'resnet18', '--modalities', 'Lite', '--size', str(SIZE), '--segments',
                                 str(T), '--infer_batch', '1', '--iters', '1', '--warmup', '0', '--no_amp',
                                 '--no_channels_last', '--compile', '--no_train', '--profile'])
    out = capsys.readouterr().out
    assert [r['compiled'] for r in rows] == [False, True] and rows[0]['train'] is None
    profiles = [ln for ln in out.splitlines() if ln.strip().startswith('by part:')]
    assert len(profiles) == 2 and 'convolution' in profiles[0]
    assert 'compiled graph (its fused kernels, wrapper)' in profiles[1]
