"""tools/online_demo.py on a short generated video: the printed classes are the offline model's on
each window, the annotated video decodes back whole, --realtime reports its drops."""
import re
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from conftest import ROOT
from ops.backbone_registry import scale_size_for
from ops.data_setup import to_model_input
from ops.engine.checkpoint import save_checkpoint
from ops.models import PAN
from ops.transforms import build_val_transform
from reference_fill import fill_state_dict
from test_video_reader import write_video

sys.path.insert(0, str(ROOT / 'tools'))
import online_demo  # noqa: E402
from tools import _annotated_video  # noqa: E402

SIZE, FRAMES, T, L = 32, 16, 2, 4
NAMES = ['left', 'right', 'up']
STEP = re.compile(r'^segment \d+ \(frames (\d+)-\d+\): 1\. (\w+) ([\d.]+) \| 2\. (\w+) ([\d.]+) \| 3\. (\w+) ([\d.]+) \|',
                  re.M)


def make_model(causal: bool) -> tuple[PAN, dict]:
    options = dict(num_class=3, num_segments=T, modality='Lite', base_model='resnet18', is_shift=True,
                   has_VAP=True, dropout=0.5, causal_shift=causal)
    model = PAN(**options, pretrain='scratch', print_spec=False)
    model.load_state_dict(fill_state_dict(model.state_dict(), seed=4))
    return model.eval(), options


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A 16-frame 48x40 video of a sliding patch, a category file, a causal and a bidirectional checkpoint."""
    folder = tmp_path_factory.mktemp('online')
    rng = np.random.default_rng(0)
    video = folder / 'clip.mp4'
    with av.open(str(video), 'w') as container:
        stream = container.add_stream('mpeg4', rate=25)
        stream.width, stream.height, stream.pix_fmt = 48, 40, 'yuv420p'
        background = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        patch = rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)
        for i in range(FRAMES):
            frame = background.copy()
            frame[10:20, 2 + 2 * i:12 + 2 * i] = patch
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    categories = folder / 'category.txt'
    categories.write_text('\n'.join(NAMES) + '\n')
    found = {'video': str(video), 'categories': str(categories)}
    for causal in (False, True):
        model, options = make_model(causal)
        path = folder / f'causal_{causal}.pth.tar'
        save_checkpoint({'state_dict': model.state_dict(), 'model_options': options, 'args': {'input_size': SIZE}},
                        str(path))
        found[causal] = (str(path), model)
    return found


def offline_probs(model: PAN, video: str, starts: list[int]) -> torch.Tensor:
    """The offline model's probabilities on the clip of the segments starting at ``starts``."""
    with av.open(video) as container:
        frames = [torch.from_numpy(f.to_ndarray(format='rgb24')) for f in container.decode(video=0)]
    clip = torch.stack([frames[s + k] for s in starts for k in range(L)])
    transform = build_val_transform(SIZE, scale_size_for(SIZE), model.input_mean, model.input_std, normalize=False)
    x = to_model_input(transform(clip)[None], model.input_mean, model.input_std, torch.device('cpu'))
    with torch.no_grad():
        return torch.softmax(model(x), dim=1)[0]


def test_printed_classes_are_the_offline_model_on_each_window(files, capsys):
    path, model = files[False]
    result = online_demo.main(['--weights', path, files['video'], '--categories', files['categories'],
                               '--stride', '4', '--no_amp'])
    out = capsys.readouterr().out
    steps = STEP.findall(out)
    assert [int(s[0]) for s in steps] == [5, 9, 13]       # windows of segments (1, 5), (5, 9), (9, 13)
    for step in steps:
        start = int(step[0]) - 1
        probs = offline_probs(model, files['video'], [start - 4, start])
        order = probs.argsort(descending=True)
        assert [step[1], step[3], step[5]] == [NAMES[i] for i in order]
        assert np.allclose([float(step[2]), float(step[4]), float(step[6])], probs[order].numpy(), atol=1e-3)
    assert re.search(r'\d+\.\d ms, [\d.]+ segments/s', out)
    assert not result['causal'] and result['stride'] == 4


def test_annotated_video_and_default_stride(files, tmp_path, capsys):
    path, model = files[True]
    out_file = tmp_path / 'annotated.mp4'
    result = online_demo.main(['--weights', path, files['video'], '--categories', files['categories'],
                               '--out', str(out_file), '--no_amp'])
    assert result['causal'] and result['stride'] == FRAMES // T   # validation's spacing on this video
    first = result['predictions'][0]
    probs = offline_probs(model, files['video'], [0, 8])            # the first window: the offline clip
    assert first.top[0][1] == NAMES[int(probs.argmax())] and abs(first.top[0][2] - float(probs.max())) < 1e-4
    with av.open(str(out_file)) as container:
        written = [f.to_ndarray(format='rgb24') for f in container.decode(video=0)]
    assert len(written) == FRAMES and written[0].shape == (40, 48, 3)
    assert f'wrote {out_file}: {FRAMES} frames, 48x40' in capsys.readouterr().out


def test_realtime_drops_frames_it_cannot_keep_up_with(files, tmp_path, capsys):
    path, _ = files[True]
    out_file = tmp_path / 'live.mp4'
    result = online_demo.main(['--weights', path, files['video'], '--realtime', '--fps', '2000', '--stride', '1',
                               '--out', str(out_file), '--no_amp'])
    out = capsys.readouterr().out
    assert result['dropped'] > 0
    assert f"dropped {result['dropped']} frames" in out
    assert result['frames_written'] == FRAMES - result['dropped']


def test_bad_input_names_the_flag_or_file(files, tmp_path, capsys):
    path, _ = files[True]
    for argv, message in (([files['video'], '--stride', '0'], 'error: --stride must be at least 1'),
                          ([str(tmp_path / 'nope.mp4')], 'error: no such video file, frame folder or camera'),
                          ([files['video'], '--out', str(tmp_path / 'a.avi')], 'error: --out ')):
        with pytest.raises(SystemExit):
            online_demo.run_cli_main(online_demo.main, ['--weights', path, *argv])
        assert capsys.readouterr().err.startswith(message)


def test_out_is_h264_at_the_exact_rate_of_a_29_97_source(files, tmp_path, capsys):
    """A 30000/1001 source is written as H.264 at 30000/1001 (not rounded to 30), and says so."""
    source = tmp_path / 'ntsc.mov'
    with av.open(str(source), 'w') as container:
        stream = container.add_stream('mpeg4', rate=Fraction(30000, 1001))
        stream.width, stream.height, stream.pix_fmt = 48, 40, 'yuv420p'
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((40, 48, 3), 20 * i, np.uint8), format='rgb24')
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out_file = tmp_path / 'annotated.mp4'
    result = online_demo.main(['--weights', files[True][0], str(source), '--out', str(out_file), '--no_amp'])
    assert result['encoder'] == 'libx264' and result['rate'] == Fraction(30000, 1001)
    with av.open(str(out_file)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == 'h264' and video.codec_context.pix_fmt == 'yuv420p'
        assert video.average_rate == Fraction(30000, 1001)
        assert sum(1 for _ in container.decode(video)) == 12
    assert out_file.read_bytes()[:64].find(b'moov') > 0  # the index first: plays while downloading
    out = capsys.readouterr().out
    assert 'at 29.97 fps (30000/1001)' in out
    assert f'wrote {out_file}: 12 frames, 48x40, H.264 (libx264) at 29.97 fps (30000/1001)' in out


def test_mpeg4_only_where_there_is_no_h264_encoder(monkeypatch):
    assert _annotated_video.pick_encoder(48, 40, Fraction(25)) == ('libx264', 'H.264')
    monkeypatch.setattr(_annotated_video, 'ENCODERS', (('libno264', 'H.264'), *_annotated_video.ENCODERS[2:]))
    name, kind = _annotated_video.pick_encoder(48, 40, Fraction(30000, 1001))
    assert name == 'mpeg4' and 'not playable in browsers' in kind


def test_a_truncated_video_says_its_header_claims_more(files, tmp_path, capsys):
    data = (ROOT / 'tests' / 'fixtures' / 'xvid_bframes.avi').read_bytes()
    cut = tmp_path / 'cut.avi'
    cut.write_bytes(data[:len(data) // 3])
    result = online_demo.main(['--weights', files[True][0], str(cut), '--no_amp'])
    out = capsys.readouterr().out
    decoded = re.search(r'=> \S+cut.avi: (\d+) frames at', out)
    assert decoded and 0 < int(decoded.group(1)) < 164
    assert f'its header claims 164 frames but {decoded.group(1)} decode' in out
    assert result['stride'] == round(int(decoded.group(1)) / T)  # spaced over what decodes


def test_tiny_frames_are_enlarged_and_a_short_video_says_why_it_has_no_prediction(files, tmp_path, capsys):
    out_file = tmp_path / 'dot.mp4'
    writer = _annotated_video.AnnotatedVideoWriter(str(out_file), Fraction(25))
    for i in range(3):  # 1x1 frames, as test clips of other projects have: no encoder takes that size
        writer.write(torch.full((1, 1, 3), 60 * i, dtype=torch.uint8), ['1. a 0.50'], None, (0, 0, 1, 1))
    writer.close()
    with av.open(str(out_file)) as container:
        written = [f.to_ndarray(format='rgb24') for f in container.decode(video=0)]
    assert writer.factor == 32 and len(written) == 3 and written[0].shape == (32, 32, 3)
    assert abs(int(written[2][-1, -1, 1]) - 120) <= 8   # a corner away from the label: the source pixel
    short = write_video(tmp_path / 'three.mp4', 3, 'mpeg4', size=(48, 40))
    result = online_demo.main(['--weights', files[True][0], str(short), '--no_amp'])
    assert result['predictions'] == []
    assert (f'no prediction: 3 frames made 0 segment(s) of {L} frames, and a prediction needs {T}'
            in capsys.readouterr().out)
