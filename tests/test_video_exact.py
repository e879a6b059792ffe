"""Frame-exact video reading: the frame read for 0-based index i is, bit for bit, frame i of a plain
sequential decode (``enumerate(container.decode(stream))``), for any set of indices, in every
container the project accepts, with B-frames, variable frame rate and the real XviD AVI of
``tests/fixtures`` (packed B-frames, frames stamped 1, 2, 4, 3, ...); the frame count is the
sequential decode's; and reading still seeks instead of decoding everything.

Generated videos are 64x48 with ~50 frames. Each frame shows its index as eight black/white 16x16
blocks (one per bit) above a gradient moving with the index, so every frame differs from its
neighbours by far more than coding noise and the encoders have motion to predict (B-frames get
used); the comparisons themselves are exact (np.array_equal with the sequential decode, which
decodes the same bits with the same decoder).
"""
from __future__ import annotations

import shutil
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from ops.frames import video_reader
from ops.frames.frame_source import VideoFrames
from ops.frames.video_reader import VIDEO_EXTENSIONS, VideoReader, count_video_frames, video_index
from ops.sampling import expand_indices, sample_test_indices, sample_val_indices

FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'xvid_bframes.avi'
WIDTH, HEIGHT = 64, 48
NUM_SEGMENTS, NEW_LENGTH = 8, 4  # the Lite clips of the released models
B_PICTURE = 3  # av.video.frame.PictureType.B


def x264(gop: int) -> dict[str, str]:
    """libx264 with a fixed GOP and two B-frames between references, always (b-adapt=0)."""
    return {'x264-params': f'keyint={gop}:min-keyint={gop}:scenecut=0:bframes=2:b-adapt=0'}


# name: (file name, codec, frames, GOP, max B-frames or None, encoder options, variable frame rate)
CASES = {
    'h264-mp4': ('v.mp4', 'libx264', 60, 10, None, x264(10), False),
    'h264-mkv': ('v.mkv', 'libx264', 50, 10, None, x264(10), False),
    'h264-avi': ('v.avi', 'libx264', 50, 10, None, x264(10), False),  # no pts: decoded stamps disorder
    'h264-m4v': ('v.m4v', 'libx264', 40, 10, None, x264(10), False),
    'mpeg4-avi': ('v.avi', 'mpeg4', 50, 12, 2, {}, False),
    'mpeg4-mov': ('v.mov', 'mpeg4', 50, 12, 2, {}, False),
    'vp9-webm': ('v.webm', 'libvpx-vp9', 40, 10, None, {}, False),
    'gif': ('v.gif', 'gif', 30, 10, None, {}, False),  # animated GIF: palette frames, no seeking
    # older phones, camcorders (AVCHD .MTS / .m2ts), DVD-era and web-era files
    'h264-3gp': ('v.3gp', 'libx264', 40, 10, None, x264(10), False),
    'mpeg2-mpg': ('v.mpg', 'mpeg2video', 40, 12, 2, {}, False),
    'mpeg1-mpeg': ('v.mpeg', 'mpeg1video', 40, 12, 2, {}, False),
    'h264-ts': ('v.ts', 'libx264', 40, 10, None, x264(10), False),
    'h264-mts': ('v.mts', 'libx264', 40, 10, None, x264(10), False),
    'mpeg2-m2ts': ('v.m2ts', 'mpeg2video', 40, 12, 2, {}, False),
    'flv1-flv': ('v.flv', 'flv', 40, 12, None, {}, False),
    'wmv2-wmv': ('v.wmv', 'wmv2', 40, 12, None, {}, False),
    'h264-vfr-mp4': ('v.mp4', 'libx264', 50, 10, None, x264(10), True),
}
WITH_B_FRAMES = {'h264-mp4', 'h264-mkv', 'h264-avi', 'h264-m4v', 'mpeg4-avi', 'mpeg4-mov', 'h264-vfr-mp4'}
ALL = [*CASES, 'xvid-fixture']


def pattern(i: int) -> np.ndarray:
    """RGB ``(HEIGHT, WIDTH, 3)`` uint8 picture of frame ``i`` (0 <= i < 256): bit b of i is block
    b of the top two rows of 16x16 blocks, and a gradient below moves with i."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for b in range(8):
        row, col = divmod(b, 4)
        image[row * 16:(row + 1) * 16, col * 16:(col + 1) * 16] = 255 if (i >> b) & 1 else 0
    image[32:, :, 0] = (np.arange(WIDTH) * 4 + i * 8) % 256
    image[32:, :, 1] = 128
    image[32:, :, 2] = i * 4 % 256
    return image


def encode(path: Path, codec: str, num_frames: int, gop: int, b_frames: int | None, options: dict,
           vfr: bool) -> None:
    """Write ``pattern(0..num_frames-1)``; ``vfr``: pts on a 1 ms clock with irregular gaps."""
    rng = np.random.default_rng(7)
    # AVCHD / Blu-ray transport streams: 192-byte packets, an extension FFmpeg does not guess from
    m2ts = {'format': 'mpegts', 'options': {'mpegts_m2ts_mode': '1'}} if path.suffix in ('.mts', '.m2ts') else {}
    with av.open(str(path), 'w', **m2ts) as container:
        stream = container.add_stream(codec, rate=25, options=options)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = 'rgb8' if codec == 'gif' else 'yuv420p'
        stream.gop_size = gop
        if b_frames is not None:
            stream.codec_context.max_b_frames = b_frames
        if vfr:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        t = 0
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(pattern(i), format='rgb24')
            if vfr:
                frame.pts, frame.time_base = t, Fraction(1, 1000)
                t += int(rng.integers(10, 90))  # 11 to 100 frames per second
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def sequential_decode(path: str) -> tuple[list[np.ndarray], list[int | None], list[int]]:
    """The truth: RGB frames, their pts and picture types, in plain sequential decode order."""
    frames, pts, types = [], [], []
    with av.open(path) as container:
        for frame in container.decode(container.streams.video[0]):
            frames.append(frame.to_ndarray(format='rgb24'))
            pts.append(frame.pts)
            types.append(int(frame.pict_type))
    return frames, pts, types


class Video:
    """One test video and its sequential decode."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, str(path)
        self.frames, self.pts, self.types = sequential_decode(self.path)

    def __len__(self) -> int:
        return len(self.frames)

    def assert_exact(self, got: dict, indices) -> None:
        """``got`` (0-based index -> RGB array or tensor) holds exactly the sequential frames."""
        assert sorted(got) == sorted({int(i) for i in indices})
        wrong = [i for i, frame in got.items()
                 if not np.array_equal(np.asarray(frame), self.frames[i])]
        assert not wrong, f'{self.name}: frames {wrong[:10]} differ from the sequential decode'


@pytest.fixture(scope='module')
def videos(tmp_path_factory) -> dict[str, Video]:
    """Every case this PyAV can encode, plus the XviD fixture (copied, so its index is fresh)."""
    root = tmp_path_factory.mktemp('exact')
    out = {}
    for name, (file_name, codec, num_frames, gop, b_frames, options, vfr) in CASES.items():
        if codec not in av.codecs_available:
            continue
        (root / name).mkdir()
        path = root / name / file_name
        encode(path, codec, num_frames, gop, b_frames, options, vfr)
        out[name] = Video(name, path)
    (root / 'xvid').mkdir()
    out['xvid-fixture'] = Video('xvid-fixture', Path(shutil.copy(FIXTURE, root / 'xvid' / FIXTURE.name)))
    return out


@pytest.fixture(params=ALL)
def video(request, videos) -> Video:
    if request.param not in videos:
        pytest.skip(f'this PyAV has no {CASES[request.param][1]} encoder')
    return videos[request.param]


def test_every_accepted_container_is_covered():
    covered = {Path(CASES[name][0]).suffix for name in CASES} | {FIXTURE.suffix}
    assert covered == set(VIDEO_EXTENSIONS)


def test_the_videos_are_the_hard_kind(video):
    """What each case claims holds, so the exactness tests below are not vacuous."""
    n = len(video)
    digests = {zlib.crc32(f) for f in video.frames}
    assert len(digests) == n, 'frames must all differ, or a neighbour could pass for the wanted one'
    if video.name in WITH_B_FRAMES:
        assert B_PICTURE in video.types, f'{video.name}: the encoder wrote no B-frames'
    if video.name == 'h264-vfr-mp4':
        assert len(set(np.diff(video.pts))) > 5, 'frame durations should vary'
    if video.name in ('h264-avi', 'xvid-fixture'):
        # the trap: decoded frames come in display order but with timestamps out of order
        assert any(b <= a for a, b in zip(video.pts, video.pts[1:]))
    if video.name == 'xvid-fixture':
        assert (n, video.frames[0].shape) == (164, (240, 320, 3))


def test_count_is_the_sequential_decode(video):
    assert count_video_frames(video.path) == len(video)
    assert len(VideoReader(video.path)) == len(video) == VideoFrames(video.path).num_frames


def test_random_index_sets(video):
    rng = np.random.default_rng(1234)
    n = len(video)
    reused = VideoReader(video.path)  # one reader, many reads, as a dataset item does
    for size in (1, 2, 3, 5, 8, 13, n // 2, n):
        indices = rng.choice(n, size=size, replace=False)
        video.assert_exact(VideoReader(video.path).read(indices), indices)
        video.assert_exact(reused.read(indices), indices)
    repeats = [n - 1, 0, n - 1, 3, 3]  # any order, repeats read once
    video.assert_exact(reused.read(repeats), repeats)


def test_single_frames(video):
    n = len(video)
    # every frame of the generated videos; every 5th and the last of the 164-frame fixture, which
    # has a single keyframe and is therefore read sequentially each time
    for i in (range(n) if n <= 64 else [*range(0, n, 5), n - 1]):
        video.assert_exact(VideoReader(video.path).read([i]), [i])
    last = VideoReader(video.path).read([n - 1])
    video.assert_exact(last, [n - 1])


@pytest.mark.parametrize('clip', ['val', 'test', 'test-twice', 'test-dense'])
def test_lite_clips(video, clip):
    """The Lite validation and test clips (8 segments of 4 consecutive frames), through the
    reader (0-based) and through VideoFrames (1-based, as the dataset reads)."""
    n = len(video)
    if clip == 'val':
        starts = sample_val_indices(n, NUM_SEGMENTS, NEW_LENGTH)
    else:
        starts = sample_test_indices(n, NUM_SEGMENTS, NEW_LENGTH, twice_sample=clip == 'test-twice',
                                     dense_sample=clip == 'test-dense')
    indices = expand_indices(starts, NEW_LENGTH, n)  # 1-based
    video.assert_exact(VideoReader(video.path).read(indices - 1), indices - 1)
    source = VideoFrames(video.path)
    got = source.read(indices)
    assert all(isinstance(f, torch.Tensor) and f.dtype == torch.uint8 for f in got.values())
    video.assert_exact({i - 1: f.numpy() for i, f in got.items()}, indices - 1)
    pil = source.read(indices[:4], as_pil=True)
    video.assert_exact({i - 1: np.asarray(f) for i, f in pil.items()}, indices[:4] - 1)


# GOPs of 10 or 12. Not here: GIF (each frame builds on the last), MPEG program streams and ASF
# (FFmpeg's seeks land on no usable keyframe there): those are read by decoding from the start
SEEKING = [name for name in CASES if name not in ('gif', 'mpeg2-mpg', 'mpeg1-mpeg', 'wmv2-wmv')]


@pytest.mark.parametrize('name', SEEKING)
def test_one_late_frame_seeks(videos, name):
    """Reading a frame near the end decodes about one GOP, not the whole video, whether frames are
    named by pts (MP4, MKV, WebM, MOV, variable frame rate) or by counting from the keyframe
    (H.264 in AVI, whose decoded timestamps are out of order)."""
    if name not in videos:
        pytest.skip(f'this PyAV has no {CASES[name][1]} encoder')
    video = videos[name]
    gop = CASES[name][3]
    n = len(video)
    for target in (n - 1, n - 4, n // 2 + 1):
        reader = VideoReader(video.path)
        video.assert_exact(reader.read([target]), [target])
        assert reader.frames_decoded <= gop, (target, reader.frames_decoded)
    reader = VideoReader(video.path)
    video.assert_exact(reader.read([2, n - 2]), [2, n - 2])
    assert reader.frames_decoded <= 3 + gop


def test_h264_mp4_late_frame_decodes_a_fraction(videos):
    """The issue's example: 60 frames, GOP 10, B-frames; frame 55 needs frames 50..55 only."""
    video = videos['h264-mp4']
    reader = VideoReader(video.path)
    video.assert_exact(reader.read([55]), [55])
    assert reader.frames_decoded == 6


def test_single_keyframe_fixture_reads_sequentially(videos):
    """The XviD fixture has one keyframe: reading frame i decodes frames 0..i, no more."""
    video = videos['xvid-fixture']
    assert not video_index(video.path).seekable
    reader = VideoReader(video.path)
    video.assert_exact(reader.read([100, 40]), [100, 40])
    assert reader.frames_decoded == 101


def test_index_is_built_once(videos, monkeypatch):
    """VideoReader(path) per clip reuses the cached index: no decode of the whole video."""
    video = videos['h264-mp4']
    count_video_frames(video.path)
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, 'open', lambda *a, **k: opened.append(a) or real_open(*a, **k))
    reader = VideoReader(video.path)
    assert opened == []
    video.assert_exact(reader.read([57]), [57])
    assert len(opened) == 1 and reader.frames_decoded <= 10


@pytest.mark.parametrize('name', ['h264-mp4', 'h264-avi'])
def test_a_seek_that_disagrees_with_the_index_falls_back(videos, tmp_path, name):
    """When a frame decoded after a seek is not what the index pass saw (simulated by altering
    the recorded digest), the reader reads sequentially instead, returns the true frame, and
    stops using that seek point; frames named by pts (MP4) and by counting (AVI)."""
    video = videos[name]
    path = str(tmp_path / Path(video.path).name)  # its own index, so the others are left alone
    shutil.copy(video.path, path)
    index = video_index(path)
    assert index.pts_trusted == (name == 'h264-mp4')
    point = index.seek_point_before(35)
    assert point is not None and point.position == 30
    index.digests[33] ^= 1
    reader = VideoReader(path)
    got = reader.read([33])
    assert np.array_equal(got[33], video.frames[33])
    assert 30 in index.unusable
    assert reader.frames_decoded == 4 + 34  # 30..33 after the seek, then 0..33 from the start
    reader = VideoReader(path)
    video.assert_exact(reader.read([37]), [37])
    assert reader.frames_decoded == 18  # from the keyframe at 20 now (33 is decoded, not returned)
    reader = VideoReader(path)
    video.assert_exact(reader.read([32, 34]), [32, 34])
    assert reader.frames_decoded == 15  # 20..34, passing 33
    video_reader._cached_index.cache_clear()  # the altered index must not outlive this test
