"""Draw video frames beside their PA (Persistence of Appearance) maps, like the figure of the
paper's README.

    python tools/visualize_pa.py VIDEO_FILE_OR_FRAME_FOLDER --out pa.png [--gif pa.gif]
        [--weights CHECKPOINT] [--seed 0] [--num_segments 4] [--data_length 4] [--size 112] [--crop 0]
        [--cmap gray|jet] [--shared_scale] [--frame_base 1|0] [--fps 4]
        [--amp | --no_amp] [--channels_last | --no_channels_last]

The clip is sampled as validation samples it: the centre of each of ``--num_segments`` segments,
``--data_length`` consecutive frames from each. Frames are resized so their short side is
``--size`` (then centre-cropped to ``--crop`` x ``--crop`` if given), normalised with the ImageNet
mean and std as the model sees them, and passed through ``ops.PAN_modules.PA``: every segment of
L frames gives L - 1 maps, map t being the per-pixel distance between the shallow-conv features of
frames t and t+1.

The PA conv is either a checkpoint's (``--weights``: a PA or Lite checkpoint written by main.py or
released with the paper; its ``PA.shallow_conv.weight`` / ``.bias``, ``module.`` prefix or not) or
a fresh one initialised as in training from ``--seed``. PA runs on the CPU, in bf16 where it has
AMX or AVX-512 BF16, else in fp32, as the models run (ops/engine/precision.py; ``--amp`` / ``--no_amp``
override it).

Display: each map is min-max normalised on its own to [0, 255] (a constant map is drawn black).
The absolute scale of PA depends on the conv weights (a fresh conv gives values near 1e-3, a
trained one far larger), so only where the motion is within a map is shown, not how strong it
is compared with other maps; a pair of still frames then shows its compression noise stretched
to full brightness. ``--shared_scale`` draws every map of the video on one scale (the smallest
and largest value over all its maps), so a still pair is dark beside a moving one.

Frame numbers are printed 1-based by default, as list files and frame folders count
(``img_00001.jpg`` is frame 1); ``--frame_base 0`` prints them 0-based, as PyAV and ffmpeg count
decoded frames. Either way the output says which.

``--out`` (PNG) is a grid with one column per PA map (``num_segments * (data_length - 1)``): the
top row holds frame t of each pair, the bottom row its map, tiles ``PAD`` pixels apart and from
the border. ``--gif`` animates the pairs: frame t beside its map, one pair per GIF frame.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from PIL import Image

from ops.backbone_registry import IMAGENET_MEAN, IMAGENET_STD
from ops.dataset import sample_clip
from ops.engine.checkpoint import checkpoint_state_dict, read_checkpoint
from ops.engine.cli import new_parser
from ops.engine.precision import add_precision_flags, resolve_precision
from ops.modalities import DEFAULT_DATA_LENGTH
from ops.PAN_modules import PA
from ops.transforms import ClipCenterCrop, ClipScale, normalize_uint8_batch
from tools._prep_common import exit_with_error

PAD = 4  # pixels between tiles and around the grid
BACKGROUND = (255, 255, 255)
PA_KEYS = ('PA.shallow_conv.weight', 'PA.shallow_conv.bias')
COLORMAPS = ('gray', 'jet')


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument('video', help='a video file (.mp4, .webm, .avi, .mkv) or a folder of frames')
    p.add_argument('--weights', default=None,
                   help='PA or Lite checkpoint: use its PA conv (None: a random PA conv, see --seed)')
    p.add_argument('--seed', type=int, default=0, help='seed of the random PA conv (without --weights)')
    p.add_argument('--num_segments', type=int, default=4, help='segments sampled from the video')
    p.add_argument('--data_length', type=int, default=None,
                   help=f"frames per segment (None: the checkpoint's, else {DEFAULT_DATA_LENGTH} as in PAN)")
    p.add_argument('--size', type=int, default=112, help='short side of the frames, in pixels')
    p.add_argument('--crop', type=int, default=0, help='centre crop to this square size (0: no crop)')
    p.add_argument('--cmap', choices=COLORMAPS, default='gray', help='colours of the PA maps')
    p.add_argument('--shared_scale', action='store_true',
                   help='one colour scale for every map of the video (default: each map stretched to its own '
                        'min..max, which amplifies the noise of still pairs)')
    p.add_argument('--frame_base', type=int, choices=(1, 0), default=1,
                   help='print frame numbers 1-based (as list files and img_00001.jpg) or 0-based (as PyAV / ffmpeg)')
    p.add_argument('--out', default='pa.png', help='the grid image (PNG)')
    p.add_argument('--gif', default=None,
                   help='also write an animation of frame / PA map pairs to this GIF (None: no animation)')
    p.add_argument('--fps', type=float, default=4.0, help='GIF frames per second')
    add_precision_flags(p)
    return p


# ---------------------------------------------------------------- the PA conv

def load_pa(weights: str | None, n_length: int, seed: int = 0, checkpoint: dict | None = None) -> PA:
    """A PA module with the shallow conv of checkpoint ``weights`` (``checkpoint``: that file
    already read), or (None) a fresh one drawn from ``seed`` without touching the global RNG."""
    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return PA(n_length).eval()
    state = checkpoint_state_dict(checkpoint if checkpoint is not None else read_checkpoint(weights))
    missing = [k for k in PA_KEYS if k not in state]
    if missing:
        raise ValueError(f'{weights} has no PA conv (missing {", ".join(missing)}): an RGB checkpoint? '
                         'Use a PA or Lite checkpoint, or leave out --weights for a random PA conv')
    pa = PA(n_length)
    try:
        pa.shallow_conv.load_state_dict({'weight': state[PA_KEYS[0]], 'bias': state[PA_KEYS[1]]})
    except RuntimeError as err:
        raise ValueError(f'{weights}: PA conv weights do not fit a 3 -> 8 channel 7x7 conv: {err}') from None
    return pa.eval()


def checkpoint_data_length(checkpoint: dict | None) -> int | None:
    """The ``data_length`` a main.py checkpoint was trained with (None if not stored or no checkpoint)."""
    return ((checkpoint or {}).get('model_options') or {}).get('data_length')


# ---------------------------------------------------------------- frames and maps

def prepare_frames(frames: torch.Tensor, size: int, crop: int = 0) -> torch.Tensor:
    """uint8 ``(F, H, W, 3)`` -> uint8 ``(F, 3, h, w)``: short side to ``size``, then a centre
    ``crop`` x ``crop`` (0: none)."""
    clip = ClipScale(size)(frames.permute(0, 3, 1, 2))
    if crop:
        clip = ClipCenterCrop(crop)(clip)
    return clip.contiguous()


@torch.no_grad()
def pa_maps(frames: torch.Tensor, pa: PA) -> torch.Tensor:
    """PA of uint8 frames ``(N * L, 3, h, w)`` (groups of ``L = pa.n_length`` consecutive frames),
    normalised as the model's input -> float maps ``(N, L - 1, h, w)``."""
    f, c, h, w = frames.shape
    x = normalize_uint8_batch(frames.reshape(1, f * c, h, w), IMAGENET_MEAN, IMAGENET_STD)
    return pa(x.reshape(f, c, h, w))


def normalise_map(pa_map: torch.Tensor, scale: tuple[float, float] | None = None) -> np.ndarray:
    """One map ``(h, w)`` -> uint8 ``(h, w)``: ``scale`` ``(lo, hi)`` to 0..255 (None: the map's own
    min and max); all 0 when the scale is empty."""
    m = pa_map.double()
    lo, hi = (m.min(), m.max()) if scale is None else (torch.tensor(scale[0]), torch.tensor(scale[1]))
    if hi <= lo:
        return np.zeros(tuple(m.shape), np.uint8)
    return ((m - lo) / (hi - lo) * 255).round().clamp(0, 255).byte().numpy()


def colorize(grey: np.ndarray, cmap: str = 'gray') -> np.ndarray:
    """uint8 ``(h, w)`` -> RGB uint8 ``(h, w, 3)``; 'jet' runs blue -> cyan -> yellow -> red."""
    if cmap == 'gray':
        return np.repeat(grey[..., None], 3, axis=2)
    if cmap == 'jet':
        x = grey.astype(np.float32)[..., None] / 255.0
        centres = np.array([0.75, 0.5, 0.25], np.float32)  # where red, green, blue peak
        return (np.clip(1.5 - np.abs(4 * (x - centres)), 0, 1) * 255).round().astype(np.uint8)
    raise ValueError(f'unknown colormap {cmap!r}; use one of {", ".join(COLORMAPS)}')


def pair_tiles(frames: torch.Tensor, maps: torch.Tensor, cmap: str,
               shared_scale: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frame t and its map for every pair: frames uint8 ``(N * L, 3, h, w)``, maps ``(N, L - 1, h, w)``
    -> two lists of ``N * (L - 1)`` RGB arrays ``(h, w, 3)``; maps each on its own scale, or with
    ``shared_scale`` all on the scale of the smallest and largest value of ``maps``."""
    n, pairs, h, w = maps.shape
    firsts = frames.reshape(n, pairs + 1, 3, h, w)[:, :-1].reshape(n * pairs, 3, h, w)
    rgb = [f.permute(1, 2, 0).numpy() for f in firsts]
    scale = (float(maps.min()), float(maps.max())) if shared_scale else None
    shown = [colorize(normalise_map(m, scale), cmap) for m in maps.reshape(n * pairs, h, w)]
    return rgb, shown


def frame_label(indices: np.ndarray, base: int) -> str:
    """The 1-based ``indices`` of the clip, printed in ``base`` (1 or 0) and saying which."""
    return f'frames ({base}-based) {(np.asarray(indices) - 1 + base).tolist()}'


def grid_size(columns: int, rows: int, h: int, w: int, pad: int = PAD) -> tuple[int, int]:
    """(width, height) of a grid of ``rows`` x ``columns`` tiles of ``h`` x ``w``."""
    return columns * w + (columns + 1) * pad, rows * h + (rows + 1) * pad


def render_grid(rows: list[list[np.ndarray]], pad: int = PAD) -> Image.Image:
    """Tiles (equal-sized RGB arrays) in rows -> one RGB image, ``pad`` pixels apart and from the border."""
    h, w = rows[0][0].shape[:2]
    image = Image.new('RGB', grid_size(max(len(r) for r in rows), len(rows), h, w, pad), BACKGROUND)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            image.paste(Image.fromarray(tile), (pad + c * (w + pad), pad + r * (h + pad)))
    return image


def save_gif(rgb: list[np.ndarray], shown: list[np.ndarray], path: str, fps: float) -> None:
    """One GIF frame per pair: frame t on the left, its PA map on the right; loops forever."""
    frames = [render_grid([[a, b]]) for a, b in zip(rgb, shown)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=max(round(1000 / fps), 20),
                   loop=0)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    try:
        checkpoint = read_checkpoint(args.weights) if args.weights else None
        data_length = args.data_length or checkpoint_data_length(checkpoint) or DEFAULT_DATA_LENGTH
        pa = load_pa(args.weights, data_length, args.seed, checkpoint)
        raw, indices, frame_source = sample_clip(args.video, args.num_segments, data_length)
    except (OSError, ValueError) as err:  # missing/unreadable video, frames or checkpoint
        exit_with_error(err)
    if frame_source.note:
        print(f'=> {args.video}: {frame_source.note}')
    frames = prepare_frames(raw, args.size, args.crop)
    precision = resolve_precision(args.amp, args.channels_last, torch.device('cpu'))
    print(precision.describe())
    with precision.autocast():
        maps = pa_maps(frames, precision.apply(pa)).float()
    rgb, shown = pair_tiles(frames, maps, args.cmap, args.shared_scale)
    for path in (args.out, args.gif):
        if path and os.path.dirname(os.path.abspath(path)):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image = render_grid([rgb, shown])
    image.save(args.out)
    source = args.weights or f'random init (seed {args.seed})'
    print(f'=> {args.out}: {image.size[0]}x{image.size[1]}, {args.num_segments} segments x {data_length - 1} '
          f'PA maps of {frames.shape[-1]}x{frames.shape[-2]} ({frame_label(indices, args.frame_base)}), '
          f'PA conv: {source}')
    how = 'one scale for all maps' if args.shared_scale else 'each map on its own scale'
    print(f'   PA range {maps.min().item():.4g} .. {maps.max().item():.4g} ({how})')
    if args.gif:
        save_gif(rgb, shown, args.gif, args.fps)
        print(f'=> {args.gif}: {len(rgb)} frames')
    return {'frames': frames, 'maps': maps, 'indices': indices, 'pa': pa, 'image': image, 'precision': precision}


if __name__ == '__main__':
    main()
