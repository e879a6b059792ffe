"""The check of one clip (ops/frames/clip_check.py) on damaged and mislabelled input: every
container, truncated files (the bytes of real files cut), a header that overstates its frames,
counts that disagree with the list, folders missing or with broken frames, LMDB videos; and a video
checked once is not decoded again, even by a new process."""
import shutil
from pathlib import Path

import av
import lmdb
import numpy as np
import pytest
from PIL import Image

from ops.frames import clip_check
from ops.frames.clip_check import check_clip
from ops.frames.lmdb_source import frame_key
from ops.frames.frame_stream import open_frame_stream
from ops.frames.video_reader import VideoReader, forget_indexes
from test_video_reader import frame_number, write_video

FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'xvid_bframes.avi'
CONTAINERS = [('mp4', 'libx264'), ('avi', 'mpeg4'), ('mkv', 'libx264'), ('webm', 'libvpx'), ('MOV', 'mpeg4'),
              ('m4v', 'libx264')]


@pytest.mark.parametrize('ext,codec', CONTAINERS)
def test_good_videos_pass_and_wrong_counts_are_named(tmp_path, ext, codec):
    path = write_video(tmp_path / f'my clip.{ext}', 7, codec, gop=3, size=(44, 78))
    assert check_clip(path, 7).ok and check_clip(path, 0).ok and check_clip(path).frames == 7
    for listed in (300, 5):  # too many, too few
        found = check_clip(path, listed)
        assert not found.ok and found.frames == 7
        assert found.problem == f'the list says {listed} frames, the file decodes 7'


def test_truncated_real_avi_says_what_its_header_claims(tmp_path):
    data = FIXTURE.read_bytes()
    cut = tmp_path / 'cut.avi'
    cut.write_bytes(data[:len(data) // 2])
    found = check_clip(str(cut), 164)
    assert found.header_frames == 164 and 0 < found.frames < 164
    assert found.problem == f'the list says 164 frames, the file decodes {found.frames} (its header claims 164)'
    assert check_clip(str(cut), found.frames).ok  # a list that gives the decodable count reads it
    assert check_clip(str(FIXTURE), 164).ok


def test_files_that_do_not_open(tmp_path):
    mp4 = write_video(tmp_path / 'whole.mp4', 30, 'libx264')
    data = Path(mp4).read_bytes()
    (tmp_path / 'cut.mp4').write_bytes(data[:len(data) * 2 // 3])  # its index (moov) is at the end
    (tmp_path / 'garbage.mkv').write_bytes(b'not a video' * 50)
    (tmp_path / 'empty.webm').write_bytes(b'')
    for name, reasons in (('cut.mp4', ('cannot open video', 'no video stream')),
                          ('garbage.mkv', ('cannot open video',)), ('empty.webm', ('cannot open video',)),
                          ('nothere.avi', ('missing video',))):
        found = check_clip(str(tmp_path / name), 30)
        assert found.frames is None and not found.readable
        assert found.problem.startswith(reasons) and name in found.problem, found.problem
        assert '[Errno' not in found.problem  # FFmpeg's reason, not its errno and the path again
    assert 'empty file (0 bytes)' in check_clip(str(tmp_path / 'empty.webm'), 30).problem


def test_a_checked_video_is_not_decoded_again_even_in_a_new_process(tmp_path, monkeypatch):
    path = write_video(tmp_path / 'v.webm', 12, 'libvpx', gop=4)
    assert check_clip(path, 12).ok
    forget_indexes()  # what a new process has in memory
    monkeypatch.setattr(av, 'open', lambda *a, **k: pytest.fail('decoded again'))
    assert check_clip(path, 12).ok
    assert check_clip(path, 30).problem == 'the list says 30 frames, the file decodes 12'


def write_frames(folder: Path, count: int, tmpl: str = 'img_{:05d}.jpg', size=(44, 78)) -> Path:
    folder.mkdir(parents=True)
    for i in range(1, count + 1):
        Image.new('RGB', size, (i * 9 % 256, 40, 90)).save(folder / tmpl.format(i))
    return folder


def test_frame_folders(tmp_path):
    good = write_frames(tmp_path / 'good', 6)
    assert check_clip(str(good), 6, 'img_{:05d}.jpg').ok
    assert check_clip(str(good), 0, 'img_{:05d}.jpg').frames == 6
    assert check_clip(str(good), 4, 'img_{:05d}.jpg').ok  # frames past the listed ones are never read
    assert check_clip(str(good), 9, 'img_{:05d}.jpg').problem == \
        'the list says 9 frames, the folder lacks 3 of them (img_00007.jpg, img_00008.jpg, img_00009.jpg)'
    holes = write_frames(tmp_path / 'holes', 8)
    for i in (2, 3, 4, 5):
        (holes / f'img_{i:05d}.jpg').unlink()
    assert 'lacks 4 of them (img_00002.jpg, img_00003.jpg, img_00004.jpg, ...)' in \
        check_clip(str(holes), 8, 'img_{:05d}.jpg').problem
    broken = write_frames(tmp_path / 'broken', 5)
    (broken / 'img_00005.jpg').write_bytes(b'\xff\xd8 truncated')
    found = check_clip(str(broken), 5, 'img_{:05d}.jpg')
    assert not found.ok and 'img_00005.jpg' in found.problem and found.readable
    assert check_clip(str(tmp_path / 'gone'), 5, 'img_{:05d}.jpg').problem == \
        f'missing video folder: {tmp_path / "gone"}'
    assert check_clip(str(good)).frames == 6  # no template: the folder's numbered frames


def test_lmdb_videos(tmp_path):
    store = tmp_path / 'frames.lmdb'
    jpeg = tmp_path / 'f.jpg'
    Image.new('RGB', (40, 30), (10, 200, 30)).save(jpeg)
    with lmdb.open(str(store), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for i in range(1, 5):
            txn.put(frame_key('vid', i), jpeg.read_bytes())
        txn.put(frame_key('bad', 1), jpeg.read_bytes())
        txn.put(frame_key('bad', 2), b'not a jpeg')
    assert check_clip('vid', 4, lmdb_path=str(store)).ok
    assert check_clip('vid', 6, lmdb_path=str(store)).problem == 'the list says 6 frames, the store holds 4'
    assert 'missing video in LMDB' in check_clip('other', 3, lmdb_path=str(store)).problem
    assert 'bad/000/00000001' in check_clip('bad', 2, lmdb_path=str(store)).problem


def test_check_clip_is_the_public_entry(tmp_path):
    """The preparation tools call check_clip(path) alone: the count of a video they list."""
    path = write_video(tmp_path / 'Clip With Spaces.MKV', 5, 'libx264', size=(78, 44))
    found = check_clip(path)
    assert found.ok and found.frames == 5 and found.path == path
    shutil.copy(path, tmp_path / 'copy.mkv')
    assert clip_check.check_video(str(tmp_path / 'copy.mkv'), 5).ok
    assert np.isfinite(found.frames)


def test_frames_after_a_damaged_stretch_are_kept(tmp_path):
    """A packet the decoder refuses is passed over, as the ffmpeg command does, not the end of the
    video: the frames after it count, read and stream (stopping there kept about half)."""
    path = write_video(tmp_path / 'damaged.mp4', 60, 'libx264', gop=6, size=(64, 48))
    with av.open(path) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(Path(path).read_bytes())
    for pos, size in packets[20:23]:  # three packets in the middle become zeros
        data[pos:pos + size] = bytes(size)
    Path(path).write_bytes(bytes(data))
    stopped = 0
    with av.open(path) as container:  # what a decode that stops at the first error gives
        try:
            for _ in container.decode(video=0):
                stopped += 1
        except av.error.FFmpegError:
            pass
    found = check_clip(path)
    assert stopped < found.frames < 60 and found.readable
    assert found.header_frames == 60 and found.ok
    assert f'the file decodes {found.frames} (its header claims 60)' in check_clip(path, 60).problem
    reader = VideoReader(path)
    last = reader.read([found.frames - 1])[found.frames - 1]
    assert frame_number(last) == 59                      # the video's own last frame
    every = reader.read_all()
    assert len(every) == found.frames and frame_number(every[-1]) == 59
    streamed = [f for _, f in open_frame_stream(path).frames()]
    assert len(streamed) == found.frames and np.array_equal(streamed[-1].numpy(), last)
