"""Clip transforms: every frame of a clip gets the same crop, resize and flip.

Two families with the same geometry:

* ``Group*`` classes, release compatible: they take the clip as a list of PIL images (temporal
  order) and return a list; ``Stack`` + ``ToTorchFormatTensor`` + ``GroupNormalize`` turn the list
  into a float tensor ``(F*3, H, W)``. Exact to the released code (crop boxes, PIL bilinear).
* ``Clip*`` classes, the fast pipeline: they take the whole clip as one uint8 tensor
  ``(F, 3, H, W)`` (a channels-last view of the decoded ``(F, H, W, 3)`` frames), crop by slicing,
  resize every frame in one antialiased ``interpolate`` call on uint8 (the Pillow-style kernel, so
  the result stays within one grey level of PIL's) and normalise in one pass. A ``ClipCompose``
  carries ``input_format = 'uint8'``, which tells ``PANDataSet`` to hand it a uint8 tensor
  ``(F, H, W, 3)`` instead of PIL images.

Sizes follow the release: ``GroupMultiScaleCrop``, ``GroupOverSample`` and ``GroupFullResSample``
take an int or ``(w, h)``; ``GroupScale`` and ``GroupCenterCrop`` take an int (short side / square
crop) or ``(h, w)`` as torchvision's ``Resize`` / ``CenterCrop`` did. Random choices use Python's
``random`` module (DataLoader seeds it in every worker) unless an ``rng`` is given.

The ``build_*_transform`` functions assemble the train / val / test pipelines the entry points use;
they return the fast pipeline unless ``fast=False``. With ``normalize=False`` the fast pipeline
stops at uint8 clips (a quarter of the bytes to move from loader workers and to the GPU) and the
training loop normalises batches with :func:`normalize_uint8_batch`.
"""
from __future__ import annotations

import random
import warnings
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

UINT8_INPUT = 'uint8'  # value of ``input_format`` for transforms that take a uint8 clip tensor
MULTISCALE_SCALES = (1, .875, .75, .66)

Box = tuple[int, int, int, int]  # (left, top, right, bottom), PIL crop convention


def _pair_wh(size: int | Sequence[int]) -> tuple[int, int]:
    """An int or ``(w, h)`` -> ``(w, h)``."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _pair_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """An int or ``(h, w)`` -> ``(h, w)``."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


# ---------------------------------------------------------------- geometry shared by both families

def multiscale_crop_sizes(image_w: int, image_h: int, input_size: int | Sequence[int] = 224,
                          scales: Sequence[float] = MULTISCALE_SCALES, max_distort: int = 1
                          ) -> list[tuple[int, int]]:
    """Every ``(crop_w, crop_h)`` GroupMultiScaleCrop may pick, in the release's order.

    Crop sides are fractions of the short image side; a side within 3 pixels of the network input
    snaps to it; width and height scales may differ by at most ``max_distort`` steps.
    """
    in_w, in_h = _pair_wh(input_size)
    base = min(image_w, image_h)
    sides = [int(base * s) for s in scales]
    heights = [in_h if abs(s - in_h) < 3 else s for s in sides]
    widths = [in_w if abs(s - in_w) < 3 else s for s in sides]
    return [(w, h) for i, h in enumerate(heights) for j, w in enumerate(widths) if abs(i - j) <= max_distort]


def fixed_crop_offsets(image_w: int, image_h: int, crop_w: int, crop_h: int,
                       more_fix_crop: bool = True) -> list[tuple[int, int]]:
    """The release's fixed crop positions ``(x, y)``: 4 corners and centre, then with
    ``more_fix_crop`` the 4 edge centres and 4 quarter points (13 in all, duplicates kept so a
    random choice weighs them as the release does)."""
    ws, hs = (image_w - crop_w) // 4, (image_h - crop_h) // 4
    grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]
    if more_fix_crop:
        grid += [(0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
    return [(i * ws, j * hs) for i, j in grid]


def multiscale_crop_candidates(image_w: int, image_h: int, input_size: int | Sequence[int] = 224,
                               scales: Sequence[float] = MULTISCALE_SCALES, max_distort: int = 1,
                               more_fix_crop: bool = True) -> list[tuple[int, int, int, int]]:
    """Every distinct ``(crop_w, crop_h, x, y)`` GroupMultiScaleCrop (fix_crop on) can choose."""
    found = {(w, h, x, y)
             for w, h in multiscale_crop_sizes(image_w, image_h, input_size, scales, max_distort)
             for x, y in fixed_crop_offsets(image_w, image_h, w, h, more_fix_crop)}
    return sorted(found)


def sample_multiscale_crop(image_w: int, image_h: int, input_size: int | Sequence[int] = 224,
                           scales: Sequence[float] = MULTISCALE_SCALES, max_distort: int = 1,
                           fix_crop: bool = True, more_fix_crop: bool = True,
                           rng: random.Random | None = None) -> tuple[int, int, int, int]:
    """One random ``(crop_w, crop_h, x, y)``, drawn as the release draws it (size first, then
    position), so a seeded ``random`` gives the release's crops."""
    rng = rng or random
    w, h = rng.choice(multiscale_crop_sizes(image_w, image_h, input_size, scales, max_distort))
    if fix_crop:
        x, y = rng.choice(fixed_crop_offsets(image_w, image_h, w, h, more_fix_crop))
    else:
        x, y = rng.randint(0, image_w - w), rng.randint(0, image_h - h)
    return w, h, x, y


def scaled_size(image_w: int, image_h: int, size: int | Sequence[int]) -> tuple[int, int]:
    """``(w, h)`` after GroupScale: an int sets the short side (the long side is truncated, as
    torchvision's Resize does); ``(h, w)`` is taken as is."""
    if not isinstance(size, int):
        return int(size[1]), int(size[0])
    if image_w <= image_h:
        return size, int(size * image_h / image_w)
    return int(size * image_w / image_h), size


def center_crop_box(image_w: int, image_h: int, crop_w: int, crop_h: int) -> Box:
    """The centred box, rounded as torchvision's CenterCrop rounds (Python ``round``)."""
    left = int(round((image_w - crop_w) / 2.0))
    top = int(round((image_h - crop_h) / 2.0))
    return left, top, left + crop_w, top + crop_h


def oversample_boxes(image_w: int, image_h: int, crop_w: int, crop_h: int) -> list[Box]:
    """The 5 views of GroupOverSample: the 4 corners, then the centre."""
    offsets = fixed_crop_offsets(image_w, image_h, crop_w, crop_h, more_fix_crop=False)
    return [(x, y, x + crop_w, y + crop_h) for x, y in offsets]


def full_res_boxes(image_w: int, image_h: int, crop_w: int, crop_h: int) -> list[Box]:
    """The 3 views of GroupFullResSample: left, right, centre (vertically centred)."""
    ws, hs = (image_w - crop_w) // 4, (image_h - crop_h) // 4
    return [(x, 2 * hs, x + crop_w, 2 * hs + crop_h) for x in (0, 4 * ws, 2 * ws)]


def _check_box(box: Box, image_w: int, image_h: int) -> None:
    if box[0] < 0 or box[1] < 0 or box[2] > image_w or box[3] > image_h:
        raise ValueError(f'crop box {box} does not fit in a {image_w}x{image_h} frame; '
                         'scale the frames up first (GroupScale / scale_size)')


# ---------------------------------------------------------------- release-style (PIL) transforms

class Compose:
    """Apply transforms in order. ``input_format`` is that of the first transform (``'pil'`` for
    the Group* classes, ``'uint8'`` for the Clip* classes)."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)
        self.input_format = getattr(self.transforms[0], 'input_format', 'pil') if self.transforms else 'pil'

    def __call__(self, clip):
        for t in self.transforms:
            clip = t(clip)
        return clip

    def __repr__(self) -> str:
        return f'{type(self).__name__}({", ".join(repr(t) for t in self.transforms)})'


class GroupMultiScaleCrop:
    """Random crop of a random scale and aspect (see :func:`multiscale_crop_sizes`) at one of the
    fixed positions, resized to ``input_size`` with PIL bilinear; one draw per clip."""

    def __init__(self, input_size: int | Sequence[int], scales: Sequence[float] | None = None,
                 max_distort: int = 1, fix_crop: bool = True, more_fix_crop: bool = True,
                 rng: random.Random | None = None) -> None:
        self.input_size = _pair_wh(input_size)
        self.scales = tuple(scales) if scales is not None else MULTISCALE_SCALES
        self.max_distort, self.fix_crop, self.more_fix_crop = max_distort, fix_crop, more_fix_crop
        self.rng = rng

    def sample(self, image_w: int, image_h: int) -> tuple[int, int, int, int]:
        return sample_multiscale_crop(image_w, image_h, self.input_size, self.scales, self.max_distort,
                                      self.fix_crop, self.more_fix_crop, self.rng)

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


class _GroupMultiView:
    """Shared body of the multi-view test transforms: optional GroupScale, then for each box the
    clip's frames cropped, followed (``flip``) by the same crops mirrored."""

    def __init__(self, crop_size: int | Sequence[int], scale_size: int | Sequence[int] | None,
                 flip: bool) -> None:
        self.crop_size = _pair_wh(crop_size)
        self.scale = GroupScale(scale_size) if scale_size is not None else None
        self.flip = flip

    def boxes(self, image_w: int, image_h: int) -> list[Box]:
        raise NotImplementedError

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

    def __init__(self, crop_size: int | Sequence[int], scale_size: int | Sequence[int] | None = None,
                 flip: bool = True) -> None:
        super().__init__(crop_size, scale_size, flip)

    def boxes(self, image_w: int, image_h: int) -> list[Box]:
        return oversample_boxes(image_w, image_h, *self.crop_size)


class GroupFullResSample(_GroupMultiView):
    """3 views (left, right, centre), 6 with their mirrors (``flip``)."""

    def __init__(self, crop_size: int | Sequence[int], scale_size: int | Sequence[int] | None = None,
                 flip: bool = True) -> None:
        super().__init__(crop_size, scale_size, flip)

    def boxes(self, image_w: int, image_h: int) -> list[Box]:
        return full_res_boxes(image_w, image_h, *self.crop_size)


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
    """``(x - mean) / std`` on a ``(F*C, H, W)`` tensor, the C-channel mean and std repeated for
    every frame. Works in place, as the release's."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = list(mean), list(std)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        reps = tensor.size(0) // len(self.mean)
        mean = torch.tensor(self.mean * reps, dtype=tensor.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std * reps, dtype=tensor.dtype).view(-1, 1, 1)
        return tensor.sub_(mean).div_(std)


# ---------------------------------------------------------------- fast pipeline on uint8 clips

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
    _check_box(box, clip.shape[-1], clip.shape[-2])
    return clip[:, :, box[1]:box[3], box[0]:box[2]]


class ClipMultiScaleCrop:
    """Fast :class:`GroupMultiScaleCrop`: uint8 ``(F, 3, H, W)`` -> ``(F, 3, in_h, in_w)``, same draw."""

    def __init__(self, input_size: int | Sequence[int], scales: Sequence[float] | None = None,
                 max_distort: int = 1, fix_crop: bool = True, more_fix_crop: bool = True,
                 rng: random.Random | None = None) -> None:
        self.group = GroupMultiScaleCrop(input_size, scales, max_distort, fix_crop, more_fix_crop, rng)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        w, h, x, y = self.group.sample(clip.shape[-1], clip.shape[-2])
        in_w, in_h = self.group.input_size
        return resize_clip(_crop(clip, (x, y, x + w, y + h)), in_h, in_w)


class ClipRandomHorizontalFlip:
    """Fast :class:`GroupRandomHorizontalFlip` on ``(F, 3, H, W)``."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return clip.flip(-1) if (self.rng or random).random() < 0.5 else clip


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
        _check_box(box, w, h)
        return resize_clip(clip, h, w, box)


class ClipCenterCrop:
    """Fast :class:`GroupCenterCrop` on ``(F, 3, H, W)`` (a slice, no copy)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair_hw(size)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return _crop(clip, center_crop_box(clip.shape[-1], clip.shape[-2], self.size[1], self.size[0]))


class _ClipMultiView:
    """Fast multi-view: ``(F, 3, H, W)`` -> ``(V*F, 3, h, w)``, views in the Group* order."""

    group_cls: type = _GroupMultiView

    def __init__(self, crop_size: int | Sequence[int], scale_size: int | Sequence[int] | None = None,
                 flip: bool = True) -> None:
        self.group = self.group_cls(crop_size, None, flip)
        self.scale = ClipScale(scale_size) if scale_size is not None else None

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            clip = self.scale(clip)
        views = []
        for box in self.group.boxes(clip.shape[-1], clip.shape[-2]):
            crop = _crop(clip, box)
            views.append(crop)
            if self.group.flip:
                views.append(crop.flip(-1))
        return torch.cat(views, 0)


class ClipOverSample(_ClipMultiView):
    """Fast :class:`GroupOverSample` (5 views, 10 with ``flip``)."""
    group_cls = GroupOverSample


class ClipFullResSample(_ClipMultiView):
    """Fast :class:`GroupFullResSample` (3 views, 6 with ``flip``)."""
    group_cls = GroupFullResSample


class ClipNormalize:
    """uint8 ``(N, 3, H, W)`` -> float ``(N*3, H, W)`` equal to Stack + ToTorchFormatTensor +
    GroupNormalize: ``(x / 255 - mean) / std`` as one multiply and one subtract. The uint8 ->
    float copy also does the channels-last -> channels-first transpose, so nothing else copies."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        mean_t = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        std_t = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = mean_t / std_t

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        n, c, h, w = clip.shape
        out = torch.empty((n, c, h, w), dtype=torch.float32).copy_(clip)
        return out.mul_(self.scale).sub_(self.shift).view(n * c, h, w)


class ClipToUint8Tensor:
    """uint8 ``(N, 3, H, W)`` -> uint8 ``(N*3, H, W)``, channels first: the fast pipeline without
    its normalisation. Loader workers then ship a quarter of the bytes of a float clip, and the
    training loop applies :func:`normalize_uint8_batch` on the device."""

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        n, c, h, w = clip.shape
        return clip_to_channels_first(clip).view(n * c, h, w)


def normalize_uint8_batch(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 clips ``(..., F*3, H, W)`` (from :class:`ClipToUint8Tensor`) -> float32 clips equal to
    :class:`ClipNormalize`'s, on the batch's device."""
    std_t = torch.tensor(list(std), dtype=torch.float32, device=batch.device).view(-1, 1, 1)
    mean_t = torch.tensor(list(mean), dtype=torch.float32, device=batch.device).view(-1, 1, 1)
    *lead, fc, h, w = batch.shape
    if batch.device.type == 'cpu':
        # A batch is tens of MB of fresh memory, and on the CPU its first-touch page faults cost
        # as much as the arithmetic. numpy asks the kernel for huge pages on such blocks (torch's
        # CPU allocator does not by default), which makes them several times cheaper.
        x = torch.from_numpy(np.empty(tuple(batch.shape), np.float32)).copy_(batch)
    else:
        x = batch.to(torch.float32)
    x = x.view(*lead, fc // len(mean), len(mean), h, w)
    return x.mul_(1.0 / (255.0 * std_t)).sub_(mean_t / std_t).view(*lead, fc, h, w)


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


# ---------------------------------------------------------------- pipelines for the entry points

def train_augmentation(crop_size: int, flip: bool, fast: bool = False) -> Compose:
    """The release's ``get_augmentation``: multi-scale crop, then a random flip unless the labels
    depend on direction (``flip=False``: something-something, jester)."""
    if fast:
        return ClipCompose([ClipMultiScaleCrop(crop_size, MULTISCALE_SCALES)]
                           + ([ClipRandomHorizontalFlip()] if flip else []))
    return Compose([GroupMultiScaleCrop(crop_size, MULTISCALE_SCALES)]
                   + ([GroupRandomHorizontalFlip()] if flip else []))


def _finish(cropping: Compose, input_mean: Sequence[float], input_std: Sequence[float],
            normalize: bool = True) -> Compose:
    """Append the to-tensor and normalisation steps to a cropping pipeline of either family."""
    if isinstance(cropping, ClipCompose):
        last = ClipNormalize(input_mean, input_std) if normalize else ClipToUint8Tensor()
        return ClipCompose(cropping.transforms + [last])
    if not normalize:
        raise ValueError('normalize=False (uint8 clips) needs the fast pipeline (fast=True)')
    return Compose(cropping.transforms + [Stack(roll=False), ToTorchFormatTensor(div=True),
                                          GroupNormalize(input_mean, input_std)])


def build_train_transform(crop_size: int, input_mean: Sequence[float], input_std: Sequence[float],
                          flip: bool = True, fast: bool = True, normalize: bool = True) -> Compose:
    """Training: :func:`train_augmentation` -> float ``(F*3, crop, crop)`` (uint8 clips for
    :func:`normalize_uint8_batch` with ``normalize=False``, fast pipeline only; same below)."""
    return _finish(train_augmentation(crop_size, flip, fast), input_mean, input_std, normalize)


def build_val_transform(crop_size: int, scale_size: int, input_mean: Sequence[float],
                        input_std: Sequence[float], fast: bool = True, normalize: bool = True) -> Compose:
    """Validation: short side to ``scale_size``, centre crop ``crop_size`` -> ``(F*3, crop, crop)``."""
    if fast:
        cropping = ClipCompose([ClipScaleCenterCrop(scale_size, crop_size)])
    else:
        cropping = Compose([GroupScale(scale_size), GroupCenterCrop(crop_size)])
    return _finish(cropping, input_mean, input_std, normalize)


def build_test_transform(crop_size: int, scale_size: int, input_mean: Sequence[float],
                         input_std: Sequence[float], test_crops: int = 1, full_res: bool = False,
                         fast: bool = True, normalize: bool = True) -> Compose:
    """Testing views as the release's test script builds them -> ``(test_crops*F*3, c, c)``.

    ``test_crops``: 1 = scale + centre crop, 3 = GroupFullResSample (no flip), 5 = GroupOverSample
    without flip, 10 = with flip. ``full_res``: crop ``scale_size`` (256) instead of ``crop_size``.
    """
    crop = scale_size if full_res else crop_size
    if test_crops == 1:
        steps = ([ClipScaleCenterCrop(scale_size, crop)] if fast
                 else [GroupScale(scale_size), GroupCenterCrop(crop)])
    elif test_crops == 3:
        steps = [(ClipFullResSample if fast else GroupFullResSample)(crop, scale_size, flip=False)]
    elif test_crops in (5, 10):
        steps = [(ClipOverSample if fast else GroupOverSample)(crop, scale_size, flip=test_crops == 10)]
    else:
        raise ValueError(f'test_crops must be 1, 3, 5 or 10, got {test_crops}')
    return _finish(ClipCompose(steps) if fast else Compose(steps), input_mean, input_std, normalize)
