"""A training run's state on disk: which checkpoint a run continues from (``--resume PATH`` or
``--resume auto``), the run folder's lock, and the checkpoints themselves.

``checkpoint/<name>/ckpt.pth.tar`` holds everything a resumed run needs to go on exactly where the
previous one stood, at an epoch's end or, with ``--save_steps``, in the middle of one:

=====================  ==================================================================
``epoch``, ``batch``   the epoch in progress and the batches of it done (0: at its start),
                       the release's ``epoch`` meaning "epochs finished" when ``batch`` is 0
``state_dict``         the weights, keys prefixed ``module.`` as the release saves them
``optimizer``,         their states; the learning rate follows from ``epoch`` and ``args``
``scaler``, ``lr``
``rng``, ``rng_ranks`` this process's RNG states (the release's key) and every process's
``meters``             the epoch's loss and accuracy sums so far (mid-epoch)
``records``            log.csv's length and the scalars written (:class:`ops.engine.run_logger.RunLogger`)
``pending_validation`` the epoch was trained, its validation not yet done
``world_size``,        the layout that wrote a mid-epoch position
``batch_size``
=====================  ==================================================================

plus the release's ``arch`` and ``best_prec1`` and this project's ``args``, ``model_options``,
``dataset`` and ``store_name``. Only rank 0 writes; every process takes part in :meth:`save`
(the RNG states are gathered) and learns whether the write worked.
"""
from __future__ import annotations

import os

import torch

from ops.engine.checkpoint import save_checkpoint
from ops.engine.distributed import DistContext, broadcast_object
from ops.engine.resumable import gather_rng_states
from ops.engine.run_lock import RunLock, RunLockedError
from ops.errors import InputError
from ops.safe_files import CheckpointWriteError, publish_copy, remove_stale_temporaries

CKPT_NAME = 'ckpt.pth.tar'
BEST_NAME = 'ckpt.best.pth.tar'
AUTO = 'auto'


def resume_source(flag: str, run_folder: str) -> tuple[str, str]:
    """``(checkpoint path or '', what was chosen)`` for ``--resume flag``: ``auto`` takes the run's
    own ``<run_folder>/ckpt.pth.tar`` when it exists and starts fresh otherwise."""
    if flag != AUTO:
        return flag, f'resuming from {flag}' if flag else 'starting fresh'
    own = os.path.join(run_folder, CKPT_NAME)
    if os.path.isfile(own):
        return own, f'--resume auto: continuing from {own}'
    return '', f'--resume auto: no checkpoint at {own}, starting fresh'


class RunFolderTakenError(InputError):
    """A fresh run would replace the checkpoints of the run already in its folder."""


def check_run_folder_free(folder: str, resume: str, continuing: bool, overwrite: bool) -> None:
    """Refuse to start a run in ``folder`` when it holds a checkpoint that this run does not
    continue (``continuing``: the checkpoint of ``resume`` is this run's; or ``resume`` lies in the
    folder), unless ``overwrite``: the error names the folder and the three ways on. Called before
    anything is written."""
    present = [name for name in (CKPT_NAME, BEST_NAME) if os.path.isfile(os.path.join(folder, name))]
    if not present or overwrite or continuing:
        return
    if resume and os.path.dirname(os.path.abspath(resume)) == os.path.abspath(folder):
        return
    start = f'starting from {resume}' if resume else 'starting afresh'
    raise RunFolderTakenError(
        f'{folder} already holds a run ({", ".join(present)}); {start} would replace its checkpoints and logs. '
        'Either:\n'
        '  --resume auto                    continue that run\n'
        '  --store_name NAME or --suffix S  start a new run beside it (a new run folder)\n'
        '  --overwrite                      start over on purpose, replacing it')


def clear_run_folder(folder: str, ctx: DistContext) -> None:
    """``--overwrite``: remove the previous run's checkpoints (rank 0, once the folder is locked), so
    no stale ``ckpt.best.pth.tar`` outlives it."""
    if ctx.is_main:
        for name in (CKPT_NAME, BEST_NAME):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                os.remove(path)


def lock_run_folder(folder: str, ctx: DistContext) -> RunLock | None:
    """Rank 0 takes the folder's :class:`~ops.engine.run_lock.RunLock` and clears what writers killed
    mid-write left there; every process raises :class:`RunLockedError` if the folder is in use.
    Returns the lock on rank 0 (release it when the run ends), None elsewhere."""
    lock, refusal = None, None
    if ctx.is_main:
        lock = RunLock(folder)
        try:
            lock.acquire()
            remove_stale_temporaries(folder)
        except RunLockedError as err:
            lock, refusal = None, str(err)
    refusal = broadcast_object(refusal, ctx)
    if refusal:
        raise RunLockedError(refusal)
    return lock


def describe(epoch: int, batch: int, steps: int | None = None) -> str:
    """'epoch 3, batch 40/100' for a mid-epoch position, 'end of epoch 2' for an epoch's end."""
    if batch:
        return f'epoch {epoch}, batch {batch}' + (f'/{steps}' if steps else '')
    return f'end of epoch {epoch - 1}' if epoch else 'start'


class RunCheckpoints:
    """The checkpoints of one run in ``folder``. ``fixed``: the entries that do not change during
    the run (``arch``, ``args``, ``model_options``, ``dataset``, ``store_name``, ...)."""

    def __init__(self, folder: str, ctx: DistContext, fixed: dict) -> None:
        self.folder = folder
        self.path = os.path.join(folder, CKPT_NAME)
        self.best_path = os.path.join(folder, BEST_NAME)
        self.ctx = ctx
        self.fixed = fixed
        self.last: str | None = None  # where the last checkpoint written by this process stands

    def save(self, model: torch.nn.Module, optimizer, scaler, epoch: int, batch: int, best_prec1: float,
             records: dict, lr: float, meters: dict | None = None, pending_validation: bool = False,
             is_best: bool = False, steps: int | None = None) -> None:
        """Write ``ckpt.pth.tar`` (and ``ckpt.best.pth.tar`` when ``is_best``), atomically; a
        collective. Raises CheckpointWriteError on every process when rank 0 could not write."""
        rng_ranks = gather_rng_states(self.ctx)
        failure = None
        if self.ctx.is_main:
            state = {**self.fixed, 'epoch': epoch, 'batch': batch,
                     'state_dict': {'module.' + k: v for k, v in model.state_dict().items()},
                     'optimizer': optimizer.state_dict(), 'best_prec1': best_prec1,
                     'scaler': scaler.state_dict() if scaler is not None else None, 'lr': lr,
                     'rng': rng_ranks[0], 'rng_ranks': rng_ranks, 'meters': meters, 'records': records,
                     'pending_validation': pending_validation, 'is_best': is_best,
                     'world_size': self.ctx.world_size}
            try:
                save_checkpoint(state, self.path)
                if is_best:
                    publish_copy(self.path, self.best_path)
            except CheckpointWriteError as err:
                failure = err
        message = broadcast_object(None if failure is None else str(failure), self.ctx)
        if failure is not None:
            raise failure
        if message:
            raise CheckpointWriteError(f'rank 0: {message}')
        self.last = describe(epoch, batch, steps)
        if self.ctx.is_main and batch:
            print(f'=> saved {self.path} ({self.last})', flush=True)

    def republish_best(self, checkpoint: dict, source: str) -> None:
        """A run killed between writing a best checkpoint and copying it to ``ckpt.best.pth.tar``
        left the copy behind: make it again (rank 0)."""
        if self.ctx.is_main and checkpoint.get('is_best') and os.path.abspath(source) == os.path.abspath(self.path):
            publish_copy(self.path, self.best_path)
