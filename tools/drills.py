"""Reliability drills: kill training runs and check that they come back to the unbroken result.

    python tools/drills.py                      # every drill, on the CPU, then the table
    python tools/drills.py --only kill_one torchrun_restart --workdir /tmp/drills

Each drill trains a tiny PAN_Lite (resnet18, 2 segments, 32x32) on a generated synthetic dataset,
breaks the run in one way (SIGKILL of the process or of one torchrun worker right after a mid-epoch
checkpoint, SIGKILL at a random moment, a killed DataLoader worker, a second node), lets it finish
(by itself under torchrun's restarts, or by ``--resume auto``), and compares it with the same run
left alone: the largest difference of any weight, whether log.csv and the tensorboard scalars are
those of the unbroken run (no epoch twice, none missing), and how many checkpoints written on the
way failed to load. ``scripts/drills.sh`` runs them all; tests/test_drills.py holds each to its
promise.
"""
from __future__ import annotations

import argparse
import glob
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tensorboardX.proto import event_pb2

from ops.engine.checkpoint import read_checkpoint
from ops.engine.cli import new_parser

ROOT = Path(__file__).resolve().parents[1]
MODEL = ['Lite', '--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2', '--input_size', '32',
         '--lr', '0.01', '--eval-freq', '1', '--print-freq', '2', '--epochs', '2', '--save_steps', '3']
SAVED = re.compile(r'=> saved (\S+) \(epoch (\d+), batch (\d+)')
TIMING = re.compile(r'\tTime [^\t]*\tData [^\t]*')
RECORDED: list = []  # every DrillResult this process produced, for the table (tests' summary too)


@dataclass
class DrillResult:
    drill: str
    killed: str
    finished_by_itself: bool
    max_weight_diff: float
    logs_match: bool
    bad_checkpoints: int
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.max_weight_diff <= 1e-5 and self.logs_match and self.bad_checkpoints == 0 and not self.notes


# ---------------------------------------------------------------- running main.py

def make_dataset(root: Path) -> Path:
    """The drills' data: 16 training and 8 validation videos of 8 frames, 32x32."""
    if not (root / 'synthetic' / 'train_videofolder.txt').exists():
        subprocess.run([sys.executable, str(ROOT / 'tools' / 'gen_synthetic.py'), '--root_path', str(root),
                        '--num_videos', '16', '--num_val', '8', '--num_frames', '8', '--size', '32x32'],
                       check=True, capture_output=True)
    return root


def environment() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main_args(work: Path, data: Path, *extra: str) -> list[str]:
    return [str(ROOT / 'main.py'), 'synthetic', *MODEL, '--root_path', str(data), '--root_log', str(work / 'log'),
            '--root_model', str(work / 'checkpoint'), *extra]


def torchrun(*options: str) -> list[str]:
    return [sys.executable, '-m', 'torch.distributed.run', *options]


def fresh(work: Path) -> Path:
    """``work`` emptied: a drill starts with no run folder of an earlier attempt."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def start(cmd: list[str], work: Path, env: dict | None = None) -> subprocess.Popen:
    work.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env or environment(), start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def run_command(cmd: list[str], work: Path, timeout: float = 600, env: dict | None = None) -> tuple[int, str]:
    return finish(start(cmd, work, env), timeout)


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (from /proc)."""
    found = []
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.split('/')[2]))
    return found


def environ_of(pid: int) -> dict:
    try:
        with open(f'/proc/{pid}/environ', 'rb') as f:
            pairs = [item.split(b'=', 1) for item in f.read().split(b'\0') if b'=' in item]
        return {k.decode(): v.decode(errors='replace') for k, v in pairs}
    except OSError:
        return {}


def worker_of_rank(launcher: int, rank: int) -> int | None:
    """The main.py process of ``rank`` among the children of a torchrun launcher."""
    for pid in children(launcher):
        if environ_of(pid).get('RANK') == str(rank):
            return pid
    return None


def kill_on_save(proc: subprocess.Popen, occurrence: int, target) -> tuple[str, str]:
    """Read ``proc``'s output until its ``occurrence``-th mid-epoch checkpoint line, then SIGKILL
    the process ``target(proc)`` names. Returns (what was killed and when, output so far)."""
    seen, lines = 0, []
    for line in proc.stdout:
        lines.append(line)
        m = SAVED.search(line)
        if m:
            seen += 1
            if seen == occurrence:
                pid, who = target(proc)
                os.kill(pid, signal.SIGKILL)
                return f'{who} after the checkpoint at epoch {m[2]}, batch {m[3]}', ''.join(lines)
    raise RuntimeError('the run ended before the checkpoint to kill after:\n' + ''.join(lines[-30:]))


def read_back(proc: subprocess.Popen, before: str, timeout: float = 600) -> tuple[int, str]:
    rest, _ = proc.communicate(timeout=timeout)
    return proc.returncode, before + (rest or '')


# ---------------------------------------------------------------- comparing runs

def run_folder(work: Path, kind: str) -> Path:
    folders = [p for p in (work / kind).iterdir() if p.is_dir()]
    if len(folders) != 1:
        raise RuntimeError(f'expected one run folder in {work / kind}, found {folders}')
    return folders[0]


def final_state(work: Path) -> dict:
    return read_checkpoint(str(run_folder(work, 'checkpoint') / 'ckpt.pth.tar'))


def max_weight_diff(a: dict, b: dict) -> float:
    """Largest absolute difference over every tensor of two checkpoints' state_dicts."""
    sa, sb = a['state_dict'], b['state_dict']
    if set(sa) != set(sb):
        return float('inf')
    return max(((sa[k].double() - sb[k].double()).abs().max().item() if sa[k].numel() else 0.0) for k in sa)


def bad_checkpoints(work: Path) -> int:
    """Checkpoint files in the run folder that do not load."""
    bad = 0
    for path in glob.glob(str(work / 'checkpoint' / '*' / '*.pth.tar')):
        try:
            read_checkpoint(path)
        except Exception:
            bad += 1
    return bad


def log_lines(work: Path) -> list[str]:
    """log.csv without its timing fields (the only part two equal runs do not share)."""
    text = (run_folder(work, 'log') / 'log.csv').read_text()
    return [TIMING.sub('', line) for line in text.splitlines()]


def read_scalars(log_dir: Path) -> list[tuple[str, int, float]]:
    """Every scalar in the tensorboard event files of ``log_dir``: (tag, step, value), sorted."""
    found = []
    for path in sorted(glob.glob(str(log_dir / 'events.out.tfevents.*'))):
        data = Path(path).read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack('<Q', data[pos:pos + 8])
            record = data[pos + 12:pos + 12 + length]
            pos += 12 + length + 4
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                found.append((value.tag, event.step, round(value.simple_value, 6)))
    return sorted(found)


def records_match(broken: Path, whole: Path, notes: list[str]) -> bool:
    """Whether log.csv (timings aside), the tensorboard scalars and ckpt.best.pth.tar are the
    unbroken run's; what differs goes into ``notes``."""
    ok = True
    a, b = log_lines(broken), log_lines(whole)
    if a != b:
        notes.append(f'log.csv: {len(a)} lines vs {len(b)} of the unbroken run')
        ok = False
    sa, sb = read_scalars(run_folder(broken, 'log')), read_scalars(run_folder(whole, 'log'))
    if sa != sb:
        notes.append(f'tensorboard: {len(sa)} scalars vs {len(sb)} of the unbroken run')
        ok = False
    best_a, best_b = (read_checkpoint(str(run_folder(w, 'checkpoint') / 'ckpt.best.pth.tar')) for w in (broken, whole))
    if (best_a['epoch'], best_a['best_prec1']) != (best_b['epoch'], best_b['best_prec1']) or \
            max_weight_diff(best_a, best_b) > 1e-5:
        notes.append(f"ckpt.best.pth.tar: epoch {best_a['epoch']} vs {best_b['epoch']} of the unbroken run")
        ok = False
    return ok


def compare(name: str, killed: str, by_itself: bool, broken: Path, whole: Path, notes: list[str],
            bad_before: int = 0) -> DrillResult:
    """The drill's result; ``bad_before``: checkpoints that did not load at the kills."""
    diff = max_weight_diff(final_state(broken), final_state(whole))
    result = DrillResult(name, killed, by_itself, diff, records_match(broken, whole, notes),
                         bad_before + bad_checkpoints(broken), notes)
    RECORDED.append(result)
    return result


# ---------------------------------------------------------------- the drills

class Drills:
    """Every drill, sharing its unbroken reference runs. ``work``: a scratch folder."""

    def __init__(self, work: Path, seed: int = 0) -> None:
        self.work = work
        self.data = make_dataset(work / 'data')
        self.rng = random.Random(seed)
        self._references: dict[str, Path] = {}

    def reference(self, kind: str) -> Path:
        """The unbroken run of a kind: 'one' (one process, one DataLoader worker) or 'two'
        (torchrun, two processes)."""
        if kind not in self._references:
            work = fresh(self.work / f'unbroken_{kind}')
            if kind == 'one':
                code, out = run_command([sys.executable, *main_args(work, self.data, '-b', '2', '-j', '1')], work)
            else:
                code, out = run_command(torchrun('--standalone', '--nproc_per_node=2',
                                         *main_args(work, self.data, '-b', '2', '-j', '0')), work)
            if code:
                raise RuntimeError(f'the unbroken {kind} run failed:\n{out[-3000:]}')
            self._references[kind] = work
        return self._references[kind]

    def kill_one(self) -> DrillResult:
        """One process, SIGKILL right after a mid-epoch checkpoint of its second epoch, then
        ``--resume auto``."""
        work = fresh(self.work / 'kill_one')
        args = main_args(work, self.data, '-b', '2', '-j', '1', '--resume', 'auto')
        proc = start([sys.executable, *args], work)
        killed, out = kill_on_save(proc, 4, lambda p: (p.pid, 'SIGKILL of main.py'))
        read_back(proc, out)
        bad = bad_checkpoints(work)
        code, out = run_command([sys.executable, *args], work)
        if code or 'continuing from' not in out:
            raise RuntimeError(f'resume failed:\n{out[-3000:]}')
        return compare('kill one process', killed, False, work, self.reference('one'), [], bad)

    def kill_random(self, kills: int = 3) -> DrillResult:
        """One process, SIGKILL at ``kills`` random moments (start-up, a step, a checkpoint write,
        validation...), each followed by ``--resume auto``, then left to finish."""
        work = fresh(self.work / 'kill_random')
        args = main_args(work, self.data, '-b', '2', '-j', '1', '--resume', 'auto')
        reference = self.reference('one')
        duration = getattr(self, '_one_duration', None) or self._time_one()
        moments, bad = [], 0
        for _ in range(kills):
            at = self.rng.uniform(0.05, 0.95) * duration
            proc = start([sys.executable, *args], work)
            try:
                proc.wait(timeout=at)
                moments.append(f'none (ended before {at:.1f} s)')
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                moments.append(f'{at:.1f} s')
            bad += bad_checkpoints(work)
        code, out = run_command([sys.executable, *args], work)
        if code:
            raise RuntimeError(f'resume failed:\n{out[-3000:]}')
        killed = f'SIGKILL of main.py at {", ".join(moments)} of a {duration:.0f} s run'
        return compare('kill at random moments', killed, False, work, reference, [], bad)

    def _time_one(self) -> float:
        work = fresh(self.work / 'timing_one')
        t0 = time.time()
        code, out = run_command([sys.executable, *main_args(work, self.data, '-b', '2', '-j', '1')], work)
        if code:
            raise RuntimeError(out[-3000:])
        self._one_duration = time.time() - t0
        return self._one_duration

    def kill_data_worker(self) -> DrillResult:
        """One process, SIGKILL of its DataLoader worker after a mid-epoch checkpoint: the run
        must stop with a message, then ``--resume auto`` finishes it."""
        work = fresh(self.work / 'kill_data_worker')
        args = main_args(work, self.data, '-b', '2', '-j', '1', '--resume', 'auto')
        proc = start([sys.executable, *args], work)

        def loader_worker(p):
            for _ in range(200):
                kids = children(p.pid)
                if kids:
                    return kids[0], 'SIGKILL of the DataLoader worker'
                time.sleep(0.01)
            raise RuntimeError('no DataLoader worker found')
        # after the first checkpoint (batch 3 of 8): more batches remain than a worker prefetches (2)
        killed, out = kill_on_save(proc, 1, loader_worker)
        code, out = read_back(proc, out)
        notes = []
        if code == 0 or 'data-loading worker died' not in out or '--resume auto' not in out:
            notes.append(f'the run did not stop with the worker message (exit {code}): {out[-600:]!r}')
        bad = bad_checkpoints(work)
        code, out = run_command([sys.executable, *args], work)
        if code:
            raise RuntimeError(f'resume failed:\n{out[-3000:]}')
        return compare('kill a DataLoader worker', killed, False, work, self.reference('one'), notes, bad)

    def torchrun_restart(self) -> DrillResult:
        """torchrun with 2 processes and --max-restarts=1: SIGKILL of rank 1 after a mid-epoch
        checkpoint; the job must finish by itself."""
        work = fresh(self.work / 'torchrun_restart')
        cmd = torchrun('--standalone', '--nproc_per_node=2', '--max-restarts=1',
                       *main_args(work, self.data, '-b', '2', '-j', '0', '--resume', 'auto'))
        proc = start(cmd, work)

        def rank1(p):
            for _ in range(200):
                pid = worker_of_rank(p.pid, 1)
                if pid:
                    return pid, 'SIGKILL of the rank-1 worker'
                time.sleep(0.01)
            raise RuntimeError('no rank-1 worker found')
        killed, out = kill_on_save(proc, 4, rank1)
        code, out = read_back(proc, out)
        notes = [] if 'continuing from' in out else ['the restarted workers did not resume']
        if code:
            raise RuntimeError(f'the job did not finish by itself:\n{out[-3000:]}')
        return compare('torchrun restart', killed, code == 0 and not notes, work, self.reference('two'), notes)

    def two_nodes(self) -> DrillResult:
        """Two torchrun launchers on this machine as two nodes of one process each (the README's
        multi-node command: NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT), against one node of two."""
        work = fresh(self.work / 'two_nodes')
        port = str(free_port())
        procs = []
        for node in (0, 1):
            env = dict(environment(), NNODES='2', NODE_RANK=str(node), MASTER_ADDR='127.0.0.1', MASTER_PORT=port,
                       NPROC='1', MAX_RESTARTS='0')
            procs.append(start(['bash', str(ROOT / 'scripts' / 'train' / 'launch.sh'),
                                *main_args(work, self.data, '-b', '2', '-j', '0')[1:]], work, env))
        results = [finish(p) for p in procs]
        for code, out in results:
            if code:
                raise RuntimeError(f'a node failed:\n{out[-3000:]}')
        return compare('two nodes', 'nothing (a run across two launchers)', True, work, self.reference('two'), [])

    ALL = ('kill_one', 'kill_random', 'kill_data_worker', 'torchrun_restart', 'two_nodes')


def table(results: list[DrillResult]) -> str:
    head = ('drill', 'what was killed, and when', 'finished by itself', 'max weight diff', 'logs as unbroken',
            'bad checkpoints')
    rows = [head] + [(r.drill, r.killed, 'yes' if r.finished_by_itself else 'no (--resume auto)',
                      f'{r.max_weight_diff:.1e}', 'yes' if r.logs_match else 'NO', str(r.bad_checkpoints))
                     for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ['| ' + ' | '.join(c.ljust(w) for c, w in zip(row, widths)) + ' |' for row in rows]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__, prog='tools/drills.py')
    p.add_argument('--only', nargs='+', choices=Drills.ALL, default=list(Drills.ALL), help='drills to run')
    p.add_argument('--workdir', default=None, help='scratch folder (None: a new temporary folder)')
    p.add_argument('--seed', type=int, default=None,
                   help='seed of the random kill moments (None: from the clock; printed either way)')
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seed is None:
        args.seed = int(time.time()) % 10000
    work = Path(args.workdir or tempfile.mkdtemp(prefix='pan_drills_'))
    print(f'=> drills in {work} (seed {args.seed}), torch {torch.__version__}, {os.cpu_count()} CPU cores',
          flush=True)
    drills, results = Drills(work, args.seed), []
    for name in args.only:
        t0 = time.time()
        result = getattr(drills, name)()
        results.append(result)
        print(f'=> {name}: {"ok" if result.passed else "FAILED"} in {time.time() - t0:.0f} s'
              + (f' ({"; ".join(result.notes)})' if result.notes else ''), flush=True)
    print(table(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
