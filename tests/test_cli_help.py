"""Every tool's ``-h`` says what each flag means and shows its default (ops/engine/cli.py's formatter), and a
missing input ends a tool with one ``error:`` line and exit status 2."""
import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.engine.cli import HelpFormatter

ROOT = Path(__file__).resolve().parents[1]
TOOLS = sorted(p.stem for p in (ROOT / 'tools').glob('*.py') if not p.stem.startswith('_'))
UNSET = (None, False, argparse.SUPPRESS)


def test_every_tool_is_checked():
    assert TOOLS == ['benchmark_data', 'benchmark_online', 'benchmark_pa', 'benchmark_train', 'count_flops',
                     'custom_recipe', 'demo', 'drills', 'export_onnx', 'frames_to_lmdb', 'gen_label_kinetics',
                     'gen_label_sthv1', 'gen_label_sthv2', 'gen_synthetic', 'online_demo', 'prepare_dataset',
                     'vid2img_kinetics', 'vid2img_sthv2', 'visualize_pa', 'web_demo']


def _help_line(parser: argparse.ArgumentParser, text: str, action: argparse.Action) -> str:
    """The line of ``text``, the help rendered unwrapped, that holds ``action``'s help."""
    key = action.option_strings[0] if action.option_strings else (action.metavar or action.dest)
    if action.choices and not action.option_strings:
        key = '{' + ','.join(map(str, action.choices)) + '}'
    start = min(i for i in (text.find('\npositional arguments:'), text.find('\noptions:')) if i >= 0)
    end = text.rfind(parser.epilog) if parser.epilog else len(text)
    lines = text[start:end].splitlines()
    found = [i for i, line in enumerate(lines) if line.lstrip().split(' ')[0].rstrip(',') == key]
    assert len(found) == 1, (key, found)
    i = found[0]
    # a long invocation puts the help on the next, further indented line
    follows = i + 1 < len(lines) and len(lines[i + 1]) - len(lines[i + 1].lstrip()) > 2
    return lines[i] + (' ' + lines[i + 1].strip() if follows else '')


@pytest.mark.parametrize('name', TOOLS)
def test_help_shows_every_flag_its_meaning_and_default(name, monkeypatch):
    monkeypatch.setenv('COLUMNS', '1000')  # one line per flag
    parser = importlib.import_module(f'tools.{name}').build_parser()
    assert issubclass(parser.formatter_class, HelpFormatter), parser.formatter_class
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help.strip(), f'{name}: {action.dest} has no help'
        line = _help_line(parser, text, action)
        assert line.count('(default') <= 1, f'{name}: default written twice: {line}'
        if action.default not in UNSET:
            assert f'(default: {action.default})' in line, line
        if action.default is None and action.nargs != 0 and not action.required:
            # argparse shows "(default: None)": the text says what leaving it out does
            assert 'None' in action.help, f'{name}: {action.dest} does not say what None means'
        if action.required and action.option_strings:  # a required flag shows no default
            assert action.default is argparse.SUPPRESS and 'required' in action.help, line


def _env() -> dict:
    return {**os.environ, 'PYTHONPATH': str(ROOT)}


def test_tools_print_help_from_another_folder(tmp_path):
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / 'tools' / f'{name}.py'), '-h'], cwd=tmp_path,
                                    env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ('gen_synthetic', 'gen_label_sthv1')}  # tools that do not import torch: fast
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (name, err)
        assert out.startswith('usage:') and '(default: ' in out and '--root_path' in out, (name, out)


def test_visualize_pa_missing_video_exits_2_with_one_error_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / 'visualize_pa.py'), 'nothere.mp4'], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == ['error: no such video file or frame folder: nothere.mp4']


def test_demo_missing_inputs_exit_2(tmp_path, capsys):
    from tools import demo
    with pytest.raises(SystemExit) as info:
        demo.main(['--weights', str(tmp_path / 'none.pth.tar'), str(tmp_path / 'nothere.mp4'), '--cpu'])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: no such video file or frame folder')
    assert str(info.value) == err[0]
    (tmp_path / 'frames').mkdir()
    from PIL import Image
    Image.new('RGB', (8, 8)).save(tmp_path / 'frames' / '00001.jpg')
    with pytest.raises(SystemExit, match='^error: checkpoint not found') as info:
        demo.main(['--weights', str(tmp_path / 'none.pth.tar'), str(tmp_path / 'frames'), '--cpu'])
    assert info.value.code == 2


def test_frames_to_lmdb_missing_list_exits_2(tmp_path, capsys):
    from tools import frames_to_lmdb
    status = frames_to_lmdb.main(['--frames_dir', str(tmp_path), '--lists', str(tmp_path / 'none.txt'),
                                  '--image_tmpl', '{:05d}.jpg'])
    assert status == 2
    assert capsys.readouterr().err.strip().splitlines() == [f'error: list file not found: {tmp_path / "none.txt"}']
