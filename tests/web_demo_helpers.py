"""What the web demo's tests share: a tiny checkpoint saved as main.py saves it, clips of a known
motion (as videos and as the .y4m files Chromium's fake camera plays), and tools/online_demo.py's
top-3 on given frames, the reference the page must match."""
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from ops.engine.checkpoint import save_checkpoint
from ops.models import PAN
from reference_fill import fill_state_dict
from tools import online_demo

SIZE = 32                     # the model's crop
NAMES = ['moving left', 'moving right', 'moving up', 'moving down', 'standing still', 'turning']
OPTIONS = dict(num_class=6, num_segments=2, modality='Lite', base_model='resnet18', is_shift=True, has_VAP=True,
               dropout=0.5, data_length=4)


def save_tiny_checkpoint(path: Path, causal: bool, seed: int = 4) -> Path:
    """A Lite ResNet-18, 2 segments, 32x32, weights spread out so its classes differ, saved with
    the keys main.py writes (optimizer and RNG state left out: the demo reads none of them)."""
    options = dict(OPTIONS, causal_shift=causal)
    model = PAN(**options, pretrain='scratch', print_spec=False)
    model.load_state_dict(fill_state_dict(model.state_dict(), seed=seed))
    save_checkpoint({'epoch': 1, 'batch': 0, 'arch': 'resnet18', 'best_prec1': 41.25, 'is_best': True,
                     'state_dict': {'module.' + k: v for k, v in model.state_dict().items()},
                     'model_options': options, 'args': {'input_size': SIZE}, 'dataset': 'synthetic'}, str(path))
    return path


def motion_frames(direction: str, count: int, width: int = 64, height: int = 48, seed: int = 0,
                  tones: tuple[int, int] = (0, 256)) -> list[np.ndarray]:
    """A textured square sliding over a textured background (values in ``tones``), 2 pixels a
    frame to the ``direction`` ('left', 'right', 'up', 'down'), wrapping round: uint8
    ``(height, width, 3)`` frames."""
    rng = np.random.default_rng(seed)
    background = rng.integers(*tones, (height, width, 3), dtype=np.uint8)
    side = height // 3
    patch = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    dx, dy = {'left': (-2, 0), 'right': (2, 0), 'up': (0, -2), 'down': (0, 2)}[direction]
    frames = []
    for i in range(count):
        x = (width // 2 - side // 2 + dx * i) % (width - side)
        y = (height // 2 - side // 2 + dy * i) % (height - side)
        frame = background.copy()
        frame[y:y + side, x:x + side] = patch
        frames.append(frame)
    return frames


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """RGB frames as a YUV4MPEG2 file (4:2:0, BT.601 full range), which Chromium's fake camera
    (``--use-file-for-fake-video-capture``) plays in a loop."""
    height, width = frames[0].shape[:2]
    with open(path, 'wb') as f:
        f.write(f'YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n'.encode())
        for rgb in frames:
            r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
            y = 0.299 * r + 0.587 * g + 0.114 * b
            planes = [y, (b - y) * 0.564 + 128, (r - y) * 0.713 + 128]
            planes[1:] = [p.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)) for p in planes[1:]]
            f.write(b'FRAME\n')
            for plane in planes:
                f.write(np.clip(plane.round(), 0, 255).astype(np.uint8).tobytes())
    return path


def online_demo_tops(weights: Path, frames: list[np.ndarray], stride: int, categories: Path,
                     folder: Path) -> dict[int, list[tuple[int, str, float]]]:
    """tools/online_demo.py on ``frames`` (written losslessly as a frame folder), fp32 on the CPU:
    the top-3 of each step, by the step's 1-based segment number."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, 1):
        Image.fromarray(frame).save(folder / f'{i:05d}.png')
    result = online_demo.main([str(folder), '--weights', str(weights), '--stride', str(stride), '--categories',
                               str(categories), '--cpu', '--no_amp'])
    return {p.start // stride + 1: p.top for p in result['predictions']}


def same_top(a: list[tuple[int, str, float]], b: list[tuple[int, str, float]], atol: float = 1e-4) -> bool:
    """The same classes in the same order, probabilities within ``atol``."""
    return [i for i, _, _ in a] == [i for i, _, _ in b] and \
        bool(np.allclose([p for _, _, p in a], [p for _, _, p in b], atol=atol))


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format='rgb24') for f in container.decode(video=0)]


def fp32_cpu():
    """The CPU in fp32, as the references run."""
    from ops.engine.precision import resolve_precision
    device = torch.device('cpu')
    return device, resolve_precision(False, False, device)
