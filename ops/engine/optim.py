"""SGD over PAN's parameter groups and the release's learning-rate schedules."""
from __future__ import annotations

import math

import torch


OPTIMIZERS = ('sgd', 'adamw')


def build_optimizer(policies: list[dict], lr: float, momentum: float, weight_decay: float,
                    kind: str = 'sgd') -> torch.optim.Optimizer:
    """SGD (the release's) or AdamW over the groups of ``get_optim_policies``, each keeping its
    ``lr_mult`` / ``decay_mult``. Empty groups are kept so the group order stays the release's.

    AdamW is for training from scratch on small data (the CPU quick start), where SGD at the
    release's fine-tuning learning rates does not get going in a few hundred steps.
    """
    groups = [{**g, 'lr': lr * g['lr_mult'], 'weight_decay': weight_decay * g['decay_mult']} for g in policies]
    if kind == 'sgd':
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == 'adamw':
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999), weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got '{kind}'")


def lr_at_epoch(epoch: int, base_lr: float, lr_type: str, lr_steps: list[float], epochs: int) -> float:
    """Base learning rate of an epoch: x0.1 at each of ``lr_steps`` ('step') or half-cosine ('cos')."""
    if lr_type == 'step':
        return base_lr * 0.1 ** sum(epoch >= step for step in lr_steps)
    if lr_type == 'cos':
        return 0.5 * base_lr * (1 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"lr_type must be 'step' or 'cos', got '{lr_type}'")


def adjust_learning_rate(optimizer: torch.optim.Optimizer, epoch: int, base_lr: float, lr_type: str,
                         lr_steps: list[float], epochs: int, weight_decay: float) -> float:
    """Set every group's lr and weight decay for ``epoch``; returns the base lr."""
    lr = lr_at_epoch(epoch, base_lr, lr_type, lr_steps, epochs)
    for group in optimizer.param_groups:
        group['lr'] = lr * group['lr_mult']
        group['weight_decay'] = weight_decay * group['decay_mult']
    return lr
