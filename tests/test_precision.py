"""ops/engine/precision.py: the CPU's bf16 flags, the default they give (bf16 + channels-last only where the
CPU has AMX or AVX-512 BF16), the flags that override it, and the line a run prints."""
import pytest
import torch

from ops.engine.cli import new_parser
from ops.engine.precision import (CpuInfo, add_precision_flags, amp_settings, parse_cpuinfo, precision_grid,
                           read_cpu_info, resolve_precision)

CPU = torch.device('cpu')
CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
processor\t: 1
model name\t: ignored second core
flags\t\t: fpu
"""


def cpu(*flags: str) -> CpuInfo:
    return CpuInfo('test CPU', frozenset(flags))


def test_parse_cpuinfo_reads_the_first_processor():
    info = parse_cpuinfo(CPUINFO)
    assert info.name == 'Intel(R) Xeon(R) Platinum 8480+'
    assert info.bf16_flags == ['amx_bf16', 'avx512_bf16']
    assert info.summary() == 'Intel(R) Xeon(R) Platinum 8480+ (AMX yes, AVX-512 BF16 yes)'
    assert cpu('avx512_bf16').summary() == 'test CPU (AMX no, AVX-512 BF16 yes)'


def test_no_cpuinfo_means_no_bf16(tmp_path):
    info = read_cpu_info(str(tmp_path / 'absent'))
    assert info.bf16_flags == [] and info.name
    assert resolve_precision(None, None, CPU, info).dtype is None


@pytest.mark.parametrize('flags, why', [(('amx_bf16', 'avx512_bf16'), 'CPU has amx_bf16 and avx512_bf16'),
                                        (('avx512_bf16',), 'CPU has avx512_bf16')])
def test_default_is_bf16_channels_last_where_the_cpu_has_bf16(flags, why):
    p = resolve_precision(None, None, CPU, cpu('avx2', *flags))
    assert (p.dtype, p.channels_last, p.needs_scaler) == (torch.bfloat16, True, False)
    assert p.describe() == f'=> precision bf16 (autocast; {why}), layout channels_last'


def test_default_is_fp32_as_before_where_the_cpu_lacks_bf16():
    """No AMX / AVX-512 BF16 (bf16 would be emulated, slower): nothing changes from fp32 NCHW."""
    p = resolve_precision(None, None, CPU, cpu('avx2', 'avx512f', 'avx512_vnni'))
    assert (p.dtype, p.channels_last) == (None, False)
    assert p.describe() == '=> precision fp32 (CPU has no AMX or AVX-512 BF16), layout default'
    model = torch.nn.Conv2d(3, 4, 3)
    assert p.apply(model).weight.is_contiguous()
    with p.autocast():
        assert model(torch.randn(1, 3, 8, 8)).dtype == torch.float32


def test_flags_override_the_default():
    bf16_cpu, plain_cpu = cpu('avx512_bf16'), cpu('avx2')
    p = resolve_precision(False, None, CPU, bf16_cpu)
    assert (p.name, p.layout) == ('fp32', 'default')
    assert p.describe() == '=> precision fp32 (--no_amp), layout default'
    p = resolve_precision(True, False, CPU, plain_cpu)
    assert (p.name, p.layout) == ('bf16', 'default')
    assert 'emulated, likely slower' in p.describe()
    p = resolve_precision(False, True, CPU, bf16_cpu)
    assert (p.name, p.layout) == ('fp32', 'channels_last')
    model = p.apply(torch.nn.Conv2d(3, 4, 3))
    assert model.weight.is_contiguous(memory_format=torch.channels_last)


def test_default_on_a_gpu_stays_fp32():
    p = resolve_precision(None, None, torch.device('cuda'), cpu('amx_bf16'))
    assert (p.dtype, p.channels_last) == (None, False)
    assert amp_settings(False, torch.device('cuda')) == (None, False)
    assert amp_settings(True, CPU) == (torch.bfloat16, False)


@pytest.mark.parametrize('argv, amp, channels_last', [
    ([], None, None), (['--amp'], True, None), (['--no_amp'], False, None),
    (['--channels_last'], None, True), (['--no_amp', '--no_channels_last'], False, False)])
def test_flags_parse_to_three_states(argv, amp, channels_last):
    parser = new_parser(None)
    add_precision_flags(parser)
    args = parser.parse_args(argv)
    assert (args.amp, args.channels_last) == (amp, channels_last)


def test_benchmark_grid():
    assert precision_grid(None, None) == [(False, False), (False, True), (True, False), (True, True)]
    assert precision_grid(True, None) == [(True, False), (True, True)]
    assert precision_grid(None, False) == [(False, False), (True, False)]
    assert precision_grid(False, True) == [(False, True)]
