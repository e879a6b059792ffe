"""Run names: built as the release names runs, and read back from checkpoint file names."""
import pytest

from ops.engine.naming import parse_run_name, run_name


def test_release_name():
    assert run_name('Lite', 'something', 'resnet50', 8, 80, shift=True) == \
        'PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80'
    assert run_name('RGB', 'synthetic', 'resnet18', 4, 3, shift=True, temporal_pool=True, pretrain='scratch',
                    lr_type='cos', dense_sample=True, suffix='try1') == \
        'PAN_RGB_synthetic_resnet18_shift8_blockres_tpool_avg_segment4_e3_scratch_cos_dense_try1'


@pytest.mark.parametrize('name, expected', [
    ('pretrained/PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar',
     dict(modality='Lite', dataset='something', arch='resnet50', num_segments=8, epochs=80, is_shift=True)),
    ('PAN_RGB_somethingv2_resnet101_shift8_blockres_avg_segment8_e50.pth.tar',
     dict(modality='RGB', dataset='somethingv2', arch='resnet101', num_segments=8, epochs=50, is_shift=True)),
    ('PAN_PA_jester_mobilenetv2_avg_segment16_e25_dense.pth',
     dict(modality='PA', dataset='jester', arch='mobilenetv2', num_segments=16, is_shift=False, dense_sample=True)),
    ('checkpoint/PAN_PA_synthetic_resnet18_shift4_block_tpool_avg_segment4_e2/ckpt.best.pth.tar',
     dict(modality='PA', dataset='synthetic', shift_div=4, shift_place='block', temporal_pool=True)),
])
def test_parse(name, expected):
    parsed = parse_run_name(name)
    for key, value in expected.items():
        assert getattr(parsed, key) == value, key


def test_round_trip():
    name = run_name('PA', 'kinetics', 'resnet101', 16, 100, shift=True, shift_div=4, shift_place='block')
    parsed = parse_run_name(name + '.pth.tar')
    assert (parsed.modality, parsed.dataset, parsed.arch, parsed.num_segments, parsed.shift_div,
            parsed.shift_place) == ('PA', 'kinetics', 'resnet101', 16, 4, 'block')


def test_unparseable_name():
    with pytest.raises(ValueError, match='Cannot read the model settings'):
        parse_run_name('/tmp/model_final.pth')
