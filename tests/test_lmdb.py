"""LMDB frame stores: tools/frames_to_lmdb.py packs the synthetic dataset under the release's keys,
resumes and verifies; PANDataSet, test_models.py and main.py read the same clips from the store as
from the frame folders, in DataLoader workers too; missing keys fail or are substituted like
missing frame files."""
import random
import shutil

import lmdb
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import test_models
from conftest import run_entry
from ops.data_setup import build_clip_dataset, lmdb_location, resolve_dataset
from ops.dataset import MissingFrameWarning, PANDataSet, parse_list_file
from ops.dataset_config import DatasetFilesError
from ops.frames.frame_source import MissingVideoError
from ops.frames.image_io import FrameReadError
from ops.frames.lmdb_source import LmdbStoreError, frame_key
from ops.models import PAN
from opts import parse_args
from reference_fill import fill_state_dict
from tools.frames_to_lmdb import main as pack_main

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TINY = ['--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2', '--input_size', '32', '-b', '4',
        '--lr', '0.01', '-j', '0', '--epochs', '1', '--eval-freq', '1']


@pytest.fixture(scope='module')
def lmdb_root(tmp_path_factory, synthetic_root):
    """A data root holding the synthetic lists and, instead of the frame folder, its LMDB store at
    the default place (frames folder + .lmdb): whatever reads from it cannot fall back to files."""
    root = tmp_path_factory.mktemp('lmdb_data')
    (root / 'synthetic').mkdir()
    for name in ('category.txt', 'train_videofolder.txt', 'val_videofolder.txt'):
        shutil.copy(synthetic_root / 'synthetic' / name, root / 'synthetic' / name)
    status = pack_main(['synthetic', '--root_path', str(synthetic_root), '--workers', '2',
                        '--out', str(root / 'synthetic' / 'frames.lmdb')])
    assert status == 0
    return root


@pytest.fixture
def store(lmdb_root):
    return lmdb_root / 'synthetic' / 'frames.lmdb'


def listed(synthetic_root) -> list[str]:
    return [r.path for split in ('train', 'val')
            for r in parse_list_file(synthetic_root / 'synthetic' / f'{split}_videofolder.txt')]


def copy_store(store, tmp_path):
    copy = tmp_path / 'copy.lmdb'
    shutil.copytree(store, copy)
    return copy


def edit_store(path, put: dict | None = None, delete: tuple = ()) -> None:
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        for key, value in (put or {}).items():
            txn.put(key, value)
        for key in delete:
            assert txn.delete(key)
    env.close()


# ------------------------------------------------------------------ the packing tool

def test_keys_are_the_release_ones(store, synthetic_root):
    videos = listed(synthetic_root)
    assert len(videos) == 24
    env = lmdb.open(str(store), readonly=True, lock=False)
    with env.begin() as txn:
        keys = {k.decode() for k in txn.cursor().iternext(values=False)}
        first = txn.get(b'train_00003/000/00000000')
    env.close()
    assert keys == {f'{v}/000/{i:08d}' for v in videos for i in range(8)} | {f'{v}/__done__' for v in videos}
    assert first == (synthetic_root / 'synthetic' / 'frames' / 'train_00003' / '00001.jpg').read_bytes()
    assert frame_key('a b/c', 8) == b'a b/c/000/00000007'


def test_second_run_adds_nothing(store, synthetic_root, tmp_path, capsys):
    copy = copy_store(store, tmp_path)
    before = (copy / 'data.mdb').read_bytes()
    assert pack_main(['synthetic', '--root_path', str(synthetic_root), '--out', str(copy)]) == 0
    out = capsys.readouterr().out
    assert '24 of 24 videos already in the store' in out and 'packed 0 videos' in out
    assert (copy / 'data.mdb').read_bytes() == before
    # a video whose done entry is gone (a crash before its batch was committed) is packed again
    edit_store(copy, delete=[b'val_00002/__done__'])
    assert pack_main(['synthetic', '--root_path', str(synthetic_root), '--out', str(copy)]) == 0
    assert 'packed 1 videos (8 frames' in capsys.readouterr().out


def test_verify_passes_and_finds_corruption(store, synthetic_root, tmp_path, capsys):
    copy = copy_store(store, tmp_path)
    args = ['synthetic', '--root_path', str(synthetic_root), '--out', str(copy), '--verify', '--workers', '1']
    assert pack_main(args) == 0
    assert 'verify: 0 keys differ' in capsys.readouterr().out
    edit_store(copy, put={b'train_00005/000/00000004': b'\xff\xd8 not that frame'},
               delete=[b'val_00001/000/00000007'])
    assert pack_main(args) == 1
    captured = capsys.readouterr()
    assert 'verify: 2 keys differ' in captured.out
    assert 'train_00005/000/00000004: 17 bytes stored' in captured.err
    assert 'val_00001/000/00000007: missing' in captured.err


def test_cli_packs_explicit_folders_and_skips_videos(synthetic_root, tmp_path):
    frames = tmp_path / 'frames'
    shutil.copytree(synthetic_root / 'synthetic' / 'frames' / 'train_00000', frames / 'train_00000')
    shutil.copytree(synthetic_root / 'synthetic' / 'frames' / 'train_00001', frames / 'train_00001')
    (frames / 'train_00001' / '00004.jpg').unlink()
    lst = tmp_path / 'list.txt'
    lst.write_text('train_00000 8 0\ntrain_00001 8 1\nclip.mp4 0 2\n')
    result = run_entry('tools/frames_to_lmdb.py', tmp_path, '--frames_dir', str(frames), '--lists', str(lst),
                       '--image_tmpl', '{:05d}.jpg', '--workers', '2', check=False)
    assert result.returncode == 1, result.stderr
    assert 'packed 1 videos (8 frames' in result.stdout and 'MiB on disk' in result.stdout
    assert '1 list lines are video files' in result.stderr and 'clip.mp4' in result.stderr
    assert 'train_00001: 1 of 8 frames unreadable: 00004.jpg' in result.stderr
    assert (tmp_path / 'frames.lmdb' / 'data.mdb').is_file()  # default: the frames folder + .lmdb


def test_bad_input_is_one_error_line(tmp_path, capsys):
    assert pack_main(['--frames_dir', str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == 'error: name a dataset, or give --lists and --image_tmpl'
    assert pack_main(['synthetic', '--root_path', str(tmp_path / 'none')]) == 2
    assert 'frames folder not found' in capsys.readouterr().err


# ------------------------------------------------------------------ reading

def _items(dataset, count: int, seed: int | None):
    out = []
    for k in range(count):
        if seed is not None:  # the train transforms draw from python's and torch's generators
            random.seed(seed + k)
            torch.manual_seed(seed + k)
        out.append(dataset[k])
    return out


@pytest.mark.parametrize('mode', ['train', 'val'])
def test_clips_from_store_equal_clips_from_folders(synthetic_root, lmdb_root, mode):
    info = resolve_dataset('synthetic', str(synthetic_root))
    store = lmdb_location(resolve_dataset('synthetic', str(lmdb_root), lmdb=''), '')
    list_file = str(info.train_list if mode == 'train' else info.val_list)
    folders, packed = (build_clip_dataset(info, list_file, mode, 'Lite', 2, 4, 32, MEAN, STD, lmdb_path=path)
                       for path in (None, store))
    for (a, la), (b, lb) in zip(_items(folders, 6, 0), _items(packed, 6, 0)):
        assert la == lb and a.dtype == torch.uint8 and torch.equal(a, b)


def test_release_pil_path_reads_the_store(synthetic_root, store):
    from ops.transforms import build_val_transform
    list_file = synthetic_root / 'synthetic' / 'val_videofolder.txt'
    folders, packed = (PANDataSet(synthetic_root / 'synthetic' / 'frames', list_file, num_segments=2, new_length=4,
                                  modality='Lite', image_tmpl='{:05d}.jpg', random_shift=False, lmdb_path=path,
                                  transform=build_val_transform(32, 36, MEAN, STD, fast=False))
                       for path in (None, store))
    for k in range(3):
        assert torch.equal(folders[k][0], packed[k][0])


def test_dataloader_workers_open_their_own_handle(synthetic_root, store):
    list_file = synthetic_root / 'synthetic' / 'val_videofolder.txt'
    folders, packed = (PANDataSet(synthetic_root / 'synthetic' / 'frames', list_file, num_segments=4,
                                  image_tmpl='{:05d}.jpg', random_shift=False, lmdb_path=path)
                       for path in (None, store))
    packed[0]  # this process opens the store before the workers fork
    batches = list(DataLoader(packed, batch_size=3, num_workers=2))
    clips = torch.cat([b[0] for b in batches])
    assert clips.shape == (8, 12, 32, 32)
    assert torch.equal(clips, torch.stack([folders[k][0] for k in range(8)]))
    assert torch.equal(packed[1][0], folders[1][0])  # the workers closed only their copies of the handle


def test_missing_key_fails_or_is_substituted(synthetic_root, store, tmp_path):
    copy = copy_store(store, tmp_path)
    edit_store(copy, delete=[b'val_00003/000/00000002'])  # frame 3
    list_file = synthetic_root / 'synthetic' / 'val_videofolder.txt'
    line = next(n for n, text in enumerate(list_file.read_text().splitlines(), 1) if text.startswith('val_00003 '))
    kwargs = dict(num_segments=8, image_tmpl='{:05d}.jpg', test_mode=True, lmdb_path=copy)  # every frame
    strict = PANDataSet(synthetic_root, list_file, **kwargs)
    with pytest.raises(FrameReadError, match=rf'missing frame: {copy}:val_00003/000/00000002 '
                                             rf'\[video val_00003, .*val_videofolder.txt:{line}\]'):
        strict[3]

    lenient = PANDataSet(synthetic_root, list_file, substitute_missing=True, **kwargs)
    with pytest.warns(MissingFrameWarning, match=r'val_00003.*substituted frame\(s\) 3->2'):
        clip, _ = lenient[3]
    assert lenient.substituted_frames == 1
    frames = clip.view(8, 3, 32, 32)
    assert torch.equal(frames[2], frames[1])  # frame 3 is frame 2, the nearest readable one
    reference = PANDataSet(synthetic_root / 'synthetic' / 'frames', list_file, num_segments=8,
                           image_tmpl='{:05d}.jpg', test_mode=True)[3][0].view(8, 3, 32, 32)
    assert torch.equal(frames[[0, 1, 3, 4, 5, 6, 7]], reference[[0, 1, 3, 4, 5, 6, 7]])


def test_missing_video_and_missing_store(synthetic_root, store, tmp_path):
    list_file = tmp_path / 'l.txt'
    list_file.write_text('train_00000 8 0\nnot_packed 8 1\n')
    ds = PANDataSet(synthetic_root, list_file, num_segments=2, test_mode=True, substitute_missing=True,
                    lmdb_path=store)
    assert ds[0][0].shape == (6, 32, 32)
    with pytest.raises(MissingVideoError, match=r'missing video in LMDB: .*frames.lmdb:not_packed/000/ \[.*l.txt:2\]'):
        ds[1]
    with pytest.raises(LmdbStoreError, match='LMDB frame store not found: .*nowhere.lmdb'):
        PANDataSet(synthetic_root, list_file, lmdb_path=tmp_path / 'nowhere.lmdb')
    with pytest.raises(DatasetFilesError, match=r'LMDB frame store: .*frames.lmdb\n.*frames_to_lmdb.py synthetic'):
        resolve_dataset('synthetic', str(synthetic_root), lmdb=str(tmp_path / 'frames.lmdb'))


def test_lmdb_flag():
    assert parse_args(['something', 'Lite']).lmdb is None
    assert parse_args(['something', 'Lite', '--lmdb']).lmdb == ''
    assert parse_args(['something', 'Lite', '--lmdb', 'x.lmdb']).lmdb == 'x.lmdb'
    assert test_models.build_parser().parse_args(['something', '--weights', 'w', '--lmdb']).lmdb == ''
    help_text = test_models.build_parser().format_help()
    assert '.lmdb appended' in help_text and '<video>/000/' in help_text


# ------------------------------------------------------------------ the entry points

def test_test_models_scores_equal_with_and_without_lmdb(synthetic_root, lmdb_root, tmp_path, monkeypatch):
    model = PAN(4, 2, 'Lite', base_model='resnet18', pretrain='scratch', is_shift=True, has_VAP=True,
                dropout=0.5, print_spec=False)
    weights = fill_state_dict(model.state_dict(), seed=0, prefix='module.')
    ckpt = tmp_path / 'PAN_Lite_synthetic_resnet18_shift8_blockres_avg_segment2_e80.pth.tar'
    torch.save({'epoch': 80, 'arch': 'resnet18', 'state_dict': {'module.' + k: v for k, v in weights.items()}}, ckpt)
    monkeypatch.chdir(tmp_path)
    common = ['synthetic', f'--weights={ckpt}', '--test_segments=2', '--test_crops', '1', '--input_size', '32',
              '-j', '0', '--batch_size', '3', '--twice_sample', '--no_confusion_png', '--no_amp']
    test_models.main([*common, '--root_path', str(synthetic_root), '--save_scores', 'folders.npz'])
    test_models.main([*common, '--root_path', str(lmdb_root), '--lmdb', '--save_scores', 'lmdb.npz'])
    folders, packed = np.load(tmp_path / 'folders.npz'), np.load(tmp_path / 'lmdb.npz')
    assert folders['scores'].shape == (8, 4)
    assert np.array_equal(folders['scores'], packed['scores'])
    assert np.array_equal(folders['labels'], packed['labels'])


def test_main_trains_one_epoch_from_the_store(lmdb_root, tmp_path):
    out = run_entry('main.py', tmp_path, 'synthetic', 'Lite', *TINY, '--root_path', str(lmdb_root), '--lmdb').stdout
    assert '16 train / 8 val videos' in out and 'Testing Results: Prec@1' in out
    assert list((tmp_path / 'checkpoint').glob('*/ckpt.pth.tar'))
