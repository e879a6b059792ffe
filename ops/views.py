"""Test-time views: how ``test_models.py`` looks at each video.

A :class:`TestViews` says which clips are taken in time (one centred clip, ``twice_sample``: two,
``dense_sample``: :data:`~ops.sampling.DENSE_TEST_CLIPS` dense clips), which crops in space
(1, 3, 5 or 10, see :func:`~ops.transforms.build_test_transform`) and at what resolution
(``input_size`` crops of frames scaled to :func:`~ops.backbone_registry.scale_size_for`, or with
``full_res`` crops of the scaled size itself). Its sampler, transform and number of views all
come from it, so a new kind of view is added here and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ops.backbone_registry import scale_size_for
from ops.sampling import DENSE_TEST_CLIPS, sample_test_indices
from ops.transforms import build_test_transform

CROP_CHOICES = (1, 3, 5, 10)


@dataclass(frozen=True)
class TestViews:
    """Clips x crops of one video at test time; items of a test dataset hold ``num_views`` clips."""
    __test__ = False  # not a pytest test class, whatever its name

    crops: int = 1
    full_res: bool = False
    twice_sample: bool = False
    dense_sample: bool = False
    input_size: int = 224

    def __post_init__(self) -> None:
        if self.crops not in CROP_CHOICES:
            raise ValueError(f'test_crops must be one of {CROP_CHOICES}, got {self.crops}')

    @property
    def clips(self) -> int:
        """Clips taken in time per video."""
        return DENSE_TEST_CLIPS if self.dense_sample else (2 if self.twice_sample else 1)

    @property
    def num_views(self) -> int:
        """Model inputs per video: clips x crops."""
        return self.clips * self.crops

    @property
    def scale_size(self) -> int:
        """Short side the frames are resized to before cropping."""
        return scale_size_for(self.input_size)

    @property
    def crop_size(self) -> int:
        """Side of each square crop: the scaled size itself with ``full_res``."""
        return self.scale_size if self.full_res else self.input_size

    def segment_starts(self, num_frames: int, num_segments: int, new_length: int = 1) -> np.ndarray:
        """1-based segment starts of every clip, clips concatenated ``(clips * num_segments,)``."""
        return sample_test_indices(num_frames, num_segments, new_length, self.twice_sample, self.dense_sample)

    def transform(self, mean: Sequence[float], std: Sequence[float], normalize: bool = True):
        """The crop pipeline: uint8 frames ``(F, H, W, 3)`` -> ``(crops * F * 3, c, c)`` (float, or
        uint8 with ``normalize=False``)."""
        return build_test_transform(self.input_size, self.scale_size, mean, std, test_crops=self.crops,
                                    full_res=self.full_res, normalize=normalize)
