"""The train / val / test pipelines the entry points use, in either family: the fast ``Clip*``
pipeline unless ``fast=False``. With ``normalize=False`` the fast pipeline stops at uint8 clips (a
quarter of the bytes to move from loader workers and to the GPU) and the training loop normalises
batches with :func:`normalize_uint8_batch`."""
from __future__ import annotations

from typing import Sequence

from .clip import (ClipCompose, ClipFullResSample, ClipMultiScaleCrop, ClipNormalize, ClipOverSample,
                   ClipRandomHorizontalFlip, ClipScaleCenterCrop, ClipToUint8Tensor)
from .compose import Compose
from .geometry import MULTISCALE_SCALES
from .group import (GroupCenterCrop, GroupFullResSample, GroupMultiScaleCrop, GroupNormalize, GroupOverSample,
                    GroupRandomHorizontalFlip, GroupScale, Stack, ToTorchFormatTensor)


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
