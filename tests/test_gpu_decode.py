"""--gpu_decode without a GPU: everything but nvJPEG runs here. Loader workers ship JPEG bytes with
the crop and flip the CPU pipeline would draw; the device side decodes (libjpeg-turbo on the CPU
here, nvJPEG on a GPU: tests/test_cuda.py), crops, resizes and flips, within 2 grey levels of the
CPU pipeline's clips; and scripts/gpu_check.sh without CUDA checks what it would run."""
import os
import random
import subprocess
import sys

import av
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, run_in_process
from ops.dataset import PANDataSet
from ops.transforms import build_train_transform
from ops.transforms.deferred import DeferredClip, EncodedBatch, EncodedClip, collate_encoded, decode_clips

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _texture(rng, h, w):
    smooth = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    big = np.kron(smooth, np.ones((4, 4, 1), np.uint8))[:h, :w]
    return np.clip(big.astype(int) + rng.integers(-20, 20, big.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    """Frame folders of 60x44 JPEGs, a portrait one, one of PNG files (named .jpg: the content
    decides), and an MP4: a list of 4 lines."""
    root = tmp_path_factory.mktemp('gpu_decode')
    rng = np.random.default_rng(0)
    lines = []
    for name, (h, w), kind in (('a', (44, 60), 'JPEG'), ('b', (60, 44), 'JPEG'), ('c', (44, 60), 'PNG')):
        (root / name).mkdir()
        for i in range(1, 11):
            Image.fromarray(_texture(rng, h, w)).save(root / name / f'img_{i:05d}.jpg', kind)
        lines.append(f'{name} 10 {len(lines) % 2}')
    video = root / 'd.mp4'
    with av.open(str(video), 'w') as out:
        stream = out.add_stream('mpeg4', rate=10)
        stream.width, stream.height, stream.pix_fmt = 60, 44, 'yuv420p'
        for _ in range(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_texture(rng, 44, 60), format='rgb24')):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    lines.append(f'{video} 10 1')
    (root / 'list.txt').write_text('\n'.join(lines) + '\n')
    return root


def _dataset(root, transform):
    return PANDataSet(str(root), str(root / 'list.txt'), num_segments=2, new_length=4, modality='Lite',
                      image_tmpl='img_{:05d}.jpg', transform=transform, random_shift=True)


def _item(data, index, seed):
    random.seed(seed)
    torch.manual_seed(seed)
    return data[index]


@pytest.mark.parametrize('flip', [True, False])
def test_deferred_clips_equal_the_cpu_pipeline_within_two_grey_levels(clips, flip):
    cpu_tf = build_train_transform(32, MEAN, STD, flip=flip, normalize=False)
    deferred = DeferredClip(build_train_transform(32, MEAN, STD, flip=flip, normalize=False))
    cpu_set, gpu_set = _dataset(clips, cpu_tf), _dataset(clips, deferred)
    worst, flips, kinds = 0, set(), set()
    for index in (0, 1, 2, 3):  # JPEG landscape, JPEG portrait, PNG, video file
        for seed in range(4):
            want, label = _item(cpu_set, index, seed)
            planned, label2 = _item(gpu_set, index, seed)
            assert isinstance(planned, EncodedClip) and label == label2
            flips.add(planned.flip)
            kinds.update('jpeg' if f.data is not None else 'pixels' for f in planned.frames.distinct)
            batch, labels = collate_encoded([(planned, label2)])
            got = decode_clips(batch, 'cpu')
            assert got.dtype == torch.uint8 and got.shape == (1, *want.shape)
            worst = max(worst, int((got[0].int() - want.int()).abs().max()))
    assert worst <= 2, worst
    assert flips == ({True, False} if flip else {False})  # the same draws, flips included
    assert kinds == {'jpeg', 'pixels'}  # JPEGs travel encoded, PNGs and a video's frames as pixels


def test_a_batch_decodes_in_one_call_and_pins(clips, monkeypatch):
    import ops.transforms.deferred as deferred_module
    calls = []
    real = deferred_module.decode_jpegs
    monkeypatch.setattr(deferred_module, 'decode_jpegs', lambda data, device: calls.append(len(data)) or
                        real(data, device))
    data = _dataset(clips, DeferredClip(build_train_transform(32, MEAN, STD, normalize=False)))
    batch, labels = collate_encoded([_item(data, i, 0) for i in (0, 1)])
    assert isinstance(batch, EncodedBatch) and labels.tolist() == [0, 1]
    out = decode_clips(batch, 'cpu')
    assert out.shape == (2, 8 * 3, 32, 32) and calls == [16]  # 8 distinct JPEG frames per clip, one call
    if torch.cuda.is_available():
        assert batch.pin_memory().clips[0].frames.distinct[0].data.is_pinned()


def test_only_the_training_pipeline_can_be_deferred():
    from ops.transforms import build_val_transform
    with pytest.raises(ValueError, match='training pipeline'):
        DeferredClip(build_val_transform(32, 36, MEAN, STD, normalize=False))


def test_main_trains_with_gpu_decode_and_logs_the_wait(tmp_path, synthetic_root, capsys):
    import main
    argv = ['synthetic', 'Lite', '--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2',
            '--input_size', '32', '-b', '4', '-j', '0', '--epochs', '1', '--root_path', str(synthetic_root),
            '--root_log', str(tmp_path / 'log'), '--root_model', str(tmp_path / 'ckpt'), '--print-freq', '1',
            '--gpu_decode']
    code, out, err = run_in_process(main.main, argv, capsys)
    assert code == 0, err[-3000:]
    assert 'of the step)' in out and 'waiting for data took' in out
    assert 'Testing Results' in out


@pytest.mark.skipif(torch.cuda.is_available(), reason='with CUDA the script runs the whole GPU check')
def test_gpu_check_without_cuda_checks_what_it_would_run(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'OUT'}
    done = subprocess.run(['bash', 'scripts/gpu_check.sh', str(tmp_path / 'out')], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=dict(env, PY=sys.executable))
    assert done.returncode == 0, done.stderr
    assert 'no CUDA: nothing run' in done.stdout
