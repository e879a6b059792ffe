"""tools/web_demo.py in a real browser: Debian's headless Chromium, driven by Playwright, opens the
page, uploads a generated video and reads the top-5 from it; with Chromium's fake camera playing a
generated .y4m clip of a known motion, the camera mode's top-3 is tools/online_demo.py's on the
frames the page sent; two browsers streaming at once each get their own stream; bad files get a
message on the page; the server binds to 127.0.0.1 unless told otherwise.

Run with ``pytest -m browser`` after ``pip install -r requirements-web.txt`` and
``bash scripts/install_chromium.sh``. Screenshots are saved in each test's temporary folder.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from contextlib import contextmanager

import av
import numpy as np
import pytest

from conftest import ROOT
from test_visualize_pa import frames_to_video
from web_demo_helpers import (NAMES, fp32_cpu, motion_frames, online_demo_tops, save_tiny_checkpoint,
                              write_y4m)

from tools import web_demo
from tools._demo_service import DemoService, Limits
from tools.demo import load_classifier

# Gradio and Playwright are imported by the fixtures, not here: collecting this module in the
# default run (where its tests are deselected) costs no import of them.
pytestmark = pytest.mark.browser

FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--no-first-run']
CAMERA_FLAGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']
WAIT_MS = 90_000   # the CPU may be shared: generous waits, never a sleep for a result
STEP = re.compile(r'after segment (\d+): ((?:\d\. .+? [\d.]+(?: \| )?)+)$', re.M)


def free_port(host: str = '127.0.0.1') -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def refuses(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) != 0


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('browser')
    categories = folder / 'category.txt'
    categories.write_text('\n'.join(NAMES) + '\n')
    found = {'folder': folder, 'categories': categories,
             'causal': save_tiny_checkpoint(folder / 'causal.pth.tar', causal=True),
             'bidirectional': save_tiny_checkpoint(folder / 'bidirectional.pth.tar', causal=False),
             'clip': frames_to_video(motion_frames('right', 32), folder / 'sliding right.mp4', codec='libx264')}
    # the cameras: a patch sliding right over a dark background, one sliding up over a light one
    found['camera right'] = write_y4m(folder / 'right.y4m', motion_frames('right', 60, 160, 120, 1, (0, 128)))
    found['camera up'] = write_y4m(folder / 'up.y4m', motion_frames('up', 60, 160, 120, 2, (128, 256)))
    return found


@pytest.fixture(scope='module')
def server(files, chromium):
    """The page of the causal checkpoint, served on 127.0.0.1 from this process (fp32 on the CPU, as
    the references run); every camera frame a page sends is recorded by its session key."""
    device, precision = fp32_cpu()
    classifier = load_classifier(str(files['causal']), device, precision, categories=str(files['categories']))
    service = DemoService(classifier, Limits(), categories=str(files['categories']))
    recorded: dict[str, list[np.ndarray]] = defaultdict(list)
    push = service.cameras.push

    def recording(key, frame):
        recorded[key].append(np.array(frame))
        return push(key, frame)

    service.cameras.push = recording
    port = free_port()
    app = web_demo.build_app(service, camera_fps=10)
    web_demo.launch(app, web_demo.DEFAULT_HOST, port, service.limits, [], block=False)
    yield {'url': f'http://127.0.0.1:{port}/', 'port': port, 'service': service, 'recorded': recorded}
    app.close()
    service.close()


@pytest.fixture(scope='module')
def chromium() -> str:
    pytest.importorskip('gradio', reason='pip install -r requirements-web.txt')
    found = shutil.which('chromium') or shutil.which('chromium-browser')
    if found is None:
        pytest.skip('no chromium: bash scripts/install_chromium.sh')
    return found


@pytest.fixture(scope='module')
def playwright(chromium):
    sync_api = pytest.importorskip('playwright.sync_api', reason='pip install -r requirements-web.txt')
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture
def browser(playwright, chromium):
    """Opens pages, each in a fresh headless Chromium (its fake camera playing ``camera_file``)."""
    @contextmanager
    def open_page(camera_file=None):
        flags = FLAGS + (CAMERA_FLAGS + [f'--use-file-for-fake-video-capture={camera_file}'] if camera_file else [])
        process = playwright.chromium.launch(executable_path=chromium, args=flags, headless=True)
        try:
            context = process.new_context(viewport={'width': 1100, 'height': 850},
                                           permissions=['camera'] if camera_file else [])
            yield context.new_page()
        finally:
            process.close()
    return open_page


def page_top5(page) -> list[tuple[str, float]]:
    """The classes and probabilities the page's label shows, in its order (each bar's value)."""
    meters = page.locator('#top5 meter')
    return [(m.get_attribute('aria-label'), float(m.get_attribute('value'))) for m in meters.all()]


def upload(page, path) -> None:
    """Drop ``path`` on the video input (clearing the one it holds first)."""
    page.wait_for_selector('#upload input[type=file], #upload button[aria-label=Clear]', state='attached')
    if page.locator('#upload input[type=file]').count() == 0:
        page.locator('#upload button[aria-label=Clear]').click()
    page.set_input_files('#upload input[type=file]', str(path))


def test_upload_shows_top5_pa_maps_and_annotated_video(server, files, tmp_path, browser):
    service = server['service']
    with browser() as page:
        page.goto(server['url'])
        upload(page, files['clip'])
        page.wait_for_function("document.querySelectorAll('#top5 meter').length == 5", timeout=WAIT_MS)
        shown = page_top5(page)
        expected = service.classify_video(str(files['clip'])).top
        assert [name for name, _ in shown] == [name for _, name, _ in expected]
        assert np.allclose([p for _, p in shown], [p for _, _, p in expected], atol=1e-6)
        assert page.inner_text('#summary').startswith('sliding right.mp4: 64x48, 32 frames decoded at 25 fps')
        assert page.locator('#pa img').evaluate('img => img.naturalWidth') > 500   # 6 tiles of frames and maps
        page.wait_for_function("document.querySelector('#annotated video') && "
                               "document.querySelector('#annotated video').src", timeout=WAIT_MS)
        page.wait_for_timeout(1500)   # let the player read the file's header
        state = page.locator('#annotated video').evaluate('v => [v.readyState, v.error && v.error.code, v.duration]')
        page.screenshot(path=str(tmp_path / 'upload.png'), full_page=True)
        print(f"screenshot: {tmp_path / 'upload.png'}")
    with av.open(service._written[-1]) as container:
        codec, frames = container.streams.video[0].codec_context.name, container.streams.video[0].frames
    assert frames == 32
    if codec == 'mpeg4':   # Chromium plays H.264, VP8/9 and AV1 in a page, not MPEG-4 Part 2
        pytest.xfail('the annotated video is MPEG-4 Part 2 (tools/_annotated_video.py), which Chromium does not '
                     f'play (player state {state}); the writer is to write H.264 (issue 23)')
    assert state[1] is None and state[0] >= 1 and abs(state[2] - 32 / 25) < 0.1, state


def test_bad_files_get_a_message_and_the_server_goes_on(server, files, tmp_path, browser):
    notes = tmp_path / 'notes.txt'
    notes.write_text('not a video')
    text = tmp_path / 'text.mp4'
    text.write_text('not a video either')
    whole = frames_to_video(motion_frames('left', 30), tmp_path / 'whole.mkv').read_bytes()
    header = tmp_path / 'header only.mkv'
    header.write_bytes(whole[:600])
    with browser() as page:
        page.goto(server['url'])
        upload(page, notes)   # the page itself takes video files only
        page.wait_for_selector('text=Invalid file type: notes.txt', timeout=WAIT_MS)
        for path, message in ((text, 'Cannot use this file. text.mp4 is not a video that can be read'),
                              (header, 'Cannot use this file. no video frames in header only.mkv')):
            upload(page, path)
            page.wait_for_function(f"document.querySelector('#summary').innerText.includes({message!r})",
                                   timeout=WAIT_MS)
            assert 'Traceback' not in page.content() and str(tmp_path) not in page.inner_text('#summary')
            assert page.locator('#top5 meter').count() == 0
        page.screenshot(path=str(tmp_path / 'bad_file.png'), full_page=True)
        upload(page, files['clip'])   # still serving
        page.wait_for_function("document.querySelectorAll('#top5 meter').length == 5", timeout=WAIT_MS)


def start_camera(page, url: str) -> None:
    page.goto(url)
    page.get_by_role('tab', name='Camera').click()
    page.get_by_text('Click to Access Webcam').click()
    page.get_by_role('button', name='capture photo').click()   # Gradio's "Record": start streaming


def wait_for_segment(page, at_least: int) -> tuple[int, list[tuple[str, float]]]:
    """Wait until the live text shows segment ``at_least`` or later; its segment number and top-3."""
    page.wait_for_function(
        "(() => { const m = document.querySelector('#live').innerText.match(/after segment (\\d+)/); "
        f"return m && Number(m[1]) >= {at_least}; }})()", timeout=WAIT_MS)
    text = page.inner_text('#live')
    match = STEP.search(text)
    assert match, text
    top = [(name, float(p)) for name, p in re.findall(r'\d\. (.+?) ([\d.]+)(?: \||$)', match.group(2))]
    assert len(top) == 3 and 'new stream' not in text, text
    assert re.search(r'step latency [\d.]+ ms, [\d.]+ segments/s, \d+ frames received', text), text
    return int(match.group(1)), top


def check_against_online_demo(server, files, key: str, step: int, top: list, folder) -> None:
    """The page's top-3 at segment ``step`` is online_demo's on the frames that page sent."""
    stride = server['service'].camera_stride
    frames = server['recorded'][key][:(step - 1) * stride + 4]
    expected = online_demo_tops(files['causal'], frames, stride, files['categories'], folder)[step]
    assert [name for name, _ in top] == [name for _, name, _ in expected], (top, expected)
    assert np.allclose([p for _, p in top], [p for _, _, p in expected], atol=6e-4)   # shown to 3 decimals


def test_camera_top3_is_online_demos_on_the_same_frames(server, files, tmp_path, browser):
    recorded = server['recorded']
    before = set(recorded)
    with browser(files['camera right']) as page:
        start_camera(page, server['url'])
        step, top = wait_for_segment(page, 4)
        page.wait_for_function("document.querySelector('#pa_live img') !== null", timeout=WAIT_MS)
        page.screenshot(path=str(tmp_path / 'camera.png'), full_page=True)
        print(f"screenshot: {tmp_path / 'camera.png'}")
    (key,) = set(recorded) - before
    first = recorded[key][0]
    assert first.shape == (120, 160, 3) and first.mean() < 110   # the dark clip's frames, as the camera gave them
    check_against_online_demo(server, files, key, step, top, tmp_path / 'frames')


def test_two_browsers_stream_at_once_without_cross_talk(server, files, tmp_path, browser):
    recorded, service = server['recorded'], server['service']
    before = set(recorded)
    with browser(files['camera right']) as first:
        start_camera(first, server['url'])
        first.wait_for_function("document.querySelector('#live').innerText.includes('frames received')",
                                timeout=WAIT_MS)
        (key_right,) = set(recorded) - before
        with browser(files['camera up']) as second:
            start_camera(second, server['url'])
            step_up, top_up = wait_for_segment(second, 4)
            step_right, top_right = wait_for_segment(first, step_up)   # both streamed meanwhile
            assert len(service.cameras) >= 2
            second.screenshot(path=str(tmp_path / 'second.png'))
    (key_up,) = set(recorded) - before - {key_right}
    deadline = time.monotonic() + 60
    while {key_right, key_up} & set(service.cameras._sessions) and time.monotonic() < deadline:
        time.sleep(0.5)   # closed pages: their streams are dropped (the page's unload event)
    assert not {key_right, key_up} & set(service.cameras._sessions)
    assert recorded[key_right][0].mean() < 110 < 140 < recorded[key_up][0].mean()   # each its own camera
    check_against_online_demo(server, files, key_right, step_right, top_right, tmp_path / 'right')
    check_against_online_demo(server, files, key_up, step_up, top_up, tmp_path / 'up')
    assert top_right != top_up


def test_command_line_binds_loopback_limits_and_bidirectional_camera(files, tmp_path, browser):
    """``python tools/web_demo.py`` as a user runs it: 127.0.0.1 only by default; the dataset's
    validation videos are examples that classify on a click; uploads over ``--max_upload_mb`` or
    ``--max_seconds`` get a message; a bidirectional checkpoint's camera tab says how to train a
    causal one."""
    port = free_port()
    long_clip = frames_to_video(motion_frames('left', 60), tmp_path / 'long.mp4', fps=10, codec='libx264')
    dataset = tmp_path / 'data' / 'synthetic'   # the checkpoint's dataset, with validation videos
    (dataset / 'frames').mkdir(parents=True)
    (dataset / 'category.txt').write_text('\n'.join(NAMES) + '\n')
    (dataset / 'val_videofolder.txt').write_text('left clip.mp4 0 0\nup clip.mp4 0 2\n')
    for name, direction in (('left clip.mp4', 'left'), ('up clip.mp4', 'up')):
        frames_to_video(motion_frames(direction, 16), dataset / 'frames' / name, codec='libx264')
    command = [sys.executable, str(ROOT / 'tools' / 'web_demo.py'), '--weights', str(files['bidirectional']),
               '--root_path', str(tmp_path / 'data'), '--port', str(port), '--max_seconds', '3',
               '--max_upload_mb', '1']
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1'}
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, 'the server did not start in 120 s'
                time.sleep(1)
        assert refuses('127.0.0.2', port)   # another loopback address: not bound there
        big = tmp_path / 'big.mp4'
        big.write_bytes(files['clip'].read_bytes() + bytes(1_100_000))   # over 1 MiB
        with browser() as page:
            page.goto(f'http://127.0.0.1:{port}/')
            page.locator('button.gallery-item').nth(1).click()   # the second example: up clip.mp4
            page.wait_for_function("document.querySelectorAll('#top5 meter').length == 5", timeout=WAIT_MS)
            assert page.inner_text('#summary').startswith('up clip.mp4: 64x48, 16 frames decoded')
            assert {name for name, _ in page_top5(page)} <= set(NAMES)
            upload(page, long_clip)
            page.wait_for_function("document.querySelector('#summary').innerText.includes("
                                   "'long.mp4: 6.0 s of video is over the limit of 3 s (--max_seconds)')",
                                   timeout=WAIT_MS)
            upload(page, big)
            page.wait_for_function("document.body.innerText.includes("
                                   "'exceed the maximum allowed size of 1.0 Mb: \"big.mp4\"')", timeout=WAIT_MS)
            page.get_by_role('tab', name='Camera').click()
            hint = page.inner_text('#live')
            assert 'needs a causal checkpoint: bidirectional.pth.tar is bidirectional' in hint
            assert 'python main.py synthetic Lite --arch resnet18 --causal_shift' in hint
            assert page.get_by_text('Click to Access Webcam').count() == 0
            page.get_by_role('tab', name='Model').click()
            card = page.inner_text('#card')
            for fact in ('bidirectional temporal shift', '2 segments x 4 frame(s)', '32x32 centre crop',
                         '41.25% top-1', '1 epoch(s)', 'at most 1 MB and 3 s of video'):
                assert fact in card, (fact, card)
            page.screenshot(path=str(tmp_path / 'card.png'), full_page=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
