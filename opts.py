"""Command-line flags of main.py: the release's flags with their meaning and defaults, plus the
switches the release could not turn off (--no_VAP, --partialbn) and this project's additions
(--seed, --amp, --channels_last, --sync_bn, --input_size, --lmdb, ...)."""
from __future__ import annotations

import argparse

from ops.backbone_registry import BACKBONES
from ops.backbones import PRETRAIN_CHOICES
from ops.data_setup import add_lmdb_flag
from ops.dataset_config import known_datasets
from ops.modalities import DEFAULT_DATA_LENGTH, MODALITIES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Train a PAN model (PAN_Lite, or the RGB / PA branch of PAN_Full).')
    p.add_argument('dataset', type=str, choices=known_datasets(), help='dataset of the registry (ops/dataset_config.py)')
    p.add_argument('modality', type=str, choices=MODALITIES)
    p.add_argument('--train_list', type=str, default='',
                   help="list file (default: the dataset's); each line's path, a frame folder or a video file, "
                        "is taken under the dataset's frame folder (e.g. ROOT/kinetics/images) unless absolute")
    p.add_argument('--val_list', type=str, default='', help='list file (default: the dataset\'s); paths as --train_list')
    p.add_argument('--root_path', type=str, default=None,
                   help='data root holding the datasets (default: $PAN_DATA_ROOT, else ./data)')
    p.add_argument('--store_name', type=str, default='', help='run name (default: built from the options)')

    g = p.add_argument_group('model')
    g.add_argument('--arch', type=str, default='resnet50', choices=sorted(BACKBONES),
                   help='backbone (archs/)')
    g.add_argument('--num_segments', type=int, default=3)
    g.add_argument('--consensus_type', type=str, default='avg')
    g.add_argument('--dropout', '--do', default=0.5, type=float, help='dropout ratio before the classifier')
    g.add_argument('--img_feature_dim', default=256, type=int, help='kept for compatibility (TRN heads only)')
    g.add_argument('--suffix', type=str, default=None)
    g.add_argument('--pretrain', type=str, default='imagenet', choices=PRETRAIN_CHOICES)
    g.add_argument('--tune_from', type=str, default=None, help='fine-tune from this checkpoint')
    g.add_argument('--base', type=str, default='TSM', choices=['TSM', 'TSN'],
                   help='TSM forces the temporal shift on (1/8, blockres), as the release does')
    g.add_argument('--data_length', type=int, default=DEFAULT_DATA_LENGTH, help='consecutive frames per segment for PA and Lite')
    g.add_argument('--VAP', dest='VAP', action='store_true', default=True, help='VAP head (default on)')
    g.add_argument('--no_VAP', dest='VAP', action='store_false', help='TSN head with consensus instead of VAP')
    g.add_argument('--shift', default=False, action='store_true', help='temporal shift (forced on by --base TSM)')
    g.add_argument('--shift_div', default=8, type=int)
    g.add_argument('--shift_place', default='blockres', type=str, choices=['blockres', 'block'])
    g.add_argument('--temporal_pool', default=False, action='store_true')
    g.add_argument('--non_local', default=False, action='store_true')
    g.add_argument('--dense_sample', default=False, action='store_true', help='dense temporal sampling')
    g.add_argument('--input_size', type=int, default=224, help='crop size fed to the network (scale = size*256/224)')

    g = p.add_argument_group('learning')
    g.add_argument('--epochs', default=120, type=int)
    g.add_argument('-b', '--batch-size', default=128, type=int,
                   help='clips per step over all processes (lr 0.01 per 64 clips is the README rule)')
    g.add_argument('--lr', '--learning-rate', default=0.001, type=float)
    g.add_argument('--lr_type', default='step', type=str, choices=['step', 'cos'])
    g.add_argument('--lr_steps', default=[50, 100], type=float, nargs='+', help='epochs to decay lr by 10')
    g.add_argument('--optimizer', default='sgd', choices=['sgd', 'adamw'],
                   help='sgd as released; adamw for training from scratch on small data (--momentum is its beta1)')
    g.add_argument('--momentum', default=0.9, type=float)
    g.add_argument('--weight-decay', '--wd', default=5e-4, type=float)
    g.add_argument('--clip-gradient', '--gd', default=20, type=float, help='gradient norm clipping (0: off)')
    g.add_argument('--no_partialbn', '--npb', dest='no_partialbn', default=True, action='store_true',
                   help='train every BatchNorm (default, as released)')
    g.add_argument('--partialbn', dest='no_partialbn', action='store_false',
                   help='freeze every BatchNorm but the first (TSN partial BN)')
    g.add_argument('-i', '--iter-size', default=1, type=int, help='steps of gradient accumulation per update')
    g.add_argument('--seed', type=int, default=0)
    g.add_argument('--amp', action='store_true',
                   help='mixed precision: autocast (bf16 where supported, else fp16 with a grad scaler)')
    g.add_argument('--channels_last', action='store_true', help='channels-last memory format')
    g.add_argument('--sync_bn', action='store_true', help='SyncBatchNorm across processes (torchrun)')

    g = p.add_argument_group('monitor and runtime')
    g.add_argument('--print-freq', '-p', default=20, type=int)
    g.add_argument('--eval-freq', '-ef', default=5, type=int)
    g.add_argument('-j', '--workers', default=8, type=int, help='data loading workers per process')
    g.add_argument('--resume', default='', type=str, help='checkpoint to resume from')
    g.add_argument('-e', '--evaluate', dest='evaluate', action='store_true', help='evaluate on the val list only')
    g.add_argument('--start-epoch', default=0, type=int)
    g.add_argument('--gpus', nargs='+', type=int, default=None, help='GPU ids (default: every GPU)')
    g.add_argument('--root_log', type=str, default='log')
    g.add_argument('--root_model', type=str, default='checkpoint')
    g.add_argument('--substitute_missing', action='store_true',
                   help='replace unreadable frames by the nearest readable one (warns, counts)')
    add_lmdb_flag(g)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.base == 'TSM':
        args.shift = True  # shift_div and shift_place keep their (released) defaults unless given
    return args
