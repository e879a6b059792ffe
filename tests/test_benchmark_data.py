"""tools/benchmark_data.py runs end to end on tiny frames, from folders, LMDB and video files, and
prints its tables."""
import re
import warnings

from tools.benchmark_data import main


def test_benchmark_prints_table(tmp_path, capfd):
    # 'always' overrides the project's filter: the decoder must not warn (torchvision 0.29's
    # decode_jpeg() does on every call), or user runs print it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', DeprecationWarning)
        main(['--sizes', '40x24', '--videos', '2', '--frames', '12', '--segments', '2', '--length', '4',
              '--crop', '16', '--clips', '2', '--workers', '1', '--batch', '2', '--repeats', '1',
              '--out_dir', str(tmp_path), '--video_gops', '4', '30', '--video_size', '48x32', '--video_frames', '30',
              '--video_files', '2'])
    out = capfd.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.lstrip().startswith('40x24')]
    # frames, mode, store, setting (2 words), PIL clips/s, fast clips/s, speed-up, max diff
    assert [tuple(r[1:5]) for r in rows] == [
        (mode, store, '1', setting) for mode in ('train', 'val') for setting in ('process', 'workers')
        for store in ('folder', 'lmdb')]
    for r in rows:
        assert len(r) == 9
        pil, fast, ratio, diff = float(r[5]), float(r[6]), float(r[7].rstrip('x')), float(r[8])
        assert pil > 0 and fast > 0 and abs(ratio - fast / pil) < 0.02 * ratio + 0.01
        assert diff <= 1.0
    assert re.search(r'mean JPEG size: 40x24 [\d.]+ KB', out)
    assert (tmp_path / '40x24' / 'list.txt').is_file()
    assert (tmp_path / '40x24.lmdb' / 'data.mdb').is_file()  # the lmdb rows read a store of the same frames
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]
    # video rows: GOP, first epoch, later (new process), later (kept worker), sequential span, 2 ratios
    assert 'read from H.264 MP4s of 48x32, 30 frames, 2 per GOP' in out
    videos = [line.split() for line in out.splitlines() if re.match(r'^\s+(4|30)\s+[\d.]+\s', line)]
    assert [r[0] for r in videos] == ['4', '30']
    for r in videos:
        first, later, kept, span = map(float, r[1:5])
        assert min(first, later, kept, span) > 0
        assert abs(float(r[5].rstrip('x')) - later / first) < 0.01 * later / first + 0.01
        assert abs(float(r[6].rstrip('x')) - later / span) < 0.01 * later / span + 0.01
    assert len(list((tmp_path / 'h264_48x32_gop30').glob('*.mp4'))) == 2
