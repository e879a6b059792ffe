"""Command-line flags of main.py: the release's flags with their meaning and defaults, plus the
switches the release could not turn off (--no_VAP, --partialbn) and this project's additions
(--seed, --amp, --channels_last, --compile, --sync_bn, --input_size, --lmdb, --debug, ...)."""
from __future__ import annotations

import argparse

from ops.backbone_registry import BACKBONES
from ops.backbones import PRETRAIN_CHOICES
from ops.data_setup import add_lmdb_flag, add_skip_bad_flag
from ops.dataset_config import dataset_help
from ops.engine.cli import add_debug_flag, new_parser
from ops.engine.compile import PAYS_AFTER, add_compile_flags
from ops.engine.precision import AMP_DTYPES
from ops.modalities import DEFAULT_DATA_LENGTH, MODALITIES
from ops.models import CONSENSUS_TYPES

DESCRIPTION = """Train a PAN model: PAN_Lite, or the RGB / PA branch of PAN_Full (test them with test_models.py).

    python main.py something Lite --arch resnet50 --num_segments 8 --lr 0.01 --lr_steps 30 60 --epochs 80 -b 64
    torchrun --nproc_per_node=8 main.py something Lite ...     # DistributedDataParallel

Writes log/<run name>/{log.csv,args.txt,events.*} and checkpoint/<run name>/ckpt[.best].pth.tar;
with -e (evaluate only) just log/<run name>_eval/log.csv.
A mistake in the input prints one 'error: ...' line and exits with status 2 (--debug: traceback)."""

COMPAT = 'kept for compatibility with the release'
LOSS_TYPES = ('nll',)  # the release's only value: cross-entropy on the logits


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(DESCRIPTION, prog='main.py')
    p.add_argument('dataset', type=str, help=dataset_help())
    p.add_argument('modality', type=str, choices=MODALITIES,
                   help='Lite: RGB and PA in one network (PAN_Lite); RGB or PA: a branch of PAN_Full')
    p.add_argument('--train_list', type=str, default='',
                   help="list file (default: the dataset's); each line's path, a frame folder or a video file, "
                        "is taken under the dataset's frame folder (e.g. ROOT/kinetics/images) unless absolute")
    p.add_argument('--val_list', type=str, default='', help='list file (default: the dataset\'s); paths as --train_list')
    p.add_argument('--root_path', type=str, default=None,
                   help='data root holding the datasets (default: $PAN_DATA_ROOT, else ./data)')
    p.add_argument('--store_name', type=str, default='',
                   help='run name, the folder under --root_log and --root_model (default: built from the '
                        'options, PAN_<modality>_<dataset>_<arch>..._e<epochs>, as the release names it)')

    g = p.add_argument_group('model')
    g.add_argument('--arch', type=str, default='resnet50', choices=sorted(BACKBONES),
                   help='backbone (archs/)')
    g.add_argument('--num_segments', type=int, default=3, help='segments per video (one clip position each)')
    g.add_argument('--consensus_type', type=str, default='avg', choices=CONSENSUS_TYPES,
                   help='how segment scores are combined without the VAP head (--no_VAP)')
    g.add_argument('--k', type=int, default=3, help=f'{COMPAT}; unused (the release does not read it either)')
    g.add_argument('--dropout', '--do', default=0.5, type=float, help='dropout ratio before the classifier')
    g.add_argument('--loss_type', type=str, default='nll', metavar='{nll}',
                   help="training loss: 'nll' is cross-entropy on the logits (log-softmax + NLL), the only "
                        'loss the release implements; any other value is refused')
    g.add_argument('--img_feature_dim', default=256, type=int,
                   help=f'{COMPAT} (TRN heads only); stored in the checkpoint, unused by PAN')
    g.add_argument('--suffix', type=str, default=None, help='appended to the run name (default: none)')
    g.add_argument('--pretrain', type=str, default='imagenet', choices=PRETRAIN_CHOICES,
                   help='backbone initialisation: ImageNet weights (torch hub cache) or random (scratch)')
    g.add_argument('--tune_from', type=str, default=None,
                   help='fine-tune from this checkpoint: every tensor whose name and shape fit is loaded, '
                        'the classifier only when the checkpoint\'s path names this dataset (default: none)')
    g.add_argument('--base', type=str, default='TSM', choices=['TSM', 'TSN'],
                   help='TSM forces the temporal shift on (1/8, blockres), as the release does')
    g.add_argument('--data_length', type=int, default=DEFAULT_DATA_LENGTH,
                   help='consecutive frames per segment for PA and Lite (2 or more)')
    g.add_argument('--VAP', dest='VAP', action='store_true', default=True, help='VAP head (default: on)')
    g.add_argument('--no_VAP', dest='VAP', action='store_false', help='TSN head with --consensus_type instead of VAP (default: off)')
    g.add_argument('--shift', default=False, action='store_true', help='temporal shift (forced on by --base TSM)')
    g.add_argument('--shift_div', default=8, type=int, help='1/shift_div of the channels shift each way in time')
    g.add_argument('--shift_place', default='blockres', type=str, choices=['blockres', 'block'],
                   help='where the shift goes: the residual branch of every block, or the block input')
    g.add_argument('--causal_shift', default=False, action='store_true',
                   help='online (causal) shift: 1/shift_div of the channels from the previous segment only, '
                        'nothing from the future, for streaming with ops.deploy.streaming.OnlinePAN '
                        '(default: off, the released bidirectional shift)')
    g.add_argument('--temporal_pool', default=False, action='store_true',
                   help='halve the segments after layer1 (needs an even --num_segments)')
    g.add_argument('--non_local', default=False, action='store_true',
                   help=f'{COMPAT}; not implemented (no released PAN model has non-local blocks): refused')
    g.add_argument('--dense_sample', default=False, action='store_true', help='dense temporal sampling')
    g.add_argument('--input_size', type=int, default=224, help='crop size fed to the network (scale = size*256/224)')

    g = p.add_argument_group('learning')
    g.add_argument('--epochs', default=120, type=int, help='epochs to train (part of the run name)')
    g.add_argument('-b', '--batch-size', default=128, type=int,
                   help='clips per step over all processes (lr 0.01 per 64 clips is the README rule)')
    g.add_argument('--lr', '--learning-rate', default=0.001, type=float, help='initial learning rate')
    g.add_argument('--lr_type', default='step', type=str, choices=['step', 'cos'],
                   help='learning-rate schedule: divide by 10 at --lr_steps, or cosine to 0 over --epochs')
    g.add_argument('--lr_steps', default=[50, 100], type=float, nargs='+', help='epochs to decay lr by 10')
    g.add_argument('--optimizer', default='sgd', choices=['sgd', 'adamw'],
                   help='sgd as released; adamw for training from scratch on small data (--momentum is its beta1)')
    g.add_argument('--momentum', default=0.9, type=float, help='SGD momentum (AdamW: beta1)')
    g.add_argument('--weight-decay', '--wd', default=5e-4, type=float, help='weight decay')
    g.add_argument('--clip-gradient', '--gd', default=20, type=float, help='gradient norm clipping (0: off)')
    g.add_argument('--no_partialbn', '--npb', dest='no_partialbn', default=True, action='store_true',
                   help='train every BatchNorm (default: on, as released)')
    g.add_argument('--partialbn', dest='no_partialbn', action='store_false',
                   help='freeze every BatchNorm but the first (TSN partial BN) (default: off)')
    g.add_argument('-i', '--iter-size', default=1, type=int, help='steps of gradient accumulation per update')
    g.add_argument('--seed', type=int, default=0, help='seed of every random draw (data order, crops, dropout)')
    g.add_argument('--amp', action='store_true',
                   help='mixed precision: autocast (bf16 where supported, else fp16 with a grad scaler)')
    g.add_argument('--amp_dtype', choices=AMP_DTYPES, default='auto',
                   help="with --amp: 'bf16', or 'fp16' with a grad scaler (on the CPU too), or 'auto' (bf16 "
                        'where the device supports it, else fp16)')
    g.add_argument('--channels_last', action='store_true', help='channels-last memory format')
    add_compile_flags(g, f'on for a run of {PAYS_AFTER["train"]} training steps or more (-e: '
                         f'{PAYS_AFTER["test"]} validation clips), where it pays, off for shorter ones; compiled '
                         'dropout draws its own masks, the same ones for the same --seed, but not eager\'s')
    g.add_argument('--sync_bn', action='store_true', help='SyncBatchNorm across processes (torchrun)')

    g = p.add_argument_group('monitor and runtime')
    g.add_argument('--print-freq', '-p', default=20, type=int, help='log a training line every N steps')
    g.add_argument('--eval-freq', '-ef', default=5, type=int, help='validate every N epochs (and after the last)')
    g.add_argument('-j', '--workers', default=8, type=int, help='data loading workers per process')
    g.add_argument('--resume', default='', type=str,
                   help="checkpoint to resume from: its weights, optimizer, position (epoch, and batch for a "
                        "mid-epoch checkpoint), RNG states and best Prec@1; the run goes on in the checkpoint's "
                        "own run folder (logs appended, best checkpoint kept) unless --store_name names another. "
                        "'auto': this run's own checkpoint/<run name>/ckpt.pth.tar when it exists, else start "
                        'fresh (default: none)')
    g.add_argument('--overwrite', action='store_true',
                   help="start this run afresh even though its run folder holds another run's checkpoint, "
                        'replacing its checkpoints and logs (without it such a run stops and says the ways on: '
                        '--resume auto, a new --store_name or --suffix, or this)')
    g.add_argument('--save_steps', default=0, type=int,
                   help='also write the run\'s ckpt.pth.tar every N optimizer steps, mid-epoch (0: at the end '
                        'of each epoch only)')
    g.add_argument('-e', '--evaluate', dest='evaluate', action='store_true',
                   help='evaluate the model of --resume on the val list only; trains and saves nothing, '
                        'and logs to --root_log/<run name>_eval/log.csv: the run name of --store_name, else '
                        "the one the checkpoint stores, else the options' without _e<epochs>")
    g.add_argument('--snapshot_pref', type=str, default='',
                   help=f"{COMPAT}; unused: checkpoints go to --root_model/<run name> (default: '')")
    g.add_argument('--start-epoch', default=0, type=int, help='first epoch (overridden by --resume)')
    g.add_argument('--gpus', nargs='+', type=int, default=None, help='GPU ids (default: every GPU)')
    g.add_argument('--flow_prefix', default='', type=str,
                   help=f"{COMPAT}; unused: PAN reads RGB frames only, PA replaces optical flow (default: '')")
    g.add_argument('--root_log', type=str, default='log', help='folder of the run logs')
    g.add_argument('--root_model', type=str, default='checkpoint', help='folder of the checkpoints')
    g.add_argument('--substitute_missing', action='store_true',
                   help='replace unreadable frames by the nearest readable one (warns, counts)')
    add_skip_bad_flag(g)
    add_lmdb_flag(g)
    g.add_argument('--gpu_decode', action='store_true',
                   help="decode the training clips' JPEG frames on the device in batches (nvJPEG on a GPU): "
                        'loader workers only read the files and draw the crops, the same as without it; frames '
                        'that are not JPEGs (PNG, video files) are decoded in the workers as usual')
    add_debug_flag(g)
    return p


def check_train_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse, before anything is built, the values and combinations the code cannot honour."""
    if args.loss_type not in LOSS_TYPES:
        parser.error(f"--loss_type {args.loss_type}: only 'nll' (cross-entropy) is implemented, as in the release")
    if args.non_local:
        parser.error('--non_local: not implemented (no released PAN model uses non-local blocks)')
    for flag, value, least in (('--num_segments', args.num_segments, 1), ('--batch-size', args.batch_size, 1),
                               ('--iter-size', args.iter_size, 1), ('--print-freq', args.print_freq, 1),
                               ('--eval-freq', args.eval_freq, 1), ('--workers', args.workers, 0),
                               ('--save_steps', args.save_steps, 0),
                               ('--shift_div', args.shift_div, 1), ('--input_size', args.input_size, 1)):
        if value < least:
            parser.error(f'{flag} {value}: must be {least} or more')
    if args.modality in ('PA', 'Lite') and args.data_length < 2:
        parser.error(f'--data_length {args.data_length}: {args.modality} needs 2 or more frames per segment')
    if args.VAP and args.num_segments < 2:
        parser.error(f'--num_segments {args.num_segments}: the VAP head pools over 2 or more segments '
                     '(or give --no_VAP)')
    if args.temporal_pool and args.num_segments % 2:
        parser.error(f'--temporal_pool halves the segments: --num_segments {args.num_segments} must be even')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_train_args(args, parser)
    if args.base == 'TSM':
        args.shift = True  # shift_div and shift_place keep their (released) defaults unless given
    return args
