"""The fast ``Clip*`` pipeline: the same crops, resizes and flips as the ``Group*`` classes, on the
whole clip as one uint8 tensor ``(F, 3, H, W)`` (a channels-last view of the decoded
``(F, H, W, 3)`` frames). It crops by slicing, resizes every frame in one antialiased
``interpolate`` call on uint8 (the Pillow-style kernel, so the result stays within one grey level
of PIL's) and normalises in one pass. A ``ClipCompose`` carries ``input_format = 'uint8'``, which
tells ``PANDataSet`` to hand it a uint8 tensor ``(F, H, W, 3)`` instead of PIL images.

The geometry comes straight from :mod:`ops.transforms.geometry`, so each class draws and places
its crops exactly as its ``Group*`` counterpart does.
"""
from __future__ import annotations

import random
import warnings
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .compose import UINT8_INPUT, Compose
from .geometry import (Box, MultiScaleCropSampler, MultiViewBoxes, _pair_hw, center_crop_box, check_box,
                       full_res_boxes, oversample_boxes, scaled_size)
from .normalize import normalize_uint8_batch


def _pil_horizontal_pass(clip: torch.Tensor, out_w: int) -> torch.Tensor:
    """PIL's own horizontal bilinear pass over every frame at once: ``(F, 3, H, W)`` uint8 ->
    ``(F, 3, H, out_w)`` (channels-last memory). The frames are stacked into one tall image; rows
    do not mix in a horizontal pass, so each frame gets exactly the rows PIL computes for it alone.
    The result is read-only memory: callers follow it with a pass that copies."""
    f, c, h, w = clip.shape
    tall = np.ascontiguousarray(clip.permute(0, 2, 3, 1).reshape(f * h, w, c).numpy())
    out = Image.fromarray(tall).resize((out_w, f * h), Image.BILINEAR).tobytes()
    with warnings.catch_warnings():  # torch warns that the bytes are read-only; nothing writes them
        warnings.simplefilter('ignore', UserWarning)
        flat = torch.frombuffer(out, dtype=torch.uint8)
    return flat.view(f, h, out_w, c).permute(0, 3, 1, 2)


def resize_clip(clip: torch.Tensor, out_h: int, out_w: int, box: Box | None = None) -> torch.Tensor:
    """Bilinear, antialiased resize of a whole uint8 clip ``(F, 3, H, W)`` -> ``(F, 3, out_h, out_w)``
    (channels-last memory), within one grey level of resizing each frame with PIL. With ``box``
    (left, top, right, bottom in output pixels) only that part is returned, the same pixels as
    ``resize_clip(clip, out_h, out_w)[..., top:bottom, left:right]``.

    PIL resizes in two rounded uint8 passes (horizontal, then vertical). torch's uint8 kernel
    implements the same filter with coarser fixed-point weights, so one of its passes lands within
    one grey level of PIL's pass on the same input, but two chained passes can drift by two. So when
    both sides change, the horizontal pass is PIL's own (run once on all frames) and only the
    vertical pass is torch's; when one side changes, torch's single pass is used. Columns outside
    ``box`` are dropped before the vertical pass (which treats columns independently, so the
    result is unchanged); the horizontal pass always runs on whole rows, as PIL's does (PIL's own
    ``box`` argument is no substitute: it takes the box in float32, which moves the filter taps
    enough to change results by one grey level).
    """
    h, w = clip.shape[-2:]
    left, top, right, bottom = box if box is not None else (0, 0, out_w, out_h)
    if w != out_w:
        if h == out_h:  # one torch pass over whole rows, then the box
            clip = F.interpolate(clip.contiguous(memory_format=torch.channels_last), size=(h, out_w),
                                 mode='bilinear', antialias=True, align_corners=False)
            return clip[:, :, top:bottom, left:right]
        clip = _pil_horizontal_pass(clip, out_w)
    clip = clip[:, :, :, left:right]
    if h != out_h:
        clip = F.interpolate(clip.contiguous(memory_format=torch.channels_last), size=(out_h, right - left),
                             mode='bilinear', antialias=True, align_corners=False)
    return clip[:, :, top:bottom]


def clip_to_channels_first(clip: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` of any strides (channels-last after a resize) -> a contiguous copy.
    numpy's strided copy does this transposition about 3x faster than torch's uint8 copy."""
    if clip.is_contiguous():
        return clip
    return torch.from_numpy(np.ascontiguousarray(clip.numpy()))


def _crop(clip: torch.Tensor, box: Box) -> torch.Tensor:
    check_box(box, clip.shape[-1], clip.shape[-2])
    return clip[:, :, box[1]:box[3], box[0]:box[2]]


class ClipMultiScaleCrop(MultiScaleCropSampler):
    """Fast :class:`GroupMultiScaleCrop`: uint8 ``(F, 3, H, W)`` -> ``(F, 3, in_h, in_w)``, same draw."""

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        w, h, x, y = self.sample(clip.shape[-1], clip.shape[-2])
        in_w, in_h = self.input_size
        return resize_clip(_crop(clip, (x, y, x + w, y + h)), in_h, in_w)


class ClipRandomHorizontalFlip:
    """Fast :class:`GroupRandomHorizontalFlip` on ``(F, 3, H, W)``."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng

    def draw(self) -> bool:
        """Whether this clip is mirrored (the one random draw, shared with the GPU path's plan)."""
        return (self.rng or random).random() < 0.5

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return clip.flip(-1) if self.draw() else clip


class ClipScale:
    """Fast :class:`GroupScale` on ``(F, 3, H, W)``."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = size

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        w, h = scaled_size(clip.shape[-1], clip.shape[-2], self.size)
        return resize_clip(clip, h, w)


class ClipScaleCenterCrop:
    """Fast :class:`GroupScale` + :class:`GroupCenterCrop` on ``(F, 3, H, W)``, without resizing
    the columns the crop drops (see :func:`resize_clip`'s ``box``)."""

    def __init__(self, scale_size: int | Sequence[int], crop_size: int | Sequence[int]) -> None:
        self.scale_size, self.crop_size = scale_size, _pair_hw(crop_size)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        w, h = scaled_size(clip.shape[-1], clip.shape[-2], self.scale_size)
        box = center_crop_box(w, h, self.crop_size[1], self.crop_size[0])
        check_box(box, w, h)
        return resize_clip(clip, h, w, box)


class ClipCenterCrop:
    """Fast :class:`GroupCenterCrop` on ``(F, 3, H, W)`` (a slice, no copy)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair_hw(size)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return _crop(clip, center_crop_box(clip.shape[-1], clip.shape[-2], self.size[1], self.size[0]))


class _ClipMultiView(MultiViewBoxes):
    """Fast multi-view: ``(F, 3, H, W)`` -> ``(V*F, 3, h, w)``, views in the Group* order: optional
    ClipScale, then for each box the crop, followed (``flip``) by its mirror."""

    scale_cls = ClipScale

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            clip = self.scale(clip)
        views = []
        for box in self.boxes(clip.shape[-1], clip.shape[-2]):
            crop = _crop(clip, box)
            views.append(crop)
            if self.flip:
                views.append(crop.flip(-1))
        return torch.cat(views, 0)


class ClipOverSample(_ClipMultiView):
    """Fast :class:`GroupOverSample` (5 views, 10 with ``flip``)."""
    view_boxes = staticmethod(oversample_boxes)


class ClipFullResSample(_ClipMultiView):
    """Fast :class:`GroupFullResSample` (3 views, 6 with ``flip``)."""
    view_boxes = staticmethod(full_res_boxes)


class ClipNormalize:
    """uint8 ``(N, 3, H, W)`` -> float ``(N*3, H, W)`` equal to Stack + ToTorchFormatTensor +
    GroupNormalize: :func:`normalize_uint8_batch` on the clip (one multiply and one subtract; its
    uint8 -> float copy also does the channels-last -> channels-first transpose, so nothing else
    copies)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = list(mean), list(std)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        n, c, h, w = clip.shape
        return normalize_uint8_batch(clip, self.mean, self.std).view(n * c, h, w)


class ClipToUint8Tensor:
    """uint8 ``(N, 3, H, W)`` -> uint8 ``(N*3, H, W)``, channels first: the fast pipeline without
    its normalisation. Loader workers then ship a quarter of the bytes of a float clip, and the
    training loop applies :func:`normalize_uint8_batch` on the device."""

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        n, c, h, w = clip.shape
        return clip_to_channels_first(clip).view(n * c, h, w)


class ClipCompose(Compose):
    """Fast pipeline: uint8 frames ``(F, H, W, 3)`` (tensor or array) -> the output of its last
    transform (``(V*F*3, h, w)`` float after :class:`ClipNormalize`)."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        super().__init__(transforms)
        self.input_format = UINT8_INPUT

    def __call__(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        frames = torch.as_tensor(frames)
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
            raise ValueError(f'fast clip transforms take uint8 frames (F, H, W, 3), got {frames.dtype} '
                             f'{tuple(frames.shape)}')
        return super().__call__(frames.permute(0, 3, 1, 2))
