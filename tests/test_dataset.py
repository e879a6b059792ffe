"""PANDataSet and list files: clip shapes per modality and mode, what a transform receives, frame
folders and video files, and every bad-input case (malformed lines, missing or unreadable frames
and videos, the opt-in substitution)."""
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ops.dataset import (ListFileError, MissingFrameWarning, PANDataSet, VideoRecord, expand_indices,
                         parse_list_file, sample_val_indices)
from ops.frames.image_io import FrameReadError
from ops.frames.video_reader import VideoReadError
from ops.transforms import build_test_transform, build_train_transform, build_val_transform
from test_video_reader import frame_colour, frame_number, write_video

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TMPL = 'img_{:05d}.jpg'

# torchvision 0.29 (pinned) announces its JPEG decoder's move to TorchCodec on every call
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning:torchvision.io.image')


def write_frames(folder, num_frames: int, size=(32, 24)):
    """A frame folder whose frame i (1-based) has the flat colour ``frame_colour(i)``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, num_frames + 1):
        Image.new('RGB', size, frame_colour(i)).save(folder / TMPL.format(i), quality=95)
    return folder


def write_list(path, lines) -> str:
    path.write_text(''.join(line + '\n' for line in lines))
    return str(path)


class Recorder:
    """A release-style transform that keeps what it was given."""

    def __init__(self, input_format=None):
        if input_format:
            self.input_format = input_format
        self.calls = []

    def __call__(self, frames):
        self.calls.append(frames)
        return torch.zeros(1)


@pytest.fixture
def root(tmp_path):
    write_frames(tmp_path / 'v1', 20)
    write_frames(tmp_path / 'with space', 12)
    write_frames(tmp_path / 'tiny', 2)
    return tmp_path


# ------------------------------------------------------------------ list files

def test_parse_list_file(tmp_path):
    path = write_list(tmp_path / 'l.txt', ['v1 20 3', '', 'with space 12 0', '  a/b c  7 1  '])
    records = parse_list_file(path, num_class=4)
    assert [(r.path, r.num_frames, r.label) for r in records] == [('v1', 20, 3), ('with space', 12, 0),
                                                                  ('a/b c', 7, 1)]
    assert records[1].source == f'{path}:3'


@pytest.mark.parametrize('line,problem', [
    ('onlyname', 'got 1 field'), ('v 20', 'got 2 field'), ('v x 3', "frame count 'x'"),
    ('v 20 y', "label 'y'"), ('v 20 9', 'label 9 outside 0..3'), ('v 20 -1', 'label -1 outside'),
    ('v -5 1', 'negative frame count')])
def test_malformed_line_names_file_and_line(tmp_path, line, problem):
    path = write_list(tmp_path / 'bad.txt', ['ok 10 0', line])
    with pytest.raises(ListFileError, match='bad.txt') as err:
        parse_list_file(path, num_class=4)
    assert 'line 2' in str(err.value) and problem in str(err.value)


def test_all_bad_lines_in_one_message(tmp_path):
    path = write_list(tmp_path / 'bad.txt', ['ok 10 0'] + [f'v{i} x 0' for i in range(8)])
    with pytest.raises(ListFileError) as err:
        parse_list_file(path)
    text = str(err.value)
    assert '8 malformed' in text and all(f'line {n}' in text for n in range(2, 7)) and 'and 3 more' in text


def test_empty_or_missing_list(tmp_path):
    with pytest.raises(ListFileError, match='no entries'):
        parse_list_file(write_list(tmp_path / 'empty.txt', ['', '  ']))
    with pytest.raises(FileNotFoundError, match='nothere.txt'):
        parse_list_file(tmp_path / 'nothere.txt')


def test_dataset_checks_labels_before_training(root):
    path = write_list(root / 'l.txt', ['v1 20 0', 'v1 20 5'])
    with pytest.raises(ListFileError, match='line 2: label 5 outside 0..4'):
        PANDataSet(root, path, num_class=5)


# ------------------------------------------------------------------ clips

def test_rgb_and_lite_clip_shapes(root):
    path = write_list(root / 'l.txt', ['v1 20 2'])
    rgb = PANDataSet(root, path, num_segments=3, image_tmpl=TMPL,
                     transform=build_train_transform(16, MEAN, STD))
    clip, label = rgb[0]
    assert clip.shape == (3 * 3, 16, 16) and clip.dtype == torch.float32 and label == 2
    lite = PANDataSet(root, path, num_segments=4, new_length=4, modality='Lite', image_tmpl=TMPL,
                      transform=build_val_transform(16, 18, MEAN, STD), random_shift=False)
    assert lite[0][0].shape == (4 * 4 * 3, 16, 16)


def test_user_transform_gets_pil_frames_in_temporal_order(root):
    path = write_list(root / 'l.txt', ['v1 20 0'])
    recorder = Recorder()
    ds = PANDataSet(root, path, num_segments=3, new_length=4, modality='PA', image_tmpl=TMPL,
                    transform=recorder, random_shift=False)
    ds[0]
    frames = recorder.calls[0]
    assert all(isinstance(f, Image.Image) and f.mode == 'RGB' for f in frames)
    want = expand_indices(sample_val_indices(20, 3, 4), 4, 20).tolist()
    assert [frame_number(np.asarray(f)) for f in frames] == want


def test_fast_transform_gets_one_uint8_array(root):
    path = write_list(root / 'l.txt', ['tiny 2 0'])
    recorder = Recorder('uint8')
    ds = PANDataSet(root, path, num_segments=3, new_length=4, modality='Lite', image_tmpl=TMPL,
                    transform=recorder, test_mode=True)
    ds[0]
    frames = recorder.calls[0]
    assert isinstance(frames, torch.Tensor) and frames.dtype == torch.uint8
    assert frames.shape == (12, 24, 32, 3)
    assert [frame_number(f.numpy()) for f in frames] == ds.clip_indices(ds.video_list[0]).tolist()


def test_without_transform_frames_in_unit_range(root):
    ds = PANDataSet(root, write_list(root / 'l.txt', ['v1 20 0']), num_segments=2, image_tmpl=TMPL,
                    random_shift=False)
    clip, _ = ds[0]
    assert clip.shape == (6, 24, 32) and 0 <= clip.min() and clip.max() <= 1


def test_fast_and_pil_pipelines_agree(root):
    path = write_list(root / 'l.txt', ['v1 20 0', 'with space 12 1'])
    pil, fast = (PANDataSet(root, path, num_segments=2, new_length=4, modality='Lite', image_tmpl=TMPL,
                            transform=build_val_transform(16, 18, MEAN, STD, fast=f), random_shift=False)
                 for f in (False, True))
    for k in range(2):
        a, b = pil[k][0], fast[k][0]
        assert a.shape == b.shape == (24, 16, 16)
        assert (a - b).abs().max() * 255 * max(STD) <= 1.0 + 1e-3


@pytest.mark.parametrize('twice,dense,clips', [(False, False, 1), (True, False, 2), (False, True, 10)])
def test_test_mode_views(root, twice, dense, clips):
    path = write_list(root / 'l.txt', ['v1 20 0'])
    ds = PANDataSet(root, path, num_segments=2, new_length=4, modality='Lite', image_tmpl=TMPL,
                    test_mode=True, twice_sample=twice, dense_sample=dense,
                    transform=build_test_transform(16, 18, MEAN, STD, test_crops=3))
    assert ds[0][0].shape == (3 * clips * 2 * 4 * 3, 16, 16)


def test_sampling_follows_torch_seed(root):
    ds = PANDataSet(root, write_list(root / 'l.txt', ['v1 20 0']), num_segments=3, image_tmpl=TMPL)
    record = ds.video_list[0]
    draws = []
    for seed in (1, 1, 2, 3, 4):
        torch.manual_seed(seed)
        draws.append(tuple(ds.segment_starts(record)))
    assert draws[0] == draws[1] and len(set(draws)) > 2


def test_modality_and_length_checks(root):
    path = write_list(root / 'l.txt', ['v1 20 0'])
    with pytest.raises(ValueError, match='PA modality replaces optical flow'):
        PANDataSet(root, path, modality='Flow')
    with pytest.raises(ValueError, match='new_length'):
        PANDataSet(root, path, modality='Lite', new_length=1)


def test_short_videos_dropped_outside_test_mode(root):
    path = write_list(root / 'l.txt', ['v1 20 0', 'tiny 2 1'])
    assert len(PANDataSet(root, path, image_tmpl=TMPL)) == 1
    assert len(PANDataSet(root, path, image_tmpl=TMPL, test_mode=True)) == 2
    assert len(PANDataSet(root, path, image_tmpl=TMPL, test_mode=True, remove_missing=True)) == 1
    with pytest.raises(ListFileError, match='no video has 3 frames'):
        PANDataSet(root, write_list(root / 's.txt', ['tiny 2 1']), image_tmpl=TMPL)


# ------------------------------------------------------------------ video files

def test_video_files_with_counts_from_the_container(root):
    names = [write_video(root / f'clip.{ext}', 18, codec).rsplit('/', 1)[1]
             for ext, codec in [('mp4', 'mpeg4'), ('webm', 'vp8'), ('avi', 'mpeg4'), ('mkv', 'vp9')]]
    path = write_list(root / 'l.txt', [f'{n} 0 {k}' for k, n in enumerate(names)])
    recorder = Recorder()
    ds = PANDataSet(root, path, num_segments=3, new_length=4, modality='Lite', transform=recorder,
                    random_shift=False)
    assert [r.num_frames for r in ds.video_list] == [18] * 4
    want = [i - 1 for i in expand_indices(sample_val_indices(18, 3, 4), 4, 18)]  # videos count from 0
    for k in range(4):
        assert ds[k][1] == k
        assert [frame_number(np.asarray(f)) for f in recorder.calls[-1]] == want
    fast = PANDataSet(root, path, num_segments=3, new_length=4, modality='Lite',
                      transform=build_val_transform(16, 18, MEAN, STD), random_shift=False)
    assert fast[1][0].shape == (36, 16, 16)


# ------------------------------------------------------------------ bad data

def test_missing_frame_names_path_and_line(root):
    (root / 'v1' / TMPL.format(7)).unlink()
    path = write_list(root / 'l.txt', ['v1 20 0'])
    ds = PANDataSet(root, path, num_segments=20, image_tmpl=TMPL, test_mode=True)  # reads every frame
    with pytest.raises(FrameReadError, match=r'missing frame: .*v1/img_00007.jpg.*l.txt:1'):
        ds[0]


def test_unreadable_frame_names_path(root):
    (root / 'v1' / TMPL.format(5)).write_bytes(b'\xff\xd8 not really a jpeg')
    (root / 'v1' / TMPL.format(6)).write_bytes(b'')
    ds = PANDataSet(root, write_list(root / 'l.txt', ['v1 20 0']), num_segments=20, image_tmpl=TMPL,
                    test_mode=True, transform=build_val_transform(16, 18, MEAN, STD))
    with pytest.raises(FrameReadError, match='cannot decode frame .*img_00005.jpg'):
        ds[0]
    ds.transform = None
    with pytest.raises(FrameReadError, match='cannot decode frame .*img_00005.jpg'):
        ds[0]


def test_missing_folder_and_video(root):
    path = write_list(root / 'l.txt', ['gone 20 0'])
    with pytest.raises(FrameReadError, match='missing video folder: .*gone'):
        PANDataSet(root, path, image_tmpl=TMPL, substitute_missing=True)[0]
    with pytest.raises(VideoReadError, match=r'missing video: .*gone.mp4.*l.txt:1'):
        PANDataSet(root, write_list(root / 'l.txt', ['gone.mp4 0 0']))
    (root / 'bad.mp4').write_bytes(b'garbage' * 100)
    ds = PANDataSet(root, write_list(root / 'l.txt', ['bad.mp4 20 0']), substitute_missing=True)
    with pytest.raises(VideoReadError, match='bad.mp4'):
        ds[0]


def test_substitute_missing_frames(root):
    for i in (7, 8):
        (root / 'v1' / TMPL.format(i)).unlink()
    (root / 'v1' / TMPL.format(9)).write_bytes(b'broken')
    recorder = Recorder()
    ds = PANDataSet(root, write_list(root / 'l.txt', ['v1 20 0', 'with space 12 0']), num_segments=20,
                    image_tmpl=TMPL, transform=recorder, test_mode=True, substitute_missing=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ds[0]
        ds[0]
        ds[1]
    frames = [frame_number(np.asarray(f)) for f in recorder.calls[0]]
    # nearest readable frame, the earlier one on ties: 7 -> 6, 8 -> 6 (not 10), 9 -> 10
    assert frames == [1, 2, 3, 4, 5, 6, 6, 6, 10] + list(range(10, 21))
    assert ds.substituted_frames == 6  # 3 per clip, 2 clips
    messages = [str(w.message) for w in caught if issubclass(w.category, MissingFrameWarning)]
    assert len(messages) == 1 and 'v1' in messages[0] and 'l.txt:1' in messages[0]


def test_substitution_counts_across_workers(root):
    (root / 'v1' / TMPL.format(20)).unlink()
    ds = PANDataSet(root, write_list(root / 'l.txt', ['v1 20 0'] * 3), num_segments=20, image_tmpl=TMPL,
                    test_mode=True, substitute_missing=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        batches = list(DataLoader(ds, batch_size=1, num_workers=1))
    assert len(batches) == 3 and ds.substituted_frames == 3


def test_substitute_in_videos_shorter_than_listed(root):
    write_video(root / 'short.webm', 10, 'vp8')
    recorder = Recorder()
    ds = PANDataSet(root, write_list(root / 'l.txt', ['short.webm 16 0']), num_segments=4, new_length=4,
                    modality='Lite', transform=recorder, random_shift=False, substitute_missing=True)
    with pytest.warns(MissingFrameWarning, match='short.webm'):
        ds[0]
    listed = expand_indices(sample_val_indices(16, 4, 4), 4, 16)
    assert [frame_number(np.asarray(f)) for f in recorder.calls[0]] == [min(i, 10) - 1 for i in listed]
    assert ds.substituted_frames == len({i for i in listed if i > 10}) > 0  # each became frame 10
    strict = PANDataSet(root, write_list(root / 'l.txt', ['short.webm 16 0']), num_segments=4, new_length=4,
                        modality='Lite', transform=recorder, random_shift=False)
    with pytest.raises(VideoReadError, match=r'short.webm.*out of range.*l.txt:1'):
        strict[0]


def test_nothing_to_substitute(root):
    for i in (1, 2):
        (root / 'tiny' / TMPL.format(i)).unlink()
    ds = PANDataSet(root, write_list(root / 'l.txt', ['tiny 2 0']), image_tmpl=TMPL, test_mode=True,
                    substitute_missing=True)
    with pytest.raises(FrameReadError, match='no readable frame in .*tiny'):
        ds[0]


def test_video_record_fields():
    r = VideoRecord('a b', 3, 1)
    assert (r.path, r.num_frames, r.label, r.source) == ('a b', 3, 1, '')


# ------------------------------------------------------------------ frame files (ops/frames/image_io.py)

def test_fast_decoder_equals_pil(tmp_path):
    from ops.frames.image_io import read_frame_pil, read_frame_uint8
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    image = Image.fromarray(texture).resize((60, 45), Image.BICUBIC)
    cases = {'colour.jpg': image, 'grey.jpg': image.convert('L'), 'frame.png': image}
    for name, img in cases.items():
        img.save(tmp_path / name)
        fast, slow = read_frame_uint8(str(tmp_path / name)), np.asarray(read_frame_pil(str(tmp_path / name)))
        assert fast.shape == (45, 60, 3) and fast.dtype == torch.uint8 and fast.is_contiguous()
        assert np.array_equal(fast.numpy(), slow), name


def test_frame_errors_name_the_file(tmp_path):
    from ops.frames.image_io import read_frame_pil, read_frame_uint8
    (tmp_path / 'empty.jpg').write_bytes(b'')
    (tmp_path / 'cut.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    for read in (read_frame_uint8, read_frame_pil):
        with pytest.raises(FrameReadError, match='missing frame: .*none.jpg'):
            read(str(tmp_path / 'none.jpg'))
        with pytest.raises(FrameReadError, match='empty frame file: .*empty.jpg'):
            read(str(tmp_path / 'empty.jpg'))
        with pytest.raises(FrameReadError, match='cannot decode frame .*cut.jpg'):
            read(str(tmp_path / 'cut.jpg'))
