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
