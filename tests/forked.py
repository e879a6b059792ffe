"""Many fresh Python runs for the price of one interpreter start.

Checks such as "every module imports alone" or "every tool answers -h" need a process in which no
project module has been imported yet. Starting one interpreter per check pays for importing torch
each time (seconds on the CI machine). Here one interpreter imports the heavy third-party packages
(never a project module) and then forks one child per job; each child starts with no ``ops``,
``archs`` or ``tools`` module loaded, which is what these checks are about.

Run as a script with a JSON list of jobs on stdin, each ``{"import": "ops.models"}``,
``{"exec": "python code"}`` or ``{"run": "tools/demo.py", "argv": ["-h"]}`` (run as
``python PATH ARGV...`` would: ``sys.path[0]`` is the script's folder), optionally with ``"cwd"``
and ``"env"`` (variables to set); prints a JSON list of ``[exit status, stdout, stderr]`` in the
same order. :func:`run_forked` does this from a test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

# Preloaded before forking: the third-party packages the project imports at module level.
PRELOAD = ('numpy', 'torch', 'torchvision', 'PIL.Image', 'av', 'tqdm')
PARALLEL = 2


def _child(job: dict) -> None:
    import importlib
    import runpy
    os.environ.update(job.get('env') or {})
    if job.get('cwd'):
        os.chdir(job['cwd'])
    if 'exec' in job:
        exec(compile(job['exec'], '<job>', 'exec'), {'__name__': '__main__'})
        return
    if 'import' in job:
        importlib.import_module(job['import'])
        return
    path = job['run']
    sys.argv = [path, *job.get('argv', [])]
    sys.path[0] = os.path.dirname(os.path.abspath(path))
    runpy.run_path(path, run_name='__main__')


def _start(job: dict) -> tuple[int, tuple[str, str]]:
    fd_out, out_path = tempfile.mkstemp(prefix='forked-', suffix='.out')
    fd_err, err_path = tempfile.mkstemp(prefix='forked-', suffix='.err')
    pid = os.fork()
    if pid == 0:
        os.dup2(fd_out, 1)
        os.dup2(fd_err, 2)
        status = 0
        try:
            _child(job)
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:  # the child reports whatever went wrong as its output
            import traceback
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    os.close(fd_out)
    os.close(fd_err)
    return pid, (out_path, err_path)


def _read_and_remove(path: str) -> str:
    with open(path, errors='replace') as f:
        text = f.read()
    os.unlink(path)
    return text


def _serve(jobs: list[dict]) -> list[tuple[int, str, str]]:
    import importlib
    for name in PRELOAD:
        importlib.import_module(name)
    results: list = [None] * len(jobs)
    running: dict[int, tuple[int, tuple[str, str]]] = {}
    pending = list(range(len(jobs)))
    while pending or running:
        while pending and len(running) < PARALLEL:
            index = pending.pop(0)
            pid, paths = _start(jobs[index])
            running[pid] = (index, paths)
        pid, status = os.wait()
        index, (out_path, err_path) = running.pop(pid)
        results[index] = (os.waitstatus_to_exitcode(status), _read_and_remove(out_path), _read_and_remove(err_path))
    return results


def run_forked(jobs: list[dict], cwd: str | os.PathLike, env: dict | None = None,
               timeout: float = 600) -> list[tuple[int, str, str]]:
    """Run ``jobs`` (see the module docstring) from ``cwd``; ``(exit status, stdout, stderr)`` for each."""
    env = {k: v for k, v in (env or os.environ).items() if k != 'PYTHONPATH'}
    out = subprocess.run([sys.executable, os.path.abspath(__file__)], input=json.dumps(jobs), cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return [tuple(r) for r in json.loads(out.stdout)]


if __name__ == '__main__':
    # This file's folder (tests/) must not shadow anything the jobs import.
    sys.path.pop(0)
    _jobs = json.loads(sys.stdin.read())
    _results = _serve(_jobs)
    sys.stdout.write(json.dumps(_results))
