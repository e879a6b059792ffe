r"""Test PAN checkpoints with multi-view testing, alone or as the Full / En ensembles.

    python test_models.py something --weights=pretrained/PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar \
        --test_segments=8 --test_crops=1 --batch_size=16
    python test_models.py something --weights=lite.pth.tar,rgb.pth.tar,pa.pth.tar --test_segments=8,8,8 \
        --full_res --twice_sample          # PAN_En

One branch per checkpoint. Each branch's scores are averaged over its views (crops x clips),
then the branches are averaged, weighted by --coeff. Two branches are reported as Full, three as
En. Runs on CUDA when present (every GPU, or those of --gpus), else on the CPU, in fp32 by default:
the released numbers, on any machine. --amp runs bf16 autocast and channels-last (about 1.5x faster
where the CPU has AMX or AVX-512 BF16, logits within 1e-2 of fp32; ops/engine/precision.py). A test of
1000 clips or more compiles its models (torch.compile, inductor with freezing: seconds more at the
start, faster on every batch; --compile / --no_compile decide instead; ops/engine/compile.py).

A mistake in the input (a missing or unreadable checkpoint or list, a malformed list line, a
checkpoint that does not fit, options that contradict each other) prints 'error: ...' and exits
with status 2, with no traceback unless --debug.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ops.data_setup import (add_lmdb_flag, add_skip_bad_flag, build_clip_dataset, data_report, lmdb_location,
                            resolve_dataset, to_model_input)
from ops.dataset import parse_list_file
from ops.dataset_config import dataset_help, read_categories
from ops.engine.checkpoint import (DEFAULT_INPUT_SIZE, branch_options, build_pan, checkpoint_class_names,
                                  input_sources, read_checkpoint, trained_input_size)
from ops.engine.cli import add_debug_flag, new_parser, run_cli_main
from ops.engine.compile import PAYS_AFTER, RunCompile, add_compile_flags, compile_for_inference, resolve_compile
from ops.engine.distributed import pick_device
from ops.engine.precision import RunPrecision, add_precision_flags, resolve_precision
from ops.engine.test_report import (class_accuracy, confusion, per_class_lines, relabelled_upper_bound,
                                   save_confusion_png, write_submission)
from ops.errors import InputError
from ops.list_check import LineCheck
from ops.modalities import DEFAULT_DATA_LENGTH, frames_per_segment
from ops.utils import AverageMeter, accuracy
from ops.views import CROP_CHOICES, TestViews


COMPAT = 'kept for compatibility with the release'


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__, prog='test_models.py')
    p.add_argument('dataset', type=str, help=dataset_help())
    p.add_argument('--weights', type=str, required=True,
                   help='checkpoint(s), comma separated: one branch each (required)')
    p.add_argument('--test_segments', type=str, default=None,
                   help="segments per branch, comma separated (default: each checkpoint's, stored by main.py "
                        'or read from the released file name)')
    p.add_argument('--dense_sample', default=False, action='store_true',
                   help='10 dense clips per video (not with --twice_sample)')
    p.add_argument('--twice_sample', default=False, action='store_true',
                   help='2 clips per video (not with --dense_sample)')
    p.add_argument('--full_res', default=False, action='store_true', help='256x256 crops instead of 224x224')
    p.add_argument('--test_crops', type=int, default=1, choices=CROP_CHOICES, help='crops per clip')
    p.add_argument('--coeff', type=str, default=None,
                   help='branch weights, comma separated, one per checkpoint (default: 1 each)')
    p.add_argument('--batch_size', type=int, default=1, help='videos per step')
    p.add_argument('-j', '--workers', default=8, type=int, help='data loading workers')
    p.add_argument('--softmax', default=False, action='store_true', help='average probabilities, not logits')
    p.add_argument('--max_num', type=int, default=-1, help='test only the first N videos (-1: all)')
    p.add_argument('--input_size', type=int, default=None,
                   help="crop size fed to the network, scale = size*256/224 (default: each checkpoint's "
                        '--input_size, else 224)')
    p.add_argument('--crop_fusion_type', type=str, default='avg', choices=['avg'],
                   help='how the views of a video are combined: their mean')
    p.add_argument('--gpus', nargs='+', type=int, default=None, help='GPU ids (default: every GPU)')
    p.add_argument('--img_feature_dim', type=int, default=256,
                   help=f'{COMPAT} (TRN heads only); used only for a checkpoint that does not store its options')
    p.add_argument('--num_set_segments', type=int, default=1,
                   help=f"{COMPAT}, where it is a TODO that nothing reads: one set of --test_segments segments "
                        'per clip, the only value implemented; other values are refused')
    p.add_argument('--pretrain', type=str, default='imagenet',
                   help=f'{COMPAT}; unused: the weights come from --weights')
    p.add_argument('--VAP', default=False, action='store_true',
                   help=f'{COMPAT}; unused: whether a checkpoint has the VAP head is read from its weights')
    p.add_argument('--test_list', type=str, default=None,
                   help="list file(s), one, or one per branch, comma separated (default: the dataset's val list); "
                        "paths in it are taken under the dataset's frame folder unless absolute")
    p.add_argument('--root_path', type=str, default=None, help='data root (default: $PAN_DATA_ROOT, else ./data)')
    p.add_argument('--csv_file', type=str, default=None, help='write the submission CSV here (default: none)')
    p.add_argument('--save_scores', type=str, default=None,
                   help='scores and labels (.npz) (default: test_results/<dataset>_<Lite|Full|En|...>.npz)')
    p.add_argument('--no_confusion_png', action='store_true', help='do not draw the confusion matrix')
    p.add_argument('--substitute_missing', action='store_true',
                   help='replace unreadable frames by the nearest readable one (warns, counts)')
    add_precision_flags(p, auto=False)
    add_skip_bad_flag(p)
    add_compile_flags(p, f'on for a test of {PAYS_AFTER["test"]} clips (videos x views) or more, where it pays, '
                         'off for shorter ones and under DataParallel (several GPUs)')
    add_lmdb_flag(p)
    add_debug_flag(p)
    return p


def _numbers(text: str, flag: str, kind: type) -> list:
    """The comma-separated values of ``flag``, each of type ``kind``."""
    values = _split(text)
    try:
        return [kind(v) for v in values]
    except ValueError:
        raise InputError(f'{flag} {text}: expected comma-separated {kind.__name__} values') from None


def check_test_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse the options that contradict each other or that the code does not implement."""
    if args.num_set_segments != 1:
        parser.error(f'--num_set_segments {args.num_set_segments}: only 1 is implemented (one set of '
                     '--test_segments segments per clip; the release never read the flag); for more clips per '
                     'video use --twice_sample or --dense_sample')
    if args.dense_sample and args.twice_sample:
        parser.error('--dense_sample and --twice_sample both set the clips per video (10 dense clips or 2): '
                     'give one')
    for flag, value, least in (('--batch_size', args.batch_size, 1), ('--workers', args.workers, 0),
                               ('--input_size', args.input_size, 1)):
        if value is not None and value < least:
            parser.error(f'{flag} {value}: must be {least} or more')


@dataclass
class Branch:
    """One checkpoint, its model settings and its data."""
    path: str
    modality: str
    arch: str
    num_segments: int
    options: dict
    checkpoint: dict | None = None
    model: torch.nn.Module | None = None
    dataset: object = None
    input_size: int = DEFAULT_INPUT_SIZE


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(',')] if text else []


def check_lists(list_files: list[str], branches: list[Branch]) -> None:
    """Branches must test the same videos in the same order with the same labels."""
    parsed = [[(r.path, r.label) for r in parse_list_file(f)] for f in list_files]
    for f, videos in zip(list_files[1:], parsed[1:]):
        if videos != parsed[0]:
            raise InputError(f'test lists differ between branches: {list_files[0]} and {f} do not hold '
                             'the same videos and labels in the same order')


def ensemble_name(branches: list[Branch]) -> str:
    modalities = sorted(b.modality for b in branches)
    if len(branches) == 1:
        return branches[0].modality
    if modalities == ['PA', 'RGB']:
        return 'Full'
    if modalities == ['Lite', 'PA', 'RGB']:
        return 'En'
    return '+'.join(b.modality for b in branches)


def views_of(args: argparse.Namespace, input_size: int) -> TestViews:
    """The clips and crops of the command line, at a branch's ``input_size``."""
    return TestViews(crops=args.test_crops, full_res=args.full_res, twice_sample=args.twice_sample,
                     dense_sample=args.dense_sample, input_size=input_size)


@torch.no_grad()
def branch_scores(branch: Branch, clips: torch.Tensor, views: int, args, precision: RunPrecision, mean,
                  std) -> torch.Tensor:
    """Scores of a batch of videos: ``(B, views*T*L*3, H, W)`` uint8 -> ``(B, num_class)`` fp32, the
    mean over views (of probabilities with --softmax); the model runs in ``precision``."""
    batch = clips.size(0)
    x = to_model_input(clips, mean, std, precision.device)
    x = x.view(batch * views, -1, *x.shape[-2:])
    with precision.autocast():
        out = branch.model(x)
    out = out.float().view(batch, views, -1)
    if args.softmax:
        out = F.softmax(out, dim=2)
    return out.mean(dim=1).cpu()


def parse_test_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with the options that contradict each other refused (exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_test_args(args, parser)
    return args


def branch_settings(args: argparse.Namespace) -> tuple[list[str], list[int | None], list[float], list[str]]:
    """(checkpoints, segment counts, weights, test lists) of the command line, one per branch
    (segment counts: None for the checkpoint's; test lists: none, one for all, or one per branch);
    InputError when the counts disagree."""
    weights = _split(args.weights)
    segments = _numbers(args.test_segments, '--test_segments', int) if args.test_segments else [None] * len(weights)
    coeff = _numbers(args.coeff, '--coeff', float) if args.coeff else [1.0] * len(weights)
    if len(segments) != len(weights):
        raise InputError(f'--test_segments {args.test_segments}: {len(weights)} checkpoint(s) in --weights but '
                         f'{len(segments)} value(s) in --test_segments: give one segment count per checkpoint')
    if any(s is not None and s < 1 for s in segments):
        raise InputError(f'--test_segments {args.test_segments}: segment counts must be 1 or more')
    if len(coeff) != len(weights):
        raise InputError(f'--coeff {args.coeff}: {len(weights)} checkpoint(s) in --weights but {len(coeff)} '
                         '--coeff value(s): give one weight per checkpoint')
    test_lists = _split(args.test_list)
    if len(test_lists) not in (0, 1, len(weights)):
        raise InputError(f'--test_list {args.test_list}: give one list, or one per checkpoint ({len(weights)}), '
                         f'not {len(test_lists)}')
    return weights, segments, coeff, test_lists


def main(argv: list[str] | None = None) -> dict:
    args = parse_test_args(argv)
    weights, segments, coeff, test_lists = branch_settings(args)
    missing = [w for w in weights if not os.path.isfile(w)]
    if missing:
        raise FileNotFoundError(f'--weights: checkpoint(s) not found: {", ".join(missing)}\n'
                                '(released checkpoints: see pretrained/README.md)')

    info = resolve_dataset(args.dataset, args.root_path, val_list=test_lists[0] if test_lists else None,
                           splits=('val',), lmdb=args.lmdb)
    list_files = (test_lists * len(weights))[:len(weights)] if test_lists else [str(info.val_list)] * len(weights)
    device = pick_device(args.gpus)
    precision = resolve_precision(args.amp, args.channels_last, device,
                                  fp32_default='default of test_models.py: the released numbers')

    data_parallel = device.type == 'cuda' and torch.cuda.device_count() > 1 and (args.gpus is None or len(args.gpus) > 1)
    if args.compile and data_parallel:
        # DataParallel's replicas would share the compiled call of the model on the first GPU
        raise InputError('--compile runs one model on one device: pass one GPU (--gpus N), or --no_compile')

    # Everything that can be wrong is checked before a single video is read.
    branches = []
    for path, n_seg in zip(weights, segments):
        ckpt = read_checkpoint(path)
        # class count or options that do not fit: an InputError before any video is read
        options = branch_options(path, ckpt, n_seg, info.num_class, args.img_feature_dim)
        branches.append(Branch(path, options['modality'], options['base_model'], options['num_segments'], options,
                               ckpt, input_size=args.input_size or trained_input_size(ckpt)))
    check_lists(list_files, branches)
    if args.lmdb is not None:
        print(f'=> frames of frame-folder lines from the LMDB store {lmdb_location(info, args.lmdb)}')

    class_names = None  # the checkpoints' own, where the dataset has no category file
    for branch, list_file in zip(branches, list_files):
        model = build_pan(branch.options, branch.checkpoint, branch.path)
        sources = input_sources(branch.checkpoint, {'segments': args.test_segments and '--test_segments',
                                                    'size': args.input_size and '--input_size'})
        class_names = class_names or checkpoint_class_names(branch.checkpoint, info.num_class)
        branch.checkpoint = None
        views = views_of(args, branch.input_size)
        precision.apply(model.to(device).eval())
        if data_parallel:
            model = torch.nn.DataParallel(model, device_ids=args.gpus)
        branch.model = model
        mean, std = model_stats(model)
        data_length = branch.options.get('data_length', DEFAULT_DATA_LENGTH)
        branch.dataset = build_clip_dataset(
            info, list_file, 'test', branch.modality, branch.num_segments, data_length, branch.input_size,
            mean, std, views=views, remove_missing=len(branches) == 1,
            substitute_missing=args.substitute_missing, lmdb_path=lmdb_location(info, args.lmdb),
            line_check=LineCheck(workers=args.workers, skip_bad=args.skip_bad))
        for line in data_report(branch.dataset):
            print(line, flush=True)
        print(f'=> {branch.modality} branch: {os.path.basename(branch.path)} ({branch.arch}, '
              f'{branch.num_segments} segments x {frames_per_segment(branch.modality, data_length)} '
              f'frames, head {"VAP" if branch.options["has_VAP"] else "TSN"}, {views.crop_size}x{views.crop_size} '
              f'crops; {sources})')
    videos = [r.path for r in branches[0].dataset.video_list]
    total = len(videos) if args.max_num < 0 else min(args.max_num, len(videos))
    compiled = RunCompile(False, 'DataParallel over several GPUs') if data_parallel else \
        resolve_compile(args.compile, total * views.num_views, PAYS_AFTER['test'], 'test clips')
    if compiled.enabled:
        for branch in branches:
            compile_for_inference(branch.model)
    print(f'{precision.describe()}, {compiled.describe()}', flush=True)
    subset = list(range(total))
    loaders = [torch.utils.data.DataLoader(torch.utils.data.Subset(b.dataset, subset), batch_size=args.batch_size,
                                           shuffle=False, num_workers=args.workers,
                                           pin_memory=device.type == 'cuda') for b in branches]

    kind = ensemble_name(branches)
    per_branch = [[] for _ in branches]
    labels = []
    top1, top5 = AverageMeter(), AverageMeter()
    start = time.time()
    bar = tqdm(zip(*loaders), total=len(loaders[0]), desc=f'{kind} test', unit='batch',
               disable=not sys.stderr.isatty())
    for step, batches in enumerate(bar):
        target = batches[0][1]
        for i, (clips, label) in enumerate(batches):
            if not torch.equal(label, target):
                raise InputError('branches disagree on the labels of the same videos')
            mean, std = model_stats(branches[i].model)
            per_branch[i].append(branch_scores(branches[i], clips, views.num_views, args, precision, mean, std))
        scores = sum(c * s[-1] for c, s in zip(coeff, per_branch)) / len(branches)
        p1, p5 = accuracy(scores, target, (1, 5))
        top1.update(p1, target.size(0))
        top5.update(p5, target.size(0))
        labels.append(target)
        done = top1.count
        rate = done / max(time.time() - start, 1e-9)
        bar.set_postfix(videos_per_s=f'{rate:.1f}', top1=f'{top1.avg:.2f}')
        if step % 20 == 0 or done == total:
            print(f'video {done} done, total {done}/{total}, {rate:.2f} videos/s, '
                  f'moving Prec@1 {top1.avg:.3f} Prec@5 {top5.avg:.3f}', flush=True)

    branch_arrays = [torch.cat(s).numpy() for s in per_branch]
    scores = sum(c * s for c, s in zip(coeff, branch_arrays)) / len(branches)
    labels = torch.cat(labels).numpy()
    preds = scores.argmax(axis=1)
    cm = confusion(labels, preds, info.num_class)
    cls_acc = class_accuracy(cm)
    names = info.class_names() or class_names or [f'class {i}' for i in range(info.num_class)]
    print('Per-class top-1 (right / videos):')
    print('\n'.join(per_class_lines(cm, names)))
    print(f'Upper bound of class accuracy {relabelled_upper_bound(cm) * 100:.02f}% '
          '(each class credited with its most frequent prediction)')
    print('-----Evaluation is finished------')
    print(f'Class Accuracy {np.mean(cls_acc) * 100:.02f}%')
    print(f'Overall Prec@1 {top1.avg:.02f}% Prec@5 {top5.avg:.02f}%')

    out = args.save_scores or os.path.join('test_results', f'{args.dataset}_{kind}.npz')
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    np.savez(out, scores=scores, labels=labels, videos=np.array(videos[:total]),
             branch_scores=np.stack(branch_arrays), branch_weights=np.array(weights), coeff=np.array(coeff))
    print(f'=> scores saved to {out}')
    if not args.no_confusion_png:
        png = os.path.splitext(out)[0] + '_confusion.png'
        save_confusion_png(cm, png, f'{kind} on {args.dataset}: Prec@1 {top1.avg:.2f}%', names)
        print(f'=> confusion matrix drawn in {png}')
    if args.csv_file:
        categories = read_categories(info.category_file)
        write_submission(args.csv_file, videos[:total], scores, categories,
                         top5_indices=args.dataset == 'somethingv2')
        print(f'=> submission written to {args.csv_file}')
    return {'top1': top1.avg, 'top5': top5.avg, 'scores_file': out, 'kind': kind}


def model_stats(model: torch.nn.Module) -> tuple[list[float], list[float]]:
    """Input mean and std of a (possibly DataParallel-wrapped) PAN model."""
    inner = getattr(model, 'module', model)
    return inner.input_mean, inner.input_std


if __name__ == '__main__':
    run_cli_main(main)
