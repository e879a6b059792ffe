"""Reading frames of video files with PyAV: counts, the right frames, seeking, and errors that
name the file. ``write_video`` and ``frame_number`` are shared with test_dataset.py."""
import av
import numpy as np
import pytest

from ops.frames.video_reader import VideoReader, VideoReadError, count_video_frames, is_video_file

# (extension, codec): what this PyAV build can write; libx264 adds B-frames (pts reordering)
FORMATS = [('mp4', 'mpeg4'), ('avi', 'mpeg4'), ('webm', 'vp8'), ('mkv', 'vp9'), ('mp4', 'libx264')]


def frame_colour(i: int) -> tuple[int, int, int]:
    """A flat colour that encodes frame number ``i`` (0 <= i < 256) with a wide margin for codec
    error: 16 grey-level steps in red (low digit) and green (high digit)."""
    return (i % 16) * 16 + 8, (i // 16) * 16 + 8, 128


def frame_number(frame: np.ndarray) -> int:
    """Inverse of :func:`frame_colour` on a decoded ``(H, W, 3)`` frame."""
    r, g = frame[..., 0].mean(), frame[..., 1].mean()
    return int(round((g - 8) / 16)) * 16 + int(round((r - 8) / 16))


def write_video(path, num_frames: int, codec: str = 'mpeg4', gop: int = 6, size=(32, 24)) -> str:
    """A tiny video whose frame i has the flat colour ``frame_colour(i)``."""
    w, h = size
    with av.open(str(path), 'w') as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, 'yuv420p'
        stream.gop_size = gop
        for i in range(num_frames):
            image = np.empty((h, w, 3), np.uint8)
            image[:] = frame_colour(i)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


@pytest.mark.parametrize('ext,codec', FORMATS)
def test_count_and_read(tmp_path, ext, codec):
    path = write_video(tmp_path / f'v.{ext}', 30, codec)
    assert count_video_frames(path) == 30
    reader = VideoReader(path)
    frames = reader.read([0, 7, 8, 29, 7])
    assert sorted(frames) == [0, 7, 8, 29]
    assert {i: frame_number(f) for i, f in frames.items()} == {0: 0, 7: 7, 8: 8, 29: 29}
    assert frames[0].shape == (24, 32, 3) and frames[0].dtype == np.uint8
    assert [frame_number(f) for f in reader.read_all()] == list(range(30))


@pytest.mark.parametrize('ext,codec', [('webm', 'vp8'), ('mp4', 'libx264')])
def test_seeks_instead_of_decoding_everything(tmp_path, ext, codec):
    path = write_video(tmp_path / f'long.{ext}', 120, codec, gop=10)
    reader = VideoReader(path)
    wanted = [3, 61, 62, 115]
    frames = reader.read(wanted)
    assert {i: frame_number(f) for i, f in frames.items()} == {i: i for i in wanted}
    # from the keyframes before 3, 61 and 115: about 4 + 3 + 6 frames (more with B-frames), far
    # fewer than the 116 a sequential read up to frame 115 decodes
    assert reader.frames_decoded <= 40


def test_count_is_cached(tmp_path, monkeypatch):
    path = write_video(tmp_path / 'c.mkv', 12, 'vp9')
    assert count_video_frames(path) == 12
    opened = []
    monkeypatch.setattr(av, 'open', lambda *a, **k: opened.append(a) or pytest.fail('reopened'))
    assert count_video_frames(path) == 12
    assert opened == []


def test_errors_name_the_file(tmp_path):
    with pytest.raises(VideoReadError, match='missing video: .*nothere.mp4'):
        VideoReader(str(tmp_path / 'nothere.mp4'))
    garbage = tmp_path / 'garbage.mp4'
    garbage.write_bytes(b'this is not a video' * 50)
    with pytest.raises(VideoReadError, match='garbage.mp4'):
        count_video_frames(str(garbage))
    path = write_video(tmp_path / 'short.avi', 5)
    with pytest.raises(VideoReadError, match=r'short.avi.*out of range.*5 frames'):
        VideoReader(path).read([2, 5])


def test_truncated_video_decodes_its_prefix(tmp_path):
    path = write_video(tmp_path / 'cut.webm', 40, 'vp8', gop=4)
    data = open(path, 'rb').read()
    (tmp_path / 'cut2.webm').write_bytes(data[:len(data) // 2])
    reader = VideoReader(str(tmp_path / 'cut2.webm'))
    assert 0 < len(reader) < 40
    frames = reader.read_all()
    assert 0 < len(frames) < 40
    assert [frame_number(f) for f in frames] == list(range(len(frames)))


def test_is_video_file():
    assert all(is_video_file(f'a/b.{e}') for e in ('mp4', 'webm', 'avi', 'mkv', 'MP4'))
    assert not any(is_video_file(p) for p in ('a/b', 'a/b.jpg', 'mp4'))
