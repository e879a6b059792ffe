"""The pre-flight check of list lines (ops/list_check.py): every bad line of a list is reported at
once, with its file, line number and reason, before a clip is read; --skip_bad leaves them out and
says how many; main.py and test_models.py stop with status 2 before training or testing."""
import os
import threading
from pathlib import Path

import pytest

from conftest import run_in_process
import main as train_main
import test_models
from ops.dataset import PANDataSet
from ops.list_check import BadListLinesError, LineCheck, check_records
from test_dataset import write_frames, write_list
from test_video_reader import write_video

FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'xvid_bframes.avi'
TINY = ['--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2', '--input_size', '32', '-b', '2',
        '--lr', '0.01', '--epochs', '1', '--eval-freq', '1']

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning:torchvision.io.image')


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    """Good clips of several kinds, and damaged or mislabelled ones, with a list line for each."""
    root = tmp_path_factory.mktemp('clips')
    good = [f'{write_video(root / "phone clip.mp4", 8, "libx264", size=(44, 78))} 8 0',
            f'{write_video(root / "b.MOV", 7, "mpeg4", size=(78, 44))} 7 1',
            f'{write_video(root / "c.webm", 9, "libvpx")} 0 2',  # count from the file
            f'{write_frames(root / "frames", 6)} 6 3']
    data = FIXTURE.read_bytes()
    (root / 'cut.avi').write_bytes(data[:len(data) // 2])
    (root / 'garbage.mkv').write_bytes(b'not a video' * 40)
    bad = [f'{root / "cut.avi"} 164 1', f'{root / "garbage.mkv"} 12 2', f'{root / "gone.mp4"} 9 0',
           f'{root / "phone clip.mp4"} 300 3']
    lists = {'good': write_list(root / 'good.txt', good),
             'bad': write_list(root / 'bad.txt', [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3], bad[3]])}
    return root, lists


def dataset(list_file, **check) -> PANDataSet:
    return PANDataSet('/', list_file, num_segments=2, new_length=4, modality='Lite', image_tmpl='img_{:05d}.jpg',
                      line_check=LineCheck(**check))


def test_every_bad_line_is_named_at_once(clips):
    root, lists = clips
    with pytest.raises(BadListLinesError) as caught:
        dataset(lists['bad'], workers=2)
    message = str(caught.value)
    assert message.startswith(f'{lists["bad"]}: 4 of 8 line(s) cannot be read as listed:\n')
    lines = message.splitlines()[1:5]
    assert lines[0].startswith(f'  line 2: {root / "cut.avi"}: the list says 164 frames, the file decodes ')
    assert lines[0].endswith('(its header claims 164)')
    assert lines[1].startswith(f'  line 4: {root / "garbage.mkv"}: cannot open video')
    assert lines[2] == f'  line 6: {root / "gone.mp4"}: missing video: {root / "gone.mp4"}'
    assert lines[3] == f'  line 8: {root / "phone clip.mp4"}: the list says 300 frames, the file decodes 8'
    assert '--skip_bad' in message.splitlines()[-1]


def test_skip_bad_leaves_them_out_and_says_how_many(clips):
    root, lists = clips
    data = dataset(lists['bad'], workers=0, skip_bad=True)
    assert [Path(r.path).name for r in data.video_list] == ['phone clip.mp4', 'b.MOV', 'c.webm', 'frames']
    assert [r.num_frames for r in data.video_list] == [8, 7, 9, 6]  # c.webm's 0 read from the check
    report = data.check_report
    assert report.checked == 8 and len(report.bad) == 4
    summary = report.summary()
    assert 'checked 8 lines' in summary and 'left out 4 bad line(s) (--skip_bad)' in summary
    assert f'line 4: {root / "garbage.mkv"}' in summary
    assert data[0][0].shape == (2 * 4 * 3, 78, 44)  # (F*3, H, W) with no transform: the clip reads


def test_substitute_missing_keeps_clips_with_readable_frames(clips):
    _, lists = clips
    data = PANDataSet('/', lists['bad'], num_segments=2, new_length=4, modality='Lite', substitute_missing=True,
                      image_tmpl='img_{:05d}.jpg', line_check=LineCheck(skip_bad=True))
    # the truncated AVI and the wrong count read with substitutes; what does not open is left out
    assert sorted(Path(b.check.path).name for b in data.check_report.bad) == ['garbage.mkv', 'gone.mp4']
    assert len(data) == 6


def test_processes_share_the_lines_and_agree(clips):
    """Under torchrun each process checks every world-th line; the findings are pooled (two threads
    stand for two processes, a barrier for all_gather)."""
    _, lists = clips
    records = dataset(lists['good'], workers=0).video_list  # counts filled, all good
    parts, met = {}, threading.Barrier(2)
    results = {}

    def rank(r: int) -> None:
        def gather(found):
            parts[r] = found
            met.wait(timeout=60)
            return [parts[0], parts[1]]
        results[r] = check_records(records, lambda rec: rec.path, lists['good'], 'img_{:05d}.jpg', None,
                                   LineCheck(share=(r, 2), gather=gather))
    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(parts[0]) == [0, 2] and sorted(parts[1]) == [1, 3]  # each line checked by one process
    for checks, report in results.values():
        assert len(checks) == 4 and all(c.ok for c in checks.values()) and report.checked == 4
    assert [c.frames for c in results[0][0].values()] == [c.frames for c in results[1][0].values()] == [8, 7, 9, 6]


def test_entry_points_stop_before_reading_and_skip_bad_runs(clips, synthetic_root, tmp_path, capsys):
    _, lists = clips
    frames = synthetic_root / 'synthetic' / 'frames'
    good_frames = write_list(tmp_path / 'train.txt', [f'{frames / f"train_0000{i}"} 8 {i % 4}'
                                                      for i in range(4)])
    bad_list = write_list(tmp_path / 'bad.txt', Path(lists['bad']).read_text().splitlines()[:4])
    common = ['synthetic', 'Lite', *TINY, '--root_path', str(synthetic_root), '--root_log', str(tmp_path / 'log'),
              '--root_model', str(tmp_path / 'ck'), '--val_list', good_frames, '-j', '2']
    code, out, err = run_in_process(train_main.main, [*common, '--train_list', bad_list], capsys)
    assert code == 2
    assert err.startswith(f'error: {bad_list}: 2 of 4 line(s) cannot be read as listed:\n  line 2: ')
    assert '  line 4: ' in err and 'Epoch' not in out
    assert not (tmp_path / 'ck').exists() and not (tmp_path / 'log').exists()  # nothing written, nothing lost

    code, out, err = run_in_process(train_main.main, [*common, '--train_list', bad_list, '--skip_bad',
                                                      '--store_name', 'run'], capsys)
    assert code == 0, err
    assert 'left out 2 bad line(s) (--skip_bad)' in out and '=> run run: 2 train / 4 val videos' in out
    assert 'all read as listed' in out  # the val list
    weights = str(tmp_path / 'ck' / 'run' / 'ckpt.pth.tar')

    test_common = ['synthetic', '--weights', weights, '--test_segments', '2', '--input_size', '32', '-j', '0',
                   '--root_path', str(synthetic_root), '--test_list', bad_list, '--no_confusion_png',
                   '--save_scores', str(tmp_path / 'scores.npz')]
    code, out, err = run_in_process(test_models.main, test_common, capsys)
    assert code == 2 and '2 of 4 line(s) cannot be read as listed' in err and 'video 1 done' not in out
    code, out, err = run_in_process(test_models.main, [*test_common, '--skip_bad'], capsys)
    assert code == 0, err
    assert 'left out 2 bad line(s)' in out and 'total 2/2' in out
    assert os.path.isfile(tmp_path / 'scores.npz')
