"""TSN frame sampling against the released sampler (tests/fixtures/sampling.json), and the
properties that must hold where the release was wrong (very short videos) or random."""
import numpy as np
import pytest

from ops.sampling import expand_indices, sample_test_indices, sample_train_indices, sample_val_indices

MODES = {
    'val': lambda n, s, l: sample_val_indices(n, s, l),
    'test': lambda n, s, l: sample_test_indices(n, s, l),
    'test_twice': lambda n, s, l: sample_test_indices(n, s, l, twice_sample=True),
    'test_dense': lambda n, s, l: sample_test_indices(n, s, l, dense_sample=True),
    'val_frames': lambda n, s, l: expand_indices(sample_val_indices(n, s, l), l, n),
}


@pytest.fixture(scope='module')
def cases(fixture_json):
    data = fixture_json('sampling.json')['sampling']
    assert len(data) == 64
    return data


def _key(case):
    return case['num_frames'], case['num_segments'], case['new_length']


def test_deterministic_modes_equal_reference(cases):
    compared = 0
    for case in cases:
        for mode, sample in MODES.items():
            if case[mode] is not None:
                assert sample(*_key(case)).tolist() == case[mode], (_key(case), mode)
                compared += 1
    assert compared > 300


def test_short_videos_stay_in_range_and_in_order(cases):
    """Where the release returned frame 0 or below, any in-range, time-ordered answer will do."""
    nulls = 0
    for case in cases:
        n = case['num_frames']
        for mode, sample in MODES.items():
            if case[mode] is None:
                got = sample(*_key(case))
                assert got.min() >= 1 and got.max() <= n, (_key(case), mode, got)
                assert np.all(np.diff(got) >= 0), (_key(case), mode, got)
                nulls += 1
    assert nulls > 0


def test_random_offsets_stay_inside_their_segment(cases):
    rng = np.random.default_rng(0)
    for case in cases:
        n, segs, length = _key(case)
        duration = (n - length + 1) // segs
        for _ in range(20):
            starts = sample_train_indices(n, segs, length, rng)
            assert starts.shape == (segs,)
            frames = expand_indices(starts, length, n)
            assert frames.min() >= 1 and frames.max() <= n
            if duration > 0:  # segment k holds the starts k*duration+1 .. (k+1)*duration
                lower = np.arange(segs) * duration + 1
                assert np.all((starts >= lower) & (starts < lower + duration)), (_key(case), starts)
            else:
                assert np.all(np.diff(starts) >= 0)


def test_random_offsets_cover_the_segment():
    rng = np.random.default_rng(1)
    seen = {int(sample_train_indices(100, 4, 1, rng)[1]) for _ in range(500)}
    assert seen == set(range(26, 51))  # segment 2 of 4 over 100 frames: starts 26..50


def test_random_generators_are_reproducible():
    a = sample_train_indices(300, 8, 4, np.random.default_rng(5))
    b = sample_train_indices(300, 8, 4, np.random.default_rng(5))
    c = sample_train_indices(300, 8, 4, np.random.RandomState(5))
    assert a.tolist() == b.tolist()
    assert c.min() >= 1 and c.max() <= 297


def test_dense_sampling_in_range():
    rng = np.random.default_rng(2)
    for n in (3, 40, 64, 65, 300):
        for starts in (sample_train_indices(n, 8, 4, rng, dense_sample=True),
                       sample_val_indices(n, 8, 4, dense_sample=True)):
            assert starts.shape == (8,) and starts.min() >= 1 and starts.max() <= n
    # validation is deterministic: the middle of the possible dense windows
    starts = sample_val_indices(300, 8, 1, dense_sample=True)
    assert starts.tolist() == sample_val_indices(300, 8, 1, dense_sample=True).tolist()
    assert starts[0] == 1 + (300 - 64) // 2


def test_expand_repeats_the_last_frame():
    assert expand_indices([1, 5, 9], 4, 10).tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10]
    assert expand_indices([3], 1, 3).tolist() == [3]


def test_invalid_counts():
    for bad in [(0, 8, 1), (10, 0, 1), (10, 8, 0)]:
        with pytest.raises(ValueError):
            sample_val_indices(*bad)
        with pytest.raises(ValueError):
            sample_train_indices(*bad)
