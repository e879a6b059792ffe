"""Runs that lose nothing: resumable data order and augmentation, mid-epoch kill and resume, a full
disk, a killed DataLoader worker, truncated checkpoints, a second run in the same folder, validation
that fails after training, --resume PATH continuing its own run, and checkpoint permissions.

The drills (kills of runs and workers, torchrun restarts, two nodes) are in test_drills.py."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from ops.engine.checkpoint import read_checkpoint, save_checkpoint
from ops.engine.distributed import DistContext
from ops.engine.resumable import ResumableSampler, SeededSamples, gather_rng_states, restore_rng_state, seeded_draws
from ops.engine.run_lock import RunLock, RunLockedError
from ops.safe_files import CheckpointWriteError, publish_copy
from tools import drills

ROOT = Path(__file__).resolve().parents[1]
NAME = 'PAN_Lite_synthetic_resnet18_shift8_blockres_avg_segment2_e2_scratch'


# ---------------------------------------------------------------- the pieces

def test_resumable_sampler_skips_exactly_the_batches_done():
    data = list(range(21))
    for rank in (0, 1):
        whole = ResumableSampler(data, batch_size=3, num_replicas=2, rank=rank, seed=5)
        whole.set_epoch(4)
        order = list(whole)
        assert len(order) == whole.batches_per_epoch * 3 == 9  # 10 per rank, the uneven batch dropped
        resumed = ResumableSampler(data, batch_size=3, num_replicas=2, rank=rank, seed=5)
        resumed.set_epoch(4, start_batch=2)
        assert list(resumed) == order[6:] and len(resumed) == 3
    # another epoch reshuffles
    a, b = ResumableSampler(data, 3, 2, 1, 5), ResumableSampler(data, 3, 2, 1, 5)
    a.set_epoch(4)
    b.set_epoch(5)
    assert list(a) != list(b)
    with pytest.raises(ValueError):
        a.set_epoch(0, start_batch=4)


class Draws(torch.utils.data.Dataset):
    """Each item: the draws of every RNG a transform or sampler may use."""

    def __getitem__(self, i):
        import random
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    def __len__(self):
        return 6


def test_seeded_samples_depend_on_seed_epoch_and_index_only():
    data = SeededSamples(Draws(), seed=3)
    data.set_epoch(2)
    forward = [data[i] for i in range(6)]
    backward = [data[i] for i in reversed(range(6))][::-1]
    assert forward == backward  # the order of reading (workers, a resume point) does not matter
    assert len(set(forward)) == 6
    data.set_epoch(3)
    assert [data[i] for i in range(6)] != forward
    # the main process's RNG (dropout) is not moved by reading a sample
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    data[0]
    assert torch.equal(torch.rand(3), expected)
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=2)
    assert [tuple(float(x) for x in item) for batch in loader for item in zip(*batch)] == \
        [data[i] for i in range(6)]


def test_seeded_draws_restores_the_states():
    torch.manual_seed(1)
    before = torch.get_rng_state()
    with seeded_draws((1, 2, 3)):
        torch.rand(5)
    assert torch.equal(torch.get_rng_state(), before)


def test_rng_states_round_trip_in_one_process():
    ctx = DistContext()
    torch.manual_seed(7)
    states = gather_rng_states(ctx)
    expected = torch.rand(4)
    torch.rand(10)
    assert restore_rng_state(states, ctx)
    assert torch.equal(torch.rand(4), expected)
    assert not restore_rng_state(states * 2, ctx)  # written by another process count


def test_checkpoint_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        save_checkpoint({'epoch': 1}, str(tmp_path / 'ckpt.pth.tar'))
        publish_copy(str(tmp_path / 'ckpt.pth.tar'), str(tmp_path / 'ckpt.best.pth.tar'))
    finally:
        os.umask(old)
    assert (tmp_path / 'ckpt.pth.tar').stat().st_mode & 0o777 == 0o664
    assert (tmp_path / 'ckpt.best.pth.tar').stat().st_mode & 0o777 == 0o664
    assert read_checkpoint(str(tmp_path / 'ckpt.best.pth.tar'))['epoch'] == 1


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth.tar'
    save_checkpoint({'epoch': 1, 'w': torch.ones(3)}, str(path))
    real_save = torch.save

    def fills_the_disk(obj, f, *args, **kwargs):
        f.write(b'PK\x03\x04 partial')  # what torch writes before the disk is full
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError('[enforce fail at inline_container.cc] unexpected pos 704 vs 598')
    monkeypatch.setattr(torch, 'save', fills_the_disk)
    with pytest.raises(CheckpointWriteError) as err:
        save_checkpoint({'epoch': 2, 'w': torch.zeros(3)}, str(path))
    monkeypatch.setattr(torch, 'save', real_save)
    assert str(path) in str(err.value) and 'No space left on device' in str(err.value)
    assert err.value.errno == errno.ENOSPC
    assert read_checkpoint(str(path))['epoch'] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth.tar']  # no temporary file left


@contextmanager
def lock_holder(folder: Path):
    """A live process holding ``folder``'s run lock, as a training run does; SIGKILLed on exit."""
    holder = subprocess.Popen([sys.executable, '-c', f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from ops.engine.run_lock import RunLock
RunLock({str(folder)!r}).acquire()
print('held', flush=True)
time.sleep(120)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        yield holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_run_lock_refuses_a_second_holder_and_dies_with_its_process(tmp_path):
    with lock_holder(tmp_path) as holder:
        with pytest.raises(RunLockedError) as err:
            RunLock(str(tmp_path)).acquire()
        assert str(tmp_path / 'run.lock') in str(err.value) and f'pid {holder.pid}' in str(err.value)
    with RunLock(str(tmp_path)):  # a killed holder leaves nothing stuck
        pass


# ---------------------------------------------------------------- main.py, end to end

TINY = ['Lite', '--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2', '--input_size', '32',
        '-b', '4', '--lr', '0.01', '-j', '0', '--eval-freq', '1', '--print-freq', '1']


def main_py(work: Path, data: Path, *args: str, check: bool = True, umask: int | None = None):
    cmd = [sys.executable, str(ROOT / 'main.py'), 'synthetic', *args, '--root_path', str(data),
           '--root_log', str(work / 'log'), '--root_model', str(work / 'checkpoint')]
    work.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300, env=drills.environment(),
                            preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_mid_epoch_checkpoint_holds_the_position_and_every_rng(tmp_path, synthetic_root):
    # 16 videos, batch 4: 4 steps an epoch; --save_steps 3 writes at steps 3, 6 (epoch 1, batch 2)
    main_py(tmp_path, synthetic_root, *TINY, '--epochs', '2', '--save_steps', '3', '--eval-freq', '5')
    folder = tmp_path / 'checkpoint' / NAME
    final = read_checkpoint(str(folder / 'ckpt.pth.tar'))
    assert (final['epoch'], final['batch'], final['pending_validation']) == (2, 0, False)
    assert final['records']['log_bytes'] == (tmp_path / 'log' / NAME / 'log.csv').stat().st_size
    assert len(final['rng_ranks']) == 1 and set(final['rng']) >= {'python', 'numpy', 'torch'}
    assert {'optimizer', 'scaler', 'lr', 'meters', 'world_size'} <= set(final)
    assert not [p for p in folder.iterdir() if p.name.endswith('.tmp')]


@pytest.fixture(scope='module')
def one_epoch(tmp_path_factory, synthetic_root):
    """A finished one-epoch run, written with umask 022: its work folder."""
    work = tmp_path_factory.mktemp('one_epoch')
    main_py(work, synthetic_root, *TINY, '--epochs', '1', umask=0o022)
    return work


def copy_run(source: Path, work: Path) -> Path:
    for kind in ('log', 'checkpoint'):
        shutil.copytree(source / kind, work / kind)
    return work / 'checkpoint' / NAME.replace('_e2_', '_e1_') / 'ckpt.pth.tar'


def test_resume_refuses_a_truncated_checkpoint(tmp_path, synthetic_root, one_epoch):
    ckpt = copy_run(one_epoch, tmp_path)
    cut = tmp_path / 'cut.pth.tar'
    cut.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    result = main_py(tmp_path, synthetic_root, *TINY, '--epochs', '2', '--resume', str(cut), check=False)
    assert result.returncode == 2 and f'error: Cannot read checkpoint {cut}' in result.stderr
    assert 'Traceback' not in result.stderr
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # the run's own checkpoint, cut by hand
    result = main_py(tmp_path, synthetic_root, *TINY, '--epochs', '1', '--resume', 'auto', check=False)
    assert result.returncode == 2 and f'Cannot read checkpoint {ckpt}' in result.stderr


def test_a_second_run_with_the_same_name_refuses_to_start(tmp_path, synthetic_root):
    """A live run holds checkpoint/<name>/run.lock (a process that takes it as main.py does); a
    main.py run with the same name refuses to start and writes nothing; once the holder is killed,
    the lock is free."""
    folder = tmp_path / 'checkpoint' / NAME.replace('_e2_', '_e1_')
    with lock_holder(folder) as holder:
        second = main_py(tmp_path, synthetic_root, *TINY, '--epochs', '1', '--resume', 'auto', check=False)
        assert second.returncode == 2 and 'Traceback' not in second.stderr
        assert f'error: {folder / "run.lock"}: another run is training in this folder (pid {holder.pid}' in second.stderr
        assert sorted(p.name for p in folder.iterdir()) == ['run.lock'] and not (tmp_path / 'log').exists()
    with RunLock(str(folder)):  # the killed holder left nothing stuck
        pass


def test_validation_failure_keeps_the_epoch_and_resume_validates_it(tmp_path, synthetic_root):
    data = tmp_path / 'data'
    shutil.copytree(synthetic_root, data)
    val_line = (data / 'synthetic' / 'val_videofolder.txt').read_text().split()[0]
    frame = sorted((data / 'synthetic' / 'frames' / val_line).iterdir())[3]
    good = frame.read_bytes()
    frame.write_bytes(b'not a jpeg')
    args = [*TINY, '--epochs', '2']
    result = main_py(tmp_path, data, *args, check=False)
    assert result.returncode == 2 and str(frame) in result.stderr
    folder = tmp_path / 'checkpoint' / NAME
    saved = read_checkpoint(str(folder / 'ckpt.pth.tar'))
    assert (saved['epoch'], saved['batch'], saved['pending_validation']) == (1, 0, True)  # the epoch is kept
    frame.write_bytes(good)
    result = main_py(tmp_path, data, *args, '--resume', 'auto')
    assert 'continuing from' in result.stdout
    log = (tmp_path / 'log' / NAME / 'log.csv').read_text()
    assert log.count('Testing Results') == 2 and log.count('Epoch: [0][0/4]') == 1
    assert log.index('Testing Results') < log.index('Epoch: [1][0/4]')
    assert read_checkpoint(str(folder / 'ckpt.pth.tar'))['epoch'] == 2
    assert (folder / 'ckpt.best.pth.tar').exists()


def test_checkpoints_have_a_users_permissions(one_epoch):
    folder = one_epoch / 'checkpoint' / NAME.replace('_e2_', '_e1_')
    assert (folder / 'ckpt.pth.tar').stat().st_mode & 0o777 == 0o644  # not a temporary file's 0600
    assert (folder / 'ckpt.best.pth.tar').stat().st_mode & 0o777 == 0o644


def test_resume_path_continues_its_own_run_when_epochs_grow(tmp_path, synthetic_root, one_epoch):
    ckpt = copy_run(one_epoch, tmp_path)
    first = ckpt.parent.name
    best_before = read_checkpoint(str(ckpt.parent / 'ckpt.best.pth.tar'))['best_prec1']
    result = main_py(tmp_path, synthetic_root, *TINY, '--epochs', '2', '--resume', str(ckpt))
    assert f'=> run {first}:' in result.stdout
    assert sorted(p.name for p in (tmp_path / 'checkpoint').iterdir()) == [first]
    log = (tmp_path / 'log' / first / 'log.csv').read_text()
    assert log.count('Epoch: [0][0/4]') == 1 and log.count('Epoch: [1][0/4]') == 1  # appended
    final = read_checkpoint(str(ckpt))
    assert final['epoch'] == 2 and final['best_prec1'] >= best_before
    assert (ckpt.parent / 'ckpt.best.pth.tar').exists()
    # --store_name asks for a new run
    main_py(tmp_path, synthetic_root, *TINY, '--epochs', '3', '--resume', str(ckpt), '--store_name', 'branch')
    assert read_checkpoint(str(tmp_path / 'checkpoint' / 'branch' / 'ckpt.pth.tar'))['epoch'] == 3
    assert read_checkpoint(str(ckpt))['epoch'] == 2


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    if os.geteuid() != 0 or shutil.which('mount') is None:
        return False
    return subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(where)],
                          capture_output=True).returncode == 0


def test_a_really_full_disk_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, synthetic_root):
    """On a 150 MB tmpfs a resnet18 checkpoint (90 MB) fits once; the next write fills it."""
    disk = tmp_path / f'disk_{uuid.uuid4().hex[:6]}'
    if not _mount_tmpfs(disk, '150m'):
        pytest.skip('cannot mount a small tmpfs here (needs root): the simulated full disk is tested above')
    try:
        cmd = [sys.executable, str(ROOT / 'main.py'), 'synthetic', *TINY, '--epochs', '3',
               '--root_path', str(synthetic_root), '--root_log', str(tmp_path / 'log'), '--root_model', str(disk)]
        result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                env=drills.environment())
        ckpt = disk / NAME.replace('_e2_', '_e3_') / 'ckpt.pth.tar'
        assert result.returncode == 2, result.stderr[-2000:]
        assert f'cannot write {ckpt}: No space left on device' in result.stderr
        assert 'Traceback' not in result.stderr
        assert read_checkpoint(str(ckpt))['epoch'] == 1  # the previous checkpoint, whole
        assert not [p for p in ckpt.parent.iterdir() if p.name.endswith('.tmp')]
    finally:
        time.sleep(0.2)
        subprocess.run(['umount', '-l', str(disk)], capture_output=True)

