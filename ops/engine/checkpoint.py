"""Reading released / trained checkpoints into PAN models, rebuilding the PAN model of a
checkpoint from it alone, and writing checkpoints safely.

A checkpoint file is either the release's dict (``{'epoch', 'arch', 'state_dict', 'optimizer',
'best_prec1', ...}`` with ``state_dict`` keys prefixed ``module.`` by ``nn.DataParallel``) or a
bare state_dict, with or without that prefix.
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from ops.engine.naming import parse_run_name
from ops.safe_files import write_atomically
from ops.errors import InputError
from ops.models import PAN

MODULE_PREFIX = 'module.'


class CheckpointMismatchError(InputError):
    """The checkpoint does not fit the model; the message lists every disagreement."""


def read_checkpoint(path: str) -> dict:
    """Load a checkpoint file onto the CPU, tensors and plain containers only (no pickled code)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # a truncated file, a foreign format, pickled objects
        raise InputError(f'Cannot read checkpoint {path}: {err}') from err


def checkpoint_state_dict(checkpoint: dict) -> dict:
    """The model weights of a checkpoint dict, with any ``module.`` prefix removed."""
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise InputError('Checkpoint holds no state_dict of tensors')
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
    """Write ``state`` to ``path`` atomically (:func:`ops.safe_files.write_atomically`): a crash at
    any moment leaves the previous file whole; a full disk raises CheckpointWriteError naming the
    file and the cause. The file gets the user's usual permissions (umask)."""
    write_atomically(path, lambda f: torch.save(state, f))


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


# ---------------------------------------------------------------- the model of a checkpoint

CLASSIFIER_BIAS_KEYS = ('fc.pred.bias', 'new_fc.bias', 'base_model.fc.bias')


def stored_num_class(state: dict) -> int | None:
    """Class count of a (prefix-free) state dict, read from its classifier's bias; None if absent."""
    return next((v.shape[0] for k, v in state.items() if k.endswith(CLASSIFIER_BIAS_KEYS)), None)


def branch_options(path: str, checkpoint: dict, num_segments: int | None = None, num_class: int | None = None,
                   img_feature_dim: int = 256) -> dict:
    """PAN keyword arguments of a checkpoint: stored by main.py, else read from the released file
    name; the head (VAP or TSN) and the class count come from the weights themselves.

    ``num_segments``: None keeps the stored (or named) count. ``num_class``: None takes the
    weights' count; given, it must agree with them.
    """
    state = checkpoint_state_dict(checkpoint)
    has_vap = any('.TES.' in k for k in state)
    if checkpoint.get('model_options'):
        options = dict(checkpoint['model_options'])
    else:
        name = parse_run_name(path)
        options = dict(modality=name.modality, base_model=name.arch, is_shift=name.is_shift,
                       shift_div=name.shift_div, shift_place=name.shift_place,
                       temporal_pool=name.temporal_pool, consensus_type=name.consensus_type, dropout=0.5,
                       img_feature_dim=img_feature_dim, num_segments=name.num_segments)
    stored_classes = stored_num_class(state)
    if num_class is None:
        if stored_classes is None:
            raise InputError(f'{path}: no classifier weights ({", ".join(CLASSIFIER_BIAS_KEYS)}), '
                             'so the class count is unknown')
        num_class = stored_classes
    elif stored_classes is not None and stored_classes != num_class:
        raise InputError(f'{path} has {stored_classes} classes but dataset has {num_class}: '
                         'wrong dataset or checkpoint?')
    options.update(num_class=num_class, has_VAP=has_vap)
    if num_segments is not None:
        options['num_segments'] = num_segments
    return options


def load_pan_model(path: str, num_segments: int | None = None,
                   device: torch.device = torch.device('cpu')) -> tuple[PAN, dict, dict]:
    """The PAN model of a checkpoint file, weights loaded, in eval mode on ``device``.

    Returns ``(model, options, checkpoint)``. Raises FileNotFoundError for a missing file,
    ValueError for one that does not read or whose settings cannot be found, and
    ``CheckpointMismatchError`` (a ValueError) when the weights do not fit the rebuilt model.
    """
    checkpoint = read_checkpoint(path)
    options = branch_options(path, checkpoint, num_segments)
    return build_pan(options, checkpoint, path).to(device).eval(), options, checkpoint


DEFAULT_INPUT_SIZE = 224


def trained_input_size(checkpoint: dict, default: int = DEFAULT_INPUT_SIZE) -> int:
    """The crop size a checkpoint was trained with (main.py's stored ``--input_size``), else ``default``."""
    return (checkpoint.get('args') or {}).get('input_size') or default


def checkpoint_class_names(checkpoint: dict, num_class: int) -> list[str] | None:
    """The class names main.py stored with the weights (its dataset's category file), None when the
    checkpoint has none (the release's) or not ``num_class`` of them."""
    names = checkpoint.get('class_names')
    if isinstance(names, (list, tuple)) and len(names) == num_class and all(isinstance(n, str) for n in names):
        return list(names)
    return None


def input_sources(checkpoint: dict, given: dict[str, str | None]) -> str:
    """Where a tool's segment count, frames per segment and input size came from, for its report:
    ``given`` maps ``'segments'`` and ``'size'`` to the flag that set them (None: not given), e.g.
    ``'segments from --test_segments; frames per segment, input size from the checkpoint'``. Values not
    given come from main.py's stored options, else the released file name (segments), the
    release's 4 frames per segment and 224 pixels."""
    options, args = checkpoint.get('model_options') or {}, checkpoint.get('args') or {}
    origin = {
        'segments': given.get('segments') or ('the checkpoint' if 'num_segments' in options else 'the file name'),
        'frames per segment': 'the checkpoint' if 'data_length' in options else "the release's default",
        'input size': given.get('size') or ('the checkpoint' if args.get('input_size') else
                                            f'the default {DEFAULT_INPUT_SIZE}'),
    }
    grouped: dict[str, list[str]] = {}
    for what, where in origin.items():
        grouped.setdefault(where, []).append(what)
    return '; '.join(f'{", ".join(whats)} from {where}' for where, whats in grouped.items())


def build_pan(options: dict, checkpoint: dict, source: str) -> PAN:
    """A PAN built from ``options`` (see :func:`branch_options`) holding the checkpoint's weights
    (no ImageNet download: every weight comes from the checkpoint)."""
    model = PAN(**options, pretrain='scratch', print_spec=False)
    load_pan_weights(model, checkpoint, source=source)
    return model
