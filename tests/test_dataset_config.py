"""The dataset registry: the TSM layout under one data root, the root's precedence, overrides,
and errors that name the missing path and the tool that creates it."""
from pathlib import Path

import pytest

from ops.dataset_config import (DatasetFilesError, check_dataset_files, data_root, get_dataset_info,
                                known_datasets, read_categories)

# name: (classes, frames, train list, val list, categories, template, flip), from the TSM layout
LAYOUT = {
    'something': (174, 'something/v1/20bn-something-something-v1', 'something/v1/train_videofolder.txt',
                  'something/v1/val_videofolder.txt', 'something/v1/category.txt', '{:05d}.jpg', False),
    'somethingv2': (174, 'something/v2/20bn-something-something-v2-frames',
                    'something/v2/train_videofolder.txt', 'something/v2/val_videofolder.txt',
                    'something/v2/category.txt', '{:06d}.jpg', False),
    'jester': (27, 'jester/20bn-jester-v1', 'jester/train_videofolder.txt', 'jester/val_videofolder.txt',
               'jester/category.txt', '{:05d}.jpg', False),
    'kinetics': (400, 'kinetics/images', 'kinetics/labels/train_videofolder.txt',
                 'kinetics/labels/val_videofolder.txt', 'kinetics/labels/category.txt', 'img_{:05d}.jpg',
                 True),
    'ucf101': (101, 'ucf101/images', 'ucf101/file_list/ucf101_rgb_train_split_1.txt',
               'ucf101/file_list/ucf101_rgb_val_split_1.txt', 'ucf101/category.txt', 'img_{:05d}.jpg', True),
    'hmdb51': (51, 'hmdb51/images', 'hmdb51/file_list/hmdb51_rgb_train_split_1.txt',
               'hmdb51/file_list/hmdb51_rgb_val_split_1.txt', 'hmdb51/category.txt', 'img_{:05d}.jpg', True),
}


@pytest.mark.parametrize('name', sorted(LAYOUT))
def test_layout(tmp_path, name):
    classes, frames, train, val, categories, tmpl, flip = LAYOUT[name]
    info = get_dataset_info(name, str(tmp_path))
    assert (info.name, info.num_class, info.image_tmpl, info.flip) == (name, classes, tmpl, flip)
    assert (info.frames_root, info.train_list, info.val_list, info.category_file) == (
        tmp_path / frames, tmp_path / train, tmp_path / val, tmp_path / categories)


def test_synthetic_counts_its_categories(tmp_path):
    with pytest.raises(DatasetFilesError, match=r'(?s)synthetic/category.txt.*tools/gen_synthetic.py'):
        get_dataset_info('synthetic', tmp_path)
    (tmp_path / 'synthetic').mkdir()
    (tmp_path / 'synthetic' / 'category.txt').write_text('left\nright\nup\n\n')
    info = get_dataset_info('synthetic', tmp_path)
    assert (info.num_class, info.flip, info.image_tmpl) == (3, False, '{:05d}.jpg')
    assert info.frames_root == tmp_path / 'synthetic' / 'frames'
    assert info.train_list == tmp_path / 'synthetic' / 'train_videofolder.txt'


def test_known_names_and_unknown_name():
    assert set(known_datasets()) == set(LAYOUT) | {'synthetic'}
    with pytest.raises(ValueError, match='unknown dataset .*something, somethingv2, jester'):
        get_dataset_info('sthv1')


def test_root_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv('PAN_DATA_ROOT', raising=False)
    assert data_root() == Path('data')
    monkeypatch.setenv('PAN_DATA_ROOT', str(tmp_path / 'env'))
    assert data_root() == tmp_path / 'env'
    assert data_root('') == tmp_path / 'env'
    assert data_root(str(tmp_path / 'flag')) == tmp_path / 'flag'
    assert get_dataset_info('jester').frames_root == tmp_path / 'env' / 'jester' / '20bn-jester-v1'


def test_list_overrides(tmp_path):
    info = get_dataset_info('kinetics', tmp_path, train_list='my/train.txt', val_list=tmp_path / 'v.txt')
    assert info.train_list == Path('my/train.txt') and info.val_list == tmp_path / 'v.txt'
    assert info.frames_root == tmp_path / 'kinetics' / 'images'


@pytest.mark.parametrize('name,tool', [('something', 'tools/gen_label_sthv1.py'),
                                       ('somethingv2', 'tools/vid2img_sthv2.py'),
                                       ('kinetics', 'tools/vid2img_kinetics.py')])
def test_missing_files_name_path_and_tool(tmp_path, name, tool):
    info = get_dataset_info(name, tmp_path)
    with pytest.raises(DatasetFilesError) as err:
        check_dataset_files(info)
    text = str(err.value)
    assert str(info.frames_root) in text and str(info.train_list) in text and str(info.val_list) in text
    assert tool in text and 'PAN_DATA_ROOT' in text


def test_check_passes_when_present_and_names_only_what_is_missing(tmp_path):
    info = get_dataset_info('somethingv2', tmp_path)
    info.frames_root.mkdir(parents=True)
    info.train_list.write_text('a 3 0\n')
    with pytest.raises(DatasetFilesError) as err:
        check_dataset_files(info)
    assert str(info.val_list) in str(err.value) and str(info.train_list) not in str(err.value)
    assert 'tools/gen_label_sthv2.py' in str(err.value)
    check_dataset_files(info, splits=('train',))
    with pytest.raises(DatasetFilesError, match='category file'):
        check_dataset_files(info, splits=('train',), need_categories=True)


def test_read_categories(tmp_path):
    path = tmp_path / 'category.txt'
    path.write_text('Holding something\nPushing something from left to right\n\n')
    assert read_categories(path) == ['Holding something', 'Pushing something from left to right']
    path.write_text('a\n\nb\n')
    with pytest.raises(ValueError, match=r'category.txt: blank class name on line\(s\) \[2\]'):
        read_categories(path)
    with pytest.raises(DatasetFilesError, match='none.txt'):
        read_categories(tmp_path / 'none.txt')


def test_category_file_sets_the_class_count_of_a_subset(tmp_path):
    """A 3-class Kinetics subset made by the tools has 3 classes, not the registry's 400; a label
    outside them is an error naming the list line, before any training."""
    from ops.dataset import ListFileError, parse_list_file
    labels = tmp_path / 'kinetics' / 'labels'
    labels.mkdir(parents=True)
    (labels / 'category.txt').write_text('abseiling\nzumba\nyoga\n')
    info = get_dataset_info('kinetics', tmp_path)
    assert info.num_class == 3
    (labels / 'train_videofolder.txt').write_text('zumba/a 10 2\nyoga/b 10 3\n')
    with pytest.raises(ListFileError, match=r'line 2: label 3 outside 0..2'):
        parse_list_file(labels / 'train_videofolder.txt', info.num_class)
    assert get_dataset_info('kinetics', tmp_path / 'elsewhere').num_class == 400  # no category file


def test_list_paths_resolve_under_the_frame_folder(tmp_path):
    info = get_dataset_info('kinetics', tmp_path)
    assert info.resolve('zumba/a.mp4') == tmp_path / 'kinetics' / 'images' / 'zumba' / 'a.mp4'
    assert info.resolve(str(tmp_path / 'v.mp4')) == tmp_path / 'v.mp4'  # absolute paths are kept
