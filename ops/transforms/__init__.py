"""Clip transforms: every frame of a clip gets the same crop, resize and flip.

Two families with the same geometry (:mod:`.geometry`, pure functions on ints):

* ``Group*`` classes (:mod:`.group`), release compatible: they take the clip as a list of PIL images
  (temporal order) and return a list; ``Stack`` + ``ToTorchFormatTensor`` + ``GroupNormalize`` turn
  the list into a float tensor ``(F*3, H, W)``. Exact to the released code (crop boxes, PIL bilinear).
* ``Clip*`` classes (:mod:`.clip`), the fast pipeline: they take the whole clip as one uint8 tensor
  ``(F, 3, H, W)`` (a channels-last view of the decoded ``(F, H, W, 3)`` frames), crop by slicing,
  resize every frame in one antialiased ``interpolate`` call on uint8 (the Pillow-style kernel, so
  the result stays within one grey level of PIL's) and normalise in one pass
  (:func:`normalize_uint8_batch`, :mod:`.normalize`). A ``ClipCompose`` carries
  ``input_format = 'uint8'``, which tells ``PANDataSet`` to hand it a uint8 tensor ``(F, H, W, 3)``
  instead of PIL images.

Sizes follow the release: ``GroupMultiScaleCrop``, ``GroupOverSample`` and ``GroupFullResSample``
take an int or ``(w, h)``; ``GroupScale`` and ``GroupCenterCrop`` take an int (short side / square
crop) or ``(h, w)`` as torchvision's ``Resize`` / ``CenterCrop`` did. Random choices use Python's
``random`` module (DataLoader seeds it in every worker) unless an ``rng`` is given.

The ``build_*_transform`` functions (:mod:`.presets`) assemble the train / val / test pipelines the
entry points use; they return the fast pipeline unless ``fast=False``. With ``normalize=False`` the
fast pipeline stops at uint8 clips (a quarter of the bytes to move from loader workers and to the
GPU) and the training loop normalises batches with :func:`normalize_uint8_batch`.

Every name is re-exported here, so ``from ops.transforms import X`` works as it did when this was
one module.
"""
from .clip import (ClipCenterCrop, ClipCompose, ClipFullResSample, ClipMultiScaleCrop, ClipNormalize,
                   ClipOverSample, ClipRandomHorizontalFlip, ClipScale, ClipScaleCenterCrop,
                   ClipToUint8Tensor, clip_to_channels_first, resize_clip)
from .compose import UINT8_INPUT, Compose
from .geometry import (MULTISCALE_SCALES, Box, MultiScaleCropSampler, MultiViewBoxes, center_crop_box,
                       check_box, fixed_crop_offsets, full_res_boxes, multiscale_crop_candidates,
                       multiscale_crop_sizes, oversample_boxes, sample_multiscale_crop, scaled_size)
from .group import (GroupCenterCrop, GroupFullResSample, GroupMultiScaleCrop, GroupNormalize, GroupOverSample,
                    GroupRandomHorizontalFlip, GroupScale, Stack, ToTorchFormatTensor)
from .normalize import normalize_uint8_batch
from .presets import build_test_transform, build_train_transform, build_val_transform, train_augmentation

__all__ = [
    # geometry
    'MULTISCALE_SCALES', 'Box', 'MultiScaleCropSampler', 'MultiViewBoxes', 'multiscale_crop_sizes',
    'fixed_crop_offsets', 'multiscale_crop_candidates', 'sample_multiscale_crop', 'scaled_size',
    'center_crop_box', 'oversample_boxes', 'full_res_boxes', 'check_box',
    # both families
    'UINT8_INPUT', 'Compose', 'normalize_uint8_batch',
    # release-style PIL transforms
    'GroupMultiScaleCrop', 'GroupRandomHorizontalFlip', 'GroupScale', 'GroupCenterCrop', 'GroupOverSample',
    'GroupFullResSample', 'Stack', 'ToTorchFormatTensor', 'GroupNormalize',
    # fast pipeline on uint8 clips
    'resize_clip', 'clip_to_channels_first', 'ClipMultiScaleCrop', 'ClipRandomHorizontalFlip', 'ClipScale',
    'ClipScaleCenterCrop', 'ClipCenterCrop', 'ClipOverSample', 'ClipFullResSample', 'ClipNormalize',
    'ClipToUint8Tensor', 'ClipCompose',
    # pipelines for the entry points
    'train_augmentation', 'build_train_transform', 'build_val_transform', 'build_test_transform',
]
