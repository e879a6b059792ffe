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


def _rotate_on_display(path, quarter_turns_clockwise: int) -> None:
    """Give an MP4 the display rotation a phone writes: its track header's matrix (ISO 14496-12
    'tkhd', 16.16 fixed point), which players and ffmpeg's frame extraction apply."""
    import struct
    data = bytearray(open(path, 'rb').read())
    at = data.index(b'tkhd') - 4
    offset = at + (60 if data[at + 8] == 1 else 48)
    cos, sin = {1: (0, 1), 2: (-1, 0), 3: (0, -1)}[quarter_turns_clockwise]
    one = 0x10000
    data[offset:offset + 36] = struct.pack('>9i', cos * one, sin * one, 0, -sin * one, cos * one, 0, 0, 0,
                                           0x40000000)
    open(path, 'wb').write(bytes(data))


@pytest.mark.parametrize('turns, corner', [(1, (0, -1)), (2, (-1, -1)), (3, (-1, 0))])
def test_phone_clips_read_upright(tmp_path, turns, corner):
    """A clip stored landscape with a display rotation (as phones record portrait) reads as a
    player shows it, from the random-access reader and from the stream alike."""
    from ops.frames.frame_source import open_frame_source
    from ops.frames.frame_stream import open_frame_stream
    path = str(tmp_path / 'phone.mp4')
    with av.open(path, 'w') as container:
        stream = container.add_stream('mpeg4', rate=25)
        stream.width, stream.height, stream.pix_fmt = 48, 32, 'yuv420p'
        for _ in range(3):
            image = np.zeros((32, 48, 3), np.uint8)
            image[:8, :8] = 255  # a mark in the stored picture's top-left corner
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    _rotate_on_display(path, turns)
    shape = (32, 48, 3) if turns == 2 else (48, 32, 3)
    read = open_frame_source(path).read([1, 3])
    streamed = [frame for _, frame in open_frame_stream(path).frames()]
    assert len(streamed) == 3
    for frame in (read[1], read[3], streamed[0]):
        frame = np.asarray(frame)
        assert frame.shape == shape
        # the mark, turned with the picture: top-right after a quarter turn clockwise, and so on
        rows = slice(0, 8) if corner[0] == 0 else slice(-8, None)
        cols = slice(0, 8) if corner[1] == 0 else slice(-8, None)
        assert frame[rows, cols].mean() > 200 and frame.mean() < 60
