"""Release-compatible ``Group*`` transforms on PIL clips: each takes the clip as a list of PIL images
(temporal order) and returns a list; ``Stack`` + ``ToTorchFormatTensor`` + ``GroupNormalize`` turn
the list into a float tensor ``(F*3, H, W)``. Exact to the released code (crop boxes, PIL
bilinear). The geometry comes from :mod:`ops.transforms.geometry`."""
from __future__ import annotations

import random
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .compose import Compose  # noqa: F401  (re-exported: the Group* pipelines are chained with it)
from .geometry import (MultiScaleCropSampler, MultiViewBoxes, _pair_hw, center_crop_box, full_res_boxes,
                       oversample_boxes, scaled_size)


class GroupMultiScaleCrop(MultiScaleCropSampler):
    """Random crop of a random scale and aspect (see :func:`multiscale_crop_sizes`) at one of the
    fixed positions, resized to ``input_size`` with PIL bilinear; one draw per clip."""

    def __call__(self, img_group: list[Image.Image]) -> list[Image.Image]:
        w, h, x, y = self.sample(*img_group[0].size)
        return [img.crop((x, y, x + w, y + h)).resize(self.input_size, Image.BILINEAR) for img in img_group]


class GroupRandomHorizontalFlip:
    """Mirror the whole clip left-right with probability 1/2."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng

    def __call__(self, img_group: list[Image.Image]) -> list[Image.Image]:
        if (self.rng or random).random() < 0.5:
            return [img.transpose(Image.FLIP_LEFT_RIGHT) for img in img_group]
        return img_group


class GroupScale:
    """Resize every frame (PIL bilinear): an int sets the short side, ``(h, w)`` the size."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = size

    def __call__(self, img_group: list[Image.Image]) -> list[Image.Image]:
        out_size = scaled_size(*img_group[0].size, self.size)
        return [img if img.size == out_size else img.resize(out_size, Image.BILINEAR) for img in img_group]


class GroupCenterCrop:
    """Centre crop of every frame: an int for a square, or ``(h, w)``."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair_hw(size)

    def __call__(self, img_group: list[Image.Image]) -> list[Image.Image]:
        box = center_crop_box(*img_group[0].size, self.size[1], self.size[0])
        return [img.crop(box) for img in img_group]


class _GroupMultiView(MultiViewBoxes):
    """Shared body of the multi-view test transforms: optional GroupScale, then for each box the
    clip's frames cropped, followed (``flip``) by the same crops mirrored."""

    scale_cls = GroupScale

    def __call__(self, img_group: list[Image.Image]) -> list[Image.Image]:
        if self.scale is not None:
            img_group = self.scale(img_group)
        out: list[Image.Image] = []
        for box in self.boxes(*img_group[0].size):
            crops = [img.crop(box) for img in img_group]
            out += crops
            if self.flip:
                out += [c.transpose(Image.FLIP_LEFT_RIGHT) for c in crops]
        return out


class GroupOverSample(_GroupMultiView):
    """5 views (4 corners + centre), 10 with their mirrors (``flip``, the default)."""
    view_boxes = staticmethod(oversample_boxes)


class GroupFullResSample(_GroupMultiView):
    """3 views (left, right, centre), 6 with their mirrors (``flip``)."""
    view_boxes = staticmethod(full_res_boxes)


class Stack:
    """List of F PIL images -> uint8 array ``(H, W, F*3)`` (``roll``: RGB -> BGR, for Caffe-style
    backbones)."""

    def __init__(self, roll: bool = False) -> None:
        self.roll = roll

    def __call__(self, img_group: list[Image.Image]) -> np.ndarray:
        arrays = [np.asarray(img.convert('RGB') if img.mode != 'RGB' else img) for img in img_group]
        if self.roll:
            arrays = [a[:, :, ::-1] for a in arrays]
        return np.concatenate(arrays, axis=2)


class ToTorchFormatTensor:
    """uint8 ``(H, W, C)`` array or PIL image -> float tensor ``(C, H, W)``, divided by 255 when
    ``div``."""

    def __init__(self, div: bool = True) -> None:
        self.div = div

    def __call__(self, pic: np.ndarray | Image.Image) -> torch.Tensor:
        array = np.asarray(pic)
        if array.ndim == 2:
            array = array[:, :, None]
        img = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous().float()
        return img.div(255) if self.div else img


class GroupNormalize:
    """``(x - mean) / std`` on a ``(F*C, H, W)`` float tensor, the C-channel mean and std repeated
    for every frame. Works in place, as the release's (the fast pipeline's uint8 counterpart is
    :func:`ops.transforms.normalize.normalize_uint8_batch`)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = list(mean), list(std)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        reps = tensor.size(0) // len(self.mean)
        mean = torch.tensor(self.mean * reps, dtype=tensor.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std * reps, dtype=tensor.dtype).view(-1, 1, 1)
        return tensor.sub_(mean).div_(std)
