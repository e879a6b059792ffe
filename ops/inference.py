"""Running PAN outside a dataset: a model rebuilt from its checkpoint alone, and one clip read
from a video file or a folder of frames and sampled as validation samples it.

``test_models.py`` and the tools (``tools/demo.py``, ``tools/visualize_pa.py``) share these.
"""
from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np
import torch

from ops.checkpoint import checkpoint_state_dict, load_pan_weights, read_checkpoint
from ops.dataset import expand_indices, sample_val_indices
from ops.image_io import read_frame_uint8
from ops.models import PAN
from ops.naming import parse_run_name
from ops.video_reader import VIDEO_EXTENSIONS, VideoReader, count_video_frames, is_video_file

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
CLASSIFIER_BIAS_KEYS = ('fc.pred.bias', 'new_fc.bias', 'base_model.fc.bias')


# ---------------------------------------------------------------- the model of a checkpoint

def stored_num_class(state: dict) -> int | None:
    """Class count of a (prefix-free) state dict, read from its classifier's bias; None if absent."""
    return next((v.shape[0] for k, v in state.items() if k.endswith(CLASSIFIER_BIAS_KEYS)), None)


def branch_options(path: str, checkpoint: dict, num_segments: int | None = None, num_class: int | None = None,
                   img_feature_dim: int = 256) -> dict:
    """PAN keyword arguments of a checkpoint: stored by main.py, else read from the released file
    name; the head (VAP or TSN) and the class count come from the weights themselves.

    ``num_segments``: None keeps the stored (or named) count. ``num_class``: None takes the
    weights' count; given, it must agree with them.
    """
    state = checkpoint_state_dict(checkpoint)
    has_vap = any('.TES.' in k for k in state)
    if checkpoint.get('model_options'):
        options = dict(checkpoint['model_options'])
    else:
        name = parse_run_name(path)
        options = dict(modality=name.modality, base_model=name.arch, is_shift=name.is_shift,
                       shift_div=name.shift_div, shift_place=name.shift_place,
                       temporal_pool=name.temporal_pool, consensus_type=name.consensus_type, dropout=0.5,
                       img_feature_dim=img_feature_dim, num_segments=name.num_segments)
    stored_classes = stored_num_class(state)
    if num_class is None:
        if stored_classes is None:
            raise ValueError(f'{path}: no classifier weights ({", ".join(CLASSIFIER_BIAS_KEYS)}), '
                             'so the class count is unknown')
        num_class = stored_classes
    elif stored_classes is not None and stored_classes != num_class:
        raise ValueError(f'{path} has {stored_classes} classes but dataset has {num_class}: '
                         'wrong dataset or checkpoint?')
    options.update(num_class=num_class, has_VAP=has_vap)
    if num_segments is not None:
        options['num_segments'] = num_segments
    return options


def load_pan_model(path: str, num_segments: int | None = None,
                   device: torch.device = torch.device('cpu')) -> tuple[PAN, dict, dict]:
    """The PAN model of a checkpoint file, weights loaded, in eval mode on ``device``.

    Returns ``(model, options, checkpoint)``. Raises FileNotFoundError for a missing file,
    ValueError for one that does not read or whose settings cannot be found, and
    ``CheckpointMismatchError`` (a ValueError) when the weights do not fit the rebuilt model.
    """
    checkpoint = read_checkpoint(path)
    options = branch_options(path, checkpoint, num_segments)
    return build_pan(options, checkpoint, path).to(device).eval(), options, checkpoint


def build_pan(options: dict, checkpoint: dict, source: str) -> PAN:
    """A PAN built from ``options`` (see :func:`branch_options`) holding the checkpoint's weights
    (no ImageNet download: every weight comes from the checkpoint)."""
    model = PAN(**options, pretrain='scratch', print_spec=False)
    load_pan_weights(model, checkpoint, source=source)
    return model


# ---------------------------------------------------------------- one clip from a file or folder

def _natural_key(name: str) -> list:
    """``frame2.jpg`` before ``frame10.jpg``: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


def list_frame_files(folder: str) -> list[str]:
    """The image files of a frame folder in frame order (natural sort of their names)."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
    if not names:
        raise ValueError(f'no frames ({", ".join(IMAGE_EXTENSIONS)}) in folder {folder}')
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]


def check_clip_source(path: str) -> None:
    """Raise a clear error unless ``path`` is a video file or a folder of frames."""
    if os.path.isdir(path):
        return
    if not os.path.exists(path):
        raise FileNotFoundError(f'no such video file or frame folder: {path}')
    if not is_video_file(path):
        raise ValueError(f'{path} is neither a frame folder nor a video file ({", ".join(VIDEO_EXTENSIONS)})')


def count_frames(path: str) -> int:
    """Frames in a video file or a frame folder."""
    check_clip_source(path)
    return len(list_frame_files(path)) if os.path.isdir(path) else count_video_frames(path)


def read_frames(path: str, indices: Sequence[int]) -> torch.Tensor:
    """Frames at 1-based ``indices`` (in that order, repeats allowed) of a video file or frame
    folder, as uint8 ``(F, H, W, 3)``. Each distinct frame is decoded once."""
    check_clip_source(path)
    wanted = sorted({int(i) for i in indices})
    if os.path.isdir(path):
        files = list_frame_files(path)
        outside = [i for i in wanted if not 1 <= i <= len(files)]
        if outside:
            raise ValueError(f'{path}: frames {outside[:5]} (1-based) out of range, '
                             f'the folder has {len(files)}')
        frames = {i: read_frame_uint8(files[i - 1]) for i in wanted}
    else:
        decoded = VideoReader(path).read([i - 1 for i in wanted])
        frames = {i: torch.from_numpy(decoded[i - 1]) for i in wanted}
    shapes = {tuple(f.shape) for f in frames.values()}
    if len(shapes) > 1:
        raise ValueError(f'frames of {path} differ in size: {sorted(shapes)}')
    return torch.stack([frames[int(i)] for i in indices])


def sample_clip(path: str, num_segments: int, new_length: int) -> tuple[torch.Tensor, np.ndarray]:
    """The validation clip of a video file or frame folder: segment centres, ``new_length``
    consecutive frames each. Returns uint8 frames ``(num_segments * new_length, H, W, 3)`` and
    their 1-based indices."""
    num_frames = count_frames(path)
    starts = sample_val_indices(num_frames, num_segments, new_length)
    indices = expand_indices(starts, new_length, num_frames)
    return read_frames(path, indices), indices
