"""Reliability drills: runs killed in every way come back to the unbroken run's weights and records.

Each compares the final weights with the unbroken run's, log.csv and the tensorboard scalars with
its (no epoch twice, none missing), and counts checkpoints that do not load. The default test run
has the one-process kill after a mid-epoch checkpoint; the others are marked ``drill`` (``pytest -m drill``), and
``bash scripts/drills.sh`` runs every test of this file and prints the drills' table."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ops.engine.checkpoint import read_checkpoint
from tools import drills

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def drill_set(tmp_path_factory):
    return drills.Drills(tmp_path_factory.mktemp('drills'), seed=1)


def test_sigkill_after_a_mid_epoch_checkpoint_then_resume_auto_equals_the_unbroken_run(drill_set):
    result = drill_set.kill_one()
    assert 'batch' in result.killed  # it was killed mid-epoch, after a mid-epoch checkpoint
    assert result.max_weight_diff <= 1e-5
    assert result.logs_match, result.notes
    assert result.bad_checkpoints == 0


@pytest.mark.drill
def test_a_killed_dataloader_worker_stops_the_run_and_resume_auto_continues(drill_set):
    result = drill_set.kill_data_worker()
    assert result.logs_match and not result.notes, result.notes  # it stopped with the message, then finished
    assert result.max_weight_diff <= 1e-5 and result.bad_checkpoints == 0


@pytest.mark.drill
def test_torchrun_restarts_a_killed_worker_from_the_mid_epoch_checkpoint(drill_set):
    """torchrun --standalone --nproc_per_node=2 --max-restarts=1, rank 1 SIGKILLed after a mid-epoch
    checkpoint: the job finishes on its own with the unbroken run's weights."""
    result = drill_set.torchrun_restart()
    assert 'rank-1 worker' in result.killed and 'batch' in result.killed
    assert result.finished_by_itself
    assert result.max_weight_diff <= 1e-5
    assert result.logs_match, result.notes
    assert result.bad_checkpoints == 0


def test_the_readme_multi_node_command_is_the_drills():
    """The README's two lines (one per node) set what the two-node drill sets, for a training script
    that launches through scripts/train/launch.sh, as the drill does."""
    text = (ROOT / 'README.md').read_text()
    for node in (0, 1):
        line = next(l for l in text.splitlines() if l.startswith(f'NNODES=2 NODE_RANK={node} '))
        words = line.split('#')[0].split()
        assert [w.split('=')[0] for w in words[:4]] == ['NNODES', 'NODE_RANK', 'MASTER_ADDR', 'MASTER_PORT']
        script = ROOT / words[5]
        assert words[4] == 'bash' and 'launch.sh' in script.read_text()
    drill = Path(drills.__file__).read_text()
    assert all(f"{k}=" in drill for k in ('NNODES', 'NODE_RANK', 'MASTER_ADDR', 'MASTER_PORT'))


@pytest.mark.drill
def test_two_nodes_equal_one_node_of_two_processes(drill_set):
    """Two launchers of scripts/train/launch.sh (NNODES=2, NODE_RANK 0/1, MASTER_ADDR=127.0.0.1),
    one process each, against torchrun --nproc_per_node=2 on one node."""
    result = drill_set.two_nodes()
    assert result.max_weight_diff <= 1e-5
    assert result.logs_match, result.notes


@pytest.mark.drill
def test_random_kills_then_resume_auto_equal_the_unbroken_run(drill_set):
    result = drill_set.kill_random(kills=3)
    assert result.max_weight_diff <= 1e-5
    assert result.logs_match, result.notes
    assert result.bad_checkpoints == 0


@pytest.mark.drill
def test_quick_start_tests_the_checkpoint_it_just_trained(tmp_path, synthetic_root):
    """Quick starts in a copy of the project: A, A again (it goes on, replacing nothing), then B
    (newer), then A resumed with more epochs: the last must test A's folder, where the resumed run
    went on."""
    repo = tmp_path / 'repo'
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    env = dict(drills.environment(), PATH=f'{Path(sys.executable).parent}:{os.environ["PATH"]}',
               PAN_DATA_ROOT=str(tmp_path / 'data'))
    small = ['--epochs', '1', '--input_size', '32', '-b', '16']

    def quickstart(*extra):
        out = subprocess.run(['bash', 'scripts/quickstart.sh', *small, *extra], cwd=repo, env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        return out.stdout

    quickstart()
    again = quickstart()  # run twice: the same run goes on (here: it is done), nothing is replaced
    assert 'has trained its 1 epochs (best Prec@1' in again and 'nothing to do' in again
    quickstart('--suffix', 'other')
    first = next(p for p in (repo / 'checkpoint').iterdir() if p.name.endswith('_quickstart'))
    out = quickstart('--resume', str(first / 'ckpt.pth.tar'), '--epochs', '2')
    assert f'=> testing checkpoint/{first.name}/ckpt.best.pth.tar' in out
    assert read_checkpoint(str(first / 'ckpt.pth.tar'))['epoch'] == 2
