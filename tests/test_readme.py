"""The README's commands work as written in the environment the two set-up commands leave: every
`python`, `torchrun` and `bash` line of its shell blocks names a script that exists and answers -h."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from forked import run_forked

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """Command lines of the README's ```bash blocks (continuations joined, comments dropped)."""
    text = (ROOT / 'README.md').read_text()
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split('  #')[0].split(' # ')[0].strip()
            if line.split(' ', 1)[0] in ('python', 'bash', 'torchrun'):
                commands.append(line)
    return commands


def _script(command: str) -> str:
    words = shlex.split(command)
    return next(w for w in words[1:] if w.endswith(('.py', '.sh')))


def _env() -> dict:
    """The set-up's environment: this Python first on PATH, the project found as installed."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    env['NPROC'] = '1'  # the training scripts would otherwise ask torch how many GPUs there are
    return env


COMMANDS = readme_commands()


def test_the_readme_shows_the_commands_this_test_checks():
    scripts = {_script(c) for c in COMMANDS}
    assert {'scripts/quickstart.sh', 'scripts/test.sh', 'main.py', 'test_models.py', 'tools/demo.py',
            'scripts/train/sthv1/Lite.sh', 'scripts/test/sthv1/En.sh'} <= scripts
    assert any(c.startswith('torchrun') for c in COMMANDS)
    assert 'source .venv/bin/activate' in (ROOT / 'README.md').read_text()


def test_every_python_script_of_the_readme_answers_help():
    scripts = sorted({_script(c) for c in COMMANDS if not c.startswith('bash')})
    results = run_forked([{'run': s, 'argv': ['-h']} for s in scripts], cwd=ROOT, env=_env())
    failed = {s: (out + err)[-800:] for s, (rc, out, err) in zip(scripts, results) if rc != 0 or 'usage:' not in out}
    assert not failed, failed


BASH_SCRIPTS = sorted({_script(c) for c in COMMANDS if c.startswith('bash')})
# one training and one test script run with -h; the others share their launcher (checked below)
RUN_WITH_HELP = {next(s for s in BASH_SCRIPTS if s.startswith('scripts/train/')),
                 next(s for s in BASH_SCRIPTS if s.startswith('scripts/test/'))}


@pytest.mark.parametrize('script', BASH_SCRIPTS)
def test_every_bash_script_of_the_readme_parses_and_passes_its_arguments_on(script):
    assert (ROOT / script).is_file(), script
    assert subprocess.run(['bash', '-n', script], cwd=ROOT).returncode == 0
    text = (ROOT / script).read_text()
    if script.startswith('scripts/train/'):
        assert 'launch.sh' in text and '"$@"' in text
    if script.startswith('scripts/test/'):
        assert 'run_test.sh' in text and '"$@"' in text
    if script in RUN_WITH_HELP:
        out = subprocess.run(['bash', script, '-h'], cwd=ROOT, env=_env(), capture_output=True, text=True,
                             timeout=300)
        if script.startswith('scripts/train/'):
            assert out.returncode == 0 and 'usage: main.py' in out.stdout, out.stderr[-800:]
        else:  # without the released checkpoints it says which files to get and where
            assert ('usage: test_models.py' in out.stdout) or (
                out.returncode == 1 and 'missing checkpoint(s)' in out.stderr and 'pretrained/README.md' in out.stderr)
