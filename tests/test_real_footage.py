"""Clips as users bring them: frames of any size (smaller than the network's input, portrait and
landscape in one batch) and videos shorter than a clip's needs, from folders and from video files,
through training, validation and every test view; and main.py / test_models.py on such a set."""
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from conftest import run_in_process
import main as train_main
import test_models
from ops.dataset import PANDataSet
from ops.frames.frame_source import VideoFrames, stack_clip
from ops.modalities import frames_per_segment
from ops.sampling import expand_indices, sample_train_indices, sample_val_indices
from ops.transforms import build_train_transform, build_val_transform
from ops.views import TestViews
from test_dataset import write_list
from test_video_reader import frame_colour, frame_number, write_video

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TMPL = '{:05d}.jpg'  # the synthetic dataset's, whose registry entry main.py runs with
SEGMENTS = 8
# (name, frames, size, codec): portrait and landscape phone-like clips, small and short
CLIPS = [('portrait phone.mp4', 8, (44, 78), 'libx264'), ('p110.MOV', 7, (110, 196), 'mpeg4'),
         ('landscape.mkv', 10, (196, 110), 'libx264'), ('wide.webm', 9, (78, 44), 'libvpx'),
         ('five.m4v', 5, (64, 48), 'libx264'), ('seven.AVI', 7, (48, 64), 'mpeg4'),
         ('two.mp4', 2, (44, 78), 'libx264'), ('one.avi', 1, (64, 48), 'mpeg4')]
FOLDERS = [('frames portrait', 6, (44, 78)), ('frames 110', 5, (110, 196)), ('frames one', 1, (78, 44)),
           ('frames 1x1', 3, (1, 1)), ('frames 3x90', 4, (3, 90))]  # test files of other projects are this small
# short videos for the sampling test, small so that their clips are quick to compare
SHORT = [('1.avi', 1, 'mpeg4'), ('2.mkv', 2, 'libx264'), ('5.webm', 5, 'libvpx'), ('7.MP4', 7, 'libx264'),
         ('5 frames', 5, None), ('1 frame', 1, None), ('7 frames', 7, None)]

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning:torchvision.io.image')


def write_frames(folder: Path, count: int, size=(32, 24)) -> Path:
    """A frame folder whose frame i (1-based) shows ``frame_colour(i - 1)``, as frame i of a video."""
    folder.mkdir(parents=True)
    for i in range(1, count + 1):
        Image.new('RGB', size, frame_colour(i - 1)).save(folder / TMPL.format(i), quality=95)
    return folder


@pytest.fixture(scope='module')
def footage(tmp_path_factory):
    """Lists (absolute paths) of the video files and frame folders above ('all'), of two 222x300 /
    300x222 videos ('big'), of the short ones ('short'), and of four clips of 110x196, 196x110 and
    44x78 frames, files and a folder ('phone')."""
    root = tmp_path_factory.mktemp('footage')
    lines = [f'{write_video(root / name, n, codec, gop=3, size=size)} {n} {k % 3}'
             for k, (name, n, size, codec) in enumerate(CLIPS)]
    lines += [f'{write_frames(root / name, n, size)} {n} {k % 3}' for k, (name, n, size) in enumerate(FOLDERS)]
    big = [f'{write_video(root / f"big{k}.mp4", 6, "libx264", gop=3, size=size)} 6 {k}'
           for k, size in enumerate([(222, 300), (300, 222)])]
    short = [f'{write_video(root / name, n, codec, gop=3) if codec else write_frames(root / name, n)} {n} 0'
             for name, n, codec in SHORT]
    return root, write_list(root / 'all.txt', lines), write_list(root / 'big.txt', big), \
        write_list(root / 'short.txt', short), write_list(root / 'phone.txt', [lines[i] for i in (0, 1, 2, 9)])


def frame_numbers(clip: torch.Tensor) -> list[int]:
    """The 1-based index of each frame of an untransformed clip ``(F*3, H, W)`` in [0, 1], read from
    its colour (frame i, 1-based, shows ``frame_colour(i - 1)``)."""
    frames = (clip.view(-1, 3, *clip.shape[-2:]).permute(0, 2, 3, 1) * 255).numpy()
    return [frame_number(f) + 1 for f in frames]


def release_centres(n: int, length: int, half: bool = True) -> list[int]:
    """The release's test-time segment starts (1-based), with its bug for short videos (starts at
    frame 0 or below) clamped to frame 1."""
    tick = (n - length + 1) / float(SEGMENTS)
    return [max(int((tick / 2.0 if half else 0) + tick * x), 0) + 1 for x in range(SEGMENTS)]


@pytest.mark.parametrize('modality', ['RGB', 'PA', 'Lite'])
def test_short_videos_repeat_frames_as_the_release_does(footage, modality):
    """Every frame a clip reads is a frame of the video, each segment's consecutive frames repeat
    the last one where the video ends, and the segment starts are the release's, in training,
    validation and each test clip of twice and dense sampling, for 1, 2, 5 and 7-frame videos."""
    short_list = footage[3]
    length = frames_per_segment(modality, 4)
    kinds = {'train': dict(random_shift=True), 'val': dict(random_shift=False),
             'test': dict(test_mode=True), 'twice': dict(test_mode=True, twice_sample=True),
             'dense': dict(test_mode=True, dense_sample=True)}
    for kind, options in kinds.items():
        data = PANDataSet('/', short_list, SEGMENTS, length, modality, TMPL, transform=None, **options)
        lengths = sorted(r.num_frames for r in data.video_list)
        if kind in ('train', 'val'):  # the release drops videos of fewer than 3 frames from these lists
            assert data.num_removed == 3 and lengths == [5, 5, 7, 7]
            assert [s.rsplit(':', 1)[1] for s in data.removed_lines] == ['1', '2', '6']
        else:
            assert lengths == [1, 1, 2, 5, 5, 7, 7]
        for k, record in enumerate(data.video_list):
            n = record.num_frames
            torch.manual_seed(k)
            got = frame_numbers(data[k][0])
            torch.manual_seed(k)
            starts = data.segment_starts(record)
            assert got == expand_indices(starts, length, n).tolist(), (kind, record.path)
            if n <= 7 and kind in ('train', 'val'):  # too short for 8 segments: every segment at frame 1
                assert starts.tolist() == [1] * SEGMENTS
            elif kind in ('test', 'twice'):
                expected = release_centres(n, length) + (release_centres(n, length, False) if kind == 'twice' else [])
                assert starts.tolist() == expected
            per_segment = np.array(got).reshape(-1, length)
            assert (per_segment >= 1).all() and (per_segment <= n).all()
            assert (np.diff(per_segment, axis=1) >= 0).all() and (np.diff(per_segment, axis=1) <= 1).all()


def test_the_sampler_repeats_frame_one_for_one_and_two_frame_videos():
    for n in (1, 2):
        for starts in (sample_train_indices(n, SEGMENTS, 4, np.random.default_rng(0)),
                       sample_val_indices(n, SEGMENTS, 4)):
            assert expand_indices(starts, 4, n).tolist() == ([1, 1, 1, 1] if n == 1 else [1, 2, 2, 2]) * SEGMENTS


def test_every_view_of_small_portrait_and_landscape_clips_batches(footage):
    """Frames of 44x78 .. 196x110 with input 112 (and 222x300 / 300x222 with 224), from files and
    folders, through the train, val and every test pipeline, portrait and landscape in one batch."""
    root, all_list, big_list = footage[:3]
    for list_file, size in ((all_list, 112), (big_list, 224)):
        scale = size * 256 // 224
        pipelines = {'train': (build_train_transform(size, MEAN, STD, normalize=False), dict(random_shift=True), 1),
                     'val': (build_val_transform(size, scale, MEAN, STD, normalize=False), dict(random_shift=False), 1)}
        for crops, full_res, twice in [(1, False, True), (3, False, False), (5, True, False), (10, False, False)]:
            views = TestViews(crops=crops, full_res=full_res, twice_sample=twice, input_size=size)
            pipelines[f'test {crops} {full_res}'] = (views.transform(MEAN, STD, normalize=False),
                                                     dict(test_mode=True, twice_sample=twice), views.num_views)
        for kind, (transform, options, views) in pipelines.items():
            data = PANDataSet('/', list_file, 2, 4, 'Lite', TMPL, transform=transform, **options)
            clips, labels = next(iter(DataLoader(data, batch_size=len(data))))
            side = scale if 'True' in kind else size
            assert clips.shape == (len(data), views * 2 * 4 * 3, side, side) and clips.dtype == torch.uint8, kind


def test_train_and_test_on_phone_clips(footage, synthetic_root, tmp_path, capsys):
    """main.py trains and validates at --input_size 112 on clips of 110x196, 196x110 and 44x78 frames
    (one batch holds them all: portrait and landscape, files and a folder); test_models.py tests it
    with 3 full-resolution crops (every other view is held above, on the same kinds of clips)."""
    phone = footage[4]
    code, out, err = run_in_process(train_main.main, [
        'synthetic', 'Lite', '--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2',
        '--input_size', '112', '-b', '4', '--epochs', '1', '-j', '2', '--root_path', str(synthetic_root),
        '--train_list', phone, '--val_list', phone, '--root_log', str(tmp_path / 'log'),
        '--root_model', str(tmp_path / 'ck'), '--store_name', 'phone'], capsys)
    assert code == 0, err
    assert '=> run phone: 4 train / 4 val videos' in out and 'Testing Results: Prec@1' in out
    weights = str(tmp_path / 'ck' / 'phone' / 'ckpt.pth.tar')
    code, out, err = run_in_process(test_models.main, [
        'synthetic', '--weights', weights, '--test_segments', '2', '--input_size', '112', '-j', '0',
        '--batch_size', '4', '--root_path', str(synthetic_root), '--test_list', phone, '--no_confusion_png',
        '--save_scores', str(tmp_path / 'scores.npz'), '--test_crops', '3', '--full_res'], capsys)
    assert code == 0, err
    assert 'total 4/4' in out and 'Overall Prec@1' in out


def test_a_video_whose_resolution_changes_reads_at_one_size(tmp_path):
    """Two transport-stream pieces of 64x48 and 48x80 frames, spliced as a recorded adaptive stream
    is: every frame reads, and a clip brings them to the size most of its frames have."""
    parts = []
    for k, (w, h) in enumerate([(64, 48), (48, 80)]):
        part = tmp_path / f'part{k}.ts'
        with av.open(str(part), 'w', format='mpegts') as container:
            stream = container.add_stream('libx264', rate=25, options={'x264-params': 'keyint=3'})
            stream.width, stream.height, stream.pix_fmt = w, h, 'yuv420p'
            for i in range(6):
                frame = np.full((h, w, 3), frame_colour(6 * k + i), np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        parts.append(part.read_bytes())
    path = tmp_path / 'spliced.ts'
    path.write_bytes(b''.join(parts))
    frames = VideoFrames(str(path)).read(range(1, 13))
    assert len(frames) == 12 and {tuple(f.shape) for f in frames.values()} == {(48, 64, 3), (80, 48, 3)}
    clip = stack_clip(frames, [1, 2, 7, 8, 9], str(path))            # 3 of 5 frames are 48x80
    assert clip.shape == (5, 80, 48, 3) and torch.equal(clip[2], frames[7])
    assert frame_number(clip[0].numpy()) == 0                         # resized, still frame 1's picture
    data = PANDataSet('/', write_list(tmp_path / 'list.txt', [f'{path} 12 0']), 2, 4, 'Lite', TMPL,
                      transform=build_val_transform(32, 36, MEAN, STD, normalize=False), random_shift=False)
    assert data[0][0].shape == (2 * 4 * 3, 32, 32)
