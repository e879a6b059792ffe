"""Reading released / trained checkpoints into PAN models, and writing checkpoints safely.

A checkpoint file is either the release's dict (``{'epoch', 'arch', 'state_dict', 'optimizer',
'best_prec1', ...}`` with ``state_dict`` keys prefixed ``module.`` by ``nn.DataParallel``) or a
bare state_dict, with or without that prefix.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any

import torch
from torch import nn

MODULE_PREFIX = 'module.'


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model; the message lists every disagreement."""


def read_checkpoint(path: str) -> dict:
    """Load a checkpoint file onto the CPU, tensors and plain containers only (no pickled code)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # a truncated file, a foreign format, pickled objects
        raise ValueError(f'Cannot read checkpoint {path}: {err}') from err


def checkpoint_state_dict(checkpoint: dict) -> dict:
    """The model weights of a checkpoint dict, with any ``module.`` prefix removed."""
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError('Checkpoint holds no state_dict of tensors')
    return {k[len(MODULE_PREFIX):] if k.startswith(MODULE_PREFIX) else k: v for k, v in state.items()}


def _listing(title: str, items: list[str], limit: int = 12) -> str:
    shown = '\n    '.join(items[:limit])
    more = f'\n    ... and {len(items) - limit} more' if len(items) > limit else ''
    return f'  {title} ({len(items)}):\n    {shown}{more}'


def load_pan_weights(model: nn.Module, checkpoint: str | dict, source: str | None = None) -> dict:
    """Load a checkpoint (file path or loaded dict) into ``model``, all keys and shapes exact.

    Returns the checkpoint dict (for its ``epoch``, ``best_prec1``, options...). Raises
    :class:`CheckpointMismatchError` listing missing keys, unexpected keys and shape mismatches
    when the file was written for another modality, architecture, class or segment count.
    """
    if isinstance(checkpoint, str):
        source = source or checkpoint
        checkpoint = read_checkpoint(checkpoint)
    source = source or 'checkpoint'
    state = checkpoint_state_dict(checkpoint)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f'{source} does not fit this model '
                 '(another modality, architecture, class count, or segment count with VAP?)']
        if missing:
            parts.append(_listing('missing keys', missing))
        if unexpected:
            parts.append(_listing('unexpected keys', unexpected))
        if shapes:
            parts.append(_listing('shape mismatches', shapes))
        raise CheckpointMismatchError('\n'.join(parts))
    model.load_state_dict(state)
    return checkpoint


def save_checkpoint(state: dict[str, Any], path: str) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, flushed to
    disk, then renamed, so a crash at any moment leaves the previous file whole."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _align_shift_keys(state: dict, own: dict) -> dict:
    """Rename ``.net`` keys between shifted and unshifted backbones (``conv1.net.weight`` <->
    ``conv1.weight``), so a TSN checkpoint can seed a TSM model and back."""
    aligned = {}
    for k, v in state.items():
        if k not in own and k.replace('.net', '') in own:
            k = k.replace('.net', '')
        elif k not in own:
            shifted = [o for o in own if o.replace('.net', '') == k]
            if len(shifted) == 1:
                k = shifted[0]
        aligned[k] = v
    return aligned


def is_classifier_key(key: str, model: nn.Module) -> bool:
    """Whether ``key`` belongs to the classifier (VAP head, ``new_fc``, or the backbone's last layer)."""
    last = getattr(getattr(model, 'base_model', None), 'last_layer_name', 'fc')
    return key.startswith('new_fc.') or key.startswith(f'base_model.{last}.')


def load_for_finetune(model: nn.Module, path: str, drop_classifier: bool) -> dict:
    """Initialise ``model`` from a checkpoint of another run (``--tune_from``).

    Loads every tensor whose name and shape fit; with ``drop_classifier`` (a different dataset)
    the classifier is left as initialised. Returns ``{'loaded': [...], 'skipped': [...]}``;
    raises when nothing but the classifier would be loaded.
    """
    own = model.state_dict()
    state = _align_shift_keys(checkpoint_state_dict(read_checkpoint(path)), own)
    loaded, skipped = [], []
    for k, v in state.items():
        if drop_classifier and is_classifier_key(k, model):
            skipped.append(f'{k} (classifier of another dataset)')
        elif k not in own:
            skipped.append(f'{k} (not in this model)')
        elif own[k].shape != v.shape:
            skipped.append(f'{k} (shape {tuple(v.shape)} vs {tuple(own[k].shape)})')
        else:
            own[k] = v
            loaded.append(k)
    if not any(not is_classifier_key(k, model) for k in loaded):
        raise CheckpointMismatchError(f'--tune_from {path}: no backbone weight fits this model\n'
                                      + _listing('skipped', skipped))
    model.load_state_dict(own)
    return {'loaded': loaded, 'skipped': skipped}
