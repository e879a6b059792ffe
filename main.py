"""Train PAN_Lite, or the RGB / PA branch of PAN_Full.

    python main.py something Lite --arch resnet50 --num_segments 8 --lr 0.01 --lr_steps 30 60 --epochs 80 -b 64
    torchrun --nproc_per_node=8 main.py something Lite ...     # DistributedDataParallel

Runs on CUDA when present, else on the CPU. Writes ``log/<name>/{log.csv,args.txt,events.*}`` and
``checkpoint/<name>/ckpt.pth.tar`` (+ ``ckpt.best.pth.tar``), atomically, every epoch. With ``-e``
(evaluate only) it writes ``log/<name>_eval/log.csv`` alone (see :func:`eval_name`).

A mistake in the input (a missing or unreadable file, a bad list line, a checkpoint that does not
fit, options that contradict each other) prints ``error: ...`` and exits with status 2, with no
traceback unless ``--debug`` (ops/engine/cli.py); a non-finite loss prints ``error: ...`` and exits with 1.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from opts import parse_args
from ops.data_setup import build_clip_dataset, data_report, lmdb_location, resolve_dataset, to_model_input
from ops.engine.checkpoint import load_for_finetune, load_pan_weights, read_checkpoint
from ops.engine.cli import QUIET_RANK_GRACE_S, run_cli_main
from ops.engine.compile import PAYS_AFTER, compile_for_inference, compile_for_training, resolve_compile
from ops.engine.distributed import (DistContext, ShardSampler, all_gather_objects, all_reduce_tensor,
                                    cleanup_distributed, setup_distributed)
from ops.engine.naming import run_name
from ops.engine.optim import adjust_learning_rate, build_optimizer
from ops.engine.precision import RunPrecision, amp_settings, autocast
from ops.engine.resumable import ResumableSampler, SeededSamples, restore_rng_state
from ops.engine.run_logger import RunLogger
from ops.engine.run_state import (AUTO, RunCheckpoints, check_run_folder_free, clear_run_folder, describe,
                                  lock_run_folder, resume_source)
from ops.errors import InputError
from ops.frames.image_io import FrameReadError
from ops.frames.video_reader import VideoReadError
from ops.list_check import LineCheck
from ops.models import PAN
from ops.transforms.deferred import collate_encoded
from ops.utils import AverageMeter, correct_topk_tensor, seed_everything, seed_worker


class RunStopped(RuntimeError):
    """Training cannot go on; the last checkpoint is intact. main() prints it and exits with 1."""


class NonFiniteLossError(RunStopped):
    """The loss became NaN or infinite; training stops without saving."""


class DataWorkerDiedError(RunStopped):
    """A DataLoader worker process died (killed, out of memory)."""


# torch's messages for a worker that exited without reporting an error
WORKER_DIED = re.compile(r'DataLoader worker \(pids?\(?s?\)? [\d, ]+\)')


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
        if path and not (flag == '--resume' and path == AUTO) and not os.path.isfile(path):
            raise FileNotFoundError(f'{flag} {path}: no such checkpoint file')


def model_options(args: argparse.Namespace, num_class: int) -> dict:
    """Keyword arguments of ``PAN``; stored in every checkpoint so test_models.py can rebuild it."""
    return dict(num_class=num_class, num_segments=args.num_segments, modality=args.modality,
                base_model=args.arch, consensus_type=args.consensus_type, dropout=args.dropout,
                img_feature_dim=args.img_feature_dim, partial_bn=not args.no_partialbn, is_shift=args.shift,
                shift_div=args.shift_div, shift_place=args.shift_place,
                fc_lr5=not (args.tune_from and args.dataset in args.tune_from), temporal_pool=args.temporal_pool,
                non_local=args.non_local, data_length=args.data_length, has_VAP=args.VAP,
                causal_shift=args.causal_shift)


def make_loader(dataset, batch_size: int, workers: int, sampler, device: torch.device, train: bool,
                collate_fn=None) -> DataLoader:
    """The training loader keeps its workers between epochs (``persistent_workers``): each keeps the
    video indexes it read, and nothing is started again per epoch. Resumption stays exact because a
    worker's draws depend on no state it keeps: its sampler hands it ``(epoch, index)``
    (:class:`ResumableSampler` with ``tag_epoch``) and each clip is seeded by those alone. The
    validation loader, used every --eval-freq epochs, lets its workers go."""
    # Its own generator: making an iterator then draws its workers' seeds without moving the RNG
    # that dropout draws from (a resumed epoch makes its iterator at another point than an unbroken one).
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=device.type == 'cuda', drop_last=train, worker_init_fn=seed_worker,
                      persistent_workers=train and workers > 0, generator=torch.Generator(), collate_fn=collate_fn)


def progress(iterable, ctx: DistContext, desc: str, total: int | None = None, initial: int = 0):
    """A tqdm bar on the main process when its output is a terminal."""
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True, total=total, initial=initial,
                disable=not (ctx.is_main and sys.stderr.isatty()))


def train_one_epoch(model, loader, optimizer, scaler, epoch: int, lr: float, args, ctx: DistContext,
                    logger: RunLogger, amp_dtype, steps: int | None = None, start: int = 0,
                    meters: dict | None = None, save_at: Callable[[int, dict], None] | None = None) -> dict:
    """Batches ``start`` .. ``steps - 1`` of an epoch (``steps`` None: ``len(loader)``); returns averaged loss and top-1/top-5 over all
    processes and the whole epoch (``meters``: the epoch's meters when it resumes mid-way, as
    :func:`meter_state` gave them).

    A step reads nothing back from the device (beyond what a grad scaler's step needs): the metrics
    are summed on the device, and reduced over processes and read only at ``--print-freq`` steps, at
    checkpoints and at the end of the epoch. A non-finite loss is caught there too, and reported at
    the step where it first appeared, before any checkpoint holds it. Every ``--save_steps``
    optimizer steps of the run, ``save_at(batches done, meter_state)`` writes a mid-epoch checkpoint."""
    batch_time, data_time = AverageMeter(), AverageMeter()
    waited = WaitShare()
    losses, top1, top5 = (AverageMeter() for _ in range(3))
    if meters:
        for meter, key in ((losses, 'loss'), (top1, 'top1'), (top5, 'top5')):
            meter.sum, meter.count, meter.val = meters[key]
    steps = len(loader) if steps is None else steps
    save_steps = getattr(args, 'save_steps', 0)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    updates_per_epoch = math.ceil(steps / args.iter_size)
    # On the device: loss * n, n, correct@1, correct@5 summed over the steps since the last read,
    # and the first step of this epoch whose loss was not finite (``steps`` while there is none).
    window = torch.zeros(4, dtype=torch.float64, device=ctx.device)
    first_bad = torch.full((), steps, dtype=torch.int64, device=ctx.device)

    def read_window() -> None:
        """Reduce the window over processes, fail on a non-finite loss, fold it into the meters."""
        loss_sum, count, c1, c5, bad = torch.cat([
            all_reduce_tensor(window, ctx, 'sum'),
            all_reduce_tensor(first_bad, ctx, 'min').double().view(1)]).tolist()
        window.zero_()
        if bad < steps:
            raise NonFiniteLossError(f'Loss is not finite at epoch {epoch}, step {int(bad)}/{steps}: '
                                     'training stopped; the last good checkpoint is left as it was. '
                                     'Try a lower --lr or --gd.')
        if count:
            # 'val' is over the steps since the last read (not the last step alone), 'avg' over the epoch
            losses.update(loss_sum / count, int(count))
            top1.update(100.0 * c1 / count, int(count))
            top5.update(100.0 * c5 / count, int(count))

    end = time.time()
    bar = progress(loader, ctx, f'Epoch {epoch}', total=steps, initial=start)
    for i, (clips, target) in enumerate(bar, start=start):
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
        if i == start:  # the wait is measured from the second step: the first starts the workers
            waited.update(-data_time.sum, -batch_time.sum)
        if i % args.print_freq == 0 or i + 1 == steps:
            read_window()  # the only reads of the device, with the checkpoints'
            bar.set_postfix(loss=f'{losses.avg:.3f}', top1=f'{top1.avg:.1f}')
            line = (f'Epoch: [{epoch}][{i}/{steps}], lr: {lr:.5f}\tTime {batch_time.val:.3f} ({batch_time.avg:.3f})\t'
                    f'Data {data_time.val:.3f} ({data_time.avg:.3f}, {waited.share(data_time, batch_time)} of the step)\t'
                    f'Loss {losses.val:.4f} ({losses.avg:.4f})\t'
                    f'Prec@1 {top1.val:.3f} ({top1.avg:.3f})\tPrec@5 {top5.val:.3f} ({top5.avg:.3f})')
            logger.line(line)
            if bar.disable and ctx.is_main:
                print(line, flush=True)
        # a mid-epoch checkpoint falls on an optimizer step (no gradient half accumulated); the
        # epoch's last step is left to the end-of-epoch checkpoint
        run_update = epoch * updates_per_epoch + (i + 1) // args.iter_size
        if save_at is not None and save_steps and update_now and i + 1 < steps and run_update % save_steps == 0:
            read_window()
            save_at(i + 1, meter_state(losses, top1, top5))
    if ctx.is_main and batch_time.count > 1:
        print(f'=> epoch {epoch}: waiting for data took {waited.share(data_time, batch_time)} of the training '
              f'steps\' time after the first ({waited.text(data_time, batch_time)})', flush=True)
    return {'loss': losses.avg, 'top1': top1.avg, 'top5': top5.avg}


class WaitShare:
    """The share of the steps' wall time spent waiting for the loader's next batch, counted from
    the second step of the epoch (the first waits for the workers to start)."""

    def __init__(self) -> None:
        self.data0 = self.batch0 = 0.0

    def update(self, data_offset: float, batch_offset: float) -> None:
        self.data0, self.batch0 = data_offset, batch_offset

    def seconds(self, data_time: AverageMeter, batch_time: AverageMeter) -> tuple[float, float]:
        return data_time.sum + self.data0, batch_time.sum + self.batch0

    def share(self, data_time: AverageMeter, batch_time: AverageMeter) -> str:
        """E.g. '7%' ('-' before the second step)."""
        wait, total = self.seconds(data_time, batch_time)
        return f'{100 * wait / total:.0f}%' if total > 0 else '-'

    def text(self, data_time: AverageMeter, batch_time: AverageMeter) -> str:
        wait, total = self.seconds(data_time, batch_time)
        return f'{wait:.1f} of {total:.1f} s'


def meter_state(losses: AverageMeter, top1: AverageMeter, top5: AverageMeter) -> dict:
    """The epoch's meters as plain numbers, for a mid-epoch checkpoint."""
    return {key: [m.sum, m.count, m.val] for key, m in (('loss', losses), ('top1', top1), ('top5', top5))}


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


def train_name(args: argparse.Namespace, checkpoint: dict | None) -> str:
    """The run name of training: --store_name if given, else that of the run the checkpoint of
    --resume came from (so it goes on in its own folder even when --epochs grows), else the one
    built from the options."""
    stored = (checkpoint or {}).get('store_name')
    return args.store_name or (stored if isinstance(stored, str) and stored else store_name(args))


def resume_position(ckpt: dict, steps: int, total_batch: int, seed: int, ctx: DistContext) -> tuple[int, int]:
    """``(epoch, batch)`` to start from, this process's RNG set for it. A mid-epoch position written with another
    process count or batch is moved to the same share of the epoch (the data order then differs
    from an unbroken run's, and the RNG is reseeded), with a warning."""
    epoch, batch = int(ckpt.get('epoch', 0)), int(ckpt.get('batch', 0) or 0)
    same_layout = ckpt.get('world_size', ctx.world_size) == ctx.world_size and \
        (ckpt.get('args') or {}).get('batch_size', total_batch) == total_batch
    if batch and not same_layout:
        old_total = (ckpt.get('args') or {}).get('batch_size', total_batch)
        batch = min(round(batch * old_total / total_batch), steps)
        if ctx.is_main:
            print(f"warning: the checkpoint was written mid-epoch by {ckpt.get('world_size')} process(es) with "
                  f'batch {old_total}; continuing at batch {batch} of {steps}, in another data order than an '
                  'unbroken run would use', file=sys.stderr, flush=True)
    if batch and not (same_layout and restore_rng_state(ckpt.get('rng_ranks'), ctx)):
        seed_everything(seed + 1000 * epoch + 7919 * batch + ctx.rank)
    return epoch, min(batch, steps)


def run(args: argparse.Namespace, ctx: DistContext) -> dict:
    seed_everything(args.seed)
    check_world_size(args.batch_size, ctx.world_size)
    check_checkpoint_flags(args)
    info = resolve_dataset(args.dataset, args.root_path, args.train_list, args.val_list,
                           splits=('val',) if args.evaluate else ('train', 'val'), lmdb=args.lmdb)
    if ctx.is_main and args.lmdb is not None:
        print(f'=> frames of frame-folder lines from the LMDB store {lmdb_location(info, args.lmdb)}', flush=True)
    resume, chosen = resume_source(args.resume, os.path.join(args.root_model, store_name(args)))
    if ctx.is_main and args.resume:
        print(f'=> {chosen}', flush=True)
    ckpt = read_checkpoint(resume) if resume else None
    name = eval_name(args, ckpt) if args.evaluate else train_name(args, ckpt)
    log_dir = os.path.join(args.root_log, name)
    ckpt_dir = os.path.join(args.root_model, name)
    # the same run goes on: its log is cut back to where the checkpoint was written
    continuing = ckpt is not None and ckpt.get('store_name') == name
    if not args.evaluate:  # before anything is written: never replace another run's files unasked
        check_run_folder_free(ckpt_dir, resume, continuing, args.overwrite)
    return build_and_run(args, ctx, info, ckpt, resume, name, log_dir, ckpt_dir, continuing)


def build_and_run(args: argparse.Namespace, ctx: DistContext, info, ckpt: dict | None, resume: str, name: str,
              log_dir: str, ckpt_dir: str, continuing: bool) -> dict:
    options = model_options(args, info.num_class)
    model = PAN(**options, pretrain=args.pretrain, print_spec=ctx.is_main)
    if args.tune_from:
        report = load_for_finetune(model, args.tune_from, drop_classifier=args.dataset not in args.tune_from)
        if ctx.is_main:
            print(f'=> fine-tuning from {args.tune_from}: {len(report["loaded"])} tensors loaded, '
                  f'{len(report["skipped"])} skipped')
    # every line of the lists is checked before the first epoch, each process checking its share
    line_check = LineCheck(workers=args.workers, skip_bad=args.skip_bad, share=(ctx.rank, ctx.world_size),
                           gather=lambda found: all_gather_objects(found, ctx))
    data = dict(modality=args.modality, num_segments=args.num_segments, data_length=args.data_length,
                input_size=args.input_size, mean=model.input_mean,
                std=model.input_std, dense_sample=args.dense_sample, substitute_missing=args.substitute_missing,
                lmdb_path=lmdb_location(info, args.lmdb), line_check=line_check)
    # evaluation reads the val list alone
    train_set = None if args.evaluate else SeededSamples(
        build_clip_dataset(info, str(info.train_list), 'train', **data, gpu_decode=args.gpu_decode), args.seed)
    val_set = build_clip_dataset(info, str(info.val_list), 'val', **data)
    if ctx.is_main:
        for line in [*(data_report(train_set.dataset) if train_set is not None else []), *data_report(val_set)]:
            print(line, flush=True)
    args.input_mean, args.input_std = model.input_mean, model.input_std

    model.to(ctx.device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    if args.sync_bn and ctx.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(model.get_optim_policies(), args.lr, args.momentum, args.weight_decay,
                                args.optimizer)
    amp_dtype, needs_scaler = amp_settings(args.amp, ctx.device, args.amp_dtype)
    scaler = torch.amp.GradScaler(ctx.device.type) if needs_scaler else None

    best_prec1 = 0.0
    if ckpt is not None:
        load_pan_weights(model, ckpt, source=resume)
        if 'optimizer' in ckpt and ckpt['optimizer']:
            optimizer.load_state_dict(ckpt['optimizer'])
        if scaler is not None and ckpt.get('scaler'):
            scaler.load_state_dict(ckpt['scaler'])
        best_prec1 = float(ckpt.get('best_prec1', 0.0))

    per_process = args.batch_size // ctx.world_size
    val_loader = make_loader(val_set, per_process, args.workers, ShardSampler(len(val_set), ctx.rank, ctx.world_size),
                             ctx.device, train=False)
    if args.evaluate:
        start_epoch = int(ckpt.get('epoch', 0)) if ckpt else args.start_epoch
        compile_run(model, args, ctx, amp_dtype, needs_scaler, len(val_set), training=False)
        return evaluate_only(model, val_loader, start_epoch, args, ctx, log_dir, info, amp_dtype, per_process)
    net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == 'cuda' else None) \
        if ctx.distributed else model
    train_sampler = ResumableSampler(train_set, per_process, ctx.world_size, ctx.rank, args.seed, tag_epoch=True)
    steps = train_sampler.batches_per_epoch
    train_loader = make_loader(train_set, per_process, args.workers, train_sampler, ctx.device, train=True,
                               collate_fn=collate_encoded if args.gpu_decode else None)
    if steps == 0:
        raise InputError(f'--batch-size {args.batch_size}: {len(train_set)} training videos make no full batch '
                         f'of {per_process} per process: lower --batch-size')
    first_epoch = int(ckpt.get('epoch', 0)) if ckpt else args.start_epoch
    compile_run(model, args, ctx, amp_dtype, needs_scaler, steps * max(args.epochs - first_epoch, 0), training=True)

    # everything is checked; from here on the run writes into its folder, which it holds alone
    lock = lock_run_folder(ckpt_dir, ctx)
    try:
        if args.overwrite and not continuing:
            clear_run_folder(ckpt_dir, ctx)
        parts = Training(net, model, optimizer, scaler, amp_dtype, train_set, val_set, train_sampler, train_loader,
                         val_loader, steps, per_process, options, info.class_names())
        return train_loop(args, ctx, parts, ckpt, resume, name, log_dir, ckpt_dir, continuing, best_prec1)
    finally:
        if lock is not None:
            lock.release()


def compile_run(model: torch.nn.Module, args: argparse.Namespace, ctx: DistContext, amp_dtype, needs_scaler: bool,
                calls: int, training: bool) -> None:
    """Compile ``model`` in place where --compile / --no_compile or the run's length (``calls``:
    training steps, or validation clips with -e) say so, and print the run's precision line."""
    if training:
        compiled = resolve_compile(args.compile, calls, PAYS_AFTER['train'], 'training steps')
    else:
        compiled = resolve_compile(args.compile, calls, PAYS_AFTER['test'], 'validation clips')
    if compiled.enabled:
        (compile_for_training if training else compile_for_inference)(model)
    if args.amp:
        reason = '--amp' + (f' --amp_dtype {args.amp_dtype}' if args.amp_dtype != 'auto' else '') + \
            ('; with a grad scaler' if needs_scaler else '')
    else:
        reason = "main.py's default, as released; --amp for mixed precision"
    precision = RunPrecision(ctx.device, amp_dtype, needs_scaler, args.channels_last, reason)
    if ctx.is_main:
        print(f'{precision.describe()}, {compiled.describe()}; on {ctx.device}', flush=True)


@dataclass
class Training:
    """What :func:`build_and_run` assembles for :func:`train_loop`. ``net`` is ``model`` wrapped in
    DistributedDataParallel under torchrun; ``steps``: batches per epoch and process."""
    net: torch.nn.Module
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    amp_dtype: torch.dtype | None
    train_set: SeededSamples
    val_set: torch.utils.data.Dataset
    train_sampler: ResumableSampler
    train_loader: DataLoader
    val_loader: DataLoader
    steps: int
    per_process: int
    options: dict
    class_names: list[str] | None = None


def train_loop(args, ctx: DistContext, parts: Training, ckpt: dict | None, resume: str, name: str, log_dir: str,
               ckpt_dir: str, continuing: bool, best_prec1: float) -> dict:
    """Train from the checkpoint's position (or the start) to --epochs, checkpointing and validating."""
    net, model, optimizer, scaler, amp_dtype = parts.net, parts.model, parts.optimizer, parts.scaler, parts.amp_dtype
    train_set, val_set, train_sampler = parts.train_set, parts.val_set, parts.train_sampler
    train_loader, val_loader, steps, per_process = parts.train_loader, parts.val_loader, parts.steps, parts.per_process
    options = parts.options
    start_epoch, start_batch, pending_validation = args.start_epoch, 0, False
    if ckpt is not None:
        start_epoch, start_batch = resume_position(ckpt, steps, args.batch_size, args.seed, ctx)
        pending_validation = bool(ckpt.get('pending_validation')) and not start_batch
        if ctx.is_main:
            print(f'=> resumed {resume} at {describe(start_epoch, start_batch, steps)} '
                  f'(best Prec@1 {best_prec1:.3f})', flush=True)

    logger = RunLogger(log_dir, enabled=ctx.is_main, resume=ckpt is not None,
                       position=(ckpt or {}).get('records') if continuing else None)
    logger.write_args(str(args))
    checkpoints = RunCheckpoints(ckpt_dir, ctx, {'arch': args.arch, 'args': vars(args), 'model_options': options,
                                                 'dataset': args.dataset, 'store_name': name,
                                                 'class_names': parts.class_names})
    if continuing:
        checkpoints.republish_best(ckpt, resume)
    if ctx.is_main:
        print(f'=> run {name}: {len(train_set)} train / {len(val_set)} val videos, {ctx.world_size} process(es) '
              f'on {ctx.device}, batch {args.batch_size} ({per_process} per process)', flush=True)
        if start_epoch >= args.epochs and not pending_validation:
            print(f'=> run {name} has trained its {args.epochs} epochs (best Prec@1 {best_prec1:.3f}): nothing to '
                  'do; a larger --epochs trains on, --overwrite starts over', flush=True)
    last: dict = {}

    def save(epoch: int, batch: int, lr: float, **extra) -> None:
        checkpoints.save(model, optimizer, scaler, epoch, batch, best_prec1, logger.position(), lr, steps=steps,
                         **extra)

    def validate_epoch(epoch: int, lr: float) -> None:
        """Validate the trained ``epoch`` and write the checkpoint that records the result."""
        nonlocal best_prec1, last
        last = validate(model, val_loader, epoch, args, ctx, logger, amp_dtype)
        is_best = last['top1'] > best_prec1
        best_prec1 = max(best_prec1, last['top1'])
        logger.scalars({'loss/test': last['loss'], 'acc/test_top1': last['top1'],
                        'acc/test_top5': last['top5'], 'acc/test_top1_best': best_prec1}, epoch)
        logger.line(f'Best Prec@1: {best_prec1:.3f}')
        if ctx.is_main:
            print(f'Best Prec@1: {best_prec1:.3f}', flush=True)
        save(epoch + 1, 0, lr, is_best=is_best)

    try:
        if pending_validation:  # killed after the epoch's checkpoint, before its validation ended
            validate_epoch(start_epoch - 1, float(ckpt.get('lr') or args.lr))
        for epoch in range(start_epoch, args.epochs):
            first = start_batch if epoch == start_epoch else 0
            if not first:
                # Reseeding per epoch makes a resumed run draw the same dropout as an unbroken one;
                # mid-epoch, the checkpoint's RNG states were restored instead.
                seed_everything(args.seed + 1000 * epoch + ctx.rank)
            train_set.set_epoch(epoch)
            train_sampler.set_epoch(epoch, first)
            lr = adjust_learning_rate(optimizer, epoch, args.lr, args.lr_type, args.lr_steps, args.epochs,
                                      args.weight_decay)
            resumed_meters = ckpt.get('meters') if (first and ckpt is not None) else None
            train = train_one_epoch(net, train_loader, optimizer, scaler, epoch, lr, args, ctx, logger, amp_dtype,
                                    steps, first, resumed_meters,
                                    lambda batch, meters: save(epoch, batch, lr, meters=meters))
            logger.scalars({'loss/train': train['loss'], 'acc/train_top1': train['top1'],
                            'acc/train_top5': train['top5'], 'lr': lr}, epoch)
            # written before validation: a failure there never loses the epoch's training
            validate_now = (epoch + 1) % args.eval_freq == 0 or epoch + 1 == args.epochs
            save(epoch + 1, 0, lr, pending_validation=validate_now)
            if validate_now:
                validate_epoch(epoch, lr)
        return {**last, 'best_prec1': best_prec1, 'store_name': name}
    except (RuntimeError, ConnectionError, EOFError) as err:
        # torch reports a dead worker wherever the process is when the signal comes: anywhere here;
        # or the batch in flight fails first, its shared memory lost with the worker that held it
        with worker_reports_held():
            death = str(err) if WORKER_DIED.search(str(err)) else dead_worker(train_loader)
            if death:
                stop_workers(train_loader)
        if death:
            raise worker_died(death, checkpoints) from err
        raise
    finally:
        logger.close()


def dead_worker(loader: DataLoader, wait_s: float = 1.0) -> str | None:
    """How a worker of a persistent loader ended, if one did (waiting up to ``wait_s`` for one whose
    end its lost connection announced), e.g. 'DataLoader worker (pid 12) is killed by signal: Killed';
    None while they all live."""
    iterator = getattr(loader, '_iterator', None)
    deadline = time.monotonic() + wait_s
    while iterator is not None:
        for worker in getattr(iterator, '_workers', []):
            if not worker.is_alive() and worker.exitcode:
                code = worker.exitcode
                how = f'is killed by signal: {signal.strsignal(-code)}' if code < 0 else f'exited with status {code}'
                return f'DataLoader worker (pid {worker.pid}) {how}'
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return None


@contextmanager
def worker_reports_held():
    """torch's SIGCHLD handler raises a dead worker's error whenever the signal comes, until the
    worker's iterator shuts down: held off while a death is being handled, so that it cannot land
    in the middle of it (or later, in the log's close)."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, previous)


def stop_workers(loader: DataLoader) -> None:
    """Shut a persistent loader's workers down now, after one of them died: torch watches the pids
    of an iterator's workers until it shuts down, and a persistent iterator lives as long as its
    loader."""
    iterator = getattr(loader, '_iterator', None)  # where DataLoader keeps a persistent iterator
    if iterator is not None:
        loader._iterator = None
        iterator._shutdown_workers()


def worker_died(err: RuntimeError | str, checkpoints: RunCheckpoints) -> DataWorkerDiedError:
    """A DataLoader worker that died (killed, out of memory), as :class:`DataWorkerDiedError` naming
    the checkpoint to continue from (``err``: torch's report of the death)."""
    where = f'{checkpoints.path} ({checkpoints.last})' if checkpoints.last else \
        f'{checkpoints.path} as it was before this run' if os.path.exists(checkpoints.path) else None
    kept = f'the last checkpoint, {where}, is intact: continue with --resume auto' if where else \
        'no checkpoint was written yet: start the run again'
    return DataWorkerDiedError(f'a data-loading worker died: {str(err).strip()}; {kept}')


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
    except RunStopped as err:
        if args.debug:
            raise
        # every process met the same (all-reduced) loss; a worker dies in one process's share
        if ctx.is_main or isinstance(err, DataWorkerDiedError):
            tag = f'(rank {ctx.rank}) ' if ctx.rank else ''
            print(f'error: {tag}{err}', file=sys.stderr, flush=True)
        else:
            time.sleep(QUIET_RANK_GRACE_S)  # torchrun stops the others when one exits: let rank 0 print
        sys.exit(1)
    finally:
        cleanup_distributed()


if __name__ == '__main__':
    # A frame or video that does not read may be in one process's share of the data alone: every
    # process reports those; other mistakes are the same in every process and rank 0 reports them.
    run_cli_main(main, every_rank=(FrameReadError, VideoReadError))
