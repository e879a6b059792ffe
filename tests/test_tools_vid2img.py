"""vid2img_sthv2 / vid2img_kinetics: tiny videos encoded here with PyAV -> resized JPEG frame folders,
in parallel, skipping finished videos, redoing unfinished ones and listing the failures."""
import os
import subprocess
import sys

import av
import numpy as np
import pytest
from PIL import Image

from tools import gen_label_kinetics, vid2img_kinetics, vid2img_sthv2

GREY_STEP = 30  # frame i (0-based) of a test video is uniformly grey 20 + 30 * i


def write_video(path, num_frames, width, height, codec):
    """A video whose frames are flat grey levels that rise frame by frame (so order can be checked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), 'w') as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        for i in range(num_frames):
            image = np.full((height, width, 3), 20 + GREY_STEP * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def check_frames(folder, template, num_frames, size):
    """The folder holds exactly the frames 1..num_frames, of ``size``, in temporal order."""
    assert sorted(os.listdir(folder)) == [template.format(i) for i in range(1, num_frames + 1)]
    for i in range(num_frames):
        with Image.open(folder / template.format(i + 1)) as image:
            assert image.size == size
            assert abs(np.asarray(image).mean() - (20 + GREY_STEP * i)) < 6


def frame_mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


@pytest.fixture
def sthv2_videos(tmp_path):
    videos = tmp_path / 'something' / 'v2' / '20bn-something-something-v2'
    write_video(videos / '101.webm', 5, 64, 48, 'libvpx-vp9')
    write_video(videos / '102.webm', 3, 48, 64, 'libvpx')  # portrait, VP8
    (videos / '103.webm').write_bytes(b'\x1aE\xdf\xa3 this is not a video' * 20)
    return tmp_path, videos


def test_sthv2_extracts_lists_failures_and_skips_done(sthv2_videos, capsys):
    root, videos = sthv2_videos
    frames = root / 'something' / 'v2' / '20bn-something-something-v2-frames'
    assert vid2img_sthv2.main(['--root_path', str(root), '--workers', '2']) == 1
    captured = capsys.readouterr()
    assert '1 videos failed' in captured.err and '103.webm' in captured.err
    check_frames(frames / '101', '{:06d}.jpg', 5, (341, 256))  # height 256, aspect kept
    check_frames(frames / '102', '{:06d}.jpg', 3, (192, 256))
    assert sorted(os.listdir(frames)) == ['101', '102']  # nothing left of the failed one

    before = frame_mtimes(frames / '101')
    assert vid2img_sthv2.main(['--root_path', str(root), '--workers', '1']) == 1
    captured = capsys.readouterr()
    assert '2 of 3 videos already extracted' in captured.out and '103.webm' in captured.err
    assert frame_mtimes(frames / '101') == before


def test_sthv2_redoes_a_video_interrupted_mid_way(sthv2_videos):
    root, videos = sthv2_videos
    (videos / '103.webm').unlink()
    frames = root / 'frames'
    partial = frames / '.101.partial'  # what a crash while writing 101 leaves
    partial.mkdir(parents=True)
    (partial / '000001.jpg').write_bytes(b'half')
    assert vid2img_sthv2.main(['--video_dir', str(videos), '--frames_dir', str(frames), '--height', '32',
                               '--workers', '1']) == 0
    check_frames(frames / '101', '{:06d}.jpg', 5, (43, 32))
    assert sorted(os.listdir(frames)) == ['101', '102']


def test_sthv2_missing_inputs(tmp_path, capsys):
    assert vid2img_sthv2.main(['--root_path', str(tmp_path)]) == 2
    assert '20bn-something-something-v2' in capsys.readouterr().err
    (tmp_path / 'empty').mkdir()
    args = ['--video_dir', str(tmp_path / 'empty'), '--frames_dir', str(tmp_path / 'f')]
    assert vid2img_sthv2.main(args) == 2
    assert 'no video file' in capsys.readouterr().err


def test_kinetics_script_keeps_class_folders_and_feeds_gen_label(tmp_path, repo_root):
    """Run as a script in 2 processes, then gen_label_kinetics builds the lists from its output."""
    videos = tmp_path / 'kinetics' / 'videos'
    write_video(videos / 'abseiling' / 'aaaaaaaaaaa_000010_000020.mp4', 4, 64, 48, 'mpeg4')
    write_video(videos / 'zumba' / 'bbbbbbbbbbb_000000_000010.mp4', 3, 48, 64, 'libx264')
    broken = b'\x00\x00\x00\x18ftypmp42' + b'\x00' * 64  # an MP4 header and nothing else
    (videos / 'zumba' / 'ccccccccccc_000005_000015.mp4').write_bytes(broken)
    result = subprocess.run([sys.executable, 'tools/vid2img_kinetics.py', '--root_path', str(tmp_path),
                             '--workers', '2'], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert 'ccccccccccc_000005_000015.mp4' in result.stderr
    images = tmp_path / 'kinetics' / 'images'
    check_frames(images / 'abseiling' / 'aaaaaaaaaaa_000010_000020', 'img_{:05d}.jpg', 4, (341, 256))
    check_frames(images / 'zumba' / 'bbbbbbbbbbb_000000_000010', 'img_{:05d}.jpg', 3, (256, 341))
    assert sorted(os.listdir(images / 'zumba')) == ['bbbbbbbbbbb_000000_000010']

    csv_path = tmp_path / 'train.csv'
    csv_path.write_text('label,youtube_id,time_start,time_end,split\nabseiling,aaaaaaaaaaa,10,20,train\n'
                        'zumba,bbbbbbbbbbb,0,10,train\nzumba,ccccccccccc,5,15,train\n')
    assert gen_label_kinetics.main(['--root_path', str(tmp_path), '--csv', str(csv_path)]) == 0
    lines = (tmp_path / 'kinetics' / 'labels' / 'train_videofolder.txt').read_text().splitlines()
    assert lines == ['abseiling/aaaaaaaaaaa_000010_000020 4 0', 'zumba/bbbbbbbbbbb_000000_000010 3 1']


def test_kinetics_missing_inputs(tmp_path, capsys):
    assert vid2img_kinetics.main(['--root_path', str(tmp_path)]) == 2
    assert str(tmp_path / 'kinetics' / 'videos') in capsys.readouterr().err


@pytest.mark.parametrize('tool, option', [('vid2img_sthv2', '--height'),
                                          ('vid2img_kinetics', '--short_side')])
def test_help_runs_as_script(repo_root, tool, option):
    result = subprocess.run([sys.executable, f'tools/{tool}.py', '--help'], cwd=repo_root,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert option in result.stdout and '--workers' in result.stdout


@pytest.mark.parametrize('tool', ['sthv2', 'kinetics'])
def test_videos_writing_the_same_folder_are_reported_before_any_extraction(tmp_path, capsys, tool):
    if tool == 'sthv2':
        videos = tmp_path / 'something' / 'v2' / '20bn-something-something-v2'
        names, main = ['7.mp4', '7.webm', '8.webm'], vid2img_sthv2.main
    else:
        videos = tmp_path / 'kinetics' / 'videos' / 'zumba'
        names, main = ['a.mp4', 'a.webm', 'b.mp4'], vid2img_kinetics.main
    for name in names:
        write_video(videos / name, 2, 32, 32, 'libvpx' if name.endswith('.webm') else 'mpeg4')
    assert main(['--root_path', str(tmp_path), '--workers', '1']) == 2
    err = capsys.readouterr().err
    assert 'error: 1 frame folder(s) would be written by more than one video' in err
    assert names[0] in err and names[1] in err and names[2] not in err
    frames_root = {'sthv2': tmp_path / 'something' / 'v2' / '20bn-something-something-v2-frames',
                   'kinetics': tmp_path / 'kinetics' / 'images'}[tool]
    assert not frames_root.exists() or not any(frames_root.rglob('*.jpg'))  # nothing was extracted
