"""The front door of main.py and test_models.py: -h gives every flag's meaning and default, the
release's command lines parse, a user's mistake ends in one 'error:' line and exit status 2 (a
traceback only with --debug), and main.py -e logs to an evaluation folder and writes nothing else."""
import shlex
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import main
import opts
import test_models
from conftest import ROOT
from forked import run_forked
from ops.engine import cli
from ops.engine.cli import error_message, run_cli_main
from ops.frames.image_io import FrameReadError
from ops.models import PAN

COMPAT = 'kept for compatibility with the release'
TINY = ['--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2', '--input_size', '32', '-b', '4',
        '-j', '0']


# ---------------------------------------------------------------- -h

@pytest.mark.parametrize('parser', [opts.build_parser(), test_models.build_parser()], ids=['main', 'test_models'])
def test_help_gives_every_flag_a_meaning_and_default(parser):
    formatter = parser.formatter_class(parser.prog)
    for action in parser._actions:
        if action.dest == 'help':
            continue
        assert action.help, action.option_strings or action.dest
        shown = formatter._get_help_string(action)
        if action.option_strings and not action.required:
            assert 'default' in shown.lower(), action.option_strings
    text = parser.format_help()
    assert '(default: 8)' in text and 'error:' in parser.description and '--debug' in text


def test_help_says_which_flags_are_kept_only_for_compatibility():
    def helps(parser):
        return {s: a.help for a in parser._actions for s in a.option_strings}
    train, test = helps(opts.build_parser()), helps(test_models.build_parser())
    for flag in ('--k', '--snapshot_pref', '--flow_prefix', '--img_feature_dim'):
        assert COMPAT in train[flag] and 'unused' in train[flag], flag
    assert COMPAT in train['--non_local'] and 'not implemented' in train['--non_local']
    assert 'cross-entropy' in train['--loss_type'] and 'only' in train['--loss_type']
    for flag in ('--pretrain', '--VAP'):
        assert COMPAT in test[flag] and 'unused' in test[flag], flag
    assert COMPAT in test['--num_set_segments'] and 'only value implemented' in test['--num_set_segments']


# ---------------------------------------------------------------- the release's command lines

# scripts/train/sthv{1,2}/*.sh and scripts/test/sthv{1,2}/*.sh of zhang-can/PAN-PyTorch, as released
RELEASE_TRAIN = [
    'python main.py something Lite --arch resnet50 --num_segments 8 --lr 0.01 --lr_steps 30 60 --epochs 80 --batch-size 64 -i 1 -j 8 --dropout 0.5',
    'python main.py something RGB --arch resnet50 --num_segments 8 --lr 0.01 --lr_steps 20 40 --epochs 50 --batch-size 64 -i 1 -j 8 --dropout 0.5',
    'python main.py something PA --arch resnet50 --num_segments 8 --lr 0.01 --lr_steps 30 60 --epochs 80 --batch-size 64 -i 1 -j 8 --dropout 0.5',
    'python main.py somethingv2 Lite --arch resnet50 --num_segments 8 --lr 0.01 --lr_steps 30 60 --epochs 80 --batch-size 64 -i 1 -j 8 --dropout 0.5',
    'python main.py somethingv2 RGB --arch resnet50 --num_segments 8 --lr 0.01 --lr_steps 20 40 --epochs 50 --batch-size 64 -i 1 -j 8 --dropout 0.5',
    'python main.py somethingv2 PA --arch resnet50 --num_segments 8 --lr 0.01 --lr_steps 30 60 --epochs 80 --batch-size 64 -i 1 -j 8 --dropout 0.5',
]
RELEASE_TEST = [
    'python test_models.py something \\\n--VAP --batch_size=64 -j=4 --test_crops=1 --test_segments=8,8,8 \\\n--weights=pretrained/PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar,pretrained/PAN_RGB_something_resnet50_shift8_blockres_avg_segment8_e50.pth.tar,pretrained/PAN_PA_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar \\\n--full_res --twice_sample',
    'python test_models.py something --VAP --batch_size=64 -j=4 --test_crops=1 --test_segments=8,8 --weights=pretrained/PAN_RGB_something_resnet50_shift8_blockres_avg_segment8_e50.pth.tar,pretrained/PAN_PA_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar ',
    'python test_models.py something --VAP --batch_size=64 -j=4 --test_crops=1 --test_segments=8 --weights=pretrained/PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar ',
    'python test_models.py somethingv2 \\\n--VAP --batch_size=64 -j=4 --test_crops=1 --test_segments=8,8,8 \\\n--weights=pretrained/PAN_Lite_somethingv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar,pretrained/PAN_RGB_somethingv2_resnet50_shift8_blockres_avg_segment8_e50.pth.tar,pretrained/PAN_PA_somethingv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar \\\n--full_res --twice_sample',
    'python test_models.py somethingv2 --VAP --batch_size=64 -j=4 --test_crops=1 --test_segments=8,8 --weights=pretrained/PAN_RGB_somethingv2_resnet50_shift8_blockres_avg_segment8_e50.pth.tar,pretrained/PAN_PA_somethingv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar ',
    'python test_models.py somethingv2 --VAP --batch_size=64 -j=4 --test_crops=1 --test_segments=8 --weights=pretrained/PAN_Lite_somethingv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar ',
]
# The TSM-style command lines PAN's users run (TSM's README flags, and the release flags TSM-derived
# scripts pass: --loss_type, --k, --snapshot_pref, --flow_prefix, --coeff, --num_set_segments)
TSM_STYLE_TRAIN = [
    'python main.py something RGB --arch resnet50 --num_segments 8 --gd 20 --lr 0.001 --lr_steps 30 60 --epochs 80 --batch-size 64 -j 16 --dropout 0.5 --consensus_type=avg --eval-freq=1 --shift --shift_div=8 --shift_place=blockres --npb --VAP',
    'python main.py somethingv2 PA --arch resnet50 --num_segments 8 --gd 20 --lr 0.01 --lr_steps 30 60 --epochs 80 --batch-size 64 -j 16 --dropout 0.5 --consensus_type=avg --eval-freq=1 --shift --shift_div=8 --shift_place=blockres --npb --VAP',
    'python main.py something Lite --arch resnet50 --num_segments 8 --gd 20 --lr 0.01 --lr_steps 30 60 --epochs 80 --batch-size 64 -j 16 --dropout 0.5 --consensus_type=avg --eval-freq=1 --shift --shift_div=8 --shift_place=blockres --npb --VAP --loss_type nll --k 3 --snapshot_pref xx --flow_prefix flow_',
]
TSM_STYLE_TEST = [
    'python test_models.py something --VAP --batch_size=1 -j=4 --test_crops=1 --test_segments=8,8,8 --weights=pretrained/PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar,pretrained/PAN_RGB_something_resnet50_shift8_blockres_avg_segment8_e50.pth.tar,pretrained/PAN_PA_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar --full_res --twice_sample --coeff 1,1,1',
    'python test_models.py somethingv2 --VAP --batch_size=1 -j=4 --test_crops=1 --test_segments=8,8,8 --weights=pretrained/PAN_Lite_somethingv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar,pretrained/PAN_RGB_somethingv2_resnet50_shift8_blockres_avg_segment8_e50.pth.tar,pretrained/PAN_PA_somethingv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar --full_res --twice_sample --coeff 1,1,1 --num_set_segments 1',
]


def _argv(command: str, script: str) -> list[str]:
    words = shlex.split(command.replace('\\\n', ' '))  # line continuations, as the shell reads them
    assert words[:2] == ['python', script]
    return words[2:]


@pytest.mark.parametrize('command', RELEASE_TRAIN + TSM_STYLE_TRAIN)
def test_release_train_commands_parse(command):
    words = _argv(command, 'main.py')
    args = opts.parse_args(words)
    assert (args.dataset, args.modality) == tuple(words[:2])
    assert (args.arch, args.num_segments, args.batch_size, args.dropout) == ('resnet50', 8, 64, 0.5)
    assert args.epochs in (50, 80) and args.lr in (0.01, 0.001) and len(args.lr_steps) == 2
    assert args.loss_type == 'nll' and args.VAP and args.shift and args.no_partialbn
    assert (args.shift_div, args.shift_place, args.consensus_type) == (8, 'blockres', 'avg')
    if '--snapshot_pref' in words:
        assert (args.k, args.snapshot_pref, args.flow_prefix) == (3, 'xx', 'flow_')


@pytest.mark.parametrize('command', RELEASE_TEST + TSM_STYLE_TEST)
def test_release_test_commands_parse(command):
    args = test_models.parse_test_args(_argv(command, 'test_models.py'))
    weights, segments, coeff, lists = test_models.branch_settings(args)
    assert args.dataset in ('something', 'somethingv2') and args.VAP and args.workers == 4
    assert len(weights) in (1, 2, 3) and segments == [8] * len(weights) and coeff == [1.0] * len(weights)
    assert all(w.startswith('pretrained/PAN_') and f'_{args.dataset}_' in w for w in weights) and lists == []
    assert args.twice_sample == args.full_res == (len(weights) == 3) and args.num_set_segments == 1


# ---------------------------------------------------------------- mistakes: 'error:' and status 2

def _parse_error(capsys, parse, argv):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.splitlines()[0]


@pytest.mark.parametrize('argv, names', [
    (['--loss_type', 'ce'], "--loss_type ce: only 'nll' (cross-entropy)"),
    (['--non_local'], '--non_local: not implemented'),
    (['--num_segments', '3', '--temporal_pool'], '--temporal_pool'),
    (['--num_segments', '1'], '--num_segments 1'),
    (['--eval-freq', '0'], '--eval-freq 0'),
    ([], 'the following arguments are required: modality'),
])
def test_main_option_mistakes(capsys, argv, names):
    first = _parse_error(capsys, opts.parse_args, ['something', *(['Lite'] if argv else []), *argv])
    assert first.startswith('error: ') and names in first, first


@pytest.mark.parametrize('argv, names', [
    (['--num_set_segments', '2'], '--num_set_segments 2: only 1 is implemented'),
    (['--dense_sample', '--twice_sample'], '--dense_sample and --twice_sample'),
    (['--test_crops', '4'], 'argument --test_crops'),
])
def test_test_models_option_mistakes(capsys, argv, names):
    first = _parse_error(capsys, test_models.parse_test_args, ['something', '--weights', 'x.pth.tar', *argv])
    assert first.startswith('error: ') and names in first, first


def _check_all(cases: dict, workdir) -> dict:
    """Run every ``name: (script, args, env)`` as ``python script args`` from ``workdir``, each in a
    fresh process (forked, see tests/forked.py); their results."""
    jobs = [{'run': str(ROOT / script), 'argv': args, 'cwd': str(workdir), 'env': env or {}}
            for script, args, env in cases.values()]
    results = run_forked(jobs, cwd=workdir)
    return {name: SimpleNamespace(returncode=status, stdout=out, stderr=err)
            for name, (status, out, err) in zip(cases, results)}


def _expect_error(results: dict, expected: dict) -> None:
    """Each run exited with status 2, its stderr's first line is 'error: ...' naming the thing, no traceback."""
    wrong = {}
    for name, names in expected.items():
        r = results[name]
        lines = r.stderr.splitlines()
        if r.returncode != 2 or not lines or not lines[0].startswith('error: ') or names not in lines[0] \
                or 'Traceback' in r.stderr:
            wrong[name] = (r.returncode, names, r.stderr[-1500:])
    assert not wrong, wrong


def _bad_list(data_root, folder, split):
    lines = (data_root / 'synthetic' / f'{split}_videofolder.txt').read_text().splitlines()
    lines[1] = lines[1].rsplit(' ', 2)[0] + ' eight 1'
    path = folder / f'bad_{split}.txt'
    path.write_text('\n'.join(lines) + '\n')
    return path


def test_main_mistakes_end_in_one_error_line(tmp_path, synthetic_root):
    unfit = tmp_path / 'unfit.pth.tar'
    torch.save({'epoch': 1, 'state_dict': {'module.nothing': torch.zeros(1)}}, unfit)
    bad = _bad_list(synthetic_root, tmp_path, 'train')
    common = ['synthetic', 'Lite', *TINY, '--root_path', str(synthetic_root), '--root_log', str(tmp_path / 'log'),
              '--root_model', str(tmp_path / 'checkpoint')]
    cases = {
        'resume': (['--resume', 'missing.pth.tar'], None, '--resume missing.pth.tar: no such checkpoint file'),
        'tune_from': (['--tune_from', 'gone.pth.tar'], None, '--tune_from gone.pth.tar: no such checkpoint file'),
        'unfit': (['--resume', str(unfit)], None, f'{unfit} does not fit this model'),
        'no_list': (['--train_list', str(tmp_path / 'none.txt')], None, f'train list {tmp_path}/none.txt'),
        'bad_line': (['--train_list', str(bad)], None, f'{bad}: 1 malformed line(s)'),
        # torchrun's variables without torchrun: refused before joining a process group
        'batch_rank0': (['-b', '3'], {'WORLD_SIZE': '2', 'RANK': '0'}, '--batch-size 3: the total over 2 processes'),
        'batch_rank1': (['-b', '3'], {'WORLD_SIZE': '2', 'RANK': '1'}, None),
        'debug': (['--resume', 'missing.pth.tar', '--debug'], None, None),
    }
    results = _check_all({k: ('main.py', common + args, env) for k, (args, env, _) in cases.items()}, tmp_path)
    _expect_error(results, {k: names for k, (_, _, names) in cases.items() if names})
    assert results['batch_rank1'].returncode == 2 and results['batch_rank1'].stderr.strip() == ''  # rank 0 says it
    debug = results['debug']
    assert debug.returncode != 0 and 'Traceback' in debug.stderr
    assert 'FileNotFoundError: --resume missing.pth.tar: no such checkpoint file' in debug.stderr
    assert not (tmp_path / 'checkpoint').exists()


def test_test_models_mistakes_end_in_one_error_line(tmp_path, synthetic_root):
    garbage = tmp_path / 'garbage.pth.tar'
    garbage.write_bytes(b'not a checkpoint')
    # named as released, 4 classes as the synthetic dataset: its options read, its weights do not fit
    unfit = tmp_path / 'PAN_Lite_synthetic_resnet18_shift8_blockres_avg_segment2_e1.pth.tar'
    torch.save({'state_dict': {'module.new_fc.bias': torch.zeros(4)}}, unfit)
    bad = _bad_list(synthetic_root, tmp_path, 'val')
    common = ['synthetic', '--test_segments=2', '--input_size', '32', '-j', '0', '--root_path', str(synthetic_root)]
    cases = {
        'missing': ([f'--weights={tmp_path}/nothing.pth.tar'], f'--weights: checkpoint(s) not found: {tmp_path}/nothing'),
        'garbage': ([f'--weights={garbage}'], f'Cannot read checkpoint {garbage}'),
        'unfit': ([f'--weights={unfit}'], f'{unfit} does not fit this model'),
        'no_list': ([f'--weights={unfit}', '--test_list', str(tmp_path / 'none.txt')], f'val list {tmp_path}/none.txt'),
        'bad_line': ([f'--weights={unfit}', '--test_list', str(bad)], f'{bad}: 1 malformed line(s)'),
        'coeff': ([f'--weights={unfit}', '--coeff', '1,1'], '--coeff 1,1: 1 checkpoint(s) in --weights but 2'),
        'debug': ([f'--weights={garbage}', '--debug'], None),
    }
    results = _check_all({k: ('test_models.py', common + args, None) for k, (args, _) in cases.items()}, tmp_path)
    _expect_error(results, {k: names for k, (_, names) in cases.items() if names})
    assert 'line 2: frame count' in results['bad_line'].stderr  # the line, on the next lines
    debug = results['debug']
    assert debug.returncode != 0 and 'Traceback' in debug.stderr and 'InputError: Cannot read checkpoint' in debug.stderr


class _MissingFrame(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        raise FrameReadError(f'missing frame: clip/img_0000{i + 1}.jpg [list.txt:{i + 1}]')


def test_error_from_a_loader_worker_keeps_its_own_message():
    with pytest.raises(FrameReadError) as info:
        next(iter(DataLoader(_MissingFrame(), num_workers=1)))
    assert 'Traceback' in str(info.value)  # torch puts the worker's traceback in the message
    lines = error_message(info.value).splitlines()
    assert lines[0] == 'missing frame: clip/img_00001.jpg [list.txt:1]'
    assert 'DataLoader worker process 0' in lines[1] and 'Traceback' not in error_message(info.value)


@pytest.mark.parametrize('rank, error, shown', [
    ('0', FileNotFoundError('list file not found: a.txt'), 'error: list file not found: a.txt'),
    ('1', FileNotFoundError('list file not found: a.txt'), ''),  # the same in every process: rank 0 says it
    ('1', FrameReadError('missing frame: b/1.jpg'), 'error: (rank 1) missing frame: b/1.jpg'),  # its share alone
    ('0', SystemExit('error: two things contradict'), 'error: two things contradict'),
])
def test_run_cli_main_under_torchrun(monkeypatch, capsys, rank, error, shown):
    monkeypatch.setenv('RANK', rank)
    monkeypatch.setattr(cli, 'QUIET_RANK_GRACE_S', 0.0)

    def failing(argv):
        raise error
    with pytest.raises(SystemExit) as exit_info:
        run_cli_main(failing, [], every_rank=(FrameReadError,))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == shown


def test_run_cli_main_leaves_bugs_and_debug_alone(monkeypatch):
    monkeypatch.delenv('RANK', raising=False)

    def buggy(argv):
        raise ValueError('a bug, not an input error')
    with pytest.raises(ValueError):
        run_cli_main(buggy, [])

    def missing(argv):
        raise FileNotFoundError('no such file: x')
    with pytest.raises(FileNotFoundError):
        run_cli_main(missing, ['--debug'])
    assert run_cli_main(lambda argv: 7, []) == 7


# ---------------------------------------------------------------- main.py -e

def test_evaluate_only_logs_to_an_eval_folder_and_writes_nothing_else(tmp_path, synthetic_root):
    args = opts.parse_args(['synthetic', 'PA', *TINY])
    model = PAN(**main.model_options(args, 4), pretrain='scratch', print_spec=False)
    state = {'module.' + k: v for k, v in model.state_dict().items()}
    ours, released = tmp_path / 'ours.pth.tar', tmp_path / 'released.pth.tar'
    torch.save({'epoch': 3, 'state_dict': state, 'best_prec1': 0.0, 'store_name': 'my_run'}, ours)
    torch.save({'epoch': 80, 'state_dict': state}, released)
    runs = {}
    for name, ckpt in (('ours', ours), ('released', released)):
        work = tmp_path / name
        work.mkdir()
        # no train list is needed: evaluation reads the val list alone
        runs[name] = ('main.py', ['synthetic', 'PA', *TINY, '--epochs', '80', '-e', '--resume', str(ckpt),
                                  '--root_path', str(synthetic_root), '--train_list', str(tmp_path / 'none.txt'),
                                  '--root_log', str(work / 'log'), '--root_model', str(work / 'checkpoint')], None)
    results = _check_all(runs, tmp_path)
    expected = {'ours': 'my_run_eval', 'released': 'PAN_PA_synthetic_resnet18_shift8_blockres_avg_segment2_scratch_eval'}
    for name, folder in expected.items():
        result, work = results[name], tmp_path / name
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.count('Testing Results: Prec@1') == 1
        assert [p.name for p in (work / 'log').iterdir()] == [folder]  # no _e80: it trains no epoch
        assert [p.name for p in (work / 'log' / folder).iterdir()] == ['log.csv']  # no args.txt, no events
        text = (work / 'log' / folder / 'log.csv').read_text()
        assert text.startswith(f'Evaluate {tmp_path}/{name}.pth.tar (epoch ') and 'Testing Results' in text
        assert not (work / 'checkpoint').exists()


@pytest.mark.parametrize('flags, causal', [([], False), (['--causal_shift'], True)])
def test_causal_shift_goes_into_the_stored_model_options(flags, causal):
    options = main.model_options(opts.parse_args(['synthetic', 'Lite', *TINY, *flags]), 4)
    assert options['causal_shift'] is causal   # off by default: the released bidirectional shift
    from ops.temporal_shift import TemporalShift
    shifts = [m for m in PAN(**options, pretrain='scratch', print_spec=False).modules() if isinstance(m, TemporalShift)]
    assert shifts and all(m.causal is causal for m in shifts)
