"""ops/frames/frame_stream.py: frames in order from files, folders and (by name) cameras; segments; late-frame dropping."""
import pytest
import torch

from ops.errors import InputError
from ops.frames.frame_stream import LateFrameDropper, open_frame_stream, segments


def numbered(n):
    return [(i, torch.full((2, 2, 3), i, dtype=torch.uint8)) for i in range(n)]


def starts(found):
    return [(s, [int(f[0, 0, 0]) for f in frames]) for s, frames in found]


def test_segments_every_stride_frames():
    assert starts(segments(numbered(10), 4, 3)) == [(0, [0, 1, 2, 3]), (3, [3, 4, 5, 6]), (6, [6, 7, 8, 9])]
    assert [s for s, _ in segments(numbered(10), 1, 4)] == [0, 4, 8]


def test_a_segment_missing_a_frame_is_skipped():
    frames = [f for f in numbered(12) if f[0] != 5]
    assert [s for s, _ in segments(frames, 4, 4)] == [0, 8]


def test_late_frames_are_dropped_and_early_ones_awaited():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    dropper = LateFrameDropper(10.0, clock=lambda: now[0], sleep=sleep)
    taken = []
    for index, _ in dropper(numbered(10)):
        taken.append(index)
        now[0] += 0.35 if index == 2 else 0.05   # frame 2 takes 3.5 frame times
    # frames 3 and 4 were shown (0.3-0.5 s) while frame 2 was being processed (0.2-0.55 s)
    assert dropper.dropped == 2 and taken == [0, 1, 2, 5, 6, 7, 8, 9]
    assert slept and all(s > 0 for s in slept)    # ahead of the source: it waits for the next frame


def test_folder_and_video_streams(tmp_path):
    from PIL import Image
    for i in range(3):
        Image.new('RGB', (6, 4), (i * 50, 0, 0)).save(tmp_path / f'img_{i + 1:05d}.png')
    Image.new('RGB', (6, 4)).save(tmp_path / 'flow_x_00001.png')
    stream = open_frame_stream(str(tmp_path))
    assert stream.num_frames == 3 and not stream.live and 'skipped 1' in stream.note
    assert [int(f[0, 0, 0]) for _, f in stream.frames()] == [0, 50, 100]


def test_bad_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match='no such video file'):
        open_frame_stream(str(tmp_path / 'missing.mp4'))
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(InputError, match='notes.txt is neither'):
        open_frame_stream(str(tmp_path / 'notes.txt'))
    with pytest.raises(FileNotFoundError, match='no camera at /dev/video97'):
        open_frame_stream('/dev/video97')
