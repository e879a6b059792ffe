"""The FLOPs counter agrees with the paper; the PA benchmark runs and prints its table."""
import os
import re
import subprocess
import sys


def run_tool(repo_root, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True, timeout=300,
                            env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_count_flops_matches_paper(repo_root, fixture_json):
    out = run_tool(repo_root, 'tools/count_flops.py')
    paper = fixture_json('flops_paper.json')
    rows = {}
    for line in out.splitlines():
        m = re.match(r'(Lite|RGB|PA|Full|En)\s+(resnet\d+)\s+(\d+)\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)', line)
        if m:
            rows[(m[2], f'{m[1]}_{m[3]}')] = (float(m[4]), float(m[5]), float(m[6]))
    checked = 0
    for arch, entries in paper.items():
        if arch == 'note':
            continue
        for key, ref in entries.items():
            gflops, run_here, params = rows[(arch, key)]
            assert abs(gflops - ref['standard_counter']) <= 0.01, (arch, key)
            if 'paper' in ref:
                assert abs(gflops / ref['paper'] - 1) <= 0.01, (arch, key, gflops)
                checked += 1
            assert run_here <= gflops  # PA on frame differences never costs more
    assert checked == 6
    assert 23.5 < rows[('resnet50', 'Lite_224')][2] < 24.5  # params (M)
    assert 'En' in out and '*2' in out


def test_benchmark_pa_runs(repo_root):
    out = run_tool(repo_root, 'tools/benchmark_pa.py', '--clips', '1', '--segments', '2', '--size', '32',
                   '--repeats', '1', '--flow_pairs', '2')
    assert 'PA, this project (CPU)' in out and 'release loop formulation (CPU)' in out
    assert re.search(r'; .* \(AMX (yes|no), AVX-512 BF16 (yes|no)\), 1 CPU threads', out)
    rows = {tuple(m[:2]): float(m[2]) for m in re.findall(r'\[CPU\] (\w+) (\w+): max \|PA - loop formulation\| '
                                                         r'= [\d.e+-]+ \(([\d.e+-]+) of the largest', out)}
    assert set(rows) == {('fp32', 'default'), ('fp32', 'channels_last'), ('bf16', 'default'),
                         ('bf16', 'channels_last')}
    assert rows[('fp32', 'default')] <= 1e-5 and rows[('bf16', 'channels_last')] <= 2e-2
    assert re.search(r'PA \(CPU\) vs loop formulation \(CPU\): [\d.]+x', out)


def test_benchmark_pa_against_raft(repo_root):
    out = run_tool(repo_root, 'tools/benchmark_pa.py', '--clips', '1', '--segments', '2', '--size', '128',
                   '--repeats', '1', '--flow_pairs', '2', '--no_flow', '--no_channels_last', '--raft', '--device', 'cpu')
    rows = re.findall(r'RAFT (small|large) flow, random weights \(CPU\)\s+(fp32|bf16)\s+-\s+([\d.]+)', out)
    assert {(m, p) for m, p, _ in rows} == {(m, p) for m in ('small', 'large') for p in ('fp32', 'bf16')}
    assert all(float(fps) > 0 for *_, fps in rows)
    for m, p, fps in rows:  # PA's speed-up over each RAFT row, from the same run's figures
        pa = float(re.search(r'PA, this project \(CPU\)\s+fp32\s+default\s+([\d.]+)', out)[1])
        ratio = float(re.search(rf'PA \(CPU\) vs RAFT {m} \(CPU, {p}\): (\d+)x', out)[1])
        # the table prints frames/s to 0.1: allow for that rounding
        assert abs(ratio - pa / float(fps)) <= 0.5 + ratio * (0.06 / float(fps) + 0.001)
    small = subprocess.run([sys.executable, 'tools/benchmark_pa.py', '--size', '64', '--raft'], cwd=repo_root,
                           capture_output=True, text=True, timeout=120)
    assert small.returncode == 2 and 'RAFT needs frames of at least 128 pixels' in small.stderr


def test_benchmark_train_runs(repo_root):
    out = run_tool(repo_root, 'tools/benchmark_train.py', '--arch', 'mobilenetv2', '--modalities', 'Lite',
                   '--size', '32', '--batch', '2', '--infer_batch', '1', '--segments', '2', '--iters', '1',
                   '--warmup', '0')
    assert '2 per training step, 1 per inference pass' in out
    assert re.search(r'\(AMX (yes|no), AVX-512 BF16 (yes|no)\), 1 threads', out)
    assert re.search(r"the tools' default here precision (fp32|bf16) ", out)
    assert 'limit: torch.matmul of 1024x1024 matrices' in out
    rows = [ln.split() for ln in out.splitlines() if ln.startswith('mobilenetv2')]
    # fp32, fp32 + channels-last, bf16, bf16 + channels-last, side by side, eager (no --compile)
    assert [(r[2], r[3], r[4]) for r in rows] == [('fp32', 'default', 'off'), ('fp32', 'channels_last', 'off'),
                                                  ('bf16', 'default', 'off'), ('bf16', 'channels_last', 'off')]
    assert rows[0][6] == rows[0][10] == '1.00x'
    for row in rows:
        train, infer, limit, peak = float(row[5]), float(row[9]), float(row[13]), float(row[14])
        assert train > 0 and infer > 0 and limit > 0 and peak > 0
        # GFLOP/s = counted FLOPs x clips/s, and its share of the row's limit
        for rate, gflops, share in ((train, row[7], row[8]), (infer, row[11], row[12])):
            assert float(gflops) > 0 and abs(float(share.rstrip('%')) - 100 * float(gflops) / limit) <= 1


# A stand-in for a checkout of the release, as small as the baseline's plumbing needs: the same
# module names and PAN signature, a torchvision constructor called with ``pretrained`` by position,
# a PA whose nn.PairwiseDistance must reduce over the channels for its output's view to work, and
# a train() that returns None.
FAKE_RELEASE = {
    'ops/__init__.py': '',
    'ops/temporal_shift.py': '',
    'ops/PAN_modules.py': """
import torch
from torch import nn

class PA(nn.Module):
    def __init__(self, n_length):
        super().__init__()
        self.shallow_conv = nn.Conv2d(3, 8, 7, 1, 3)
        self.n_length = n_length

    def forward(self, x):
        h, w = x.shape[-2:]
        x = self.shallow_conv(x.reshape(-1, 3, h, w)).reshape(-1, self.n_length, 8, h * w)
        d = [nn.PairwiseDistance(p=2)(x[:, i], x[:, i + 1]).unsqueeze(1) for i in range(self.n_length - 1)]
        return torch.cat(d, 1).view(-1, self.n_length - 1, h, w)
""",
    'ops/models.py': """
import torch
import torchvision
from torch import nn
from ops.PAN_modules import PA

class PAN(nn.Module):
    def __init__(self, num_class, num_segments, modality, base_model='resnet101', dropout=0.8, partial_bn=True,
                 pretrain='imagenet', is_shift=False, shift_div=8, shift_place='blockres', fc_lr5=False,
                 data_length=1, has_VAP=False):
        super().__init__()
        self.data_length, self.modality = data_length, modality
        self.PA = PA(data_length)
        getattr(torchvision.models, base_model)(True if pretrain == 'imagenet' else False)
        self.conv = nn.Conv2d(6, 4, 3)
        self.fc = nn.Linear(4, num_class)

    def get_optim_policies(self):
        return [{'params': list(self.parameters())}, {'params': []}]

    def train(self, mode=True):
        super().train(mode)

    def forward(self, x):
        h, w = x.shape[-2:]
        x = x.view(-1, 3 * self.data_length, h, w)
        x = torch.cat((x[:, :3], self.PA(x)), 1)
        return self.fc(self.conv(x).mean((2, 3))).view(-1, 2, self.fc.out_features).mean(1)
""",
}


def test_benchmark_train_release_baseline(repo_root, tmp_path):
    release = tmp_path / 'PAN-PyTorch'
    for name, text in FAKE_RELEASE.items():
        (release / name).parent.mkdir(parents=True, exist_ok=True)
        (release / name).write_text(text)
    args = ['tools/benchmark_train.py', '--arch', 'resnet18', '--modalities', 'Lite', '--size', '32', '--batch', '2',
            '--infer_batch', '1', '--segments', '2', '--iters', '1', '--warmup', '0', '--no_amp',
            '--no_channels_last']
    out = run_tool(repo_root, *args, '--release_dir', str(release))
    rows = [ln.split() for ln in out.splitlines() if ln.startswith('resnet18')]
    assert [r[:4] for r in rows] == [['resnet18', 'Lite', 'fp32', 'release'], ['resnet18', 'Lite', 'fp32', 'default']]
    release_rate, ours = float(rows[0][6]), rows[1]
    assert release_rate > 0 and float(rows[0][-5]) > 0   # clips/s and peak MB of the release's code
    speedup = float(ours[5]) / release_rate   # printed with 2 decimals from unrounded rates
    assert abs(float(ours[-1].rstrip('x')) - speedup) <= 0.006 + 0.01 * speedup
    # not a checkout: refused before anything runs, naming the missing file
    bad = subprocess.run([sys.executable, *args, '--release_dir', str(tmp_path)], cwd=repo_root, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and 'ops/models.py is missing' in bad.stderr


def test_benchmark_online_says_how_close_to_the_limit(capsys):
    from tools import benchmark_online
    rows = benchmark_online.main(['--arch', 'mobilenetv2', '--size', '32', '--segments', '2', '--steps', '1',
                                  '--warmup', '0', '--no_onnx', '--no_amp'])
    out = capsys.readouterr().out
    assert 'limit: torch.matmul of 1024x1024 matrices' in out
    assert [(r['causal'], r['compiled'], r['precision']) for r in rows] == [(False, False, 'fp32'),
                                                                             (True, False, 'fp32')]
    for r in rows:
        assert r['limit'] > 0 and r['gflops'] > 0
        line = next(ln for ln in out.splitlines()
                    if ln.startswith('mobilenetv2') and ('causal' if r['causal'] else 'bidirectional') in ln)
        assert f"{r['gflops']:.1f}" in line and f"{r['gflops'] / r['limit']:.0%}" in line


def test_benchmark_train_row_that_does_not_fit_says_so(monkeypatch):
    import torch
    from tools import benchmark_train

    def too_big(*args):
        raise torch.cuda.OutOfMemoryError('CUDA out of memory')
    monkeypatch.setattr(benchmark_train, '_bench_config', too_big)
    row = benchmark_train.bench_config('resnet50', 'Lite', 224, 64, 64, 8, True, False, 1, 0, torch.device('cpu'),
                                       compiled=True)
    assert row['oom'] and (row['arch'], row['modality'], row['precision'], row['layout']) == \
        ('resnet50', 'Lite', 'fp32', 'channels_last')
    line = benchmark_train.format_train_row(row, None, row)
    assert line.split()[:5] == ['resnet50', 'Lite', 'fp32', 'channels_last', 'on'] and line.endswith('out of memory')
