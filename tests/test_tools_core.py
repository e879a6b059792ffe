"""The FLOPs counter agrees with the paper; the PA benchmark runs and prints its table."""
import re
import subprocess
import sys


def run_tool(repo_root, *args):
    result = subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True, timeout=300)
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
    diff = float(re.search(r'max \|PA - loop formulation\| = ([\d.e+-]+)', out)[1])
    assert diff <= 1e-4
    assert re.search(r'PA \(CPU\) vs loop formulation \(CPU\): [\d.]+x', out)


def test_benchmark_train_runs(repo_root):
    out = run_tool(repo_root, 'tools/benchmark_train.py', '--arch', 'mobilenetv2', '--modalities', 'Lite', 'PA',
                   '--size', '32', '--batch', '2', '--segments', '2', '--iters', '1', '--warmup', '0')
    rows = [ln.split() for ln in out.splitlines() if ln.startswith('mobilenetv2')]
    assert len(rows) == 2 * 2  # modalities x layouts (no CUDA here: no amp rows)
    assert {r[2] for r in rows} == {'default', 'channels_last'}
    for row in rows:
        train, infer, peak = map(float, row[-3:])
        assert train > 0 and infer > 0 and peak > 0
