"""tools/visualize_pa.py: the grid and GIF it draws, from frame folders and videos, with a
random or a checkpoint's PA conv."""
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, run_entry
from ops.engine.checkpoint import save_checkpoint
from ops.frames.frame_source import list_frame_files
from ops.models import PAN
from ops.PAN_modules import PA

sys.path.insert(0, str(ROOT / 'tools'))
import visualize_pa  # noqa: E402


def synthetic_video(root: Path) -> Path:
    """A frame folder of the synthetic dataset: a textured patch sliding over 8 frames, 32x32."""
    return root / 'synthetic' / 'frames' / 'val_00000'


def frames_to_video(frames: list[np.ndarray], path: Path, fps: int = 25, codec: str = 'mpeg4') -> Path:
    """Encode RGB frames ``(H, W, 3)`` (even sizes), every frame a keyframe so a test sees no GOP blur."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), 'w') as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, 'yuv420p'
        stream.gop_size = 1
        stream.bit_rate = 4_000_000
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def folder_to_mp4(folder: Path, path: Path) -> Path:
    """Encode a frame folder as an mp4 (mpeg4, every frame a keyframe)."""
    return frames_to_video([np.array(Image.open(f).convert('RGB')) for f in list_frame_files(str(folder))], path)


def save_pan_checkpoint(path: Path, modality: str, seed: int = 1) -> dict:
    """A main.py-style checkpoint of a tiny PAN whose PA conv is far from its initialisation."""
    torch.manual_seed(seed)
    options = dict(num_class=4, num_segments=2, modality=modality, base_model='resnet18', has_VAP=True,
                   is_shift=True, dropout=0.5, data_length=4)
    model = PAN(**options, pretrain='scratch', print_spec=False)
    if modality != 'RGB':
        torch.nn.init.normal_(model.PA.shallow_conv.weight, 0, 0.05)
        torch.nn.init.normal_(model.PA.shallow_conv.bias, 0, 0.05)
    state = model.state_dict()
    save_checkpoint({'epoch': 1, 'arch': 'resnet18',
                     'state_dict': {'module.' + k: v for k, v in state.items()}, 'best_prec1': 0.0,
                     'model_options': options, 'dataset': 'synthetic'}, str(path))
    return state


def pa_panel(image: Image.Image, columns: int, tile: int) -> np.ndarray:
    """The bottom row of tiles of a grid, without the padding: ``(tile, columns * tile, 3)``."""
    pad = visualize_pa.PAD
    arr = np.asarray(image)
    top = 2 * pad + tile
    return np.concatenate([arr[top:top + tile, pad + c * (tile + pad):pad + c * (tile + pad) + tile]
                           for c in range(columns)], axis=1)


def test_grid_from_frame_folder(tmp_path, synthetic_root):
    out = tmp_path / 'pa.png'
    result = visualize_pa.main([str(synthetic_video(synthetic_root)), '--out', str(out),
                                '--num_segments', '2', '--size', '40', '--seed', '3'])
    image = Image.open(out)
    columns = 2 * 3  # segments x (data_length - 1) maps
    pad = visualize_pa.PAD
    assert image.size == (columns * 40 + (columns + 1) * pad, 2 * 40 + 3 * pad)
    assert result['maps'].shape == (2, 3, 40, 40)
    panel = pa_panel(image, columns, 40)
    assert panel.std() > 10  # motion lights some pixels up, not all
    for c in range(columns):  # each map is stretched to the full grey range
        tile = panel[:, c * 40:(c + 1) * 40]
        assert tile.min() == 0 and tile.max() == 255
    # the top row holds frame t of each pair, as resized
    first = np.asarray(image)[pad:pad + 40, pad:pad + 40]
    assert np.array_equal(first, result['frames'][0].permute(1, 2, 0).numpy())
    # the same seed draws the same conv, another seed another one
    again = visualize_pa.main([str(synthetic_video(synthetic_root)), '--out', str(tmp_path / 'b.png'),
                               '--num_segments', '2', '--size', '40', '--seed', '3'])
    other = visualize_pa.main([str(synthetic_video(synthetic_root)), '--out', str(tmp_path / 'c.png'),
                               '--num_segments', '2', '--size', '40', '--seed', '4'])
    assert torch.equal(again['maps'], result['maps'])
    assert not torch.allclose(other['maps'], result['maps'])


def test_maps_use_the_checkpoint_pa_conv(tmp_path, synthetic_root):
    ckpt = tmp_path / 'lite.pth.tar'
    state = save_pan_checkpoint(ckpt, 'Lite')
    video = str(synthetic_video(synthetic_root))
    trained = visualize_pa.main([video, '--weights', str(ckpt), '--out', str(tmp_path / 't.png'),
                                 '--num_segments', '2', '--size', '32', '--no_amp'])  # compared in fp32 below
    assert torch.equal(trained['pa'].shallow_conv.weight, state['PA.shallow_conv.weight'])
    # a direct PA computation with the checkpoint's conv on the same normalised frames
    pa = PA(4)
    pa.shallow_conv.weight.data.copy_(state['PA.shallow_conv.weight'])
    pa.shallow_conv.bias.data.copy_(state['PA.shallow_conv.bias'])
    frames = trained['frames'].float().div(255)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = pa((frames - mean) / std)
    assert torch.allclose(trained['maps'], expected, rtol=1e-4, atol=1e-5)
    fresh = visualize_pa.main([video, '--out', str(tmp_path / 'r.png'), '--num_segments', '2',
                               '--size', '32'])
    assert torch.equal(fresh['frames'], trained['frames'])
    # bf16 keeps PA's small differences (ops/PAN_modules.py): the fp32 maps within 2% of their maximum
    low = visualize_pa.main([video, '--weights', str(ckpt), '--out', str(tmp_path / 'b.png'),
                             '--num_segments', '2', '--size', '32', '--amp'])
    assert low['precision'].name == 'bf16' and low['maps'].dtype == torch.float32
    assert (low['maps'] - trained['maps']).abs().max() <= 2e-2 * trained['maps'].max()
    assert not torch.allclose(fresh['maps'] / fresh['maps'].max(), trained['maps'] / trained['maps'].max(),
                              atol=1e-3)


def test_gif_from_video_file(tmp_path, synthetic_root):
    video = folder_to_mp4(synthetic_video(synthetic_root), tmp_path / 'clip.mp4')
    result = run_entry('tools/visualize_pa.py', tmp_path, str(video), '--out', 'out/pa.png',
                       '--gif', 'out/pa.gif', '--num_segments', '3', '--data_length', '3', '--size', '32',
                       '--cmap', 'jet')
    assert 'out/pa.png: ' in result.stdout and '3 segments x 2 PA maps' in result.stdout
    pad = visualize_pa.PAD
    assert Image.open(tmp_path / 'out' / 'pa.png').size == (6 * 32 + 7 * pad, 2 * 32 + 3 * pad)
    gif = Image.open(tmp_path / 'out' / 'pa.gif')
    assert gif.n_frames == 6
    assert gif.size == (2 * 32 + 3 * pad, 32 + 2 * pad)
    colours = np.asarray(Image.open(tmp_path / 'out' / 'pa.png').convert('RGB'))[2 * pad + 32:-pad, pad:-pad]
    assert (colours[..., 0] != colours[..., 2]).any()  # jet, not grey


def test_colormap_and_normalisation():
    flat = visualize_pa.normalise_map(torch.full((3, 4), 7.0))
    assert flat.dtype == np.uint8 and not flat.any()
    ramp = visualize_pa.normalise_map(torch.arange(5.0).view(1, 5) * 1e-3 + 2)
    assert ramp.tolist() == [[0, 64, 128, 191, 255]]
    jet = visualize_pa.colorize(np.array([[0, 255]], np.uint8), 'jet')
    assert jet[0, 0, 2] > jet[0, 0, 0] and jet[0, 1, 0] > jet[0, 1, 2]  # blue low, red high


def test_errors_name_what_is_wrong(tmp_path, synthetic_root):
    with pytest.raises(SystemExit, match='no such video file or frame folder: .*nothere'):
        visualize_pa.main([str(tmp_path / 'nothere'), '--out', str(tmp_path / 'x.png')])
    rgb = tmp_path / 'rgb.pth.tar'
    save_pan_checkpoint(rgb, 'RGB')
    with pytest.raises(SystemExit, match='rgb.pth.tar has no PA conv .*PA.shallow_conv.weight'):
        visualize_pa.main([str(synthetic_video(synthetic_root)), '--weights', str(rgb),
                           '--out', str(tmp_path / 'x.png')])


def test_shared_scale_keeps_a_still_pair_dark_and_frame_numbers_say_their_base(tmp_path, capsys):
    """A video whose first segment is still (frames equal up to a camera's noise) and second moves:
    each map on its own scale stretches the still pairs' noise to full white; on one scale for the
    video they stay dark beside the moving ones."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    patch = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    path = tmp_path / 'still then moving'
    path.mkdir()
    for i in range(16):
        frame = background.copy()
        x = 2 if i < 8 else 2 + 2 * (i - 8)
        frame[12:20, x:x + 8] = patch
        frame = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
        Image.fromarray(frame).save(path / f'{i + 1:05d}.png')
    args = [str(path), '--num_segments', '2', '--size', '32', '--no_amp']
    own = visualize_pa.main([*args, '--out', str(tmp_path / 'own.png')])
    assert own['indices'].tolist()[:4] == [4, 5, 6, 7] and own['indices'].tolist()[4:] == [10, 11, 12, 13]
    out = capsys.readouterr().out
    assert 'frames (1-based) [4, 5, 6, 7, 10, 11, 12, 13]' in out and 'each map on its own scale' in out
    shared = visualize_pa.main([*args, '--out', str(tmp_path / 'shared.png'), '--shared_scale', '--frame_base', '0'])
    out = capsys.readouterr().out
    assert 'frames (0-based) [3, 4, 5, 6, 9, 10, 11, 12]' in out and 'one scale for all maps' in out
    own_panel = pa_panel(own['image'], 6, 32)
    shared_panel = pa_panel(shared['image'], 6, 32)
    still, moving = slice(0, 3 * 32), slice(3 * 32, 6 * 32)
    assert own_panel[:, still].max() == 255  # noise amplified to full brightness
    assert shared_panel[:, moving].max() == 255 and shared_panel[:, still].max() < 0.25 * 255
    assert visualize_pa.normalise_map(torch.tensor([[1.0, 3.0]]), (1.0, 5.0)).tolist() == [[0, 128]]
