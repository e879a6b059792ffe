"""Run names: ``PAN_<modality>_<dataset>_<arch>[_shift8_blockres][_tpool]_avg_segment8_e80[...]``.

``main.py`` names its log and checkpoint folders this way, the released checkpoint files carry
these names, and ``test_models.py`` reads a model's settings back from them when the checkpoint
does not store its options.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ops.errors import InputError


@dataclass
class RunName:
    modality: str
    dataset: str
    arch: str
    num_segments: int
    epochs: int | None = None
    is_shift: bool = False
    shift_div: int = 8
    shift_place: str = 'blockres'
    temporal_pool: bool = False
    consensus_type: str = 'avg'
    dense_sample: bool = False


def run_name(modality: str, dataset: str, arch: str, num_segments: int, epochs: int | None,
             consensus_type: str = 'avg', shift: bool = False, shift_div: int = 8, shift_place: str = 'blockres',
             temporal_pool: bool = False, pretrain: str = 'imagenet', lr_type: str = 'step',
             dense_sample: bool = False, suffix: str | None = None) -> str:
    """The store name the release gives a training run; ``epochs`` None leaves out its ``_e<epochs>``
    part (a run that trains no epoch, e.g. ``main.py -e``)."""
    arch_part = arch + (f'_shift{shift_div}_{shift_place}' if shift else '') + ('_tpool' if temporal_pool else '')
    name = f'PAN_{modality}_{dataset}_{arch_part}_{consensus_type}_segment{num_segments}'
    if epochs is not None:
        name += f'_e{epochs}'
    if pretrain != 'imagenet':
        name += f'_{pretrain}'
    if lr_type != 'step':
        name += f'_{lr_type}'
    if dense_sample:
        name += '_dense'
    if suffix:
        name += f'_{suffix}'
    return name


_PATTERN = re.compile(
    r'PAN_(?P<modality>RGB|PA|Lite)_(?P<dataset>.+?)_(?P<arch>[a-z]+[a-z0-9]*?\d+(?:v\d+)?)'
    r'(?:_shift(?P<div>\d+)_(?P<place>blockres|block))?(?P<tpool>_tpool)?'
    r'_(?P<consensus>avg|identity)_segment(?P<segments>\d+)(?:_e(?P<epochs>\d+))?(?P<rest>.*)')


def parse_run_name(path: str) -> RunName:
    """Read modality, dataset, arch, shift and segments from a checkpoint's file or folder name,
    e.g. ``PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar``."""
    text = os.path.basename(path.rstrip('/'))
    match = _PATTERN.search(text)
    if match is None:
        # checkpoint/<run name>/ckpt.best.pth.tar: the run name is the folder
        match = _PATTERN.search(os.path.basename(os.path.dirname(os.path.abspath(path))))
    if match is None:
        raise InputError(f'Cannot read the model settings from the name {path!r}: expected a name like '
                         'PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar, '
                         'or a checkpoint written by main.py (which stores its options)')
    rest = match['rest'] or ''
    return RunName(modality=match['modality'], dataset=match['dataset'], arch=match['arch'],
                   num_segments=int(match['segments']), epochs=int(match['epochs']) if match['epochs'] else None,
                   is_shift=match['div'] is not None, shift_div=int(match['div'] or 8),
                   shift_place=match['place'] or 'blockres', temporal_pool=bool(match['tpool']),
                   consensus_type=match['consensus'], dense_sample='_dense' in rest)
