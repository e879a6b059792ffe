"""Training clips whose JPEG frames are decoded on the GPU (``main.py --gpu_decode``).

A loader worker reads each frame's JPEG bytes and header (no decode), draws the clip's crop and
flip exactly as the fast CPU pipeline draws them (the same sampler objects, the same random
numbers in the same order), and ships the bytes with that plan. On the device, a whole batch's
JPEGs are decoded in one batched call (nvJPEG), and each clip is cropped, resized and flipped
there. Frames that are not JPEGs (PNG, frames of video files) are decoded in the worker and
travel as pixels.

The GPU resizes with the same antialiased bilinear filter as the CPU pipeline but in float,
where the CPU pipeline takes PIL's rounded horizontal pass: the two stay within 2 grey levels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ops.frames.image_io import EncodedFrame, decode_jpegs

from .clip import ClipCompose, ClipMultiScaleCrop, ClipRandomHorizontalFlip, ClipToUint8Tensor
from .geometry import Box, check_box

ENCODED_INPUT = 'encoded'  # value of ``input_format`` for a transform that takes EncodedFrames


@dataclass
class FramesToDecode:
    """A clip's frames as read for the GPU: the ``distinct`` frames once each, and for each of the
    clip's ``F`` frames its position in ``distinct`` (``order``)."""
    distinct: list[EncodedFrame]
    order: list[int]

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames."""
        return self.distinct[0].width, self.distinct[0].height


@dataclass
class EncodedClip:
    """A clip and what to do with it on the device: crop ``box`` (left, top, right, bottom in
    frame pixels), resize to ``out_size`` ``(w, h)``, mirror when ``flip``."""
    frames: FramesToDecode
    box: Box
    out_size: tuple[int, int]
    flip: bool


class DeferredClip:
    """The plan half of a fast training pipeline (:class:`ClipMultiScaleCrop`, an optional
    :class:`ClipRandomHorizontalFlip`, :class:`ClipToUint8Tensor`): the same draws, no pixels.
    :func:`decode_clips` carries the plan out on the device."""

    input_format = ENCODED_INPUT

    def __init__(self, pipeline: ClipCompose) -> None:
        steps = list(pipeline.transforms)
        if not steps or not isinstance(steps[0], ClipMultiScaleCrop) or not all(
                isinstance(t, (ClipRandomHorizontalFlip, ClipToUint8Tensor)) for t in steps[1:]):
            raise ValueError('GPU decoding takes the training pipeline (multi-scale crop, flip, uint8 output), '
                             f'got {pipeline!r}')
        self.crop: ClipMultiScaleCrop = steps[0]
        self.flip: ClipRandomHorizontalFlip | None = next(
            (t for t in steps if isinstance(t, ClipRandomHorizontalFlip)), None)

    def __call__(self, frames: FramesToDecode) -> EncodedClip:
        w, h, x, y = self.crop.sample(*frames.size)
        flip = self.flip.draw() if self.flip is not None else False
        return EncodedClip(frames, (x, y, x + w, y + h), tuple(self.crop.input_size), flip)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop={self.crop.input_size}, flip={self.flip is not None})'


@dataclass
class EncodedBatch:
    """A loader batch of :class:`EncodedClip` (what :func:`collate_encoded` makes)."""
    clips: list[EncodedClip]

    def pin_memory(self) -> EncodedBatch:
        """Pinned host memory for every tensor (DataLoader calls this with ``pin_memory=True``)."""
        for clip in self.clips:
            clip.frames.distinct = [EncodedFrame(f.width, f.height,
                                                 None if f.data is None else f.data.pin_memory(),
                                                 None if f.pixels is None else f.pixels.pin_memory())
                                    for f in clip.frames.distinct]
        return self

    def __len__(self) -> int:
        return len(self.clips)


def collate_encoded(items: Sequence[tuple[EncodedClip, int]]) -> tuple[EncodedBatch, torch.Tensor]:
    """DataLoader ``collate_fn`` for datasets of :class:`EncodedClip`: the batch and its labels."""
    return EncodedBatch([clip for clip, _ in items]), torch.tensor([label for _, label in items])


def resize_uint8(clip: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 ``(F, 3, H, W)`` -> ``(F, 3, out_h, out_w)`` in float on
    the clip's device, rounded back to uint8."""
    if clip.shape[-2:] == (out_h, out_w):
        return clip
    out = F.interpolate(clip.float(), size=(out_h, out_w), mode='bilinear', antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def decode_clips(batch: EncodedBatch, device: torch.device | str) -> torch.Tensor:
    """Carry out every clip's plan on ``device``: uint8 ``(N, F*3, h, w)``, the batch the CPU
    pipeline's workers would have delivered (within 2 grey levels)."""
    device = torch.device(device)
    jpegs = [f.data for clip in batch.clips for f in clip.frames.distinct if f.data is not None]
    decoded = iter(decode_jpegs([j for j in jpegs], device))
    out = []
    for clip in batch.clips:
        frames = [next(decoded) if f.data is not None
                  else f.pixels.to(device, non_blocking=True).permute(2, 0, 1) for f in clip.frames.distinct]
        sizes = {tuple(f.shape) for f in frames}
        if len(sizes) > 1:
            raise ValueError(f'frames of one clip differ in size: {sorted(sizes)}')
        stack = torch.stack(frames)[torch.as_tensor(clip.frames.order, device=device)]
        left, top, right, bottom = clip.box
        check_box(clip.box, stack.shape[-1], stack.shape[-2])
        w, h = clip.out_size
        crop = resize_uint8(stack[:, :, top:bottom, left:right], h, w)
        if clip.flip:
            crop = crop.flip(-1)
        out.append(crop.reshape(-1, h, w))
    return torch.stack(out)
