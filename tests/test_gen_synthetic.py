"""gen_synthetic: layout and list files, determinism, idempotence, and classes that only motion tells."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tools import gen_synthetic
from tools.gen_synthetic import DIRECTIONS, make_synthetic


def read_list(path):
    rows = (line.split() for line in path.read_text().splitlines())
    return [(name, int(n), int(label)) for name, n, label in rows]


def load_split(out, split):
    """Frames of every video of a split, float32 (V, T, H, W, 3), and labels (V,)."""
    videos, labels = [], []
    for name, n, label in read_list(out / f'{split}_videofolder.txt'):
        frames = [np.asarray(Image.open(out / 'frames' / name / f'{k:05d}.jpg')) for k in range(1, n + 1)]
        videos.append(np.stack(frames))
        labels.append(label)
    return np.stack(videos).astype(np.float32), np.array(labels)


def all_bytes(out):
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob('*')) if p.is_file()}


def test_layout_and_lists_match_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv('PAN_DATA_ROOT', str(tmp_path))
    assert gen_synthetic.main(['--num_videos', '7', '--num_val', '4', '--num_frames', '5', '--size', '40x32',
                               '--num_classes', '3']) == 0
    out = tmp_path / 'synthetic'
    categories = (out / 'category.txt').read_text().splitlines()
    assert categories == ['moving left', 'moving right', 'moving up']
    train, val = read_list(out / 'train_videofolder.txt'), read_list(out / 'val_videofolder.txt')
    assert len(train) == 7 and len(val) == 4
    assert sorted(os.listdir(out / 'frames')) == sorted(name for name, _, _ in train + val)
    for name, n, label in train + val:
        assert 0 <= label < len(categories)
        assert sorted(os.listdir(out / 'frames' / name)) == [f'{k:05d}.jpg' for k in range(1, n + 1)]
        with Image.open(out / 'frames' / name / '00001.jpg') as image:
            assert image.size == (40, 32) and image.mode == 'RGB'
    assert {label for _, _, label in train} == {0, 1, 2}  # every class present
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['complete'] and meta['options']['size'] == [40, 32]


SMALL = dict(num_videos=6, num_val=2, num_frames=4, width=32, height=32, num_classes=4, speed=2.0)


def test_deterministic_for_a_seed(tmp_path):
    make_synthetic(tmp_path / 'a', seed=5, **SMALL)
    make_synthetic(tmp_path / 'b', seed=5, **SMALL)
    make_synthetic(tmp_path / 'c', seed=6, **SMALL)
    a, b, c = (all_bytes(tmp_path / d) for d in 'abc')
    assert a == b
    frames = [k for k in a if k.suffix == '.jpg']
    assert all(a[k] != c[k] for k in frames)


def test_idempotent_unless_options_change_or_forced(tmp_path, capsys):
    out = tmp_path / 'synthetic'
    assert make_synthetic(out, seed=1, **SMALL)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob('*')}
    assert not make_synthetic(out, seed=1, **SMALL)
    assert 'already holds this synthetic dataset' in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*')} == stamp
    assert make_synthetic(out, seed=1, force=True, **SMALL)
    assert make_synthetic(out, seed=1, **{**SMALL, 'num_videos': 3})  # fewer videos: old ones go
    assert len(os.listdir(out / 'frames')) == 3 + SMALL['num_val']


def test_refuses_to_overwrite_files_it_did_not_write(tmp_path, capsys):
    out = tmp_path / 'synthetic'
    out.mkdir()
    (out / 'train_videofolder.txt').write_text('mine 3 0\n')
    args = ['--root_path', str(tmp_path), '--num_videos', '2', '--num_val', '0', '--num_frames', '3']
    assert gen_synthetic.main(args) == 2
    assert 'not written by this tool' in capsys.readouterr().err
    assert (out / 'train_videofolder.txt').read_text() == 'mine 3 0\n'
    assert gen_synthetic.main(args + ['--force']) == 0
    assert read_list(out / 'train_videofolder.txt') == [('train_00000', 3, 0), ('train_00001', 3, 1)]


@pytest.mark.parametrize('args, message', [(['--num_classes', '9'], '--num_classes must be 2..8'),
                                           (['--num_frames', '1'], '--num_frames >= 2')])
def test_bad_options(tmp_path, capsys, args, message):
    assert gen_synthetic.main(['--root_path', str(tmp_path)] + args) == 2
    assert message in capsys.readouterr().err


def test_bad_size_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gen_synthetic.main(['--root_path', str(tmp_path), '--size', '64by64'])
    assert 'expected WIDTHxHEIGHT' in capsys.readouterr().err


def test_runs_as_script(tmp_path, repo_root):
    result = subprocess.run([sys.executable, 'tools/gen_synthetic.py', '--root_path', str(tmp_path),
                             '--num_videos', '2', '--num_val', '1', '--num_frames', '3', '--size', '16'],
                            cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(read_list(tmp_path / 'synthetic' / 'val_videofolder.txt')) == 1


# ----------------------------------------------------------------------------- motion, no static cue

def displacement(video):
    """The object's displacement per frame (dx, dy) estimated from the frames alone: phase
    correlation of consecutive frames after removing the static background (the temporal mean)."""
    grey = video.mean(-1)
    moving = grey - grey.mean(0)
    spectra = np.fft.fft2(moving)
    cross = spectra[1:] * np.conj(spectra[:-1])
    corr = np.fft.ifft2(cross / (np.abs(cross) + 1e-6)).real.sum(0)
    h, w = corr.shape
    dy, dx = np.unravel_index(corr.argmax(), corr.shape)
    return np.array([(dx + w // 2) % w - w // 2, (dy + h // 2) % h - h // 2], float)


def test_each_class_moves_in_its_direction(tmp_path):
    out = tmp_path / 'synthetic'
    make_synthetic(out, num_videos=8, num_val=16, num_frames=8, width=48, height=40, num_classes=8, speed=3.0)
    videos, labels = load_split(out, 'val')
    for video, label in zip(videos, labels):
        d = displacement(video)
        unit = np.asarray(DIRECTIONS[label][1])
        assert d @ unit / np.linalg.norm(d) > 0.9, (label, d)  # right direction
        assert abs(np.linalg.norm(d) - 3.0) < 0.9, (label, d)  # right speed (diagonals round to whole pixels)


def frame_features(frame):
    """What a single frame shows: mean and spread of each colour, and where the fine texture (the
    object) is, as local high-frequency energy on an 8x8 grid."""
    grey = frame.mean(-1)
    neighbours = np.roll(grey, 1, 0) + np.roll(grey, -1, 0) + np.roll(grey, 1, 1) + np.roll(grey, -1, 1)
    detail = np.abs(grey - neighbours / 4)
    h, w = grey.shape
    where = detail.reshape(8, h // 8, 8, w // 8).mean((1, 3)).ravel()
    return np.concatenate([frame.mean((0, 1)), frame.std((0, 1)), where / where.mean()])


def test_single_frames_do_not_tell_the_class_but_motion_does(tmp_path):
    out = tmp_path / 'synthetic'
    make_synthetic(out, num_videos=240, num_val=80, num_frames=12, width=64, height=64, num_classes=4,
                   speed=2.0, seed=3)
    train, y_train = load_split(out, 'train')
    val, y_val = load_split(out, 'val')
    chance = 1 / 4
    # Power check, done when this was written: a generator leaking the class through position (a start
    # chosen so the object never wraps) or a tint of 30 grey levels per direction scores 0.41-0.57 here.
    for t in (0, 11):
        x_train = np.stack([frame_features(v[t]) for v in train])
        x_val = np.stack([frame_features(v[t]) for v in val])
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
        assert clf.score(x_val, y_val) < chance + 0.15, t
    # The same kind of classifier on the motion estimate separates the classes.
    motion_train = np.stack([displacement(v) for v in train])
    motion_val = np.stack([displacement(v) for v in val])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(motion_train, y_train)
    assert clf.score(motion_val, y_val) > 0.95
