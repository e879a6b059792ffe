"""The project on a CUDA GPU: training in every precision and layout (fp16 with its grad scaler),
compiled, under torchrun with NCCL and SyncBatchNorm, resumed, and its checkpoint giving the GPU's
fp32 logits on the CPU; test_models.py for Lite, Full and En; both demos; GPU JPEG decoding.

Marked ``cuda``: skipped, saying why, where there is no GPU (``pytest -m cuda`` runs them;
scripts/gpu_check.sh runs them with the GPU benchmarks). What of them runs on a CPU is tested in
the default suite too: fp16 with the grad scaler (test_train_step.py), the deferred decode
(test_gpu_decode.py), the entry points (test_train.py, test_test_models.py, test_demo.py)."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, run_in_process
from test_gpu_decode import MEAN, STD, _dataset, _item, clips  # noqa: F401  (clips: a fixture)

pytestmark = pytest.mark.cuda

TRAIN = ['--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2', '--input_size', '32', '-b', '4',
         '--lr', '0.01', '-j', '2', '--epochs', '1', '--print-freq', '1']


def _train(tmp_path, root, modality, *flags, capsys, name=None):
    import main
    argv = ['synthetic', modality, *TRAIN, '--root_path', str(root), '--root_log', str(tmp_path / 'log'),
            '--root_model', str(tmp_path / 'checkpoint'), *flags]
    if name:
        argv += ['--store_name', name]
    code, out, err = run_in_process(main.main, argv, capsys)
    assert code == 0, (out[-2000:], err[-3000:])
    return out


@pytest.fixture(autouse=True)
def exact_fp32():
    """fp32 comparisons mean fp32: no TF32 in matrix products and convolutions."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize('flags, dtype, layout', [
    ([], 'fp32', 'default'),
    (['--channels_last'], 'fp32', 'channels_last'),
    (['--amp'], 'bf16', 'default'),
    (['--amp', '--channels_last'], 'bf16', 'channels_last'),
    (['--amp', '--amp_dtype', 'fp16'], 'fp16', 'default'),
    (['--amp', '--amp_dtype', 'fp16', '--channels_last'], 'fp16', 'channels_last'),
    (['--compile'], 'fp32', 'default'),
    (['--compile', '--amp', '--channels_last'], 'bf16', 'channels_last'),
    (['--gpu_decode', '--amp'], 'bf16', 'default'),
], ids=['fp32', 'fp32-cl', 'bf16', 'bf16-cl', 'fp16', 'fp16-cl', 'compile', 'compile-bf16-cl', 'gpu_decode'])
def test_main_trains_an_epoch_on_cuda(tmp_path, synthetic_root, capsys, flags, dtype, layout):
    out = _train(tmp_path, synthetic_root, 'Lite', *flags, capsys=capsys)
    line = next(x for x in out.splitlines() if x.startswith('=> precision'))
    assert line.startswith(f'=> precision {dtype} ') and f'layout {layout},' in line and line.endswith('on cuda:0')
    assert ('with a grad scaler' in line) == (dtype == 'fp16')
    assert ('compile on' in line) == ('--compile' in flags)
    losses = [float(v) for v in re.findall(r'\tLoss (\S+) \(', out)]
    assert losses and all(np.isfinite(losses))
    assert 'Testing Results' in out and 'waiting for data took' in out
    ckpt = torch.load(next((tmp_path / 'checkpoint').glob('*/ckpt.pth.tar')), map_location='cpu',
                      weights_only=False)
    assert not any('_orig_mod' in k for k in ckpt['state_dict'])


def test_torchrun_one_nccl_process_with_sync_bn(tmp_path, synthetic_root):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=1', str(ROOT / 'main.py'),
           'synthetic', 'Lite', *TRAIN, '--sync_bn', '--root_path', str(synthetic_root),
           '--root_log', str(tmp_path / 'log'), '--root_model', str(tmp_path / 'checkpoint')]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = torch.load(next((tmp_path / 'checkpoint').glob('*/ckpt.pth.tar')), map_location='cpu',
                      weights_only=False)
    assert any(k.endswith('running_mean') for k in ckpt['state_dict'])  # BatchNorm kept its keys


def test_resume_a_cuda_checkpoint_and_its_logits_on_the_cpu(tmp_path, synthetic_root, capsys):
    from ops.engine.checkpoint import load_pan_model
    _train(tmp_path, synthetic_root, 'Lite', capsys=capsys, name='run')
    out = _train(tmp_path, synthetic_root, 'Lite', '--resume', 'auto', '--epochs', '2', capsys=capsys, name='run')
    assert 'Epoch: [1]' in out and 'Epoch: [0]' not in out  # continued, not restarted
    path = str(tmp_path / 'checkpoint' / 'run' / 'ckpt.pth.tar')
    x = torch.randn(2, 2 * 4 * 3, 32, 32)
    logits = {}
    for device in ('cuda', 'cpu'):
        model, _, _ = load_pan_model(path, None, torch.device(device))
        with torch.inference_mode():
            logits[device] = model.eval()(x.to(device)).float().cpu()
    assert torch.allclose(logits['cuda'], logits['cpu'], rtol=0, atol=1e-4 * logits['cpu'].abs().max().item())


@pytest.fixture(scope='module')
def cuda_checkpoints(tmp_path_factory, synthetic_root):
    """Lite, RGB and PA checkpoints trained on the GPU (one process each, as the scripts do)."""
    work = tmp_path_factory.mktemp('cuda_runs')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    paths = {}
    for modality in ('Lite', 'RGB', 'PA'):
        subprocess.run([sys.executable, str(ROOT / 'main.py'), 'synthetic', modality, *TRAIN,
                        '--root_path', str(synthetic_root)], cwd=work, env=env, check=True, capture_output=True,
                       timeout=600)
        paths[modality] = str(next((work / 'checkpoint').glob(f'PAN_{modality}_*/ckpt.pth.tar')))
    return paths


@pytest.mark.parametrize('branches, views', [(('Lite',), []), (('RGB', 'PA'), []),
                                             (('Lite', 'RGB', 'PA'), ['--full_res', '--twice_sample'])],
                         ids=['Lite', 'Full', 'En'])
def test_test_models_on_cuda(tmp_path, synthetic_root, cuda_checkpoints, capsys, branches, views):
    import test_models
    weights = ','.join(cuda_checkpoints[b] for b in branches)
    argv = ['synthetic', f'--weights={weights}', '--root_path', str(synthetic_root), '-j', '2', '--batch_size', '4',
            '--save_scores', str(tmp_path / 'scores.npz'), *views]
    code, out, err = run_in_process(test_models.main, argv, capsys)
    assert code == 0, err[-3000:]
    assert 'cuda' in out and re.search(r'Overall Prec@1 [\d.]+%', out)
    assert np.isfinite(np.load(tmp_path / 'scores.npz')['scores']).all()


def test_demos_on_cuda(tmp_path, synthetic_root, cuda_checkpoints, capsys):
    from tools import demo, online_demo
    video = next((synthetic_root / 'synthetic' / 'frames').iterdir())
    code, out, err = run_in_process(demo.main, [str(video), '--weights', cuda_checkpoints['Lite']], capsys)
    assert code == 0, err[-3000:]
    assert 'on cuda' in out and re.search(r'^1\. ', out, re.M)
    code, out, err = run_in_process(online_demo.main, [str(video), '--weights', cuda_checkpoints['Lite'],
                                                       '--out', str(tmp_path / 'annotated.mp4')], capsys)
    assert code == 0, err[-3000:]
    assert (tmp_path / 'annotated.mp4').stat().st_size > 0


def test_gpu_jpeg_decoding_matches_the_cpu_clips(clips):  # noqa: F811
    from ops.transforms import build_train_transform
    from ops.transforms.deferred import DeferredClip, collate_encoded, decode_clips
    cpu_set = _dataset(clips, build_train_transform(32, MEAN, STD, normalize=False))
    gpu_set = _dataset(clips, DeferredClip(build_train_transform(32, MEAN, STD, normalize=False)))
    worst = 0
    for index in range(4):
        for seed in range(3):
            want, _ = _item(cpu_set, index, seed)
            batch, _ = collate_encoded([_item(gpu_set, index, seed)])
            got = decode_clips(batch.pin_memory(), 'cuda')
            assert got.is_cuda
            worst = max(worst, int((got[0].cpu().int() - want.int()).abs().max()))
    assert worst <= 2, worst
