"""main.py end to end on tiny synthetic data: files and formats, torchrun with gloo, crash and
resume, non-finite loss, flags and the optimisation schedule."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ops.engine.checkpoint import read_checkpoint
from ops.engine.optim import build_optimizer, lr_at_epoch
from opts import parse_args

ROOT = Path(__file__).resolve().parents[1]
TINY = ['--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2', '--input_size', '32',
        '-b', '4', '--lr', '0.01', '-j', '0', '--eval-freq', '1', '--print-freq', '1']


@pytest.fixture
def data_root(synthetic_root):
    return synthetic_root


def main_py(workdir, data_root, *args, launcher=(), timeout=300, check=True):
    cmd = [sys.executable, *launcher, str(ROOT / 'main.py'), 'synthetic', *args, '--root_path', str(data_root),
           '--root_log', str(workdir / 'log'), '--root_model', str(workdir / 'checkpoint')]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    result = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_single_process_run_writes_release_files(tmp_path, data_root):
    main_py(tmp_path, data_root, 'Lite', *TINY, '--epochs', '2')
    name = 'PAN_Lite_synthetic_resnet18_shift8_blockres_avg_segment2_e2_scratch'
    log_dir, ckpt_dir = tmp_path / 'log' / name, tmp_path / 'checkpoint' / name
    text = (log_dir / 'log.csv').read_text()
    assert 'Epoch: [0][0/4], lr: 0.01000' in text and 'Epoch: [1][3/4]' in text
    assert text.count('Testing Results: Prec@1') == 2 and 'Best Prec@1' in text
    assert "modality='Lite'" in (log_dir / 'args.txt').read_text()
    assert list(log_dir.glob('events.out.tfevents.*'))
    ckpt = read_checkpoint(str(ckpt_dir / 'ckpt.pth.tar'))
    assert {'epoch', 'arch', 'state_dict', 'optimizer', 'best_prec1', 'rng', 'args', 'model_options'} <= set(ckpt)
    assert ckpt['epoch'] == 2 and ckpt['arch'] == 'resnet18'
    assert all(k.startswith('module.') for k in ckpt['state_dict'])
    best = read_checkpoint(str(ckpt_dir / 'ckpt.best.pth.tar'))
    assert best['best_prec1'] == ckpt['best_prec1']


def test_checkpoint_keys_are_the_released_ones(tmp_path, data_root, fixture_json):
    """A resnet50 Lite run with 174 classes and 8 segments saves exactly the released key set."""
    root = tmp_path / 'data174'
    os.makedirs(root)
    os.symlink(data_root / 'synthetic' / 'frames', root / 'frames')
    for split in ('train', 'val'):
        lines = (data_root / 'synthetic' / f'{split}_videofolder.txt').read_text().splitlines()[:2]
        (root / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    (root / 'synthetic').mkdir()
    os.symlink(root / 'frames', root / 'synthetic' / 'frames')
    (root / 'synthetic' / 'category.txt').write_text('\n'.join(f'class {i}' for i in range(174)) + '\n')
    main_py(tmp_path, root, 'Lite', '--arch', 'resnet50', '--pretrain', 'scratch', '--num_segments', '8',
            '--input_size', '32', '-b', '2', '-j', '0', '--epochs', '1', '--train_list', str(root / 'train.txt'),
            '--val_list', str(root / 'val.txt'))
    ckpt = read_checkpoint(str(next((tmp_path / 'checkpoint').glob('*/ckpt.pth.tar'))))
    expected = fixture_json('checkpoint_keys_resnet50.json')['Lite']
    assert {k: list(v.shape) for k, v in ckpt['state_dict'].items()} == expected


def test_torchrun_two_processes_gloo(tmp_path, data_root):
    launcher = ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']
    result = main_py(tmp_path, data_root, 'PA', *TINY, '--epochs', '1', launcher=launcher)
    assert '2 process(es)' in result.stdout and '(2 per process)' in result.stdout
    name = 'PAN_PA_synthetic_resnet18_shift8_blockres_avg_segment2_e1_scratch'
    ckpt = read_checkpoint(str(tmp_path / 'checkpoint' / name / 'ckpt.pth.tar'))
    assert ckpt['epoch'] == 1
    text = (tmp_path / 'log' / name / 'log.csv').read_text()
    # 16 videos, 4 clips per step over 2 processes: 4 steps, logged once (rank 0 only)
    assert text.count('Epoch: [0][0/4]') == 1 and text.count('Testing Results') == 1
    assert len(list((tmp_path / 'log').iterdir())) == 1


@pytest.mark.drill  # slow; tests/test_drills.py's mid-epoch kill runs with the suite
def test_sigkill_then_resume_completes(tmp_path, data_root):
    args = ['RGB', *TINY, '--epochs', '4', '--print-freq', '100']
    name = 'PAN_RGB_synthetic_resnet18_shift8_blockres_avg_segment2_e4_scratch'
    ckpt = tmp_path / 'broken' / 'checkpoint' / name / 'ckpt.pth.tar'
    (tmp_path / 'broken').mkdir()
    cmd = [sys.executable, str(ROOT / 'main.py'), 'synthetic', *args, '--root_path', str(data_root),
           '--root_log', str(tmp_path / 'broken' / 'log'), '--root_model', str(tmp_path / 'broken' / 'checkpoint')]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1'))
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch, or the next save
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = read_checkpoint(str(ckpt))
    assert 1 <= saved['epoch'] < 4, 'the run should have been killed partway'

    main_py(tmp_path / 'broken', data_root, *args, '--resume', str(ckpt))
    for path in ckpt.parent.glob('*.pth.tar'):
        assert read_checkpoint(str(path))['epoch'] >= 1  # every checkpoint on disk loads
    final = read_checkpoint(str(ckpt))
    assert final['epoch'] == 4

    # The resumed run ends where an unbroken run ends.
    (tmp_path / 'whole').mkdir()
    main_py(tmp_path / 'whole', data_root, *args)
    unbroken = read_checkpoint(str(tmp_path / 'whole' / 'checkpoint' / name / 'ckpt.pth.tar'))
    assert unbroken['best_prec1'] == final['best_prec1']
    for k, v in unbroken['state_dict'].items():
        assert torch.allclose(v.float(), final['state_dict'][k].float(), atol=1e-5), k


@pytest.fixture(scope='module')
def one_epoch_run(tmp_path_factory, synthetic_root):
    """A finished one-epoch PA run: (its work folder, its checkpoint)."""
    work = tmp_path_factory.mktemp('pa_run')
    main_py(work, synthetic_root, 'PA', *TINY, '--epochs', '1')
    return work, next((work / 'checkpoint').glob('*/ckpt.pth.tar'))


def test_non_finite_loss_stops_and_keeps_checkpoint(tmp_path, data_root, one_epoch_run):
    folder = tmp_path / 'checkpoint' / one_epoch_run[1].parent.name
    folder.mkdir(parents=True)
    ckpt = folder / 'ckpt.pth.tar'
    ckpt.write_bytes(one_epoch_run[1].read_bytes())
    before = ckpt.read_bytes()
    result = main_py(tmp_path, data_root, 'PA', *TINY, '--epochs', '3', '--lr', '1e12', '--gd', '0',
                     '--resume', str(ckpt), '--store_name', folder.name, check=False)
    assert result.returncode == 1
    assert 'Loss is not finite at epoch 1, step' in result.stderr
    assert ckpt.read_bytes() == before


def test_evaluate_only(tmp_path, data_root, one_epoch_run):
    result = main_py(tmp_path, data_root, 'PA', *TINY, '--epochs', '1', '--resume', str(one_epoch_run[1]), '-e')
    assert result.stdout.count('Testing Results: Prec@1') == 1
    assert not list(tmp_path.rglob('*.pth.tar'))  # evaluation writes no checkpoint


def test_released_flag_defaults():
    args = parse_args(['something', 'Lite'])
    assert args.arch == 'resnet50' and args.VAP and args.no_partialbn and args.shift
    assert (args.shift_div, args.shift_place, args.dropout, args.lr_type) == (8, 'blockres', 0.5, 'step')
    args = parse_args(['something', 'RGB', '--no_VAP', '--partialbn', '--base', 'TSN', '--do', '0.8',
                       '--wd', '1e-4', '--gd', '10', '--npb', '-i', '2', '-b', '8', '--lr_steps', '20', '40'])
    assert not args.VAP and args.no_partialbn and not args.shift
    assert (args.dropout, args.weight_decay, args.clip_gradient, args.iter_size, args.batch_size) == \
        (0.8, 1e-4, 10.0, 2, 8)
    assert args.lr_steps == [20.0, 40.0]
    assert not parse_args(['something', 'RGB', '--partialbn']).no_partialbn


def test_lr_schedules_and_group_multipliers():
    assert [lr_at_epoch(e, 0.01, 'step', [30, 60], 80) for e in (0, 29, 30, 59, 60, 79)] == \
        pytest.approx([0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001])
    assert lr_at_epoch(0, 0.01, 'cos', [], 10) == pytest.approx(0.01)
    assert lr_at_epoch(5, 0.01, 'cos', [], 10) == pytest.approx(0.005)
    w, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer([{'params': [w], 'lr_mult': 5, 'decay_mult': 1, 'name': 'lr5_weight'},
                           {'params': [b], 'lr_mult': 10, 'decay_mult': 0, 'name': 'lr10_bias'}], 0.01, 0.9, 5e-4)
    assert [g['lr'] for g in opt.param_groups] == pytest.approx([0.05, 0.1])
    assert [g['weight_decay'] for g in opt.param_groups] == pytest.approx([5e-4, 0.0])


def test_train_scripts_restart_three_times_by_default():
    result = subprocess.run(['bash', 'scripts/train/sthv1/Lite.sh', '-h'], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, NPROC='1'))
    assert result.returncode == 0 and 'usage: main.py' in result.stdout
    assert '--max-restarts=3 main.py something Lite --resume auto' in result.stdout


def test_tune_from_and_iter_size(tmp_path, data_root, one_epoch_run):
    result = main_py(tmp_path, data_root, 'PA', *TINY, '--epochs', '1', '-i', '2', '--tune_from',
                     str(one_epoch_run[1]))
    loaded = int(re.search(r'fine-tuning from .*: (\d+) tensors loaded, 0 skipped', result.stdout)[1])
    assert loaded == len(read_checkpoint(str(one_epoch_run[1]))['state_dict'])  # same dataset: classifier too


@pytest.mark.parametrize('script', ['scripts/train/sthv1/Lite.sh', 'scripts/train/sthv2/Full_RGB.sh'])
def test_train_scripts_pass_arguments_through(tmp_path, script):
    env = dict(os.environ, MAX_RESTARTS='0', NPROC='1')  # a user's mistake fails the same way on every restart
    result = subprocess.run(['bash', script, '--epochs', '1', '--root_path', str(tmp_path / 'nowhere')],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode != 0
    assert result.stdout.startswith('+ torchrun --standalone --nproc_per_node=1 --max-restarts=0 main.py ')
    assert ' --resume auto ' in result.stdout  # before the extra arguments, which win
    assert '--lr 0.01' in result.stdout and result.stdout.rstrip().endswith(f'--epochs 1 --root_path {tmp_path}/nowhere')
    # the extra --root_path reached main.py: it names the files it expected there
    assert str(tmp_path / 'nowhere') in result.stderr and 'tools/gen_label_sth' in result.stderr
