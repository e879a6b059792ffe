"""Loading released checkpoints (every accepted layout) and clear errors when they do not fit."""
import os

import pytest
import torch

from ops.engine.checkpoint import (CheckpointMismatchError, load_for_finetune, load_pan_weights, read_checkpoint,
                            save_checkpoint)
from ops.models import PAN
from reference_fill import fill_state_dict


def small(modality='Lite', num_class=7, num_segments=4, arch='resnet18'):
    return PAN(num_class, num_segments, modality, base_model=arch, pretrain='scratch', is_shift=True,
               has_VAP=True, dropout=0.5, print_spec=False)


def released_file(tmp_path, model, name='PAN_Lite_something_resnet18_shift8_blockres_avg_segment4_e80.pth.tar'):
    """A file in the release's format: DataParallel prefixes and the training bookkeeping."""
    weights = {'module.' + k: v for k, v in fill_state_dict(model.state_dict(), seed=3, prefix='module.').items()}
    path = tmp_path / name
    torch.save({'epoch': 80, 'arch': 'resnet18', 'state_dict': weights, 'optimizer': {'state': {}, 'param_groups': []},
                'best_prec1': 48.0}, path)
    return path, weights


def test_released_dict_with_module_prefix(tmp_path):
    source = small()
    path, weights = released_file(tmp_path, source)
    target = small()
    ckpt = load_pan_weights(target, str(path))
    assert ckpt['epoch'] == 80 and ckpt['best_prec1'] == 48.0
    for k, v in target.state_dict().items():
        assert torch.equal(v, weights['module.' + k])


@pytest.mark.parametrize('prefixed', [True, False])
def test_bare_state_dict(tmp_path, prefixed):
    source = small()
    sd = fill_state_dict(source.state_dict(), seed=5)
    torch.save({('module.' + k if prefixed else k): v for k, v in sd.items()}, tmp_path / 'bare.pth')
    target = small()
    load_pan_weights(target, str(tmp_path / 'bare.pth'))
    assert all(torch.equal(target.state_dict()[k], v) for k, v in sd.items())


def test_other_modality_lists_keys(tmp_path):
    path, _ = released_file(tmp_path, small('Lite'))
    with pytest.raises(CheckpointMismatchError) as info:
        load_pan_weights(small('RGB'), str(path))
    text = str(info.value)
    assert str(path) in text
    assert 'unexpected keys (2)' in text and 'PA.shallow_conv.weight' in text
    assert 'shape mismatches (1)' in text and 'base_model.conv1.weight' in text


def test_other_class_and_segment_count(tmp_path):
    path, _ = released_file(tmp_path, small(num_class=7, num_segments=4))
    with pytest.raises(CheckpointMismatchError, match=r'base_model\.fc\.pred\.weight: checkpoint \(7, 512\) vs model \(9, 512\)'):
        load_pan_weights(small(num_class=9), str(path))
    with pytest.raises(CheckpointMismatchError, match=r'base_model\.fc\.TES\.0\.weight'):
        load_pan_weights(small(num_segments=8), str(path))


def test_other_arch_reports_missing(tmp_path):
    path, _ = released_file(tmp_path, small(arch='resnet18'))
    with pytest.raises(CheckpointMismatchError, match='missing keys'):
        load_pan_weights(small(arch='resnet34'), str(path))


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth.tar'):
        read_checkpoint(str(tmp_path / 'nope.pth.tar'))
    (tmp_path / 'junk.pth.tar').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='junk.pth.tar'):
        read_checkpoint(str(tmp_path / 'junk.pth.tar'))


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth.tar'
    save_checkpoint({'epoch': 1}, str(path))
    assert read_checkpoint(str(path))['epoch'] == 1

    def crash(*args, **kwargs):
        raise KeyboardInterrupt('killed while writing')
    monkeypatch.setattr(torch, 'save', crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'epoch': 2}, str(path))
    monkeypatch.undo()
    assert read_checkpoint(str(path))['epoch'] == 1  # the previous checkpoint is intact
    assert os.listdir(tmp_path) == ['ckpt.pth.tar']   # and no temporary file is left behind


def test_finetune_drops_classifier_of_another_dataset(tmp_path):
    source = small('Lite', num_class=7)
    path, weights = released_file(tmp_path, source)
    target = small('Lite', num_class=9)
    fresh_pred = target.base_model.fc.pred.weight.detach().clone()
    report = load_for_finetune(target, str(path), drop_classifier=True)
    assert torch.equal(target.base_model.fc.pred.weight, fresh_pred)
    assert torch.equal(target.PA.shallow_conv.weight, weights['module.PA.shallow_conv.weight'])
    assert any('classifier of another dataset' in s for s in report['skipped'])


def test_finetune_maps_shift_keys(tmp_path):
    """A TSN (no shift) checkpoint seeds a TSM model: conv1.weight -> conv1.net.weight."""
    tsn = PAN(7, 4, 'RGB', base_model='resnet18', pretrain='scratch', is_shift=False, print_spec=False, dropout=0.5)
    torch.save({'state_dict': tsn.state_dict()}, tmp_path / 'tsn.pth')
    tsm = small('RGB', num_class=7)
    report = load_for_finetune(tsm, str(tmp_path / 'tsn.pth'), drop_classifier=False)
    assert torch.equal(tsm.base_model.layer1[0].conv1.net.weight, tsn.base_model.layer1[0].conv1.weight)
    assert 'base_model.layer1.0.conv1.net.weight' in report['loaded']
    # the TSN head (new_fc) has no place in a VAP model
    assert any(s.startswith('new_fc.weight') for s in report['skipped'])


@pytest.mark.parametrize('stored', [None, False, True])
def test_causal_shift_is_rebuilt_from_the_model_options(tmp_path, stored):
    from ops.engine.checkpoint import load_pan_model
    options = dict(num_class=7, num_segments=4, modality='Lite', base_model='resnet18', is_shift=True,
                   has_VAP=True, dropout=0.5)
    if stored is not None:
        options['causal_shift'] = stored
    source = PAN(**options, pretrain='scratch', print_spec=False)
    path = tmp_path / 'run.pth.tar'
    torch.save({'state_dict': source.state_dict(), 'model_options': options}, path)
    model, _, _ = load_pan_model(str(path))
    assert model.causal_shift is bool(stored)   # an old checkpoint (no key): the released bidirectional shift
    x = torch.randn(1, 4 * 4 * 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), source.eval()(x), atol=1e-6)
