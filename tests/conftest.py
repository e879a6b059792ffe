"""Shared test set-up: import the project from its checkout and keep runs small and CPU-bound."""
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / 'fixtures'
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope='session', autouse=True)
def video_index_folder(tmp_path_factory):
    """Stored video indexes go to a folder of this session (entry points run by the tests inherit
    it), never to the user's cache."""
    folder = tmp_path_factory.mktemp('video_index')
    saved = os.environ.get('PAN_VIDEO_INDEX')
    os.environ['PAN_VIDEO_INDEX'] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop('PAN_VIDEO_INDEX', None)
    else:
        os.environ['PAN_VIDEO_INDEX'] = saved


@pytest.fixture(scope='session')
def fixture_json():
    """Load a reference fixture from tests/fixtures by file name."""
    def load(name: str):
        with open(FIXTURES / name) as f:
            return json.load(f)
    return load


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """An empty torch hub cache, so ImageNet weights come only from files a test puts there."""
    import torch
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    return tmp_path


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> Path:
    """A data root with a tiny synthetic dataset: 16 train and 8 val videos of 8 frames, 32x32."""
    import subprocess
    root = tmp_path_factory.mktemp('data')
    subprocess.run([sys.executable, 'tools/gen_synthetic.py', '--root_path', str(root), '--num_videos', '16',
                    '--num_val', '8', '--num_frames', '8', '--size', '32x32'], cwd=ROOT, check=True,
                   capture_output=True)
    return root


def run_entry(script: str, workdir: Path, *args: str, timeout: int = 300, check: bool = True,
              env: dict | None = None):
    """Run an entry point (main.py, test_models.py, a tool) in a subprocess on one CPU thread;
    ``env``: variables to set besides (e.g. torchrun's RANK and WORLD_SIZE)."""
    import subprocess
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', **(env or {}))
    result = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=workdir, capture_output=True,
                            text=True, timeout=timeout, env=env)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def run_entry_in_process(script: str, workdir: Path, *args: str, check: bool = True):
    """:func:`run_entry` without a new interpreter (seconds less per run): the entry point's
    ``main`` called the way its command line calls it, from ``workdir``, its output captured.
    Returns an object with ``returncode``, ``stdout`` and ``stderr`` as subprocess.run does."""
    import contextlib
    import importlib
    import io
    from types import SimpleNamespace

    from ops.engine.cli import run_cli_main
    import torch
    module = importlib.import_module(script.removesuffix('.py').replace('/', '.'))
    out, err = io.StringIO(), io.StringIO()
    code, threads = 0, torch.get_num_threads()
    torch.set_num_threads(1)  # as run_entry's OMP_NUM_THREADS=1: tests share 2 cores
    with contextlib.chdir(workdir), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run_cli_main(module.main, list(args))
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        finally:
            torch.set_num_threads(threads)
    result = SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
    if check:
        assert code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def run_in_process(main_fn, argv: list[str], capsys) -> tuple[int, str, str]:
    """Run an entry point's ``main`` in this process the way its command line does
    (:func:`ops.engine.cli.run_cli_main`): its exit status, stdout and stderr."""
    from ops.engine.cli import run_cli_main
    try:
        run_cli_main(main_fn, argv)
        code = 0
    except SystemExit as err:
        code = err.code
    out = capsys.readouterr()
    return code, out.out, out.err


def pytest_collection_modifyitems(config, items):
    """Tests marked cuda skip, saying why, on a machine without CUDA."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='no CUDA device: run on a GPU machine (pytest -m cuda, scripts/gpu_check.sh)')
    for item in items:
        if 'cuda' in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    """The drills' table (tools/drills.py), when this session ran drills."""
    drills = sys.modules.get('tools.drills')
    if drills is not None and drills.RECORDED:
        terminalreporter.section('reliability drills')
        terminalreporter.write_line(drills.table(drills.RECORDED))
