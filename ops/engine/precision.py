"""Numeric precision and memory layout of a run: what the CPU can do fast, and the choice made from it.

bf16 autocast pays on a CPU only where it has bf16 arithmetic (``amx_bf16`` tiles, or
``avx512_bf16`` dot products); elsewhere oneDNN emulates it and a run gets slower. So the tools'
default (``--amp`` / ``--no_amp`` left out) is bf16 exactly where /proc/cpuinfo reports one of
those flags, and the layout follows the precision: channels-last with bf16, where oneDNN's bf16
convolutions avoid a reorder per layer, the default (NCHW) layout with fp32, as before. On a GPU
the default stays fp32 (``--amp`` picks bf16 or fp16 as main.py does).

    precision = resolve_precision(args.amp, args.channels_last, device)
    model = precision.apply(model)
    with precision.autocast():
        logits = model(x)
    print(precision.describe())   # => precision bf16 (autocast; CPU has avx512_bf16), layout channels_last
"""
from __future__ import annotations

import argparse
import platform
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache

import torch

CPUINFO = '/proc/cpuinfo'
BF16_FLAGS = ('amx_bf16', 'avx512_bf16')  # the /proc/cpuinfo flags of native bf16 arithmetic
DTYPE_NAMES = {None: 'fp32', torch.bfloat16: 'bf16', torch.float16: 'fp16'}


@dataclass(frozen=True)
class CpuInfo:
    """The processor's name and instruction-set flags, as /proc/cpuinfo lists them."""
    name: str
    flags: frozenset

    @property
    def bf16_flags(self) -> list[str]:
        """Which of ``amx_bf16`` and ``avx512_bf16`` the CPU has (empty: no native bf16)."""
        return [f for f in BF16_FLAGS if f in self.flags]

    def summary(self) -> str:
        """E.g. ``AMD EPYC (AMX no, AVX-512 BF16 yes)``."""
        yes = {True: 'yes', False: 'no'}
        return (f'{self.name} (AMX {yes["amx_bf16" in self.flags]}, '
                f'AVX-512 BF16 {yes["avx512_bf16" in self.flags]})')


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's ``model name`` and ``flags`` of /proc/cpuinfo's text."""
    name, flags = '', frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(':')
        key = key.strip()
        if key == 'model name' and not name:
            name = value.strip()
        elif key == 'flags' and not flags:
            flags = frozenset(value.split())
    return CpuInfo(name or platform.processor() or 'unknown CPU', flags)


@lru_cache(maxsize=None)
def read_cpu_info(path: str = CPUINFO) -> CpuInfo:
    """This machine's CPU; without /proc/cpuinfo (not Linux) no flags, so the default is fp32."""
    try:
        with open(path) as f:
            return parse_cpuinfo(f.read())
    except OSError:
        return CpuInfo(platform.processor() or 'unknown CPU', frozenset())


AMP_DTYPES = ('auto', 'bf16', 'fp16')


def amp_settings(enabled: bool, device: torch.device, dtype: str = 'auto') -> tuple[torch.dtype | None, bool]:
    """(autocast dtype, whether a grad scaler is needed): ``dtype`` 'bf16', 'fp16' (with a grad
    scaler, on any device), or 'auto': bf16 where supported, else fp16 + scaler."""
    if not enabled:
        return None, False
    if dtype == 'fp16':
        return torch.float16, True
    if dtype == 'bf16':
        return torch.bfloat16, False
    if device.type == 'cuda':
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, False
        return torch.float16, True
    return torch.bfloat16, False  # CPU autocast runs bf16


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` on ``device``'s type; a no-op context for None (fp32)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


@dataclass(frozen=True)
class RunPrecision:
    """The precision and layout a run uses, and why.

    ``dtype``: the autocast dtype, None for fp32; ``needs_scaler``: fp16 training needs a grad
    scaler; ``reason``: what chose the precision (a flag, or the CPU's flags)."""
    device: torch.device
    dtype: torch.dtype | None
    needs_scaler: bool
    channels_last: bool
    reason: str

    @property
    def name(self) -> str:
        return DTYPE_NAMES[self.dtype]

    @property
    def layout(self) -> str:
        return 'channels_last' if self.channels_last else 'default'

    def autocast(self):
        return autocast(self.device, self.dtype)

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model in this run's memory layout (in place, as ``Module.to`` is)."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def describe(self) -> str:
        """The one line a run prints, e.g. ``=> precision bf16 (autocast; CPU has avx512_bf16), layout channels_last``."""
        how = 'autocast; ' if self.dtype is not None else ''
        return f'=> precision {self.name} ({how}{self.reason}), layout {self.layout}'


def resolve_precision(amp: bool | None, channels_last: bool | None, device: torch.device,
                      cpu: CpuInfo | None = None, fp32_default: str | None = None) -> RunPrecision:
    """The run's precision: ``amp`` True / False as given (--amp / --no_amp), None: bf16 on a CPU
    with AMX or AVX-512 BF16, else fp32; ``channels_last`` as given, None: on with bf16 on a CPU.
    ``cpu``: the processor to decide for (default: this machine's). ``fp32_default``: a tool whose
    numbers are of record (test_models.py) stays in fp32 unless --amp is given; the text says why."""
    device = torch.device(device)
    if amp is None and fp32_default:
        found = (cpu or read_cpu_info()).bf16_flags if device.type == 'cpu' else []
        hint = f'; --amp for bf16, which this CPU has ({" and ".join(found)})' if found else ''
        amp, reason = False, fp32_default + hint
    elif amp is None:
        if device.type == 'cpu':
            found = (cpu or read_cpu_info()).bf16_flags
            amp = bool(found)
            reason = f'CPU has {" and ".join(found)}' if found else 'CPU has no AMX or AVX-512 BF16'
        else:
            amp, reason = False, f'default on {device.type}; --amp for mixed precision'
    else:
        reason = '--amp' if amp else '--no_amp'
        if amp and device.type == 'cpu' and not (cpu or read_cpu_info()).bf16_flags:
            reason += '; CPU has no AMX or AVX-512 BF16: emulated, likely slower'
    dtype, needs_scaler = amp_settings(amp, device)
    if channels_last is None:
        channels_last = dtype is not None and device.type == 'cpu'
    return RunPrecision(device, dtype, needs_scaler, channels_last, reason)


def precision_grid(amp: bool | None, channels_last: bool | None) -> list[tuple[bool, bool]]:
    """(autocast, channels-last) of a benchmark's rows: fp32 then autocast, each in the default
    layout then channels-last; a flag given (not None) keeps only its side."""
    return [(a, c) for a in (False, True) for c in (False, True)
            if amp in (None, a) and channels_last in (None, c)]


def add_precision_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, auto: bool = True) -> None:
    """``--amp`` / ``--no_amp`` and ``--channels_last`` / ``--no_channels_last`` (dest ``amp``,
    ``channels_last``; None when neither is given: :func:`resolve_precision` decides). ``auto``
    False: the tool stays in fp32 unless --amp is given (its ``fp32_default``)."""
    default = ('(default: on where the CPU has AMX or AVX-512 BF16, off otherwise and on a GPU)' if auto
               else '(default: off, fp32: the released numbers on any machine)')
    parser.add_argument('--amp', dest='amp', action='store_true', default=None,
                        help=f'bf16 autocast on the CPU (on a GPU bf16 where supported, else fp16) {default}')
    parser.add_argument('--no_amp', dest='amp', action='store_false', default=None, help='fp32 throughout (default: see --amp)')
    parser.add_argument('--channels_last', dest='channels_last', action='store_true', default=None,
                        help='channels-last memory format (default: on with bf16 on the CPU, off otherwise)')
    parser.add_argument('--no_channels_last', dest='channels_last', action='store_false', default=None,
                        help='the default (NCHW) memory format (default: see --channels_last)')
