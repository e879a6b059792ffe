"""Frames by index from wherever a video is stored: a folder of extracted frames, a video file
(here) or an LMDB store (:mod:`ops.frames.lmdb_source`).

One interface for every reader of frames (``PANDataSet``, ``tools/demo.py``,
``tools/visualize_pa.py``): :class:`FrameSource` gives the frame count and the frames at 1-based
indices (``img_00001.jpg`` is frame 1, as in list files), as uint8 tensors ``(H, W, 3)`` or as
PIL images for the release-compatible transforms. Sources that store frames one by one (frame
folders, LMDB) share reading and substitution through :class:`IndexedFrames`.
:func:`open_frame_source` picks the reader for a path; :func:`stack_clip` turns what a source
read into one clip tensor.

A source either fails with an error naming the file (:class:`FrameReadError`, or its
:class:`MissingVideoError` when the whole video is absent; :class:`VideoReadError`) or, through
:meth:`FrameSource.read_substituting`, replaces unreadable frames by readable neighbours and says
which.
"""
from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from ops.errors import InputError
from ops.frames.image_io import EncodedFrame, FrameReadError, frame_form, read_frame
from ops.frames.video_index import VideoIndex
from ops.frames.video_reader import VIDEO_EXTENSIONS, VideoReader, VideoReadError, is_video_file

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
FLOW_PREFIXES = ('flow_x_', 'flow_y_', 'x_', 'y_')  # optical flow written beside RGB frames (TSN layout)
_NUMBERED = re.compile(r'^(.*?)(\d+)(\.[A-Za-z]+)$')  # prefix, frame number, extension

# uint8 (H, W, 3); an RGB PIL image with as_pil=True; an EncodedFrame with encoded=True
Frame = torch.Tensor | Image.Image | EncodedFrame


class FrameSource(ABC):
    """The frames of one video. ``path`` names it in errors; indices are 1-based. ``note`` says
    what a reader chose to leave out, for the user ('' when nothing)."""

    path: str
    note: str = ''

    @property
    @abstractmethod
    def num_frames(self) -> int:
        """Number of frames."""

    @abstractmethod
    def read(self, indices: Sequence[int], as_pil: bool = False, encoded: bool = False) -> dict[int, Frame]:
        """The frames at the distinct 1-based ``indices``, by index; an error names the file.
        ``encoded``: JPEGs left encoded for the GPU (:class:`~ops.frames.image_io.EncodedFrame`)."""

    @abstractmethod
    def read_substituting(self, indices: Sequence[int], as_pil: bool = False, encoded: bool = False
                          ) -> tuple[dict[int, Frame], dict[int, int], str]:
        """Like :meth:`read`, but unreadable frames are replaced by readable ones of the same video.

        Returns ``(frames, replaced, reason)``: ``replaced`` maps each replaced index to the index
        whose frame stands in for it, ``reason`` is the first read error ('' when none).
        """


def _natural_key(name: str) -> list:
    """``frame2.jpg`` before ``frame10.jpg``: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


@dataclass(frozen=True)
class FrameListing:
    """The frames of a folder given without a template: ``files`` in frame order, the name
    ``pattern`` they follow, and the other images that were ``skipped``."""
    files: list[str]
    pattern: str
    skipped: list[str]

    @property
    def note(self) -> str:
        """What was left out, for the user ('' when nothing was)."""
        if not self.skipped:
            return ''
        kinds = sorted({m.group(1) if (m := _NUMBERED.match(n)) else n for n in self.skipped})
        shown = ', '.join(k + '*' if k.endswith('_') else k for k in kinds[:4])
        return (f'took the {len(self.files)} frames named {self.pattern}; skipped {len(self.skipped)} other '
                f'image(s) ({shown}{", ..." if len(kinds) > 4 else ""})')


def scan_frame_folder(folder: str) -> FrameListing:
    """The RGB frames of a folder: of the numbered images (``img_00001.jpg``, ``00001.jpg``, ...),
    the most numerous series that is not optical flow (``flow_x_``, ``flow_y_``, ``x_``, ``y_``, as
    the TSN extraction writes beside the RGB frames), in frame-number order. A folder of images
    without numbers gives all of them in natural order."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
    if not names:
        raise InputError(f'no frames ({", ".join(IMAGE_EXTENSIONS)}) in folder {folder}')
    series: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for name in names:
        m = _NUMBERED.match(name)
        if m:
            series.setdefault((m.group(1), m.group(3).lower()), []).append((int(m.group(2)), name))
    rgb = {key: found for key, found in series.items() if not key[0].lower().startswith(FLOW_PREFIXES)}
    if not series:
        return FrameListing([os.path.join(folder, n) for n in sorted(names, key=_natural_key)], '*', [])
    if not rgb:
        raise InputError(f'only optical-flow images ({", ".join(p + "*" for p in FLOW_PREFIXES)}) in folder '
                         f'{folder}: no RGB frames to read')
    # most frames first; on a tie the usual RGB names (img_*, then bare numbers) win
    (prefix, ext), found = max(rgb.items(), key=lambda kv: (len(kv[1]), kv[0][0] == 'img_', kv[0][0] == ''))
    chosen = [name for _, name in sorted(found)]
    taken = set(chosen)
    return FrameListing([os.path.join(folder, n) for n in chosen], f'{prefix}<n>{ext}',
                        sorted((n for n in names if n not in taken), key=_natural_key))


def list_frame_files(folder: str) -> list[str]:
    """The RGB frame files of a folder in frame order (see :func:`scan_frame_folder`)."""
    return scan_frame_folder(folder).files


class MissingVideoError(FrameReadError):
    """The whole video is absent (no frame folder, no key of it in an LMDB store): there is no
    frame of it to substitute with."""


class IndexedFrames(FrameSource):
    """Frames stored one by one, each read on its own (a frame folder, an LMDB store).

    Reading and the substitution of unreadable frames live here once; a subclass says how one
    frame is read (:meth:`_read_one`) and, after a failed read, whether the whole video is
    missing (:meth:`_missing_video`)."""

    @abstractmethod
    def _read_one(self, index: int, form: str) -> Frame:
        """The 1-based frame ``index`` in ``form`` (a key of ``FRAME_FORMS``); FrameReadError
        naming where it should be."""

    @abstractmethod
    def _missing_video(self) -> MissingVideoError | None:
        """The error to raise when the whole video is absent, else None (asked only after a read
        failed, so a healthy video never pays for the check)."""

    def _check_range(self, indices: Sequence[int]) -> None:
        """Raise FrameReadError for indices the source knows to be outside the video; by default
        nothing is known and a missing frame is reported when read."""

    def _read_checked(self, index: int, form: str) -> Frame:
        try:
            return self._read_one(index, form)
        except FrameReadError:
            missing = self._missing_video()
            if missing is not None:
                raise missing from None
            raise

    def read(self, indices: Sequence[int], as_pil: bool = False, encoded: bool = False) -> dict[int, Frame]:
        wanted = sorted({int(i) for i in indices})
        self._check_range(wanted)
        form = frame_form(as_pil, encoded)
        return {i: self._read_checked(i, form) for i in wanted}

    def read_substituting(self, indices: Sequence[int], as_pil: bool = False, encoded: bool = False
                          ) -> tuple[dict[int, Frame], dict[int, int], str]:
        wanted = sorted({int(i) for i in indices})
        self._check_range(wanted)
        form = frame_form(as_pil, encoded)
        frames: dict[int, Frame] = {}
        unreadable: dict[int, FrameReadError] = {}
        for i in wanted:
            try:
                frames[i] = self._read_checked(i, form)
            except MissingVideoError:  # nothing in a missing video to substitute with
                raise
            except FrameReadError as e:
                unreadable[i] = e
        if not unreadable:
            return frames, {}, ''
        reason = str(next(iter(unreadable.values())))
        replaced = {i: self._nearest_readable(i, frames, unreadable, form) for i in list(unreadable)}
        for i, j in replaced.items():
            frames[i] = frames[j]
        return {i: frames[i] for i in wanted}, replaced, reason

    def _nearest_readable(self, i: int, frames: dict[int, Frame], unreadable: dict[int, FrameReadError],
                          form: str) -> int:
        """The closest index to ``i`` (earlier first on ties) whose frame reads; loads it into
        ``frames``."""
        for d in range(1, max(self.num_frames, i) + 1):
            for j in (i - d, i + d):
                if not 1 <= j <= self.num_frames or j in unreadable:
                    continue
                if j in frames:
                    return j
                try:
                    frames[j] = self._read_one(j, form)
                    return j
                except FrameReadError as e:
                    unreadable[j] = e
        raise FrameReadError(f'no readable frame in {self.path} to substitute for frame {i}')


class FolderFrames(IndexedFrames):
    """A folder of extracted frames. With ``image_tmpl`` (``'img_{:05d}.jpg'``), frame i is
    ``image_tmpl.format(i)`` and ``num_frames`` comes from the list file; without it, the folder's
    numbered RGB series is (:func:`scan_frame_folder`, which notes in ``note`` what it skipped)."""

    def __init__(self, folder: str, image_tmpl: str | None = None, num_frames: int | None = None) -> None:
        self.path = folder
        self.image_tmpl = image_tmpl
        listing = scan_frame_folder(folder) if image_tmpl is None else None
        self._files = listing.files if listing else None
        self.note = listing.note if listing else ''
        self._num_frames = num_frames if num_frames is not None else len(self._files or [])

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def frame_file(self, index: int) -> str:
        """Path of the 1-based frame ``index``."""
        if self._files is not None:
            return self._files[index - 1]
        return os.path.join(self.path, self.image_tmpl.format(index))

    def _check_range(self, indices: Sequence[int]) -> None:
        if self._files is None:  # template folders: a missing file is reported when read
            return
        outside = [i for i in indices if not 1 <= i <= len(self._files)]
        if outside:
            raise FrameReadError(f'{self.path}: frames {outside[:5]} (1-based) out of range, '
                                 f'the folder has {len(self._files)}')

    def _read_one(self, index: int, form: str) -> Frame:
        return read_frame(self.frame_file(index), form)

    def _missing_video(self) -> MissingVideoError | None:
        return None if os.path.isdir(self.path) else MissingVideoError(f'missing video folder: {self.path}')


class VideoFrames(FrameSource):
    """A video file, decoded with PyAV (see :mod:`ops.frames.video_reader`); the frame count comes from
    the file's index, whatever the list file says. ``note`` says when the container's header
    claims more frames than decode (a truncated or damaged file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._reader = VideoReader(path)
        self.note = header_note(self._reader.index)

    @property
    def num_frames(self) -> int:
        return len(self._reader)

    @property
    def frames_decoded(self) -> int:
        """Frames decoded so far (seeking keeps this near the number of frames asked for)."""
        return self._reader.frames_decoded

    @staticmethod
    def _convert(array, form: str) -> Frame:
        if form == 'pil':
            return Image.fromarray(array)
        pixels = torch.from_numpy(array)
        if form == 'encoded':  # a video's frames are decoded here: the GPU path takes them as pixels
            return EncodedFrame(int(pixels.shape[1]), int(pixels.shape[0]), pixels=pixels)
        return pixels

    def read(self, indices: Sequence[int], as_pil: bool = False, encoded: bool = False) -> dict[int, Frame]:
        wanted = sorted({int(i) for i in indices})
        got = self._reader.read([i - 1 for i in wanted])
        form = frame_form(as_pil, encoded)
        return {i: self._convert(got[i - 1], form) for i in wanted}

    def read_substituting(self, indices: Sequence[int], as_pil: bool = False, encoded: bool = False
                          ) -> tuple[dict[int, Frame], dict[int, int], str]:
        try:
            return self.read(indices, as_pil, encoded), {}, ''
        except VideoReadError as e:
            error = e
        decoded = self._reader.read_all()  # the decodable prefix of a damaged video
        if not decoded:
            raise VideoReadError(f'{error}; no frame decodes') from None
        last = len(decoded)  # 1-based index of the last decodable frame
        wanted = sorted({int(i) for i in indices})
        replaced = {i: last for i in wanted if i > last}
        form = frame_form(as_pil, encoded)
        return {i: self._convert(decoded[min(i, last) - 1], form) for i in wanted}, replaced, str(error)


def header_note(index: VideoIndex) -> str:
    """What to tell a user whose video decodes fewer frames than its header claims ('' if not)."""
    if not index.header_overstates:
        return ''
    return (f'its header claims {index.header_frames} frames but {index.num_frames} decode '
            f'(a truncated or damaged file); reading those {index.num_frames}')


def check_clip_source(path: str) -> None:
    """Raise a clear error unless ``path`` is a video file or a folder of frames."""
    if os.path.isdir(path):
        return
    if not os.path.exists(path):
        raise FileNotFoundError(f'no such video file or frame folder: {path}')
    if not is_video_file(path):
        raise InputError(f'{path} is neither a frame folder nor a video file ({", ".join(VIDEO_EXTENSIONS)})')


def open_frame_source(path: str, image_tmpl: str | None = None, num_frames: int | None = None) -> FrameSource:
    """The reader for a video file or a frame folder (see :class:`FolderFrames` for ``image_tmpl``
    and ``num_frames``). FileNotFoundError / ValueError when ``path`` is neither."""
    check_clip_source(path)
    if os.path.isdir(path):
        return FolderFrames(path, image_tmpl, num_frames)
    return VideoFrames(path)


def stack_clip(frames: dict[int, torch.Tensor], indices: Sequence[int], where: str) -> torch.Tensor:
    """uint8 clip ``(F, H, W, 3)`` of ``frames[i]`` for each of ``indices`` in order (repeats
    allowed). A video whose resolution changes on the way (a recorded adaptive stream, a spliced
    file) gives frames of several sizes: each is resized (bilinear, antialiased) to the size most
    of the clip's frames have (the first one's among equals), so that one crop fits them all.
    ``where`` names the clip in errors."""
    shapes = Counter(tuple(frames[int(i)].shape) for i in indices)
    if len(shapes) > 1:
        height, width, _ = shapes.most_common(1)[0][0]
        frames = {i: f if tuple(f.shape[:2]) == (height, width) else resize_frame(f, height, width)
                  for i, f in frames.items()}
    return torch.stack([frames[int(i)] for i in indices])


def resize_frame(frame: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A uint8 frame ``(H, W, 3)`` resized to ``(height, width, 3)``, bilinear with antialiasing."""
    chw = frame.permute(2, 0, 1)[None].contiguous()
    return F.interpolate(chw, size=(height, width), mode='bilinear', antialias=True,
                         align_corners=False)[0].permute(1, 2, 0).contiguous()


def read_clip(source: FrameSource, indices: Sequence[int]) -> torch.Tensor:
    """uint8 clip ``(F, H, W, 3)`` of the frames at 1-based ``indices`` (in that order, repeats
    allowed), each distinct frame read once."""
    return stack_clip(source.read(indices), indices, source.path)
