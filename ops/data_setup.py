"""Wiring of the data stages for the entry points: registry entry -> checked files -> dataset
with the project's clip pipeline for training, validation or multi-view testing.

Clips leave the loader as uint8 (a quarter of the bytes of float clips between processes and to
the GPU); :func:`to_model_input` normalises a batch on the device it is computed on.
"""
from __future__ import annotations

import argparse
import os
from typing import Sequence

import torch

from ops.backbone_registry import scale_size_for
from ops.dataset import MIN_FRAMES, PANDataSet, parse_list_file
from ops.dataset_config import (FRAMES_NEEDED, VIDEOS_NEEDED, DatasetInfo, check_dataset_files,
                                get_dataset_info)
from ops.frames.video_reader import is_video_file
from ops.list_check import LineCheck
from ops.modalities import frames_per_segment
from ops.transforms import build_train_transform, build_val_transform, normalize_uint8_batch
from ops.transforms.deferred import DeferredClip, EncodedBatch, decode_clips
from ops.views import TestViews


def add_lmdb_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--lmdb [PATH]``, the same in main.py and test_models.py (read it with :func:`lmdb_location`)."""
    parser.add_argument(
        '--lmdb', nargs='?', const='', default=None, metavar='PATH',
        help="read frames from an LMDB store in the released code's layout (keys "
             "'<video>/000/<frame index - 1:08d>', values the JPEG bytes; build one with "
             'tools/frames_to_lmdb.py): the store at PATH, or with --lmdb alone the frame folder of '
             'the dataset with .lmdb appended (e.g. ROOT/something/v1/20bn-something-something-v1.lmdb; '
             'for a dataset of your own ROOT/NAME/frames.lmdb). '
             'List files stay as they are; video-file lines still read the video. Default: frame folders. '
             '(--lmdb alone before a positional argument would take it for PATH: put it last.)')


def add_skip_bad_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--skip_bad``, the same in main.py and test_models.py (see :mod:`ops.list_check`)."""
    parser.add_argument(
        '--skip_bad', action='store_true',
        help='leave out the list lines whose clips cannot be read as listed (a file that does not open, '
             'fewer or more decodable frames than the list says, a first or last frame that does not '
             'decode) and say how many; without it such lines stop the run before it reads a clip, '
             'each named with its list line (default: off)')


def data_report(dataset: PANDataSet) -> list[str]:
    """What building ``dataset`` found that the user should know: the check of its lines, the
    videos the release's short-video rule left out."""
    lines = [dataset.check_report.summary()] if dataset.check_report is not None else []
    if dataset.num_removed:
        numbers = ', '.join(s.rsplit(':', 1)[-1] for s in dataset.removed_lines[:10])
        more = ', ...' if dataset.num_removed > 10 else ''
        lines.append(f'=> {dataset.list_file}: left out {dataset.num_removed} video(s) with fewer than '
                     f'{MIN_FRAMES} frames, as the release does (line {numbers}{more})')
    return lines


def lmdb_location(info: DatasetInfo, flag: str | None) -> str | None:
    """The LMDB store ``--lmdb`` names: None without the flag, PATH when given, else the
    dataset's frame folder + ``.lmdb``."""
    if flag is None:
        return None
    return flag or str(info.lmdb_path())


def frame_folder_need(info: DatasetInfo, splits: tuple[str, ...], lmdb: str | None = None) -> str | None:
    """What in the lists of ``splits`` needs the dataset's frame folder (see
    :func:`~ops.dataset_config.check_dataset_files`): a relative frame-folder line (unless an LMDB
    store holds them), else a relative video-file line, else nothing. A missing list counts as
    needing it, so the error names both."""
    lists = [info.train_list if split == 'train' else info.val_list for split in splits]
    if not all(path.is_file() for path in lists):
        return FRAMES_NEEDED
    need = None
    for path in lists:
        for record in parse_list_file(path):
            if os.path.isabs(record.path):
                continue
            if is_video_file(record.path):
                need = VIDEOS_NEEDED
            elif lmdb is None:
                return FRAMES_NEEDED
    return need


def resolve_dataset(dataset: str, root_path: str | None = None, train_list: str | None = None,
                    val_list: str | None = None, splits: tuple[str, ...] = ('train', 'val'),
                    need_categories: bool = False, lmdb: str | None = None) -> DatasetInfo:
    """The dataset's registry entry (or its description, for a dataset of your own), after checking
    that its lists exist, and its frames where a line needs them: the frame folder, or with
    ``lmdb``, the value of ``--lmdb``, its LMDB store (the error names each missing path and the
    tool that creates it). Lists of absolute video paths need no frame folder."""
    info = get_dataset_info(dataset, root_path, train_list=train_list or None, val_list=val_list or None)
    check_dataset_files(info, splits, need_categories, lmdb_path=lmdb_location(info, lmdb),
                        need_frames=frame_folder_need(info, splits, lmdb))
    return info


def build_clip_dataset(info: DatasetInfo, list_file: str, mode: str, modality: str, num_segments: int,
                       data_length: int, input_size: int, mean: Sequence[float], std: Sequence[float],
                       views: TestViews | None = None, dense_sample: bool = False, remove_missing: bool = False,
                       substitute_missing: bool = False, lmdb_path: str | None = None,
                       line_check: LineCheck | None = None, gpu_decode: bool = False) -> PANDataSet:
    """A PANDataSet for ``mode`` 'train' (random segment offsets, multi-scale crop to
    ``input_size``, flip where the dataset allows), 'val' (segment centres, short side to
    :func:`scale_size_for` ``(input_size)``, centre crop) or 'test' (the clips and crops of
    ``views``, whose ``input_size`` is used), reading frames from the LMDB store ``lmdb_path``
    when given; with ``line_check``, every line is checked first (:mod:`ops.list_check`). Items are
    uint8 clips ``(views * T * L * 3, crop, crop)`` and the label; with ``gpu_decode`` (training),
    :class:`~ops.transforms.deferred.EncodedClip` s for :func:`to_model_input` to decode on the
    device (batch them with :func:`~ops.transforms.deferred.collate_encoded`)."""
    twice_sample = False
    if mode == 'train':
        transform = build_train_transform(input_size, mean, std, flip=info.flip, normalize=False)
        if gpu_decode:
            transform = DeferredClip(transform)
    elif mode == 'val':
        transform = build_val_transform(input_size, scale_size_for(input_size), mean, std, normalize=False)
    elif mode == 'test':
        views = views or TestViews(input_size=input_size, dense_sample=dense_sample)
        transform = views.transform(mean, std, normalize=False)
        dense_sample, twice_sample = views.dense_sample, views.twice_sample
    else:
        raise ValueError(f"mode must be 'train', 'val' or 'test', got {mode!r}")
    return PANDataSet(info.frames_root, list_file, num_segments=num_segments,
                      new_length=frames_per_segment(modality, data_length), modality=modality,
                      image_tmpl=info.image_tmpl, transform=transform, random_shift=mode == 'train',
                      test_mode=mode == 'test', remove_missing=remove_missing, dense_sample=dense_sample,
                      twice_sample=twice_sample, num_class=info.num_class,
                      substitute_missing=substitute_missing, lmdb_path=lmdb_path, line_check=line_check)


def to_model_input(batch: torch.Tensor | EncodedBatch, mean: Sequence[float], std: Sequence[float],
                   device: torch.device) -> torch.Tensor:
    """uint8 clips ``(N, C, H, W)`` from the loader (or an :class:`EncodedBatch`, decoded on
    ``device`` first) -> normalised float32 on ``device``."""
    if isinstance(batch, EncodedBatch):
        return normalize_uint8_batch(decode_clips(batch, device), mean, std)
    return normalize_uint8_batch(batch.to(device, non_blocking=True), mean, std)
