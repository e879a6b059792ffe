"""``Compose``, the in-order chain both transform families use, and the ``input_format`` value
that marks a chain taking uint8 clip tensors instead of PIL images."""
from __future__ import annotations

from typing import Callable, Sequence

UINT8_INPUT = 'uint8'  # value of ``input_format`` for transforms that take a uint8 clip tensor


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
