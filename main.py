"""Train PAN_Lite, or the RGB / PA branch of PAN_Full.

    python main.py something Lite --arch resnet50 --num_segments 8 --lr 0.01 --lr_steps 30 60 --epochs 80 -b 64
    torchrun --nproc_per_node=8 main.py something Lite ...     # DistributedDataParallel

Runs on CUDA when present, else on the CPU. Writes ``log/<name>/{log.csv,args.txt,events.*}`` and
``checkpoint/<name>/ckpt.pth.tar`` (+ ``ckpt.best.pth.tar``), atomically, every epoch. With ``-e``
(evaluate only) it writes ``log/<name>_eval/log.csv`` alone (see :func:`eval_name`).

A mistake in the input (a missing or unreadable file, a bad list line, a checkpoint that does not
fit, options that contradict each other) prints ``error: ...`` and exits with status 2, with no
traceback unless ``--debug`` (ops/cli.py); a non-finite loss prints ``error: ...`` and exits with 1.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from opts import parse_args
from ops.checkpoint import load_for_finetune, load_pan_weights, read_checkpoint, save_checkpoint
from ops.cli import QUIET_RANK_GRACE_S, run_cli_main
from ops.data_setup import build_clip_dataset, lmdb_location, resolve_dataset, to_model_input
from ops.distributed import (DistContext, ShardSampler, all_reduce_tensor, cleanup_distributed,
                             setup_distributed)
from ops.errors import InputError
from ops.image_io import FrameReadError
from ops.models import PAN
from ops.naming import run_name
from ops.optim import adjust_learning_rate, build_optimizer
from ops.precision import amp_settings, autocast
from ops.run_logger import RunLogger
from ops.utils import (AverageMeter, correct_topk_tensor, rng_state, seed_everything, seed_worker,
                       set_rng_state)
from ops.video_reader import VideoReadError


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops without saving."""


def store_name(args: argparse.Namespace, with_epochs: bool = True) -> str:
    return args.store_name or run_name(args.modality, args.dataset, args.arch, args.num_segments,
                                       args.epochs if with_epochs else None,
                                       args.consensus_type, args.shift, args.shift_div, args.shift_place,
                                       args.temporal_pool, args.pretrain, args.lr_type, args.dense_sample,
                                       args.suffix)


def eval_name(args: argparse.Namespace, checkpoint: dict | None) -> str:
    """The log folder of ``-e`` (evaluate only): ``<run name>_eval``, the run name being
    --store_name if given, else the one stored in the checkpoint of --resume (main.py writes it),
    else the one built from the options without ``_e<epochs>`` (no epoch is trained), e.g. for a
    released checkpoint file."""
    stored = (checkpoint or {}).get('store_name')
    base = args.store_name or (stored if isinstance(stored, str) and stored else store_name(args, with_epochs=False))
    return base + '_eval'


def check_world_size(batch_size: int, world_size: int) -> None:
    """--batch-size is the total over all processes: it must split evenly between them."""
    if batch_size % world_size:
        raise InputError(f'--batch-size {batch_size}: the total over {world_size} processes must divide evenly '
                         f'between them (e.g. --batch-size {max(batch_size - batch_size % world_size, world_size)})')


def check_checkpoint_flags(args: argparse.Namespace) -> None:
    """--resume and --tune_from name existing files (checked before any model is built)."""
    for flag, path in (('--resume', args.resume), ('--tune_from', args.tune_from)):
        if path and not os.path.isfile(path):
            raise FileNotFoundError(f'{flag} {path}: no such checkpoint file')


def model_options(args: argparse.Namespace, num_class: int) -> dict:
    """Keyword arguments of ``PAN``; stored in every checkpoint so test_models.py can rebuild it."""
    return dict(num_class=num_class, num_segments=args.num_segments, modality=args.modality,
                base_model=args.arch, consensus_type=args.consensus_type, dropout=args.dropout,
                img_feature_dim=args.img_feature_dim, partial_bn=not args.no_partialbn, is_shift=args.shift,
                shift_div=args.shift_div, shift_place=args.shift_place,
                fc_lr5=not (args.tune_from and args.dataset in args.tune_from), temporal_pool=args.temporal_pool,
                non_local=args.non_local, data_length=args.data_length, has_VAP=args.VAP)


def make_loader(dataset, batch_size: int, workers: int, sampler, device: torch.device, train: bool) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=device.type == 'cuda', drop_last=train, worker_init_fn=seed_worker,
                      persistent_workers=False)


def progress(iterable, ctx: DistContext, desc: str):
    """A tqdm bar on the main process when its output is a terminal."""
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True,
                disable=not (ctx.is_main and sys.stderr.isatty()))


def train_one_epoch(model, loader, optimizer, scaler, epoch: int, lr: float, args, ctx: DistContext,
                    logger: RunLogger, amp_dtype) -> dict:
    """One pass over the training data; returns averaged loss and top-1/top-5 over all processes.

    A step reads nothing back from the device (beyond what a grad scaler's step needs): the metrics
    are summed on the device, and reduced over processes and read only at ``--print-freq`` steps and
    at the end of the epoch. A non-finite loss is caught there too, and reported at the step where it
    first appeared; the caller writes no checkpoint for the epoch."""
    batch_time, data_time, losses, top1, top5 = (AverageMeter() for _ in range(5))
    model.train()
    optimizer.zero_grad(set_to_none=True)
    steps = len(loader)
    # On the device: loss * n, n, correct@1, correct@5 summed over the steps since the last print point,
    # and the first step of this epoch whose loss was not finite (``steps`` while there is none).
    window = torch.zeros(4, dtype=torch.float64, device=ctx.device)
    first_bad = torch.full((), steps, dtype=torch.int64, device=ctx.device)
    end = time.time()
    bar = progress(loader, ctx, f'Epoch {epoch}')
    for i, (clips, target) in enumerate(bar):
        data_time.update(time.time() - end)
        clips = to_model_input(clips, args.input_mean, args.input_std, ctx.device)
        target = target.to(ctx.device, non_blocking=True)
        update_now = (i + 1) % args.iter_size == 0 or i + 1 == steps
        sync = model.no_sync() if (ctx.distributed and not update_now) else nullcontext()
        with sync:
            with autocast(ctx.device, amp_dtype):
                output = model(clips)
                loss = F.cross_entropy(output.float(), target)
            scaled = loss / args.iter_size
            (scaler.scale(scaled) if scaler is not None else scaled).backward()

        n = target.size(0)
        step_loss = loss.detach().double()
        window += torch.cat([(step_loss * n).view(1), step_loss.new_full((1,), n),
                             correct_topk_tensor(output.detach(), target, (1, 5)).double()])
        first_bad = torch.where(torch.isfinite(step_loss), first_bad, first_bad.clamp(max=i))

        if update_now:
            if scaler is not None:
                scaler.unscale_(optimizer)
            if args.clip_gradient and args.clip_gradient > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_gradient)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        # Host time: without a per-step sync the device may still be working on this step.
        batch_time.update(time.time() - end)
        end = time.time()
        if i % args.print_freq == 0 or i + 1 == steps:
            # The only reads of the device: reduce over processes, then bring to the host.
            loss_sum, count, c1, c5, bad = torch.cat([
                all_reduce_tensor(window, ctx, 'sum'),
                all_reduce_tensor(first_bad, ctx, 'min').double().view(1)]).tolist()
            window.zero_()
            if bad < steps:
                raise NonFiniteLossError(f'Loss is not finite at epoch {epoch}, step {int(bad)}/{steps}: '
                                         'training stopped; the last good checkpoint is left as it was. '
                                         'Try a lower --lr or --gd.')
            # 'val' is over the steps since the last print point (not the last step alone), 'avg' over
            # the epoch so far.
            count = max(count, 1.0)
            losses.update(loss_sum / count, int(count))
            top1.update(100.0 * c1 / count, int(count))
            top5.update(100.0 * c5 / count, int(count))
            bar.set_postfix(loss=f'{losses.avg:.3f}', top1=f'{top1.avg:.1f}')
            line = (f'Epoch: [{epoch}][{i}/{steps}], lr: {lr:.5f}\tTime {batch_time.val:.3f} ({batch_time.avg:.3f})\t'
                    f'Data {data_time.val:.3f} ({data_time.avg:.3f})\tLoss {losses.val:.4f} ({losses.avg:.4f})\t'
                    f'Prec@1 {top1.val:.3f} ({top1.avg:.3f})\tPrec@5 {top5.val:.3f} ({top5.avg:.3f})')
            logger.line(line)
            if bar.disable and ctx.is_main:
                print(line, flush=True)
    return {'loss': losses.avg, 'top1': top1.avg, 'top5': top5.avg}


@torch.no_grad()
def validate(model, loader, epoch: int, args, ctx: DistContext, logger: RunLogger, amp_dtype) -> dict:
    """Loss and top-1/top-5 on the validation list, each video counted once over all processes."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=ctx.device)  # loss * n, n, correct@1, correct@5
    for i, (clips, target) in enumerate(progress(loader, ctx, f'Val {epoch}')):
        clips = to_model_input(clips, args.input_mean, args.input_std, ctx.device)
        target = target.to(ctx.device, non_blocking=True)
        with autocast(ctx.device, amp_dtype):
            output = model(clips).float()
        loss = F.cross_entropy(output, target, reduction='sum')
        sums += torch.cat([loss.double().view(1), sums.new_full((1,), target.size(0)),
                           correct_topk_tensor(output, target, (1, 5)).double()])
    # Summed on the device; reduced over processes and read on the host once, here.
    loss_sum, count, c1, c5 = all_reduce_tensor(sums, ctx, 'sum').tolist()
    count = max(count, 1)
    result = {'loss': loss_sum / count, 'top1': 100.0 * c1 / count, 'top5': 100.0 * c5 / count}
    line = f"Testing Results: Prec@1 {result['top1']:.3f} Prec@5 {result['top5']:.3f} Loss {result['loss']:.5f}"
    logger.line(line)
    if ctx.is_main:
        print(line, flush=True)
    return result


def save_run(state: dict, folder: str, is_best: bool) -> None:
    """ckpt.pth.tar every epoch, ckpt.best.pth.tar when validation improved; both written atomically."""
    path = os.path.join(folder, 'ckpt.pth.tar')
    save_checkpoint(state, path)
    if is_best:
        best = os.path.join(folder, 'ckpt.best.pth.tar')
        tmp = best + '.copying'
        shutil.copyfile(path, tmp)
        os.replace(tmp, best)


def run(args: argparse.Namespace, ctx: DistContext) -> dict:
    seed_everything(args.seed)
    check_world_size(args.batch_size, ctx.world_size)
    check_checkpoint_flags(args)
    info = resolve_dataset(args.dataset, args.root_path, args.train_list, args.val_list,
                           splits=('val',) if args.evaluate else ('train', 'val'), lmdb=args.lmdb)
    ckpt = read_checkpoint(args.resume) if args.resume else None
    name = eval_name(args, ckpt) if args.evaluate else store_name(args)
    log_dir = os.path.join(args.root_log, name)
    ckpt_dir = os.path.join(args.root_model, name)

    options = model_options(args, info.num_class)
    model = PAN(**options, pretrain=args.pretrain, print_spec=ctx.is_main)
    if args.tune_from:
        report = load_for_finetune(model, args.tune_from, drop_classifier=args.dataset not in args.tune_from)
        if ctx.is_main:
            print(f'=> fine-tuning from {args.tune_from}: {len(report["loaded"])} tensors loaded, '
                  f'{len(report["skipped"])} skipped')
    data = dict(modality=args.modality, num_segments=args.num_segments, data_length=args.data_length,
                input_size=args.input_size, mean=model.input_mean,
                std=model.input_std, dense_sample=args.dense_sample, substitute_missing=args.substitute_missing,
                lmdb_path=lmdb_location(info, args.lmdb))
    # evaluation reads the val list alone
    train_set = None if args.evaluate else build_clip_dataset(info, str(info.train_list), 'train', **data)
    val_set = build_clip_dataset(info, str(info.val_list), 'val', **data)
    args.input_mean, args.input_std = model.input_mean, model.input_std

    model.to(ctx.device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    if args.sync_bn and ctx.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(model.get_optim_policies(), args.lr, args.momentum, args.weight_decay,
                                args.optimizer)
    amp_dtype, needs_scaler = amp_settings(args.amp, ctx.device)
    scaler = torch.amp.GradScaler(ctx.device.type) if needs_scaler else None

    best_prec1 = 0.0
    start_epoch = args.start_epoch
    if ckpt is not None:
        load_pan_weights(model, ckpt, source=args.resume)
        if 'optimizer' in ckpt and ckpt['optimizer']:
            optimizer.load_state_dict(ckpt['optimizer'])
        if scaler is not None and ckpt.get('scaler'):
            scaler.load_state_dict(ckpt['scaler'])
        start_epoch = int(ckpt.get('epoch', 0))
        best_prec1 = float(ckpt.get('best_prec1', 0.0))
        if ckpt.get('rng'):
            set_rng_state(ckpt['rng'])
        if ctx.is_main:
            print(f"=> resumed {args.resume} at epoch {start_epoch} (best Prec@1 {best_prec1:.3f})")

    per_process = args.batch_size // ctx.world_size
    val_loader = make_loader(val_set, per_process, args.workers, ShardSampler(len(val_set), ctx.rank, ctx.world_size),
                             ctx.device, train=False)
    if args.evaluate:
        return evaluate_only(model, val_loader, start_epoch, args, ctx, log_dir, info, amp_dtype, per_process)
    net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == 'cuda' else None) \
        if ctx.distributed else model
    train_sampler = DistributedSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                       seed=args.seed, drop_last=True)
    train_loader = make_loader(train_set, per_process, args.workers, train_sampler, ctx.device, train=True)
    if len(train_loader) == 0:
        raise InputError(f'--batch-size {args.batch_size}: {len(train_set)} training videos make no full batch '
                         f'of {per_process} per process: lower --batch-size')

    logger = RunLogger(log_dir, enabled=ctx.is_main, resume=bool(args.resume))
    logger.write_args(str(args))
    if ctx.is_main:
        print(f'=> run {name}: {len(train_set)} train / {len(val_set)} val videos, {ctx.world_size} process(es) '
              f'on {ctx.device}, batch {args.batch_size} ({per_process} per process)', flush=True)
    try:
        last = {}
        for epoch in range(start_epoch, args.epochs):
            # Reseeding per epoch makes a resumed run draw the same data and dropout as an unbroken one.
            seed_everything(args.seed + 1000 * epoch + ctx.rank)
            train_sampler.set_epoch(epoch)
            lr = adjust_learning_rate(optimizer, epoch, args.lr, args.lr_type, args.lr_steps, args.epochs,
                                      args.weight_decay)
            train = train_one_epoch(net, train_loader, optimizer, scaler, epoch, lr, args, ctx, logger, amp_dtype)
            logger.scalars({'loss/train': train['loss'], 'acc/train_top1': train['top1'],
                            'acc/train_top5': train['top5'], 'lr': lr}, epoch)
            is_best = False
            if (epoch + 1) % args.eval_freq == 0 or epoch + 1 == args.epochs:
                last = validate(model, val_loader, epoch, args, ctx, logger, amp_dtype)
                is_best = last['top1'] > best_prec1
                best_prec1 = max(best_prec1, last['top1'])
                logger.scalars({'loss/test': last['loss'], 'acc/test_top1': last['top1'],
                                'acc/test_top5': last['top5'], 'acc/test_top1_best': best_prec1}, epoch)
                logger.line(f'Best Prec@1: {best_prec1:.3f}')
                if ctx.is_main:
                    print(f'Best Prec@1: {best_prec1:.3f}', flush=True)
            if ctx.is_main:
                save_run({'epoch': epoch + 1, 'arch': args.arch,
                          'state_dict': {'module.' + k: v for k, v in model.state_dict().items()},
                          'optimizer': optimizer.state_dict(), 'best_prec1': best_prec1,
                          'scaler': scaler.state_dict() if scaler is not None else None,
                          'rng': rng_state(), 'args': vars(args), 'model_options': options,
                          'dataset': args.dataset, 'store_name': name}, ckpt_dir, is_best)
        return {**last, 'best_prec1': best_prec1, 'store_name': name}
    finally:
        logger.close()


def evaluate_only(model, val_loader, epoch: int, args, ctx: DistContext, log_dir: str, info, amp_dtype,
                  per_process: int) -> dict:
    """``-e``: validate once, appending to ``<log_dir>/log.csv`` (no args.txt, events or checkpoint)."""
    source = args.resume or 'the initial weights (no --resume)'
    logger = RunLogger(log_dir, enabled=ctx.is_main, resume=True, tensorboard=False)
    logger.line(f'Evaluate {source} (epoch {epoch}) on {info.val_list}')
    if ctx.is_main:
        print(f'=> evaluate {source}: {len(val_loader.dataset)} val videos, {ctx.world_size} process(es) on '
              f'{ctx.device}, batch {args.batch_size} ({per_process} per process); log in {log_dir}', flush=True)
    try:
        return validate(model, val_loader, epoch, args, ctx, logger, amp_dtype)
    finally:
        logger.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # before joining the process group: every process refuses alike, rank 0 says why
    check_world_size(args.batch_size, int(os.environ.get('WORLD_SIZE', '1')))
    check_checkpoint_flags(args)
    ctx = setup_distributed(args.gpus)
    if ctx.device.type == 'cuda' and args.gpus and len(args.gpus) > 1 and not ctx.distributed:
        print(f'=> one process uses one GPU ({ctx.device}); for {len(args.gpus)} GPUs launch with '
              f'torchrun --nproc_per_node={len(args.gpus)} main.py ...', file=sys.stderr)
    try:
        run(args, ctx)
    except NonFiniteLossError as err:
        if args.debug:
            raise
        if ctx.is_main:  # every process met the same (all-reduced) loss
            print(f'error: {err}', file=sys.stderr, flush=True)
        else:
            time.sleep(QUIET_RANK_GRACE_S)  # torchrun stops the others when one exits: let rank 0 print
        sys.exit(1)
    finally:
        cleanup_distributed()


if __name__ == '__main__':
    # A frame or video that does not read may be in one process's share of the data alone: every
    # process reports those; other mistakes are the same in every process and rank 0 reports them.
    run_cli_main(main, every_rank=(FrameReadError, VideoReadError))
