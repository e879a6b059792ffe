"""test_models.py: released checkpoints as they are, Lite / Full / En ensembles end to end, the
reports it writes, and bad input caught before any video is read."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_entry_in_process as run_entry
from ops.data_setup import build_clip_dataset, resolve_dataset, to_model_input
from ops.engine.test_report import write_submission
from ops.models import PAN
from reference_fill import fill_state_dict

TRAIN = ['--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2', '--input_size', '32', '-b', '4',
         '--lr', '0.01', '-j', '0', '--epochs', '1']
# fp32 pinned: these tests compare scores to fp32 computations (the default is bf16 on a CPU with bf16)
TEST = ['--test_crops', '1', '--input_size', '32', '-j', '0', '--batch_size', '3', '--no_amp']


def prec1(stdout: str) -> float:
    return float(re.search(r'Overall Prec@1 ([\d.]+)% Prec@5', stdout)[1])


@pytest.fixture(scope='module')
def trained(tmp_path_factory, synthetic_root):
    """Tiny Lite, RGB and PA checkpoints written by main.py."""
    work = tmp_path_factory.mktemp('runs')
    paths = {}
    for modality in ('Lite', 'RGB', 'PA'):
        run_entry('main.py', work, 'synthetic', modality, *TRAIN, '--root_path', str(synthetic_root))
        paths[modality] = str(next((work / 'checkpoint').glob(f'PAN_{modality}_*/ckpt.pth.tar')))
    return paths


def test_released_checkpoint_file(tmp_path, synthetic_root):
    """A file exactly as released (DataParallel keys, no stored options): settings from its name."""
    model = PAN(4, 2, 'Lite', base_model='resnet18', pretrain='scratch', is_shift=True, has_VAP=True,
                dropout=0.5, print_spec=False)
    weights = fill_state_dict(model.state_dict(), seed=0, prefix='module.')
    path = tmp_path / 'PAN_Lite_synthetic_resnet18_shift8_blockres_avg_segment2_e80.pth.tar'
    torch.save({'epoch': 80, 'arch': 'resnet18', 'state_dict': {'module.' + k: v for k, v in weights.items()},
                'optimizer': {}, 'best_prec1': 12.5}, path)
    out = run_entry('test_models.py', tmp_path, 'synthetic', f'--weights={path}', '--test_segments=2', *TEST,
                    '--root_path', str(synthetic_root), '--save_scores', 'lite.npz').stdout
    assert 'Lite branch' in out and 'resnet18, 2 segments x 4 frames, head VAP' in out
    saved = np.load(tmp_path / 'lite.npz')
    assert saved['scores'].shape == (8, 4)
    # the scores are those of the released weights on the test views
    model.load_state_dict(weights)
    model.eval()
    info = resolve_dataset('synthetic', str(synthetic_root), splits=('val',))
    data = build_clip_dataset(info, str(info.val_list), 'test', 'Lite', 2, 4, 32, model.input_mean,
                              model.input_std)
    with torch.no_grad():
        expected = torch.cat([model(to_model_input(data[i][0][None], model.input_mean, model.input_std,
                                                   torch.device('cpu'))) for i in range(len(data))])
    assert np.allclose(saved['scores'], expected.numpy(), atol=1e-4)


@pytest.mark.parametrize('views, extra', [(1, []), (2, ['--twice_sample']), (3, ['--test_crops', '3', '--full_res'])])
def test_single_branch_reports(tmp_path, synthetic_root, trained, views, extra):
    args = ['synthetic', f'--weights={trained["Lite"]}', '--test_segments=2', *TEST, *extra,
            '--root_path', str(synthetic_root), '--save_scores', 'out/lite.npz', '--csv_file', 'sub.csv']
    if '--test_crops' in extra:
        args.remove('--test_crops'), args.remove('1')
    out = run_entry('test_models.py', tmp_path, *args).stdout
    saved = np.load(tmp_path / 'out' / 'lite.npz')
    scores, labels = saved['scores'], saved['labels']
    recomputed = 100.0 * (scores.argmax(1) == labels).mean()
    assert prec1(out) == pytest.approx(recomputed, abs=0.01)
    assert 'Class Accuracy' in out and 'moving Prec@1' in out
    listed = (synthetic_root / 'synthetic' / 'val_videofolder.txt').read_text().split()[::3]
    assert list(saved['videos']) == listed  # the list's order
    lines = (tmp_path / 'sub.csv').read_text().splitlines()
    categories = (synthetic_root / 'synthetic' / 'category.txt').read_text().splitlines()
    assert [ln.split(';')[0] for ln in lines] == listed
    assert all(ln.split(';')[1] in categories for ln in lines)
    image = Image.open(tmp_path / 'out' / 'lite_confusion.png')
    assert image.size[0] > 80 and image.size[1] > 80


def test_amp_gives_the_fp32_accuracy(tmp_path, synthetic_root, trained):
    """--amp (bf16 autocast, channels-last) on a checkpoint of main.py: every validation video gets
    the fp32 prediction, so the same Prec@1, and the line says which precision ran."""
    common = ['synthetic', f'--weights={trained["Lite"]}', '--test_segments=2', *TEST, '--root_path',
              str(synthetic_root), '--no_confusion_png']
    fp32 = run_entry('test_models.py', tmp_path, *common, '--save_scores', 'fp32.npz').stdout
    bf16 = run_entry('test_models.py', tmp_path, *common, '--amp', '--channels_last', '--save_scores',
                     'bf16.npz').stdout
    assert '=> precision fp32 (--no_amp), layout default' in fp32
    assert re.search(r'=> precision bf16 \(autocast; --amp.*\), layout channels_last', bf16)
    low, ref = np.load(tmp_path / 'bf16.npz')['scores'], np.load(tmp_path / 'fp32.npz')['scores']
    assert np.array_equal(low.argmax(1), ref.argmax(1))
    assert np.abs(low - ref).max() <= 1e-2 * np.abs(ref).max()
    assert prec1(bf16) == prec1(fp32)


def test_full_and_en_average_branches(tmp_path, synthetic_root, trained):
    common = ['--test_segments=2,2,2', *TEST, '--root_path', str(synthetic_root)]
    single = {}
    for modality in ('Lite', 'RGB', 'PA'):
        run_entry('test_models.py', tmp_path, 'synthetic', f'--weights={trained[modality]}', *common[1:],
                  '--test_segments=2', '--save_scores', f'{modality}.npz', '--no_confusion_png')
        single[modality] = np.load(tmp_path / f'{modality}.npz')['scores']
    out = run_entry('test_models.py', tmp_path, 'synthetic', f'--weights={trained["RGB"]},{trained["PA"]}',
                    '--test_segments=2,2', *common[1:], '--save_scores', 'full.npz').stdout
    full = np.load(tmp_path / 'full.npz')
    assert np.allclose(full['scores'], (single['RGB'] + single['PA']) / 2, atol=1e-5)
    assert prec1(out) == pytest.approx(100.0 * (full['scores'].argmax(1) == full['labels']).mean(), abs=0.01)
    assert (tmp_path / 'full_confusion.png').exists()

    weights = ','.join(trained[m] for m in ('Lite', 'RGB', 'PA'))
    out = run_entry('test_models.py', tmp_path, 'synthetic', f'--weights={weights}', *common,
                    '--save_scores', 'en.npz').stdout
    en = np.load(tmp_path / 'en.npz')
    assert np.allclose(en['scores'], (single['Lite'] + single['RGB'] + single['PA']) / 3, atol=1e-5)
    assert prec1(out) == pytest.approx(100.0 * (en['scores'].argmax(1) == en['labels']).mean(), abs=0.01)
    assert en['branch_scores'].shape == (3, 8, 4)

    out = run_entry('test_models.py', tmp_path, 'synthetic', f'--weights={weights}', *common,
                    '--coeff', '2,1,1', '--save_scores', 'en_w.npz').stdout
    weighted = np.load(tmp_path / 'en_w.npz')['scores']
    assert np.allclose(weighted, (2 * single['Lite'] + single['RGB'] + single['PA']) / 3, atol=1e-5)


def _fails(tmp_path, *args):
    result = run_entry('test_models.py', tmp_path, 'synthetic', *args, check=False)
    assert result.returncode != 0
    return result.stderr


def test_bad_input_fails_before_reading_videos(tmp_path, synthetic_root, trained):
    # a root whose frames are all missing: any video read would fail with a frame error instead
    empty = tmp_path / 'empty'
    (empty / 'synthetic' / 'frames').mkdir(parents=True)
    for name in ('category.txt', 'val_videofolder.txt'):
        (empty / 'synthetic' / name).write_text((synthetic_root / 'synthetic' / name).read_text())
    root = ['--root_path', str(empty)]
    err = _fails(tmp_path, f'--weights={trained["Lite"]},{trained["RGB"]}', '--test_segments=2', *root)
    assert '2 checkpoint(s) in --weights but 1 value(s) in --test_segments' in err

    other = tmp_path / 'other.txt'
    other.write_text('\n'.join(reversed((empty / 'synthetic' / 'val_videofolder.txt').read_text().splitlines())))
    err = _fails(tmp_path, f'--weights={trained["RGB"]},{trained["PA"]}', '--test_segments=2,2', *root,
                 '--test_list', f'{empty}/synthetic/val_videofolder.txt,{other}')
    assert 'test lists differ between branches' in err

    (empty / 'synthetic' / 'category.txt').write_text('\n'.join(f'c{i}' for i in range(7)) + '\n')
    err = _fails(tmp_path, f'--weights={trained["RGB"]}', '--test_segments=2', *root)
    assert 'has 4 classes but dataset has 7' in err

    err = _fails(tmp_path, '--weights=pretrained/nothing.pth.tar', '--test_segments=8', *root)
    assert 'nothing.pth.tar' in err and 'pretrained/README.md' in err


def test_v2_submission_has_top5_indices(tmp_path):
    scores = np.array([[0.1, 0.5, 0.2, 0.9, 0.0, 0.3], [0.6, 0.1, 0.2, 0.3, 0.4, 0.5]])
    write_submission(str(tmp_path / 'v2.csv'), ['11', '12'], scores, [f'c{i}' for i in range(6)], top5_indices=True)
    assert (tmp_path / 'v2.csv').read_text().splitlines() == ['11;3;1;5;2;0', '12;0;5;4;3;2']
    write_submission(str(tmp_path / 'v1.csv'), ['11', '12'], scores, [f'c{i}' for i in range(6)], top5_indices=False)
    assert (tmp_path / 'v1.csv').read_text().splitlines() == ['11;c3', '12;c0']


def test_test_scripts_name_missing_checkpoints(repo_root):
    import subprocess
    result = subprocess.run(['bash', 'scripts/test/sthv1/En.sh'], cwd=repo_root, capture_output=True, text=True)
    if all((Path(repo_root) / 'pretrained' / f).exists() for f in
           re.findall(r'pretrained/(\S+\.pth\.tar)', (Path(repo_root) / 'scripts/test/sthv1/En.sh').read_text())):
        pytest.skip('released checkpoints are present')
    assert result.returncode == 1
    for name in ('PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar',
                 'PAN_RGB_something_resnet50_shift8_blockres_avg_segment8_e50.pth.tar',
                 'PAN_PA_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar'):
        assert name in result.stderr
    assert 'pretrained/README.md' in result.stderr
