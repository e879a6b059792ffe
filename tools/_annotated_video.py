"""An annotated copy of a stream, for tools/online_demo.py: each frame with the current top
classes written on it and the current PA map laid over the model's crop (Pillow draws, PyAV
writes).

The file is H.264 in yuv420p (what browsers play; 4:2:0 needs even sides, so the size is cut to
even numbers) in an MP4 whose index comes first (``faststart``: it plays while it downloads), at
the source's exact frame rate (a Fraction: 30000/1001 stays 29.97). The encoder is the first
:data:`ENCODERS` entry this PyAV build can open; where it has no H.264 encoder, MPEG-4 Part 2
(plays in desktop players, not in browsers). ``encoder`` says which was used. Frames whose short
side is under :data:`MIN_SIDE` pixels are enlarged by a whole factor (nearest neighbour, so each
source pixel stays a sharp block) until it is not: test clips of 1x1 pixels exist, and no encoder
takes them.
"""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import torch
from PIL import Image, ImageDraw

PA_COLOUR = (255, 40, 40)
PA_OPACITY = 0.6  # of the strongest motion; still pixels stay as they are
# (encoder, what it writes), first choice first: libx264, else Cisco's OpenH264, else MPEG-4 Part 2
ENCODERS = (('libx264', 'H.264'), ('libopenh264', 'H.264'), ('mpeg4', 'MPEG-4 Part 2, not playable in browsers'))
BIT_RATE = 2_000_000
MIN_SIDE = 32  # pixels: every encoder above takes the size (1x1 test clips exist)


def pick_encoder(width: int, height: int, rate: Fraction) -> tuple[str, str]:
    """The first of :data:`ENCODERS` that opens for yuv420p frames of that size and rate here."""
    for name, kind in ENCODERS:
        try:
            context = av.CodecContext.create(name, 'w')
            context.width, context.height, context.pix_fmt = width, height, 'yuv420p'
            context.time_base, context.framerate, context.bit_rate = 1 / rate, rate, BIT_RATE
            context.open()
        except (av.error.FFmpegError, ValueError):  # not in this build (UnknownCodecError), or no device
            continue
        return name, kind
    raise RuntimeError(f'no video encoder among {", ".join(n for n, _ in ENCODERS)} in this PyAV build')


def crop_box(width: int, height: int, scale_size: int, crop_size: int) -> tuple[int, int, int, int]:
    """Where the model's centre crop lies in the frame (left, top, right, bottom): short side to
    ``scale_size``, then ``crop_size`` from the centre, mapped back to the frame's pixels."""
    side = crop_size * min(width, height) / scale_size
    left, top = (width - side) / 2, (height - side) / 2
    return round(left), round(top), round(left + side), round(top + side)


class AnnotatedVideoWriter:
    """Writes frames with labels and a PA overlay to ``path`` at ``rate`` frames per second
    (a Fraction, or a number taken as its decimal value).

    ``write(frame, lines, pa, box)``: ``frame`` uint8 ``(H, W, 3)``; ``lines`` text drawn top left;
    ``pa`` a motion map ``(h, w)`` (any scale; None: no overlay) stretched over ``box``.
    ``encoder`` / ``codec``: the encoder used and what it wrote, ``factor`` how many times each
    frame was enlarged (all known after the first frame).
    """

    def __init__(self, path: str, rate: Fraction | float) -> None:
        self.path = path
        self.rate = rate if isinstance(rate, Fraction) else Fraction(str(rate))
        self.frames_written = 0
        self._container = av.open(path, 'w', options={'movflags': '+faststart'})
        self._stream = None
        self.size: tuple[int, int] | None = None   # (width, height) written
        self.encoder: str | None = None
        self.codec: str | None = None
        self.factor = 1


    def _open_stream(self, width: int, height: int) -> None:
        self.factor = -(-MIN_SIDE // min(width, height)) if min(width, height) < MIN_SIDE else 1
        width, height = width * self.factor, height * self.factor
        self.size = (width - width % 2, height - height % 2)
        self.encoder, self.codec = pick_encoder(*self.size, self.rate)
        self._stream = self._container.add_stream(self.encoder, rate=self.rate)
        self._stream.width, self._stream.height = self.size
        self._stream.pix_fmt = 'yuv420p'
        self._stream.bit_rate = BIT_RATE

    def write(self, frame: torch.Tensor, lines: list[str], pa: torch.Tensor | None,
              box: tuple[int, int, int, int]) -> None:
        height, width = frame.shape[:2]
        if self._stream is None:
            self._open_stream(width, height)
        image = Image.fromarray(frame.numpy())
        if self.factor > 1:
            image = image.resize((width * self.factor, height * self.factor), Image.NEAREST)
            box = tuple(v * self.factor for v in box)
        if pa is not None:
            image = self._overlay(image, pa, box)
        draw = ImageDraw.Draw(image)
        y = 2
        for text in lines:
            left, top, right, bottom = draw.textbbox((2, y), text)
            draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=(0, 0, 0))
            draw.text((2, y), text, fill=(255, 255, 255))
            y = bottom + 3
        w, h = self.size
        array = np.ascontiguousarray(np.asarray(image)[:h, :w])
        picture = av.VideoFrame.from_ndarray(array, format='rgb24')
        picture.pts, picture.time_base = self.frames_written, 1 / self.rate  # one tick a frame: the exact rate
        for packet in self._stream.encode(picture):
            self._container.mux(packet)
        self.frames_written += 1

    @staticmethod
    def _overlay(image: Image.Image, pa: torch.Tensor, box: tuple[int, int, int, int]) -> Image.Image:
        pa = pa.float()
        strength = (pa / pa.max().clamp_min(1e-12) * PA_OPACITY * 255).to(torch.uint8).numpy()
        size = (box[2] - box[0], box[3] - box[1])
        alpha = Image.fromarray(strength).resize(size, Image.BILINEAR)
        colour = Image.new('RGB', size, PA_COLOUR)
        region = image.crop(box)
        image.paste(Image.composite(colour, region, alpha), box[:2])
        return image

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
