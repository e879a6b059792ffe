"""tools/prepare_dataset.py and what makes a dataset of your own work: the split (seeded,
stratified, from a file, the same files twice), the report of every clip left out, the refusals,
the description file, lists of videos without a frame folder, the run folder that is never
replaced unasked, and the recipe of scripts/train/custom.sh. Clips are tiny frame folders and a
few generated videos."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import opts
from ops.data_setup import resolve_dataset
from ops.dataset import PANDataSet
from ops.dataset_config import DatasetFilesError, get_dataset_info
from ops.dataset_description import DescriptionError
from ops.engine.checkpoint import save_checkpoint
from ops.engine.distributed import DistContext
from ops.engine.run_state import RunFolderTakenError, check_run_folder_free, clear_run_folder
from ops.engine.test_report import per_class_lines, save_confusion_png
from ops.errors import InputError
from ops.models import PAN
from test_video_reader import write_video
from tools import custom_recipe, frames_to_lmdb, prepare_dataset
from tools._prep_common import PrepError
from tools.prepare_dataset import ClipProbe, LabelledClip, split_by_fraction, split_from_file


def frame_folder(path: Path, count: int, size=(24, 16), first: int = 1, name='img_{:05d}.jpg'):
    path.mkdir(parents=True)
    for i in range(first, first + count):
        Image.new('RGB', size, (10 * i % 255, 80, 160)).save(path / name.format(i))


def clips_of(counts: dict[str, int]) -> list[LabelledClip]:
    return [LabelledClip(f'{cls}/c{i:02d}.mp4', label, ClipProbe(8, 32, 32), False)
            for label, (cls, n) in enumerate(counts.items()) for i in range(n)]


def prepare(*args, root) -> int:
    return prepare_dataset.main([*map(str, args), '--root_path', str(root), '--workers', '1'])


# ---------------------------------------------------------------- the split

def test_split_is_seeded_stratified_and_per_class():
    clips = clips_of({'a': 10, 'b': 2, 'c': 1, 'd': 5})
    val = split_by_fraction(clips, 0.2, seed=0)
    per_class = {cls: sum(v.startswith(cls + '/') for v in val) for cls in 'abcd'}
    assert per_class == {'a': 2, 'b': 1, 'c': 0, 'd': 1}  # >= 1 from 2 clips up, never all, a lone clip trains
    assert split_by_fraction(clips, 0.2, seed=0) == val
    assert any(split_by_fraction(clips, 0.2, seed=s) != val for s in range(1, 5))
    # a class's draw depends on its clips alone: adding a class changes no other class's split
    assert {v for v in split_by_fraction(clips_of({'a': 10}), 0.2, 0)} == {v for v in val if v.startswith('a/')}
    assert sum(v.startswith('a/') for v in split_by_fraction(clips, 0.5, 0)) == 5


def test_split_from_file(tmp_path):
    clips = clips_of({'a': 3, 'b': 3}) + [LabelledClip('b/c00.mkv', 1, ClipProbe(8, 32, 32), False)]
    videos = tmp_path / 'videos'
    split = tmp_path / 'val.txt'
    split.write_text(f'# validation clips\na/c01.mp4\n\nc02.mp4x\n{videos}/b/c00.mkv\n')
    with pytest.raises(PrepError, match=r"(?s)val.txt: 1 line\(s\).*line 4: 'c02.mp4x': no such clip"):
        split_from_file(clips, split, {}, videos)
    split.write_text('a/c01.mp4\nc02.mp4\n')  # c02.mp4 is in both classes
    with pytest.raises(PrepError, match='(?s)line 2.*2 clips are named so'):
        split_from_file(clips, split, {}, videos)
    split.write_text(f'a/c01.mp4\nc00.mkv\n{videos}/b/c02.mp4\na/gone.mp4\n')
    assert split_from_file(clips, split, {'a/gone.mp4': 'cannot be opened'}, videos) == \
        {'a/c01.mp4', 'b/c00.mkv', 'b/c02.mp4'}


# ---------------------------------------------------------------- prepare, its report and its files

def test_same_arguments_write_the_same_files_and_the_dataset_reads(tmp_path, capsys):
    videos, root = tmp_path / 'videos', tmp_path / 'data'
    for cls, counts in (('open door', (4, 6, 9)), ('close door', (5, 5))):
        for i, n in enumerate(counts):
            frame_folder(videos / cls / f'clip {i}', n)
    frame_folder(videos / 'close door' / 'zero based', 5, first=0, name='frame_{}.png')  # another naming
    assert prepare(videos, '--name', 'doors', '--no_flip', '--seed', '3', root=root) == 0
    out = capsys.readouterr().out
    assert 'open door          2     1            4 /      6 / 9        24x16' in out
    files = {p.name: p.read_bytes() for p in (root / 'doors').iterdir()}
    assert set(files) == {'train_videofolder.txt', 'val_videofolder.txt', 'category.txt', 'dataset.json'}
    assert prepare(videos, '--name', 'doors', '--no_flip', '--seed', '3', root=root) == 0
    assert capsys.readouterr().out.count('=> unchanged') == 4
    assert {p.name: p.read_bytes() for p in (root / 'doors').iterdir()} == files

    info = get_dataset_info('doors', root)
    assert (info.num_class, info.flip, info.frames_root) == (2, False, videos.resolve())
    assert info.image_tmpl is None  # two namings: each folder's numbered frames are read
    assert info.class_names() == ['close door', 'open door']
    data = PANDataSet(info.frames_root, info.train_list, num_segments=2, new_length=2, modality='Lite',
                      image_tmpl=info.image_tmpl, random_shift=False)
    zero = next(i for i, r in enumerate(data.video_list) if r.path.endswith('zero based'))
    assert data[zero][0].shape == (2 * 2 * 3, 16, 24)
    # frames_to_lmdb packs the frame folders of a dataset of your own, whatever their frame names
    assert frames_to_lmdb.main(['doors', '--root_path', str(root), '--workers', '1']) == 0
    stored = PANDataSet(info.frames_root, info.train_list, num_segments=2, new_length=2, modality='Lite',
                        image_tmpl=info.image_tmpl, random_shift=False, lmdb_path=root / 'doors' / 'frames.lmdb')
    assert all(stored[i][0].equal(data[i][0]) for i in range(len(data)))


def test_report_names_every_clip_left_out_and_why(tmp_path, capsys):
    videos, root = tmp_path / 'videos', tmp_path / 'data'
    (videos / 'wave').mkdir(parents=True)
    write_video(videos / 'wave' / 'good.MKV', 6, 'mpeg4')
    (videos / 'wave' / 'corrupt.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'\x17' * 300)
    # an MKV cut after its first cluster's header: it opens, and holds no frame
    whole = Path(write_video(tmp_path / 'whole.mkv', 6, 'mpeg4')).read_bytes()
    (videos / 'wave' / 'no frames.mkv').write_bytes(whole[:whole.index(bytes.fromhex('1F43B675')) + 12])
    frame_folder(videos / 'wave' / 'frames', 4)
    # a real AVI cut in half: its header still claims 164 frames, the first ones decode; kept, and said
    avi = (Path(__file__).parent / 'fixtures' / 'xvid_bframes.avi').read_bytes()
    (videos / 'wave' / 'cut.avi').write_bytes(avi[:len(avi) // 2])
    (videos / 'wave' / 'empty folder').mkdir()
    (videos / 'wave' / 'readme.txt').write_text('x')
    (videos / 'wave' / '.DS_Store').write_text('x')
    (videos / 'loose.mp4').write_bytes(b'x')
    frame_folder(videos / 'clap' / 'a', 3)
    for i in (1, 2):
        Image.new('RGB', (8, 8)).save(videos / 'clap' / f'{i:05d}.jpg')
    (videos / 'clap' / 'by person').mkdir()
    (videos / 'clap' / 'by person' / 'x.mp4').write_bytes(b'x')
    assert prepare(videos, '--name', 'gestures', root=root) == 0
    out = capsys.readouterr().out
    left = out[out.index('left out 7 entries:'):]
    assert f'{videos / "clap" / "by person"}: a folder of videos, not of frames' in left
    assert f'{videos / "clap"}/ (2 image files): images straight in a class folder' in left
    assert f'{videos / "wave" / "corrupt.mp4"}: cannot be opened' in left
    assert f'{videos / "wave" / "no frames.mkv"}: no decodable frame (no video frames)' in left
    assert f'{videos / "wave" / "empty folder"}: not a video file or frame folder' in left
    assert f'{videos / "wave" / "readme.txt"}: not a video file or frame folder' in left
    assert f'{videos / "loose.mp4"}: not in a class folder' in left
    assert '(1 hidden entry passed over)' in out
    kept = out[out.index('damaged clip(s) kept'):out.index('left out 7 entries:')]
    assert f'{videos / "wave" / "cut.avi"}: decodes ' in kept and 'of the 164 frames its header claims' in kept
    lines = (root / 'gestures' / 'train_videofolder.txt').read_text().splitlines() + \
        (root / 'gestures' / 'val_videofolder.txt').read_text().splitlines()
    assert 'clap/a 3 0' in lines and len(lines) == 4
    cut = next(line for line in lines if line.startswith('wave/cut.avi '))
    assert 0 < int(cut.split()[1]) < 164


@pytest.mark.parametrize('args,says', [
    (['--name', 'ucf101'], "dataset name 'ucf101' is built in"),
    (['--name', '../up'], 'use letters, digits'),
    (['--name', 'x', '--split', 'val.txt', '--val_fraction', '0.3'], 'give one'),
    (['--name', 'x', '--val_fraction', '1'], 'between 0 and 1'),
])
def test_refusals(tmp_path, capsys, args, says):
    frame_folder(tmp_path / 'videos' / 'a' / 'c', 3)
    assert prepare(tmp_path / 'videos', *args, root=tmp_path / 'data') == 2
    assert says in capsys.readouterr().err


def test_refuses_folders_it_did_not_make(tmp_path, capsys):
    root = tmp_path / 'data'
    frame_folder(root / 'mine' / 'a' / 'c', 3)
    assert prepare(root / 'mine', '--name', 'mine', root=root) == 2
    assert 'is the dataset folder ROOT/mine itself' in capsys.readouterr().err
    (root / 'theirs').mkdir()
    (root / 'theirs' / 'category.txt').write_text('x\n')
    assert prepare(root / 'mine', '--name', 'theirs', root=root) == 2
    assert 'no dataset.json: not a dataset this tool made' in capsys.readouterr().err
    assert (root / 'theirs' / 'category.txt').read_text() == 'x\n'


# ---------------------------------------------------------------- the description file

def test_description_errors_name_the_file_and_key(tmp_path):
    with pytest.raises(InputError, match=r"unknown dataset 'mine': no description file .*mine/dataset.json.*"
                                         r'something, somethingv2.*tools/prepare_dataset.py'):
        get_dataset_info('mine', tmp_path)
    path = tmp_path / 'mine' / 'dataset.json'
    path.parent.mkdir()
    good = {'num_class': 2, 'train_list': 't.txt', 'val_list': 'v.txt', 'flip': True}
    for broken, says in (({k: v for k, v in good.items() if k != 'num_class'}, "missing key 'num_class'"),
                         ({**good, 'flip': 'yes'}, "key 'flip' must be bool, got \"yes\""),
                         ({**good, 'num_class': True}, "key 'num_class' must be int"),
                         ({**good, 'image_tmpl': '{:q}.jpg'}, "key 'image_tmpl'")):
        path.write_text(json.dumps(broken))
        with pytest.raises(DescriptionError) as err:
            get_dataset_info('mine', tmp_path)
        assert str(path) in str(err.value) and says in str(err.value)
    path.write_text('{"num_class": 2,')
    with pytest.raises(DescriptionError, match='not a readable JSON description'):
        get_dataset_info('mine', tmp_path)
    path.write_text(json.dumps(good))
    (path.parent / 'category.txt').write_text('a\nb\nc\n')
    with pytest.raises(InputError, match="'num_class' is 2 but .*category.txt lists 3"):
        get_dataset_info('mine', tmp_path)
    (path.parent / 'category.txt').write_text('a\nb\n')
    info = get_dataset_info('mine', tmp_path)
    assert (info.frames_root, info.train_list, info.image_tmpl) == (path.parent, path.parent / 't.txt', None)


# ---------------------------------------------------------------- lists of videos need no frame folder

def test_video_lists_need_no_frame_folder(tmp_path):
    video = write_video(tmp_path / 'v.mp4', 6)
    lists = tmp_path / 'train.txt', tmp_path / 'val.txt'
    for path in lists:
        path.write_text(f'{video} 0 3\n')
    assert not (tmp_path / 'data' / 'ucf101' / 'images').exists()
    info = resolve_dataset('ucf101', str(tmp_path / 'data'), *map(str, lists))
    assert info.num_class == 101
    with pytest.raises(PrepError, match='nothing to pack'):
        frames_to_lmdb.frames_to_lmdb(info.frames_root, list(lists), info.image_tmpl, tmp_path / 's.lmdb')
    lists[1].write_text(f'{video} 0 3\nclip.mp4 0 1\n')  # a relative video resolves under the frame folder
    with pytest.raises(DatasetFilesError, match='folder of the relative video paths .*ucf101/images'):
        resolve_dataset('ucf101', str(tmp_path / 'data'), *map(str, lists))
    lists[1].write_text(f'{video} 0 3\nsome/frames 5 1\n')
    with pytest.raises(DatasetFilesError, match='missing its frame folder .*ucf101/images'):
        resolve_dataset('ucf101', str(tmp_path / 'data'), *map(str, lists))


# ---------------------------------------------------------------- a run never replaces another

def test_a_fresh_run_never_replaces_another_runs_checkpoint(tmp_path):
    folder = tmp_path / 'checkpoint' / 'run'
    folder.mkdir(parents=True)
    check_run_folder_free(str(folder), '', False, False)  # nothing there
    (folder / 'ckpt.pth.tar').write_bytes(b'x')
    (folder / 'ckpt.best.pth.tar').write_bytes(b'y')
    with pytest.raises(RunFolderTakenError, match=r'(?s)' + str(folder) + r'.*--resume auto.*--store_name NAME '
                                                  r'or --suffix S.*--overwrite'):
        check_run_folder_free(str(folder), '', False, False)
    with pytest.raises(RunFolderTakenError, match='starting from other.pth.tar'):
        check_run_folder_free(str(folder), 'other.pth.tar', False, False)
    check_run_folder_free(str(folder), str(folder / 'ckpt.best.pth.tar'), False, False)  # goes on in its folder
    check_run_folder_free(str(folder), 'copy.pth.tar', True, False)  # the checkpoint says it is this run
    check_run_folder_free(str(folder), '', False, True)
    clear_run_folder(str(folder), DistContext())
    assert list(folder.iterdir()) == []


# ---------------------------------------------------------------- custom.sh's recipe

def test_recipe_fine_tunes_from_a_checkpoint_else_imagenet_else_scratch(tmp_path, hub_dir, monkeypatch):
    options = dict(num_class=3, num_segments=2, modality='Lite', base_model='resnet18', is_shift=True,
                   shift_div=4, has_VAP=True, data_length=3)
    ckpt = str(tmp_path / 'tiny.pth.tar')
    save_checkpoint({'state_dict': PAN(**options, pretrain='scratch', print_spec=False).state_dict(),
                     'model_options': options, 'args': {'input_size': 48}}, ckpt)
    args, note = custom_recipe.choose('Lite', ['--tune_from', ckpt, '-b', '4'])
    parsed = opts.parse_args(['mine', 'Lite', *args, '--tune_from', ckpt])
    assert (parsed.arch, parsed.num_segments, parsed.input_size, parsed.data_length, parsed.shift_div,
            parsed.pretrain, parsed.lr, parsed.epochs) == ('resnet18', 2, 48, 3, 4, 'scratch', 0.001, 25)
    assert 'fine-tune from' in note and 'resnet18, 2 segments, 48 px' in note

    def offline(weights, progress=True):
        raise OSError('no network')
    monkeypatch.setattr(type(custom_recipe.backbone_entry('resnet50').weights), 'get_state_dict', offline)
    args, note = custom_recipe.choose('RGB', [])
    assert opts.parse_args(['mine', 'RGB', *args]).arch == 'resnet18' and 'from scratch' in note
    assert 'no network' in note and '--tune_from' in note
    cached = Path(custom_recipe.imagenet_cache_path(custom_recipe.backbone_entry('resnet50').weights))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'weights')
    args, note = custom_recipe.choose('PA', [])
    parsed = opts.parse_args(['mine', 'PA', *args])
    assert (parsed.arch, parsed.pretrain, parsed.num_segments, parsed.input_size) == ('resnet50', 'imagenet', 8, 224)
    assert 'ImageNet' in note and str(cached) in note
    assert custom_recipe.choose('Lite', ['--pretrain', 'scratch'])[0][:4] == ['--arch', 'resnet18', '--pretrain',
                                                                             'scratch']


# ---------------------------------------------------------------- test_models.py's report

def test_report_names_the_classes(tmp_path):
    cm = np.array([[3, 1], [0, 0]], dtype=float)
    assert per_class_lines(cm, ['pour water', 'stir']) == ['   75.00%      3 / 4      pour water']
    plain, named = tmp_path / 'plain.png', tmp_path / 'named.png'
    save_confusion_png(cm, str(plain))
    save_confusion_png(cm, str(named), names=['pour water', 'stir'])
    plain_img, named_img = np.asarray(Image.open(plain)), np.asarray(Image.open(named))
    grow = named_img.shape[1] - plain_img.shape[1]
    assert grow > 30 and named_img.shape[0] - plain_img.shape[0] == grow  # room for the names, both axes
    assert (named_img[60:, :grow] < 128).any()  # text beside the rows


def test_relative_paths_get_the_same_reasons(tmp_path, capsys, monkeypatch):
    """Run from the folder above, as the README's command is: the reasons name no path."""
    (tmp_path / 'my_videos' / 'wave').mkdir(parents=True)
    for name in ('a.mp4', 'b.mp4'):
        write_video(tmp_path / 'my_videos' / 'wave' / name, 6, 'mpeg4')
    (tmp_path / 'my_videos' / 'wave' / 'empty.mp4').write_bytes(b'')
    monkeypatch.chdir(tmp_path)
    assert prepare('my_videos', '--name', 'gestures', root='data') == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if 'empty.mp4' in ln)
    assert line.strip() == ('my_videos/wave/empty.mp4: cannot be opened (cannot open video: empty file (0 bytes), '
                            'an interrupted copy or download?)')
