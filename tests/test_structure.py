"""The codebase's shape: no import cycle, a leaf backbone registry, each fact in one place, tools
that run without editing sys.path."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from forked import run_forked

from ops.backbone_registry import BACKBONES, BackboneEntry, register_backbone, scale_size_for
from ops.frames.frame_source import VideoFrames, open_frame_source
from ops.frames.video_reader import VIDEO_EXTENSIONS, is_video_file
from ops.models import PAN
from ops.sampling import DENSE_TEST_CLIPS
from ops.views import TestViews

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ('ops', 'archs')
SOURCES = [ROOT / 'main.py', ROOT / 'opts.py', ROOT / 'test_models.py',
           *sorted((ROOT / 'ops').rglob('*.py')), *sorted((ROOT / 'archs').glob('*.py')),
           *sorted((ROOT / 'tools').glob('*.py'))]


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob('*.py')):
            parts = path.relative_to(ROOT).with_suffix('').parts
            names.append('.'.join(parts[:-1] if parts[-1] == '__init__' else parts))
    return names


def _imports(path: Path) -> set[str]:
    """Every module named by an import statement of ``path`` (any depth, lazy ones included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """Each module imports with no other project module loaded before it (third-party packages are
    preloaded once and forked, see tests/forked.py)."""
    modules = _modules()
    assert 'ops.backbone_registry' in modules and 'archs.mobilenet_v2' in modules
    results = run_forked([{'import': m} for m in modules], cwd=ROOT)
    failed = {m: err[-1500:] for m, (status, _, err) in zip(modules, results) if status}
    assert not failed, failed
    # the check can fail: a module that needs another imported first
    broken = run_forked([{'import': 'ops.models'}, {'import': 'not_a_module_of_this_project'}], cwd=ROOT)
    assert broken[0][0] == 0 and broken[1][0] != 0 and 'ModuleNotFoundError' in broken[1][2]


def test_mobilenetv2_builds_first_in_a_fresh_interpreter():
    """The bug this layout removed: mobilenetv2 was registered only after some model was built."""
    snippets = {
        'backbone': "from ops.backbones import build_backbone; build_backbone('mobilenetv2', 'scratch')",
        'model': "from ops.models import PAN; PAN(5, 2, 'RGB', base_model='mobilenetv2', pretrain='scratch', "
                 "print_spec=False)",
        'registry': "import ops.backbones; from ops.backbone_registry import BACKBONES; "
                    "assert 'mobilenetv2' in BACKBONES and 'resnet50' in BACKBONES, sorted(BACKBONES)",
    }
    results = run_forked([{'exec': code} for code in snippets.values()], cwd=ROOT)
    failed = {name: err[-1500:] for name, (status, _, err) in zip(snippets, results) if status}
    assert not failed, failed


def test_registry_is_a_leaf_and_architectures_import_only_it():
    registry = _imports(ROOT / 'ops' / 'backbone_registry.py')
    assert not {m for m in registry if m.split('.')[0] in PACKAGES}, registry
    for path in (ROOT / 'archs').glob('*.py'):
        ours = {m for m in _imports(path) if m.split('.')[0] == 'ops'}
        assert ours <= {'ops.backbone_registry', 'ops.temporal_shift'}, (path.name, ours)


# The concerns of ops/ and the project modules each may import (besides the standard library and
# third-party packages). Model code knows tensors; the clip side may read the model's descriptive
# leaves (input statistics, frames per segment) but never builds a network.
MODEL = {'ops.PAN_modules', 'ops.models', 'ops.temporal_shift', 'ops.backbones', 'ops.backbone_registry',
         'ops.modalities'}
CLIPS = {'ops.dataset', 'ops.dataset_config', 'ops.dataset_description', 'ops.sampling', 'ops.views', 'ops.data_setup',
         'ops.transforms', 'ops.list_check'}
LEAVES = {'ops.errors', 'ops.utils', 'ops.safe_files'}
ALLOWED = {
    'model': MODEL | {'archs'},
    'clips': CLIPS | LEAVES | {'ops.frames', 'ops.backbone_registry', 'ops.modalities'},
    'ops.frames': {'ops.frames', 'ops.errors', 'ops.safe_files'},
    'ops.engine': MODEL | CLIPS | LEAVES | {'ops.frames', 'ops.engine'},
    'ops.deploy': MODEL | {'ops.frames', 'ops.errors', 'ops.deploy'},
    'leaves': set(),
}


def _concern(module: str) -> str:
    for package in ('ops.frames', 'ops.engine', 'ops.deploy'):
        if module == package or module.startswith(package + '.'):
            return package
    if module in MODEL:
        return 'model'
    if module in LEAVES:
        return 'leaves'
    assert module in CLIPS or module.startswith('ops.transforms'), f'{module}: no concern; add it to one'
    return 'clips'


def _allowed(name: str, allowed: set[str]) -> bool:
    return any(name == a or name.startswith(a + '.') for a in allowed)


def test_every_ops_module_belongs_to_one_concern_and_imports_only_what_it_may():
    bad = {}
    for path in sorted((ROOT / 'ops').rglob('*.py')):
        parts = path.relative_to(ROOT).with_suffix('').parts
        module = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
        if module == 'ops':
            continue
        concern = _concern(module)
        ours = {m for m in _imports(path) if m.split('.')[0] in ('ops', 'archs')}
        wrong = {m for m in ours if not _allowed(m, ALLOWED[concern])}
        if wrong:
            bad[module] = (concern, sorted(wrong))
    assert not bad, bad


def test_sub_packages_open_with_what_they_hold_and_may_import():
    for init in sorted((ROOT / 'ops').glob('*/__init__.py')):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and 'import' in doc, f'{init}: docstring must say what it holds and what it may import'


def test_released_module_names_stay_at_the_top_of_ops():
    """The modules the release and users know by name keep their place and public names."""
    from ops.dataset import PANDataSet, VideoRecord  # noqa: F401
    from ops.dataset_config import get_dataset_info  # noqa: F401
    from ops.models import PAN  # noqa: F401
    from ops.PAN_modules import PA, VAP  # noqa: F401
    from ops.temporal_shift import TemporalPool, TemporalShift, make_temporal_pool, make_temporal_shift  # noqa: F401
    from ops.transforms import (GroupCenterCrop, GroupFullResSample, GroupMultiScaleCrop,  # noqa: F401
                                GroupNormalize, GroupOverSample, GroupRandomHorizontalFlip, GroupScale, Stack,
                                ToTorchFormatTensor)
    from ops.utils import AverageMeter, accuracy  # noqa: F401
    tops = {p.stem for p in (ROOT / 'ops').iterdir() if p.suffix == '.py' or (p / '__init__.py').exists()}
    assert {'PAN_modules', 'models', 'temporal_shift', 'dataset', 'transforms', 'dataset_config', 'utils'} <= tops


def test_no_module_only_re_exports_another():
    """No compatibility shims: a module whose body is only imports is clutter. ops.transforms is the
    release's module name kept as a package, so its __init__ gathers its parts by design."""
    for path in sorted((ROOT / 'ops').rglob('*.py')):
        if path == ROOT / 'ops' / 'transforms' / '__init__.py':
            continue
        body = [n for n in ast.parse(path.read_text()).body
                if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert not body or not all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body), \
            f'{path}: a module that only re-exports'


def test_ops_imports_no_entry_point_or_tool():
    for path in (ROOT / 'ops').rglob('*.py'):
        bad = {m for m in _imports(path) if m.split('.')[0] in ('main', 'opts', 'test_models', 'tools')}
        assert not bad, (path.name, bad)


def test_tools_run_from_anywhere_without_editing_sys_path(tmp_path):
    for path in (ROOT / 'tools').glob('*.py'):
        assert 'sys.path' not in path.read_text(), path.name
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'count_flops.py'), '-h'], cwd=tmp_path,
                         env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'usage' in out.stdout


def test_scale_rule_has_one_home():
    assert scale_size_for(224) == 256 and scale_size_for(32) == 36
    for path in SOURCES:
        if path.name != 'backbone_registry.py':
            assert '256 // 224' not in path.read_text(), path


def test_one_list_of_video_extensions():
    from tools import _prep_common
    assert _prep_common.find_videos.__defaults__ == (VIDEO_EXTENSIONS,)
    assert {'.mp4', '.webm', '.avi', '.mkv', '.mov', '.m4v'} <= set(VIDEO_EXTENSIONS)
    assert is_video_file('clip.MOV') and is_video_file('a/b.m4v')


def test_mov_file_reads_as_a_video(tmp_path):
    av = pytest.importorskip('av')
    path = tmp_path / 'clip.mov'
    with av.open(str(path), 'w') as out:
        stream = out.add_stream('mpeg4', rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, 'yuv420p'
        for i in range(6):
            img = np.full((32, 32, 3), 40 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format='rgb24')):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    source = open_frame_source(str(path))
    assert isinstance(source, VideoFrames) and source.num_frames == 6
    frames = source.read([1, 6])
    assert abs(float(frames[6].float().mean()) - 200) < 6


def test_no_public_name_with_two_meanings():
    """A function or class name is defined once across the code, apart from the names every entry
    point has (main, build_parser) and the per-release readers SomethingRelease plugs in."""
    same_role = ('main', 'build_parser', 'read_label_names', 'read_split')
    seen: dict[str, Path] = {}
    for path in SOURCES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith('_') \
                    and node.name not in same_role:
                assert node.name not in seen, f'{node.name} in {seen.get(node.name)} and {path}'
                seen[node.name] = path


@pytest.mark.parametrize('crops, full_res, twice, dense, clips', [
    (1, False, False, False, 1), (3, True, False, False, 1), (10, False, True, False, 2),
    (1, False, False, True, DENSE_TEST_CLIPS), (5, False, True, True, DENSE_TEST_CLIPS)])
def test_test_views_describe_clips_crops_and_resolution(crops, full_res, twice, dense, clips):
    views = TestViews(crops=crops, full_res=full_res, twice_sample=twice, dense_sample=dense, input_size=32)
    assert views.clips == clips and views.num_views == clips * crops
    assert views.scale_size == 36 and views.crop_size == (36 if full_res else 32)
    starts = views.segment_starts(num_frames=100, num_segments=4, new_length=4)
    assert starts.shape == (clips * 4,)
    frames = torch.randint(0, 256, (4, 40, 60, 3), dtype=torch.uint8)
    out = views.transform([0.5] * 3, [0.25] * 3)(frames)
    assert out.shape == (crops * 4 * 3, views.crop_size, views.crop_size)
    with pytest.raises(ValueError, match='test_crops'):
        TestViews(crops=4)


def test_input_statistics_come_from_the_backbone_entry(monkeypatch):
    base = BACKBONES['resnet18']
    entry = BackboneEntry(base.build, base.weights, base.last_layer_name, base.add_shift, input_size=160,
                          input_mean=(0.5, 0.5, 0.5), input_std=(0.2, 0.3, 0.4))
    monkeypatch.setitem(BACKBONES, 'resnet18_test_stats', entry)
    model = PAN(3, 2, 'RGB', base_model='resnet18_test_stats', pretrain='scratch', print_spec=False)
    assert model.crop_size == 160 and model.scale_size == scale_size_for(160)
    assert model.input_mean == [0.5, 0.5, 0.5] and model.input_std == [0.2, 0.3, 0.4]
    with pytest.raises(ValueError, match='already registered'):
        register_backbone('resnet18', entry)
