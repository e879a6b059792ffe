"""The web demo without a browser or Gradio (tools/_demo_service.py): an upload's top-5 are
tools/demo.py's, its annotated video is tools/online_demo.py --out's, the camera streams give
online_demo's top-3 on the same frames and two streams at once do not mix, bad files and limits
get a message naming the file, and the model card says what the checkpoint is.
The page itself is tested in a real browser by tests/test_web_demo_browser.py (``pytest -m browser``)."""
import sys
import threading

import numpy as np
import pytest

from ops.errors import InputError
from test_visualize_pa import frames_to_video
from tools import demo
from tools._demo_service import (CameraSession, DemoService, Limits, UploadError, check_upload, checkpoint_label,
                                 example_videos)
from tools.demo import load_classifier
from web_demo_helpers import (NAMES, decoded_frames, fp32_cpu, motion_frames, online_demo_tops, same_top,
                              save_tiny_checkpoint)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('web')
    categories = folder / 'category.txt'
    categories.write_text('\n'.join(NAMES) + '\n')
    return {'folder': folder, 'categories': categories,
            'causal': save_tiny_checkpoint(folder / 'causal.pth.tar', causal=True),
            'bidirectional': save_tiny_checkpoint(folder / 'bidirectional.pth.tar', causal=False),
            'video': frames_to_video(motion_frames('right', 24), folder / 'my clip.MP4')}


def service_of(files, kind: str = 'causal', **limits) -> DemoService:
    device, precision = fp32_cpu()
    classifier = load_classifier(str(files[kind]), device, precision, categories=str(files['categories']))
    return DemoService(classifier, Limits(**limits), categories=str(files['categories']))


@pytest.fixture(scope='module')
def service(files):
    service = service_of(files)
    yield service
    service.close()


def test_upload_top5_pa_maps_and_annotated_video_are_the_tools(files, service, tmp_path, capsys):
    video = str(files['video'])
    result = service.classify_video(video)
    expected = demo.main([video, '--weights', str(files['causal']), '--categories', str(files['categories']),
                          '--cpu', '--no_amp'])
    assert [name for _, name, _ in result.top] == [name for _, name, _ in expected['top']] and len(result.top) == 5
    assert np.allclose([p for _, _, p in result.top], [p for _, _, p in expected['top']], atol=1e-6)
    assert result.summary.startswith('my clip.MP4: 64x48, 24 frames decoded at 25 fps')
    # frames above the model's PA maps: 2 segments x 3 maps, one column each, two rows
    width, height = result.pa_grid.size
    assert width > 5 * height / 2 and np.asarray(result.pa_grid).std() > 10
    annotated = service.annotate_video(video)
    reference = tmp_path / 'reference.mp4'
    from tools import online_demo
    online_demo.main([video, '--weights', str(files['causal']), '--out', str(reference), '--categories',
                      str(files['categories']), '--cpu', '--no_amp', '--no_channels_last'])
    ours, theirs = decoded_frames(annotated), decoded_frames(reference)
    # two H.264 encodings of the same frames: the encoder's threads may round a few pixels apart
    # (it happened in some runs of the suite); a different label or overlay changes far more
    assert len(ours) == len(theirs) == 24
    for a, b in zip(ours, theirs):
        assert (np.abs(a.astype(int) - b) > 8).mean() < 1e-3
    assert 'wrote' in capsys.readouterr().out


def test_bad_files_and_limits_get_a_message_naming_the_file(files, service, tmp_path):
    folder = tmp_path
    (folder / 'notes.txt').write_text('not a video')
    (folder / 'text.mp4').write_text('not a video either')
    (folder / 'empty.webm').write_bytes(b'')                       # an interrupted download
    frames = motion_frames('left', 30)
    whole = frames_to_video(frames, folder / 'whole.mkv').read_bytes()
    (folder / 'header only.mkv').write_bytes(whole[:600])          # a header, no decodable frame
    (folder / 'cut.mkv').write_bytes(whole[:len(whole) // 2])      # the first half decodes
    mp4 = frames_to_video(frames, folder / 'cut.mp4').read_bytes()
    (folder / 'cut.mp4').write_bytes(mp4[:len(mp4) // 2])          # mp4 keeps its index at the end
    cases = {'notes.txt': 'notes.txt is not a video file', 'text.mp4': 'text.mp4 is not a video that can be read',
             'header only.mkv': 'no video frames in header only.mkv',
             'cut.mp4': 'cut.mp4 is not a video that can be read', 'empty.webm': r'empty.webm is empty \(0 bytes\)'}
    for name, message in cases.items():
        with pytest.raises(UploadError, match=message) as caught:
            service.classify_video(str(folder / name))
        assert str(folder) not in str(caught.value)                # the name the user knows, not a temp path
        assert 'Errno' not in str(caught.value)                    # FFmpeg's reason, not its error number
    with pytest.raises(UploadError, match='header only.mkv'):
        service.annotate_video(str(folder / 'header only.mkv'))
    half = service.classify_video(str(folder / 'cut.mkv'))        # what decodes is used
    assert 0 < int(half.summary.split('frames decoded')[0].split()[-1]) < 30
    long_video = frames_to_video(motion_frames('up', 60, 32, 32), folder / 'long.webm', fps=10, codec='libvpx')
    with pytest.raises(UploadError, match=r'long.webm: 6.0 s of video is over the limit of 5 s \(--max_seconds\)'):
        check_upload(str(long_video), Limits(max_seconds=5))
    with pytest.raises(UploadError, match=r'long.webm: [\d.]+ MB is over the upload limit of 1e-05 MB \(--max_upload_mb\)'):
        check_upload(str(long_video), Limits(max_upload_mb=1e-5))
    with pytest.raises(InputError, match='--max_seconds must be positive'):
        Limits(max_seconds=0)
    assert service.classify_video(str(files['video'])).top  # still serving


def _stream(service: DemoService, key: str, frames: list[np.ndarray], start: threading.Barrier) -> dict:
    start.wait()
    tops = {}
    for frame in frames:
        update = service.cameras.push(key, frame)
        if update.top is not None:
            tops[update.steps] = update.top
    return tops


def test_two_camera_streams_at_once_each_get_online_demos_top3(files, service, tmp_path):
    """Two pages stream different motions at the same time, from two threads: each page's top-3 at
    every step is online_demo's on that page's frames alone."""
    clips = {'page a': motion_frames('right', 40, seed=1), 'page b': motion_frames('up', 40, seed=2)}
    start = threading.Barrier(2)
    results: dict[str, dict] = {}
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, _stream(service, k, clips[k], start)))
               for k in clips]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(service.cameras) == 2
    stride = service.camera_stride
    assert stride == 8   # online_demo's camera default: 2 x new_length
    for key, frames in clips.items():
        expected = online_demo_tops(files['causal'], frames, stride, files['categories'], tmp_path / key)
        assert sorted(results[key]) == sorted(expected) == [2, 3, 4, 5]
        assert all(same_top(results[key][step], expected[step]) for step in expected), (key, results[key], expected)
    # the check can fail: one stream fed both pages' frames gives other classes
    mixed = CameraSession(service.classifier, stride)
    tops = {}
    for a, b in zip(clips['page a'], clips['page b']):
        for frame in (a, b):
            update = mixed.push(frame)
            tops[update.steps] = update.top
    assert not same_top(tops[4], results['page a'][4])
    service.cameras.drop('page a')
    service.cameras.drop('page b')
    assert len(service.cameras) == 0


def test_camera_stream_restarts_after_a_pause_or_a_new_size(service):
    now = [0.0]
    session = CameraSession(service.classifier, 8, clock=lambda: now[0])
    for frame in motion_frames('left', 20):
        now[0] += 0.1
        update = session.push(frame)
    assert update.steps == 3 and update.top is not None and update.latency > 0 and update.segments_per_s > 0
    assert 'after segment 3: 1. ' in update.lines()[0] and 'segments/s' in update.lines()[1]
    assert update.pa_image().shape == (192, 192, 3) and update.pa_image(32).std() > 10
    now[0] += 10
    update = session.push(motion_frames('left', 1)[0])
    assert update.note.startswith('no frame for 10 s: a new stream') and update.frames == 1 and update.top is None
    update = session.push(motion_frames('left', 1, width=96, height=64)[0])
    assert 'the camera changed size (64x48 -> 96x64)' in update.note and update.frames == 1
    with pytest.raises(InputError, match='uint8'):
        session.push(np.zeros((8, 8, 3), np.float32))


def test_sessions_are_limited_and_forgotten_when_idle(files):
    service = service_of(files)
    service.cameras.max_sessions = 2
    frame = motion_frames('left', 1)[0]
    service.cameras.push('a', frame)
    service.cameras.push('b', frame)
    with pytest.raises(UploadError, match=r'2 cameras are streaming, the most this server takes \(--max_cameras\)'):
        service.cameras.push('c', frame)
    for session in service.cameras._sessions.values():   # silent for longer than idle_s: the page was closed
        session.last_seen = service.cameras.clock() - service.cameras.idle_s - 1
    service.cameras.push('c', frame)
    assert len(service.cameras) == 1
    service.cameras.drop('c')                                  # restarted: the next frame starts anew
    assert service.cameras.push('c', frame).frames == 1
    service.cameras.close('c')                                 # the page is gone: a late frame starts nothing
    with pytest.raises(UploadError, match='this page was closed'):
        service.cameras.push('c', frame)
    assert len(service.cameras) == 0
    service.close()


def test_bidirectional_checkpoint_says_how_to_train_a_causal_one(files):
    service = service_of(files, 'bidirectional')
    with pytest.raises(UploadError, match=r'needs a causal checkpoint: bidirectional.pth.tar is bidirectional'
                                          r'.*python main.py synthetic Lite --arch resnet18 --causal_shift'):
        service.cameras.push('a', motion_frames('left', 1)[0])
    card = dict(service.model_card())
    assert 'bidirectional temporal shift' in card['architecture']
    assert card['camera mode'].startswith('bidirectional checkpoint: needs a causal one')
    service.close()


def test_model_card(files, service):
    card = dict(service.model_card())
    assert card['checkpoint'] == 'causal.pth.tar'
    assert checkpoint_label('checkpoint/PAN_Lite_run/ckpt.best.pth.tar') == 'PAN_Lite_run/ckpt.best.pth.tar'
    assert card['architecture'] == ('PAN Lite, resnet18, causal temporal shift (1/8 of the channels, blockres), '
                                    'VAP head')
    assert card['segments'] == '2 segments x 4 frame(s)'
    assert card['input size'] == '32x32 centre crop (short side scaled to 36)'
    assert card['precision'] == 'precision fp32 (--no_amp), layout default'
    assert card['validation accuracy'] == "41.25% top-1 (this epoch's, the run's best so far)"
    assert card['trained'] == '1 epoch(s)'
    assert card['classes'].startswith('6 (synthetic); names: ') and card['classes'].endswith('category.txt')
    assert card['camera mode'] == 'causal: one segment per step'


def test_examples_are_validation_videos_on_disk(files, tmp_path):
    """One validation video of each class first; frame folders and missing files are left out."""
    data = tmp_path / 'data' / 'synthetic'
    videos = data / 'frames'
    videos.mkdir(parents=True)
    (data / 'category.txt').write_text('\n'.join(NAMES) + '\n')
    for name in ('l1.mp4', 'l2.mp4', 'r1.webm', 'u1.MKV'):
        (videos / name).write_bytes(b'')
    (videos / 'folder_video').mkdir()
    (data / 'val_videofolder.txt').write_text('l1.mp4 0 0\nl2.mp4 0 0\nfolder_video 8 1\nr1.webm 0 1\n'
                                              'missing.mp4 0 2\nu1.MKV 0 2\n')
    device, precision = fp32_cpu()
    classifier = load_classifier(str(files['causal']), device, precision, root_path=str(tmp_path / 'data'))
    assert classifier.names == NAMES   # the dataset's category.txt, as tools/demo.py finds it
    found = [p.split('/')[-1] for p in example_videos(classifier, str(tmp_path / 'data'))]
    assert found == ['l1.mp4', 'r1.webm', 'u1.MKV', 'l2.mp4']
    assert example_videos(classifier, str(tmp_path / 'data'), limit=2) == [str(videos / 'l1.mp4'),
                                                                          str(videos / 'r1.webm')]
    assert example_videos(classifier, str(tmp_path / 'nowhere')) == []


def test_without_gradio_the_tool_says_how_to_install_it(files, monkeypatch, capsys):
    from ops.engine.cli import run_cli_main
    from tools import web_demo
    monkeypatch.setitem(sys.modules, 'gradio', None)   # import gradio -> ImportError
    with pytest.raises(SystemExit) as caught:
        run_cli_main(web_demo.main, ['--weights', str(files['causal'])])
    assert caught.value.code == 2
    assert capsys.readouterr().err.startswith('error: the web demo needs Gradio: pip install -r requirements-web.txt')


def test_page_handlers_turn_refusals_and_bugs_into_a_line(capsys):
    """What the page's handlers return instead of raising: a refusal's message, or for a bug one
    line on the page and the traceback in the server's log."""
    from tools.web_demo import _guarded

    def handler(kind: str):
        if kind == 'refused':
            raise UploadError('clip.avi: no video frames in clip.avi')
        if kind == 'bug':
            raise KeyError('oops')
        return 'fine', 1

    guarded = _guarded(handler, lambda message: (message, None), 'Cannot use this file.')
    assert guarded('ok') == ('fine', 1)
    assert guarded('refused') == ('**Cannot use this file.** clip.avi: no video frames in clip.avi', None)
    message, _ = guarded(kind='bug')
    assert message == '**Internal error** (KeyError); the server log has the details.'
    assert "KeyError: 'oops'" in capsys.readouterr().err
