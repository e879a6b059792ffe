"""An annotated copy of a stream, for tools/online_demo.py: each frame with the current top
classes written on it and the current PA map laid over the model's crop (Pillow draws, PyAV
writes, mpeg4 in yuv420p, so the size is cut to even numbers)."""
from __future__ import annotations

import av
import numpy as np
import torch
from PIL import Image, ImageDraw

PA_COLOUR = (255, 40, 40)
PA_OPACITY = 0.6  # of the strongest motion; still pixels stay as they are


def crop_box(width: int, height: int, scale_size: int, crop_size: int) -> tuple[int, int, int, int]:
    """Where the model's centre crop lies in the frame (left, top, right, bottom): short side to
    ``scale_size``, then ``crop_size`` from the centre, mapped back to the frame's pixels."""
    side = crop_size * min(width, height) / scale_size
    left, top = (width - side) / 2, (height - side) / 2
    return round(left), round(top), round(left + side), round(top + side)


class AnnotatedVideoWriter:
    """Writes frames with labels and a PA overlay to ``path`` at ``fps``.

    ``write(frame, lines, pa, box)``: ``frame`` uint8 ``(H, W, 3)``; ``lines`` text drawn top left;
    ``pa`` a motion map ``(h, w)`` (any scale; None: no overlay) stretched over ``box``.
    """

    def __init__(self, path: str, fps: float) -> None:
        self.path = path
        self.fps = fps
        self.frames_written = 0
        self._container = av.open(path, 'w')
        self._stream = None
        self.size: tuple[int, int] | None = None   # (width, height) written

    def _open_stream(self, width: int, height: int) -> None:
        self.size = (width - width % 2, height - height % 2)
        self._stream = self._container.add_stream('mpeg4', rate=round(self.fps))
        self._stream.width, self._stream.height = self.size
        self._stream.pix_fmt = 'yuv420p'
        self._stream.bit_rate = 2_000_000

    def write(self, frame: torch.Tensor, lines: list[str], pa: torch.Tensor | None,
              box: tuple[int, int, int, int]) -> None:
        height, width = frame.shape[:2]
        if self._stream is None:
            self._open_stream(width, height)
        image = Image.fromarray(frame.numpy())
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
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(array, format='rgb24')):
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
