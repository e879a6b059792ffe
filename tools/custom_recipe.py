"""The training recipe of ``scripts/train/custom.sh`` for a dataset of your own (a few hundred
clips): prints main.py's arguments, one a line, and on stderr which recipe it chose and why.

    python tools/custom_recipe.py NAME [Lite|RGB|PA] [main.py flags ...]

Three recipes, the first that applies:

- fine-tune (``--tune_from CHECKPOINT`` among the flags: a released Something-Something model or
  any main.py checkpoint): the checkpoint's backbone, shift, segments, frames per segment and input
  size, every weight that fits loaded (the classifier is new), SGD at lr 0.001 with steps at epochs
  10 and 20 of 25, dropout 0.8, batch 8;
- ImageNet (the backbone's ImageNet weights are in the torch hub cache or can be downloaded now):
  ResNet-50 (or ``--arch``), 8 segments at 224 pixels, SGD at lr 0.0025 (the release's 0.01 per
  64 clips, for batch 16), steps at 10 and 20 of 25 epochs, dropout 0.8;
- scratch (no weights to start from, or ``--pretrain scratch``): the quick start's recipe,
  ResNet-18 from random weights, 4 segments at 64 pixels, AdamW at lr 0.001 with a cosine schedule,
  weight decay 1e-4, batch 8, 30 epochs.

Every recipe validates each epoch. The flags given to custom.sh come after the recipe's on
main.py's command line, so each of them wins over the recipe's value.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys

from ops.backbones import backbone_entry, imagenet_cache_path, load_imagenet_state_dict
from ops.engine.checkpoint import branch_options, read_checkpoint, trained_input_size
from ops.engine.cli import new_parser
from ops.modalities import MODALITIES

DOWNLOAD_TIMEOUT_S = 20
IMAGENET_ARCH = 'resnet50'
FINETUNE = ['--optimizer', 'sgd', '--lr', '0.001', '--lr_steps', '10', '20', '--epochs', '25', '-b', '8',
            '--dropout', '0.8', '--eval-freq', '1']
IMAGENET = ['--num_segments', '8', '--input_size', '224', '--optimizer', 'sgd', '--lr', '0.0025',
            '--lr_steps', '10', '20', '--epochs', '25', '-b', '16', '--dropout', '0.8', '--eval-freq', '1']
SCRATCH = ['--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '4', '--input_size', '64',
           '--optimizer', 'adamw', '--lr', '0.001', '--wd', '1e-4', '--lr_type', 'cos', '-b', '8', '--epochs', '30',
           '--eval-freq', '1']


def workers() -> list[str]:
    """Data-loading processes: up to 8, fewer on a small machine."""
    return ['-j', str(max(1, min(8, (os.cpu_count() or 2) - 1)))]


def finetune_recipe(checkpoint_path: str, modality: str) -> tuple[list[str], str]:
    """Arguments that rebuild the checkpoint's network for ``modality`` and fine-tune it."""
    checkpoint = read_checkpoint(checkpoint_path)
    options = branch_options(checkpoint_path, checkpoint)
    size = trained_input_size(checkpoint)
    args = ['--arch', options['base_model'], '--num_segments', str(options['num_segments']),
            '--input_size', str(size), '--pretrain', 'scratch']  # every weight comes from the checkpoint
    if modality != 'RGB':
        args += ['--data_length', str(options.get('data_length', 4))]
    if options.get('is_shift'):
        args += ['--shift_div', str(options.get('shift_div', 8)), '--shift_place', options.get('shift_place', 'blockres')]
    else:
        args += ['--base', 'TSN']
    if options.get('causal_shift'):
        args.append('--causal_shift')
    note = (f"fine-tune from {checkpoint_path} ({options['modality']}, {options['base_model']}, "
            f"{options['num_segments']} segments, {size} px)")
    if options['modality'] != modality:
        note += f"; it is a {options['modality']} model, so the {modality} model's first layer starts afresh"
    return args + FINETUNE, note


def imagenet_available(arch: str) -> tuple[bool, str]:
    """Whether ``arch``'s ImageNet weights are in the torch hub cache or can be downloaded there now."""
    weights = backbone_entry(arch).weights
    path = imagenet_cache_path(weights)
    if os.path.isfile(path):
        return True, f'in the torch hub cache ({path})'
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torch hub's progress: stdout is the recipe
            load_imagenet_state_dict(weights)
        return True, f'downloaded to {path}'
    except RuntimeError as err:
        return False, str(err.__cause__ or err)
    finally:
        socket.setdefaulttimeout(previous)


def choose(modality: str, flags: list[str]) -> tuple[list[str], str]:
    """main.py's arguments for ``modality`` given the user's ``flags``, and what was chosen."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('--tune_from')
    parser.add_argument('--arch', default=IMAGENET_ARCH)
    parser.add_argument('--pretrain', default='imagenet')
    given, _ = parser.parse_known_args(flags)
    if given.tune_from:
        args, note = finetune_recipe(given.tune_from, modality)
    elif given.pretrain == 'scratch':
        args, note = SCRATCH, 'from scratch (--pretrain scratch), the quick start\'s recipe'
    else:
        found, how = imagenet_available(given.arch)
        if found:
            args, note = ['--arch', given.arch, '--pretrain', 'imagenet', *IMAGENET], \
                f'from ImageNet weights of {given.arch} ({how})'
        else:
            args, note = SCRATCH, (f'from scratch, the quick start\'s recipe: no ImageNet weights of {given.arch} '
                                   f'({how}; give --tune_from CHECKPOINT to fine-tune instead)')
    return [*args, *workers()], note


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument('name', help='the dataset, made by tools/prepare_dataset.py (main.py\'s first argument)')
    p.add_argument('rest', nargs=argparse.REMAINDER, metavar='...',
                   help='[Lite|RGB|PA] (None: Lite), then main.py flags, as custom.sh passes them on')
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rest = list(args.rest)
    modality = rest.pop(0) if rest and rest[0] in MODALITIES else 'Lite'
    try:
        recipe, note = choose(modality, rest)
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'=> custom.sh {args.name} {modality}: {note}', file=sys.stderr)
    print('\n'.join(recipe))
    return 0


if __name__ == '__main__':
    sys.exit(main())
