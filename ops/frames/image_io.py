"""Reading one extracted frame, from a file or from encoded bytes (an LMDB value): as a PIL image
(release-compatible transforms) or as a uint8 tensor ``(H, W, 3)`` for the fast pipeline.

JPEG files are decoded by torchvision's libjpeg-turbo decoder straight from their bytes (faster
than ``Image.open().convert()``, which unpacks to RGBX and converts, and pixel-identical to it);
anything else (PNG, JPEGs the decoder refuses) goes through PIL. Every failure is a
:class:`FrameReadError` naming the file (or, for bytes, the name the caller gives them).
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image

try:
    # torchvision 0.29 (pinned) deprecates its image codecs in favour of TorchCodec, warning on
    # import and on every decode_jpeg() call. The decoder itself is the registered op that
    # decode_jpeg() wraps; calling it directly prints nothing and skips ~25 us of wrapper per frame.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        from torchvision.io import ImageReadMode  # also loads the extension that registers the op
    _decode_jpeg_op = torch.ops.image.decode_jpeg
    _RGB = ImageReadMode.RGB.value
except (ImportError, AttributeError, RuntimeError):  # pragma: no cover - no usable torchvision decoder
    _decode_jpeg_op = None

_JPEG_MAGIC = b'\xff\xd8'


class FrameReadError(OSError):
    """A frame is missing, empty or cannot be decoded; the message names the file (or store and key)."""


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        raise FrameReadError(f'missing frame: {path}') from None
    except OSError as e:
        raise FrameReadError(f'cannot read frame {path}: {e}') from None
    if not data:
        raise FrameReadError(f'empty frame file: {path}')
    return data


def decode_frame_pil(data: bytes, name: str) -> Image.Image:
    """The encoded frame ``data`` (JPEG, PNG, ...) as a loaded RGB PIL image; ``name`` (a file
    path, an LMDB key) names it in errors."""
    try:
        img = Image.open(io.BytesIO(data))
        return img.convert('RGB')  # convert() forces the full decode, so truncation fails here
    except Exception as e:  # PIL raises several types for bad data
        raise FrameReadError(f'cannot decode frame {name}: {e}') from None


def decode_frame_uint8(data: bytes, name: str) -> torch.Tensor:
    """The encoded frame ``data`` as a contiguous uint8 tensor ``(H, W, 3)``, RGB; ``name`` names
    it in errors."""
    if _decode_jpeg_op is not None and data[:2] == _JPEG_MAGIC:
        try:
            # the op returns a (3, H, W) view of (H, W, 3) memory: permuting back is free
            chw = _decode_jpeg_op(torch.frombuffer(bytearray(data), dtype=torch.uint8), _RGB, False)
            hwc = chw.permute(1, 2, 0)
            return hwc if hwc.is_contiguous() else hwc.contiguous()
        except RuntimeError:
            pass  # e.g. truncated or unusual JPEG: let PIL decide, it names the problem
    return torch.from_numpy(np.array(decode_frame_pil(data, name)))


def read_frame_pil(path: str) -> Image.Image:
    """The frame file as a loaded RGB PIL image (the file is closed)."""
    return decode_frame_pil(_read_bytes(path), path)


def read_frame(path: str, form: str = 'uint8'):
    """The frame file in ``form`` (a key of :data:`FRAME_FORMS`)."""
    return FRAME_FORMS[form](_read_bytes(path), path)


def read_frame_uint8(path: str) -> torch.Tensor:
    """The frame file as a contiguous uint8 tensor ``(H, W, 3)``, RGB."""
    return decode_frame_uint8(_read_bytes(path), path)


@dataclass(frozen=True)
class EncodedFrame:
    """A frame left for the GPU to decode: its JPEG ``data`` (uint8 ``(nbytes,)``), or ``pixels``
    (uint8 ``(H, W, 3)``) for a frame that is not a JPEG (PNG, a video's frame), decoded here;
    ``width`` and ``height`` from the JPEG header, so crops can be drawn before any decode."""
    width: int
    height: int
    data: torch.Tensor | None = None
    pixels: torch.Tensor | None = None


def encoded_frame(data: bytes, name: str) -> EncodedFrame:
    """``data`` as an :class:`EncodedFrame`: a JPEG is kept encoded (its header read for the size,
    nothing decoded), anything else decoded to pixels now."""
    if data[:2] == _JPEG_MAGIC:
        try:
            with Image.open(io.BytesIO(data)) as img:  # reads the header only
                width, height = img.size
            return EncodedFrame(width, height, data=torch.frombuffer(bytearray(data), dtype=torch.uint8))
        except Exception as e:  # PIL raises several types for bad data
            raise FrameReadError(f'cannot decode frame {name}: {e}') from None
    pixels = decode_frame_uint8(data, name)
    return EncodedFrame(int(pixels.shape[1]), int(pixels.shape[0]), pixels=pixels)


FRAME_FORMS: dict[str, Callable[[bytes, str], object]] = {
    'uint8': decode_frame_uint8, 'pil': decode_frame_pil, 'encoded': encoded_frame}


def frame_form(as_pil: bool = False, encoded: bool = False) -> str:
    """The key of :data:`FRAME_FORMS` a reader's ``as_pil`` / ``encoded`` flags ask for."""
    return 'encoded' if encoded else ('pil' if as_pil else 'uint8')


def decode_jpegs(data: list[torch.Tensor], device: torch.device | str) -> list[torch.Tensor]:
    """Decode JPEGs (uint8 ``(nbytes,)`` each) on ``device`` in one batched call (nvJPEG on a GPU,
    libjpeg-turbo on the CPU): uint8 RGB ``(3, H, W)`` each, on ``device``."""
    if not data:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        from torchvision.io import decode_jpeg
        return decode_jpeg(list(data), mode=ImageReadMode.RGB, device=device)
