"""``torch.compile`` of a run's model: the settings that pay, and whether a run compiles at all.

Compiling costs seconds to minutes before the first step (on a 2-core CPU about 20-35 s for an
inference graph of ResNet-50 PAN_Lite and more for a training graph) and then runs every step
faster, so it pays over a whole run (a test list, a training run, a long stream) and not for one
short video. :func:`resolve_compile` makes that choice from the run's length when neither
``--compile`` nor ``--no_compile`` is given, and says why on the run's precision line.

The model is compiled in place (``nn.Module.compile``): the module keeps its own ``state_dict``
keys (no ``_orig_mod.`` prefix in checkpoints), loads weights and resumes as before, and can be
wrapped by DistributedDataParallel or DataParallel afterwards.

- inference (:func:`compile_for_inference`): inductor with freezing, which folds the weights into
  the graph as constants (batch norm into the convolutions, weights pre-packed for oneDNN on a
  CPU). A frozen graph does not see later changes to the weights, so it is for models whose
  weights stay fixed: never for a model that is being trained.
- training (:func:`compile_for_training`): inductor without freezing (the weights change every
  step, and the validation passes in between must see them).

Dropout in a compiled training graph draws its masks with inductor's own generator, seeded from
torch's: the same ``--seed`` gives the same masks run after run (compiled runs are repeatable), but
not the masks of an eager run. ``torch._inductor.config.fallback_random = True`` makes compiled code
draw eager's masks (slower; the tests use it to compare compiled with eager).

    compiled = resolve_compile(args.compile, calls=len(loader), pays_after=PAYS_AFTER['test'], unit='batches')
    if compiled.enabled:
        compile_for_inference(model)
    print(f'{precision.describe()}, {compiled.describe()}')
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from torch import nn

# Run lengths from which compiling pays by default, in the unit each kind of run counts. Measured
# on a 2-core AMD EPYC (AVX-512 BF16, no AMX) with ResNet-50 PAN_Lite at 8x224 (README, "How
# close to the limit"): inference compiles in 20-35 s and saves 0.06-0.17 s per clip, so about 500
# clips repay it; a small model (ResNet-18 at 64x64, the quick start's) saves a few ms per clip and
# needs far more. The thresholds sit where the large models have long paid and the quick start's
# runs (480 training steps, 80 test clips) stay eager.
PAYS_AFTER = {
    'test': 1000,    # clips (videos x views) of a test list
    'train': 2000,   # training steps of a run (per process)
    'stream': 500,   # steps (segments) of a stream
}


@dataclass(frozen=True)
class RunCompile:
    """Whether a run compiles its model, and why (a flag, or the run's length against the default's threshold)."""
    enabled: bool
    reason: str

    def describe(self) -> str:
        """E.g. ``compile on (inductor; a test list of 11522 clips, compile pays after about 1000)``."""
        return f"compile {'on' if self.enabled else 'off'} ({self.reason})"


def resolve_compile(flag: bool | None, calls: int | None, pays_after: int, unit: str) -> RunCompile:
    """The run's choice: ``flag`` True / False as given (--compile / --no_compile); None: on where
    the run is long enough for the compile time to pay, ``calls`` (in ``unit``: training steps,
    test clips, stream steps) against ``pays_after``. ``calls`` None: a run of unknown length (a
    camera), on."""
    if flag is not None:
        return RunCompile(flag, '--compile' if flag else '--no_compile')
    if calls is None:
        return RunCompile(True, f'default: a run of unknown length; compile pays after about {pays_after} {unit}')
    enabled = calls >= pays_after
    hint = '' if enabled else '; --compile to force it'
    return RunCompile(enabled, f'default: {calls} {unit}, compile pays after about {pays_after}{hint}')


def compile_for_inference(model: nn.Module) -> nn.Module:
    """``model`` compiled in place for inference (inductor, freezing): call it with gradients off
    (``torch.no_grad`` / ``inference_mode``; with them on it compiles without freezing), once its
    weights are loaded; they must not change afterwards. Shapes are kept static: a new input shape
    compiles once more."""
    import torch._inductor.config as inductor_config   # here: importing it costs seconds, and most runs stay eager

    model.compile(dynamic=False)
    compiled = model._compiled_call_impl

    # Freezing is read from inductor's global config both by dynamo, as it traces (the weights
    # become constants), and by inductor (torch.compile's ``options`` reach only the latter, and
    # then nothing is frozen): it is set for this model's calls alone, so that another model of the
    # process (one being trained) never freezes.
    def frozen_call(*args, **kwargs):
        with inductor_config.patch(freezing=True):
            return compiled(*args, **kwargs)

    model._compiled_call_impl = frozen_call
    return model


def compile_for_training(model: nn.Module) -> nn.Module:
    """``model`` compiled in place for training (inductor; no freezing: the weights change)."""
    model.compile(dynamic=False)
    return model


def is_compiled(model: nn.Module) -> bool:
    """Whether ``model`` (or the module a DataParallel / DistributedDataParallel wraps) was compiled in place."""
    inner = getattr(model, 'module', model)
    return getattr(inner, '_compiled_call_impl', None) is not None


def add_compile_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: str) -> None:
    """``--compile`` / ``--no_compile`` (dest ``compile``, None when neither is given: the tool
    decides); ``default`` says in the help what the tool does without either."""
    parser.add_argument('--compile', dest='compile', action='store_true', default=None,
                        help='torch.compile the model (inductor; freezing for inference): minutes less over a '
                             f'long run, seconds more before the first step (default: {default})')
    parser.add_argument('--no_compile', dest='compile', action='store_false', default=None,
                        help='run the model eagerly, uncompiled (default: see --compile)')
