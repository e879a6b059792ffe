"""Crop geometry shared by the PIL (``Group*``) and tensor (``Clip*``) families: crop sizes, fixed
offsets, crop boxes and resize sizes, as pure functions on ints (no pixels), plus two bases that
both families' transforms inherit: :class:`MultiScaleCropSampler` (the settings and random draw of
the multi-scale crop) and :class:`MultiViewBoxes` (the settings and boxes of the multi-view test
transforms).

Sizes follow the release: the multi-scale, over-sample and full-res functions take an int or
``(w, h)``; ``scaled_size`` and the centre crop take an int (short side / square crop) or ``(h, w)``
as torchvision's ``Resize`` / ``CenterCrop`` did.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

MULTISCALE_SCALES = (1, .875, .75, .66)

Box = tuple[int, int, int, int]  # (left, top, right, bottom), PIL crop convention


def _pair_wh(size: int | Sequence[int]) -> tuple[int, int]:
    """An int or ``(w, h)`` -> ``(w, h)``."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _pair_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """An int or ``(h, w)`` -> ``(h, w)``."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def multiscale_crop_sizes(image_w: int, image_h: int, input_size: int | Sequence[int] = 224,
                          scales: Sequence[float] = MULTISCALE_SCALES, max_distort: int = 1
                          ) -> list[tuple[int, int]]:
    """Every ``(crop_w, crop_h)`` GroupMultiScaleCrop may pick, in the release's order.

    Crop sides are fractions of the short image side; a side within 3 pixels of the network input
    snaps to it, but never beyond the frame's side (the release snapped a 110-pixel side up to a
    112 input, a crop larger than the frame; its frames, extracted at a 256-pixel short side,
    never met this, so every crop they can get is the release's); a side is at least 1 pixel
    (frames of 1 pixel exist: the release would crop nothing); width and height scales may
    differ by at most ``max_distort`` steps.
    """
    in_w, in_h = _pair_wh(input_size)
    base = min(image_w, image_h)
    sides = [max(int(base * s), 1) for s in scales]  # a frame of 1 pixel still has a crop of 1
    heights = [min(in_h, image_h) if abs(s - in_h) < 3 else s for s in sides]
    widths = [min(in_w, image_w) if abs(s - in_w) < 3 else s for s in sides]
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


class MultiScaleCropSampler:
    """The settings of a multi-scale crop and its draw (:func:`sample_multiscale_crop`), with no
    pixels: the base of ``GroupMultiScaleCrop`` and ``ClipMultiScaleCrop``, which add the crop and
    resize of their clip type. ``input_size`` is an int or ``(w, h)``; random choices use Python's
    ``random`` module (DataLoader seeds it in every worker) unless an ``rng`` is given."""

    def __init__(self, input_size: int | Sequence[int], scales: Sequence[float] | None = None,
                 max_distort: int = 1, fix_crop: bool = True, more_fix_crop: bool = True,
                 rng: random.Random | None = None) -> None:
        self.input_size = _pair_wh(input_size)
        self.scales = tuple(scales) if scales is not None else MULTISCALE_SCALES
        self.max_distort, self.fix_crop, self.more_fix_crop = max_distort, fix_crop, more_fix_crop
        self.rng = rng

    def sample(self, image_w: int, image_h: int) -> tuple[int, int, int, int]:
        """One ``(crop_w, crop_h, x, y)`` for a frame of ``image_w`` x ``image_h``."""
        return sample_multiscale_crop(image_w, image_h, self.input_size, self.scales, self.max_distort,
                                      self.fix_crop, self.more_fix_crop, self.rng)


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


class MultiViewBoxes:
    """The settings and boxes of a multi-view test transform, with no pixels: the base of the
    ``Group*`` and ``Clip*`` over-sample and full-res transforms. A subclass names the geometry
    function of its boxes in ``view_boxes`` (:func:`oversample_boxes`, :func:`full_res_boxes`) and
    its family's scale transform in ``scale_cls``, applied first when ``scale_size`` is given.
    ``crop_size`` is an int or ``(w, h)``; ``flip`` adds each crop's mirror after it."""

    view_boxes: Callable[[int, int, int, int], list[Box]]
    scale_cls: Callable[[int | Sequence[int]], Callable]

    def __init__(self, crop_size: int | Sequence[int], scale_size: int | Sequence[int] | None = None,
                 flip: bool = True) -> None:
        self.crop_size = _pair_wh(crop_size)
        self.scale = self.scale_cls(scale_size) if scale_size is not None else None
        self.flip = flip

    def boxes(self, image_w: int, image_h: int) -> list[Box]:
        """The views' boxes in a frame of ``image_w`` x ``image_h`` (after the scale), in order."""
        return self.view_boxes(image_w, image_h, *self.crop_size)


def check_box(box: Box, image_w: int, image_h: int) -> None:
    """Raise ``ValueError`` unless ``box`` lies inside an ``image_w`` x ``image_h`` frame."""
    if box[0] < 0 or box[1] < 0 or box[2] > image_w or box[3] > image_h:
        raise ValueError(f'crop box {box} does not fit in a {image_w}x{image_h} frame; '
                         'scale the frames up first (GroupScale / scale_size)')
