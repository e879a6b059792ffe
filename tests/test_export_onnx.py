"""tools/export_onnx.py: the offline model and the causal online step exported to ONNX, with a
dynamic batch, give PyTorch's logits under ONNX Runtime (ops/deploy/onnx_export.py)."""
import sys

import onnx
import pytest
import torch

from conftest import ROOT
from ops.deploy.onnx_export import check_offline, ort_session
from ops.engine.checkpoint import save_checkpoint
from ops.models import PAN
from reference_fill import fill_state_dict

sys.path.insert(0, str(ROOT / 'tools'))
import export_onnx  # noqa: E402

SIZE = 32


def checkpoint(tmp_path, causal: bool, name: str) -> str:
    options = dict(num_class=5, num_segments=2, modality='Lite', base_model='resnet18', is_shift=True,
                   has_VAP=True, dropout=0.5, causal_shift=causal)
    model = PAN(**options, pretrain='scratch', print_spec=False)
    model.load_state_dict(fill_state_dict(model.state_dict(), seed=4))
    path = str(tmp_path / name)
    save_checkpoint({'state_dict': model.state_dict(), 'model_options': options, 'args': {'input_size': SIZE}}, path)
    return path


def batch_dim(path: str) -> str:
    return onnx.load(path).graph.input[0].type.tensor_type.shape.dim[0].dim_param


@pytest.fixture(scope='module')
def offline(tmp_path_factory):
    """A bidirectional (released-style) Lite checkpoint exported once: the tool's result and file."""
    folder = tmp_path_factory.mktemp('onnx')
    out = str(folder / 'lite.onnx')
    return export_onnx.main([checkpoint(folder, False, 'bi.pth.tar'), '--out', out]), out


def test_offline_export_of_a_released_style_model(offline):
    result, out = offline
    found = result['comparisons']
    assert [c.what for c in found] == ['batch 1', 'batch 3'] and all(c.ok for c in found)
    assert batch_dim(out)                       # symbolic, not a traced constant
    session = ort_session(out)
    assert session.run(None, {'clip': torch.zeros(4, 2 * 4 * 3, SIZE, SIZE).numpy()})[0].shape == (4, 5)


def test_online_step_export(tmp_path):
    out = str(tmp_path / 'step.onnx')
    found = export_onnx.main([checkpoint(tmp_path, True, 'causal.pth.tar'), '--out', out, '--online',
                              '--steps', '3'])['comparisons']
    assert all(c.ok for c in found) and len(found) == 2
    names = [i.name for i in onnx.load(out).graph.input]
    assert names[:2] == ['segment', 'window'] and names[2] == 'shift_0' and len(names) == 2 + 8  # 8 resnet18 blocks


def test_check_fails_on_another_model(offline):
    """The ONNX Runtime check can fail: a file exported from other weights is caught."""
    out = offline[1]
    other = PAN(5, 2, 'Lite', base_model='resnet18', pretrain='scratch', is_shift=True, has_VAP=True, dropout=0.5,
                print_spec=False)
    other.load_state_dict(fill_state_dict(other.state_dict(), seed=9))
    assert not any(c.ok for c in check_offline(other, out, SIZE))


def test_online_needs_a_causal_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        export_onnx.run_cli_main(export_onnx.main, [checkpoint(tmp_path, False, 'bi.pth.tar'), '--out',
                                                    str(tmp_path / 'x.onnx'), '--online'])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith('error: --online: ')
