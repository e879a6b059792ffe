"""The stored video index (ops/frames/video_index.py): a video is decoded whole once, its index
written atomically and read back by every process, DataLoader worker and epoch; an entry that is
stale (the file changed, another decoder) or corrupt is rebuilt, never trusted."""
import json
import os
import warnings

import pytest
import torch

from ops.engine.resumable import ResumableSampler, SeededSamples
from ops.frames import video_reader
from ops.frames.video_index import INDEX_ENV, IndexStoreWarning, VideoKey, index_folder
from ops.frames.video_reader import VideoReader, count_video_frames, forget_indexes, video_index
from test_video_reader import frame_number, write_video


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An index folder of this test alone, nothing in memory."""
    store = tmp_path / 'index'
    monkeypatch.setenv(INDEX_ENV, str(store))
    forget_indexes()
    yield store
    forget_indexes()


@pytest.fixture
def builds(monkeypatch):
    """Counts the whole-video decodes (index builds)."""
    calls = []
    real = video_reader.build_index
    monkeypatch.setattr(video_reader, 'build_index', lambda path: calls.append(path) or real(path))
    return calls


def entry_of(path) -> 'os.PathLike':
    return VideoKey.of(str(path)).entry(index_folder())


def test_indexed_once_then_read_back_by_a_new_process(tmp_path, folder, builds):
    path = write_video(tmp_path / 'v.mp4', 30, 'libx264', gop=5)
    first = video_index(path)
    assert builds == [path] and entry_of(path).is_file()
    assert not [p for p in folder.rglob('*') if p.name.endswith('.tmp')]  # written atomically
    forget_indexes()  # a new process, or DataLoader worker
    again = video_index(path)
    assert builds == [path]
    assert again.num_frames == 30 and (again.digests == first.digests).all() and (again.pts == first.pts).all()
    assert [(p.position, p.timestamps, p.packet) for p in again.seek_points] == \
        [(p.position, p.timestamps, p.packet) for p in first.seek_points]
    reader = VideoReader(path)
    assert {i: frame_number(f) for i, f in reader.read([3, 17, 29]).items()} == {3: 3, 17: 17, 29: 29}
    assert reader.frames_decoded < 15  # it seeks with the stored seek points


def test_changed_file_is_indexed_again(tmp_path, folder, builds):
    path = write_video(tmp_path / 'v.webm', 12, 'libvpx')
    assert count_video_frames(path) == 12
    os.utime(path, ns=(1, 1))  # touched: another modification time
    forget_indexes()
    assert count_video_frames(path) == 12 and len(builds) == 2
    write_video(tmp_path / 'v.webm', 20, 'libvpx')  # replaced
    assert count_video_frames(path) == 20 and len(builds) == 3
    assert json.loads(entry_of(path).read_bytes())['num_frames'] == 20


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'count', 'decoder', 'seek point'])
def test_corrupt_or_stale_entries_are_never_trusted(tmp_path, folder, builds, damage):
    path = write_video(tmp_path / 'v.mkv', 16, 'libx264', gop=4)
    video_index(path)
    entry = entry_of(path)
    data = json.loads(entry.read_bytes())
    if damage == 'truncated':
        entry.write_bytes(entry.read_bytes()[:len(entry.read_bytes()) // 2])
    elif damage == 'garbage':
        entry.write_bytes(b'\x00' * 100)
    else:
        if damage == 'count':
            data['num_frames'] = 99
        elif damage == 'decoder':
            data['decoder'] = 'av 0.1'
        else:
            data['seek_points'][-1][0] = 500
        entry.write_text(json.dumps(data))
    forget_indexes()
    index = video_index(path)
    assert len(builds) == 2 and index.num_frames == 16
    assert json.loads(entry.read_bytes())['num_frames'] == 16  # rewritten whole


def test_unwritable_folder_warns_once_and_reads_on(tmp_path, monkeypatch):
    blocked = tmp_path / 'file'
    blocked.write_text('a file where the folder should be')
    monkeypatch.setenv(INDEX_ENV, str(blocked / 'index'))
    forget_indexes()
    paths = [write_video(tmp_path / f'v{i}.avi', 6) for i in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert [count_video_frames(p) for p in paths] == [6, 6]
    assert len([w for w in caught if issubclass(w.category, IndexStoreWarning)]) == 1
    assert 'PAN_VIDEO_INDEX' in str(caught[0].message)


def test_off_keeps_indexes_in_memory_only(tmp_path, monkeypatch):
    monkeypatch.setenv(INDEX_ENV, 'off')
    forget_indexes()
    assert index_folder() is None
    assert count_video_frames(write_video(tmp_path / 'v.avi', 5)) == 5
    assert not (tmp_path / 'index').exists()


def test_default_folder_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(INDEX_ENV)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert index_folder() == tmp_path / 'pan' / 'video_index'


class Clips(torch.utils.data.Dataset):
    """One frame of a video per item, the draw of ``random`` (what a transform would use), and the
    process that read it."""

    def __init__(self, path):
        self.path = path

    def __getitem__(self, i):
        import random
        frame = VideoReader(self.path).read([i])[i]
        return frame_number(frame), random.random(), os.getpid()

    def __len__(self):
        return 6


def test_persistent_workers_read_stored_indexes_and_keep_seeded_draws(tmp_path, folder, monkeypatch):
    """Kept workers (persistent_workers) draw by (epoch, index) alone, so every epoch equals its
    clips drawn directly; and they read the stored index instead of decoding the video again."""
    path = write_video(tmp_path / 'v.m4v', 6, 'libx264', gop=2)
    video_index(path)
    forget_indexes()  # the workers start with nothing in memory...
    monkeypatch.setattr(video_reader, 'build_index', lambda p: pytest.fail('decoded the whole video again'))
    data = SeededSamples(Clips(path), seed=3)
    sampler = ResumableSampler(data, batch_size=2, num_replicas=1, rank=0, seed=3, tag_epoch=True)
    loader = torch.utils.data.DataLoader(data, batch_size=2, sampler=sampler, num_workers=2, persistent_workers=True)
    workers = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        batches = list(loader)
        got = [(int(n), float(r)) for frames, draws, _ in batches for n, r in zip(frames, draws)]
        assert got == [data[key][:2] for key in sampler]
        assert sorted(n for n, _ in got) == list(range(6))
        workers.append({int(p) for _, _, pids in batches for p in pids})
    assert workers[0] == workers[1] and os.getpid() not in workers[0]  # the same workers served both epochs
