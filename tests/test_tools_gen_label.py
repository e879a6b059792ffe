"""gen_label_sthv1/sthv2/kinetics: official annotation files + frame folders -> category.txt and lists.

Inputs are written here in the official formats; frame files only need their names (the tools
count them), so they are empty.
"""
import csv
import json
import subprocess
import sys

import pytest

from tools import gen_label_kinetics, gen_label_sthv1, gen_label_sthv2


def make_frames(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


def read_list(path):
    return [tuple(line.split()) for line in path.read_text().splitlines()]


V1_CLASSES = ['Pushing something from left to right',
              'Putting something, something and something on the table', 'Holding something']


@pytest.fixture
def sthv1(tmp_path):
    """A V1 data root: official CSVs beside the lists, frames for videos 1, 2, 4 (3 is missing)."""
    out = tmp_path / 'something' / 'v1'
    out.mkdir(parents=True)
    (out / 'something-something-v1-labels.csv').write_text('\n'.join(V1_CLASSES) + '\n\n')
    (out / 'something-something-v1-train.csv').write_text(
        f'1;{V1_CLASSES[2]}\n2;{V1_CLASSES[1]}\n3;{V1_CLASSES[0]}\n')
    (out / 'something-something-v1-validation.csv').write_text(f'4;{V1_CLASSES[0]}\n')
    frames = out / '20bn-something-something-v1'
    make_frames(frames / '1', [f'{i:05d}.jpg' for i in range(1, 4)] + ['Thumbs.db'])
    make_frames(frames / '2', [f'{i:05d}.jpg' for i in range(1, 6)])
    make_frames(frames / '4', [f'{i:05d}.jpg' for i in range(1, 8)])
    return tmp_path, out


def test_sthv1_lists_and_categories(sthv1, capsys, monkeypatch):
    root, out = sthv1
    monkeypatch.setenv('PAN_DATA_ROOT', str(root))  # the default root
    assert gen_label_sthv1.main([]) == 0
    assert (out / 'category.txt').read_text().splitlines() == V1_CLASSES
    assert read_list(out / 'train_videofolder.txt') == [('1', '3', '2'), ('2', '5', '1')]
    assert read_list(out / 'val_videofolder.txt') == [('4', '7', '0')]
    assert not (out / 'test_videofolder.txt').exists()  # no test CSV given
    err = capsys.readouterr().err
    assert '1 of the 3 videos' in err and 'skipped: 3' in err


def test_sthv1_test_split_and_explicit_paths(sthv1):
    root, out = sthv1
    (out / 'something-something-v1-test.csv').write_text('2\n9\n')
    dest = root / 'elsewhere'
    rc = gen_label_sthv1.main(['--annotation_dir', str(out), '--out_dir', str(dest),
                               '--frames_dir', str(out / '20bn-something-something-v1')])
    assert rc == 0
    assert read_list(dest / 'test_videofolder.txt') == [('2', '5', '0')]
    assert (dest / 'category.txt').exists() and not (out / 'category.txt').exists()


@pytest.mark.parametrize('line, message', [
    ('7 Holding something', 'something-something-v1-train.csv:2: expected "<id>;<class name>"'),
    ('7;Holding nothing',
     "something-something-v1-train.csv:2: class 'Holding nothing' is not in the labels file"),
])
def test_sthv1_bad_line_names_file_and_line(sthv1, capsys, line, message):
    root, out = sthv1
    (out / 'something-something-v1-train.csv').write_text(f'1;{V1_CLASSES[2]}\n{line}\n')
    assert gen_label_sthv1.main(['--root_path', str(root)]) == 2
    assert message in capsys.readouterr().err
    assert not (out / 'train_videofolder.txt').exists()


def test_sthv1_missing_inputs(tmp_path, sthv1, capsys):
    root, out = sthv1
    assert gen_label_sthv1.main(['--root_path', str(tmp_path / 'nowhere')]) == 2
    assert 'something-something-v1-labels.csv' in capsys.readouterr().err
    assert gen_label_sthv1.main(['--root_path', str(root), '--frames_dir', str(tmp_path / 'no_frames')]) == 2
    assert 'V1 frames folder not found' in capsys.readouterr().err
    (out / 'something-something-v1-validation.csv').unlink()
    assert gen_label_sthv1.main(['--root_path', str(root)]) == 2
    assert 'V1 val annotation file not found' in capsys.readouterr().err


def test_sthv1_no_video_with_frames_is_an_error(sthv1, capsys):
    root, out = sthv1
    empty = root / 'empty'
    empty.mkdir()
    assert gen_label_sthv1.main(['--root_path', str(root), '--frames_dir', str(empty)]) == 2
    assert 'no frame folder found for any annotated video' in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- V2

V2_LABELS = {'Putting something on something': '1', 'Pushing something from left to right': '0',
             'Holding something next to something': '2'}


@pytest.fixture
def sthv2(tmp_path):
    out = tmp_path / 'something' / 'v2'
    out.mkdir(parents=True)
    (out / 'something-something-v2-labels.json').write_text(json.dumps(V2_LABELS))
    train = [
        {'id': '10', 'label': 'putting a cup on a table', 'template': 'Putting [something] on [something]',
         'placeholders': ['a cup', 'a table']},
        {'id': '11', 'label': 'holding pen next to book',
         'template': 'Holding [something] next to [something]', 'placeholders': ['pen', 'book']},
        {'id': '12', 'label': 'pushing box from left to right',
         'template': 'Pushing [something] from left to right', 'placeholders': ['box']},
    ]
    val = [{'id': '20', 'label': 'pushing a box from left to right',
            'template': 'Pushing [something] from left to right', 'placeholders': ['a box']}]
    (out / 'something-something-v2-train.json').write_text(json.dumps(train))
    (out / 'something-something-v2-validation.json').write_text(json.dumps(val))
    (out / 'something-something-v2-test.json').write_text(json.dumps([{'id': '30'}, {'id': '31'}]))
    frames = out / '20bn-something-something-v2-frames'
    for vid, n in (('10', 4), ('11', 2), ('20', 6), ('31', 3)):  # 12 and 30 not extracted
        make_frames(frames / vid, [f'{i:06d}.jpg' for i in range(1, n + 1)])
    make_frames(frames / '.12.partial', ['000001.jpg'])  # an unfinished extraction is not a video
    return tmp_path, out


def test_sthv2_lists_and_categories(sthv2, capsys):
    root, out = sthv2
    assert gen_label_sthv2.main(['--root_path', str(root)]) == 0
    assert (out / 'category.txt').read_text().splitlines() == [
        'Pushing something from left to right', 'Putting something on something',
        'Holding something next to something']
    assert read_list(out / 'train_videofolder.txt') == [('10', '4', '1'), ('11', '2', '2')]
    assert read_list(out / 'val_videofolder.txt') == [('20', '6', '0')]
    assert read_list(out / 'test_videofolder.txt') == [('31', '3', '0')]
    err = capsys.readouterr().err
    assert 'skipped: 12' in err and 'skipped: 30' in err


def test_sthv2_unknown_template_names_entry(sthv2, capsys):
    root, out = sthv2
    train = json.loads((out / 'something-something-v2-train.json').read_text())
    train[1]['template'] = 'Dropping [something]'
    (out / 'something-something-v2-train.json').write_text(json.dumps(train))
    assert gen_label_sthv2.main(['--root_path', str(root)]) == 2
    err = capsys.readouterr().err
    assert 'something-something-v2-train.json: entry 1 (id 11)' in err and "'Dropping something'" in err


@pytest.mark.parametrize('labels, message', [
    ({'A': '0', 'B': '0'}, "class 'B' has index 0"),
    ({'A': '0', 'B': 'x'}, "class 'B' has index 'x', not an integer"),
    ([1, 2], 'expected a JSON object'),
])
def test_sthv2_bad_labels_file(sthv2, capsys, labels, message):
    root, out = sthv2
    (out / 'something-something-v2-labels.json').write_text(json.dumps(labels))
    assert gen_label_sthv2.main(['--root_path', str(root)]) == 2
    err = capsys.readouterr().err
    assert 'something-something-v2-labels.json' in err and message in err


def test_sthv2_missing_and_broken_files(sthv2, capsys):
    root, out = sthv2
    (out / 'something-something-v2-validation.json').write_text('[{"id": "20",')
    assert gen_label_sthv2.main(['--root_path', str(root)]) == 2
    assert 'something-something-v2-validation.json: not valid JSON' in capsys.readouterr().err
    (out / 'something-something-v2-train.json').unlink()
    assert gen_label_sthv2.main(['--root_path', str(root)]) == 2
    assert 'something-something-v2-train.json' in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- Kinetics

def write_csv(path, header, rows):
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def kinetics(tmp_path):
    """Two official CSVs (with the is_cc column of Kinetics-400) and frames in three folder styles."""
    ann = tmp_path / 'ann'
    ann.mkdir()
    header = ['label', 'youtube_id', 'time_start', 'time_end', 'split', 'is_cc']
    write_csv(ann / 'train.csv', header, [
        ['zumba', 'aaaaaaaaaaa', '10', '20', 'train', '0'],
        ['passing American football (in game)', 'bbbbbbbbbbb', '0', '10', 'train', '0'],
        ['abseiling', 'ccccccccccc', '5', '15', 'train', '1'],
        ['abseiling', 'missingvid0', '5', '15', 'train', '1'],
    ])
    write_csv(ann / 'validate.csv', header, [['zumba', 'ddddddddddd', '30.0', '40.0', 'val', '0']])
    images = tmp_path / 'kinetics' / 'images'
    make_frames(images / 'zumba' / 'aaaaaaaaaaa_000010_000020', [f'img_{i:05d}.jpg' for i in range(1, 5)])
    make_frames(images / 'passing_American_football_(in_game)' / 'bbbbbbbbbbb',  # bare youtube id
                [f'img_{i:05d}.jpg' for i in range(1, 3)])
    make_frames(images / 'train' / 'abseiling' / 'ccccccccccc_000005_000015',  # one level deeper
                [f'img_{i:05d}.jpg' for i in range(1, 4)])
    make_frames(images / 'zumba' / 'ddddddddddd_000030_000040', [f'img_{i:05d}.jpg' for i in range(1, 7)])
    make_frames(images / 'abseiling' / '.missingvid0_000005_000015.partial', ['img_00001.jpg'])
    return tmp_path, ann


def test_kinetics_lists_and_categories(kinetics, capsys):
    root, ann = kinetics
    rc = gen_label_kinetics.main(['--root_path', str(root),
                                  '--csv', str(ann / 'train.csv'), str(ann / 'validate.csv')])
    assert rc == 0
    labels = root / 'kinetics' / 'labels'
    assert (labels / 'category.txt').read_text().splitlines() == [
        'abseiling', 'passing American football (in game)', 'zumba']
    assert sorted(read_list(labels / 'train_videofolder.txt')) == sorted([
        ('zumba/aaaaaaaaaaa_000010_000020', '4', '2'),
        ('passing_American_football_(in_game)/bbbbbbbbbbb', '2', '1'),
        ('train/abseiling/ccccccccccc_000005_000015', '3', '0')])
    assert read_list(labels / 'val_videofolder.txt') == [('zumba/ddddddddddd_000030_000040', '6', '2')]
    assert 'skipped: missingvid0_000005_000015' in capsys.readouterr().err


def test_kinetics_unlabelled_test_csv(kinetics):
    root, ann = kinetics
    write_csv(ann / 'test.csv', ['youtube_id', 'time_start', 'time_end', 'split'],
              [['ddddddddddd', '30', '40', 'test']])
    out = root / 'lists'
    rc = gen_label_kinetics.main(['--root_path', str(root), '--out_dir', str(out),
                                  '--csv', str(ann / 'train.csv'), str(ann / 'test.csv')])
    assert rc == 0
    assert read_list(out / 'test_videofolder.txt') == [('zumba/ddddddddddd_000030_000040', '6', '0')]
    assert not (out / 'val_videofolder.txt').exists()


@pytest.mark.parametrize('header, row, message', [
    (['label', 'youtube_id', 'time_start', 'split'], ['zumba', 'x', '1', 'train'],
     'train.csv:1: header lacks column(s) time_end'),
    (['label', 'youtube_id', 'time_start', 'time_end', 'split'], ['zumba', 'x', '1', '2', 'holdout'],
     "train.csv:2: unknown split 'holdout'"),
    (['label', 'youtube_id', 'time_start', 'time_end', 'split'], ['zumba', 'x', 'one', '2', 'train'],
     'train.csv:2: time_start / time_end are not numbers'),
    (['label', 'youtube_id', 'time_start', 'time_end', 'split'], ['', 'x', '1', '2', 'train'],
     'train.csv:2: train row without a label'),
    (['label', 'youtube_id', 'time_start', 'time_end', 'split'], ['zumba', 'x', '1'],
     'train.csv:2: expected 5 comma-separated fields'),
])
def test_kinetics_bad_csv_names_file_and_line(kinetics, capsys, header, row, message):
    root, ann = kinetics
    write_csv(ann / 'train.csv', header, [row])
    assert gen_label_kinetics.main(['--root_path', str(root), '--csv', str(ann / 'train.csv')]) == 2
    assert message in capsys.readouterr().err


def test_kinetics_missing_inputs(kinetics, capsys):
    root, ann = kinetics
    assert gen_label_kinetics.main(['--root_path', str(root), '--csv', str(ann / 'nope.csv')]) == 2
    assert 'nope.csv' in capsys.readouterr().err
    assert gen_label_kinetics.main(['--csv', str(ann / 'train.csv'), '--frames_dir', str(root / 'no_images'),
                                    '--out_dir', str(root / 'out')]) == 2
    assert 'no_images' in capsys.readouterr().err


@pytest.mark.parametrize('tool', ['gen_label_sthv1', 'gen_label_sthv2', 'gen_label_kinetics'])
def test_help_runs_as_script(repo_root, tool):
    result = subprocess.run([sys.executable, f'tools/{tool}.py', '--help'], cwd=repo_root,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert '--frames_dir' in result.stdout and '--root_path' in result.stdout
