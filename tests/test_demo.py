"""tools/demo.py: top-5 classes of one video (frame folder or video file) from a checkpoint, equal
to what the model gives on the validation clip; clear errors for bad input."""
import re
import sys

import pytest
import torch

from conftest import ROOT, run_entry
from ops.backbone_registry import scale_size_for
from ops.data_setup import to_model_input
from ops.dataset import PANDataSet
from ops.engine.checkpoint import save_checkpoint
from ops.models import PAN
from ops.transforms import build_val_transform
from reference_fill import fill_state_dict
from test_visualize_pa import folder_to_mp4, synthetic_video

sys.path.insert(0, str(ROOT / 'tools'))
import demo  # noqa: E402

OPTIONS = dict(num_segments=2, modality='Lite', base_model='resnet18', has_VAP=True, is_shift=True,
               dropout=0.5, data_length=4)
INPUT_SIZE = 64
LINE = re.compile(r'^(\d+)\. (.+) \((\d\.\d{4})\)$', re.M)


def tiny_model(num_class: int, seed: int = 0) -> PAN:
    """A Lite resnet18 with spread-out (not freshly initialised) weights, so classes differ."""
    model = PAN(num_class=num_class, **OPTIONS, pretrain='scratch', print_spec=False)
    model.load_state_dict(fill_state_dict(model.state_dict(), seed=seed))
    return model.eval()


def save_main_checkpoint(model: PAN, path, dataset: str = 'something') -> str:
    """The dict main.py writes (optimizer and RNG state left out: the demo does not read them)."""
    options = dict(OPTIONS, num_class=model.base_model.fc.pred.out_features)  # the VAP head's classes
    save_checkpoint({'epoch': 3, 'arch': 'resnet18',
                     'state_dict': {'module.' + k: v for k, v in model.state_dict().items()},
                     'best_prec1': 25.0, 'args': {'input_size': INPUT_SIZE}, 'model_options': options,
                     'dataset': dataset}, str(path))
    return str(path)


@pytest.fixture(scope='module')
def seven(tmp_path_factory):
    """A 7-class checkpoint, its category file and model."""
    folder = tmp_path_factory.mktemp('ckpt')
    model = tiny_model(7)
    categories = folder / 'category.txt'
    categories.write_text('\n'.join(f'action {c}' for c in 'abcdefg') + '\n')
    return {'path': save_main_checkpoint(model, folder / 'ckpt.pth.tar'), 'model': model,
            'categories': str(categories), 'names': [f'action {c}' for c in 'abcdefg']}


def expected_probs(model: PAN, root, list_line: str, image_tmpl: str, tmp_path) -> torch.Tensor:
    """The model's probabilities on the validation clip that PANDataSet gives for one list line."""
    listing = tmp_path / 'one.txt'
    listing.write_text(list_line + '\n')
    transform = build_val_transform(INPUT_SIZE, scale_size_for(INPUT_SIZE), model.input_mean, model.input_std,
                                    normalize=False)
    data = PANDataSet(root, listing, num_segments=2, new_length=4, modality='Lite', image_tmpl=image_tmpl,
                      transform=transform, random_shift=False)
    clip = to_model_input(data[0][0][None], model.input_mean, model.input_std, torch.device('cpu'))
    with torch.no_grad():
        return torch.softmax(model(clip), dim=1)[0]


def printed(stdout: str) -> list[tuple[str, float]]:
    found = LINE.findall(stdout)
    assert [int(rank) for rank, _, _ in found] == list(range(1, len(found) + 1))
    return [(name, float(p)) for _, name, p in found]


@pytest.mark.parametrize('source', ['folder', 'mp4'])
def test_top5_equals_the_model(tmp_path, synthetic_root, seven, capsys, source):
    folder = synthetic_video(synthetic_root)
    if source == 'folder':
        video = str(folder)
        expected = expected_probs(seven['model'], folder.parent, f'{folder.name} 8 0', '{:05d}.jpg', tmp_path)
    else:
        video = str(folder_to_mp4(folder, tmp_path / 'clip.mp4'))
        expected = expected_probs(seven['model'], tmp_path, 'clip.mp4 0 0', '', tmp_path)
    result = demo.main([video, '--weights', seven['path'], '--categories', seven['categories'], '--cpu',
                        '--no_amp'])  # fp32 pinned: compared with the fp32 model below
    out = capsys.readouterr().out
    top = printed(out)
    assert len(top) == 5
    assert all(name in seven['names'] for name, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True)
    values, order = expected.topk(5)
    assert [name for name, _ in top] == [seven['names'][i] for i in order]
    assert probs == pytest.approx(values.tolist(), abs=6e-5)  # printed to 4 decimals
    assert torch.allclose(result['probs'], expected, atol=1e-6)
    assert expected.max() - expected.min() > 0.05  # the weights do tell the classes apart
    assert '2 segments x 4 frames' in out and 'on cpu' in out
    assert '=> precision fp32 (--no_amp), layout default' in out
    assert re.search(r'time: load model [\d.]+ s, .* total [\d.]+ s', out)


def test_amp_gives_the_fp32_classes(synthetic_root, seven, capsys):
    """bf16 autocast and channels-last: the fp32 run's top-5 classes, probabilities within 1e-2."""
    video = str(synthetic_video(synthetic_root))
    common = [video, '--weights', seven['path'], '--categories', seven['categories'], '--cpu']
    fp32 = demo.main([*common, '--no_amp'])
    bf16 = demo.main([*common, '--amp'])
    assert re.search(r'=> precision bf16 \(autocast; --amp.*\), layout channels_last', capsys.readouterr().out)
    assert bf16['precision'].channels_last and bf16['precision'].dtype == torch.bfloat16
    assert [i for i, _, _ in bf16['top']] == [i for i, _, _ in fp32['top']]
    assert (bf16['probs'] - fp32['probs']).abs().max() <= 1e-2


def test_released_file_name_and_dataset_categories(tmp_path, synthetic_root):
    """A checkpoint as released (no stored options: settings from the name) of a 4-class model;
    names from the synthetic dataset's category.txt; fewer than 5 classes: all printed."""
    model = tiny_model(4, seed=2)
    path = tmp_path / 'PAN_Lite_synthetic_resnet18_shift8_blockres_avg_segment2_e80.pth.tar'
    torch.save({'epoch': 80, 'arch': 'resnet18', 'best_prec1': 10.0,
                'state_dict': {'module.' + k: v for k, v in model.state_dict().items()}}, path)
    result = run_entry('tools/demo.py', tmp_path, str(synthetic_video(synthetic_root)),
                       '--weights', str(path), '--root_path', str(synthetic_root),
                       '--input_size', str(INPUT_SIZE))
    top = printed(result.stdout)
    names = (synthetic_root / 'synthetic' / 'category.txt').read_text().split('\n')[:4]
    assert sorted(name for name, _ in top) == sorted(names)
    assert sum(p for _, p in top) == pytest.approx(1.0, abs=5e-4)
    folder = synthetic_video(synthetic_root)
    expected = expected_probs(model, folder.parent, f'{folder.name} 8 0', '{:05d}.jpg', tmp_path)
    assert [name for name, _ in top] == [names[i] for i in expected.argsort(descending=True)]
    assert 'time:' in result.stdout


def test_no_category_file_shows_indices(tmp_path, synthetic_root, seven, capsys):
    demo.main([str(synthetic_video(synthetic_root)), '--weights', seven['path'], '--root_path', str(tmp_path),
               '--cpu', '--top', '3'])
    out = capsys.readouterr().out
    top = printed(out)
    assert len(top) == 3 and all(re.fullmatch(r'class [0-6]', name) for name, _ in top)
    assert 'no category file' in out and 'category.txt' in out


def test_errors_name_what_is_wrong(tmp_path, synthetic_root, seven):
    video = str(synthetic_video(synthetic_root))
    with pytest.raises(SystemExit, match='no such video file or frame folder: .*missing_clip'):
        demo.main([str(tmp_path / 'missing_clip'), '--weights', seven['path'], '--cpu'])
    with pytest.raises(SystemExit, match='checkpoint not found: .*nothing.pth.tar'):
        demo.main([video, '--weights', str(tmp_path / 'nothing.pth.tar'), '--cpu'])
    garbage = tmp_path / 'garbage.pth.tar'
    garbage.write_bytes(b'this is no checkpoint')
    with pytest.raises(SystemExit, match='Cannot read checkpoint .*garbage.pth.tar'):
        demo.main([video, '--weights', str(garbage), '--cpu'])
    # stored options that disagree with the weights (an RGB model holding Lite weights)
    ckpt = torch.load(seven['path'], weights_only=True)
    ckpt['model_options']['modality'] = 'RGB'
    wrong = tmp_path / 'wrong.pth.tar'
    torch.save(ckpt, wrong)
    with pytest.raises(SystemExit, match='wrong.pth.tar does not fit this model'):
        demo.main([video, '--weights', str(wrong), '--cpu'])
    three = tmp_path / 'three.txt'
    three.write_text('a\nb\nc\n')
    with pytest.raises(SystemExit, match='three.txt lists 3 classes but .*ckpt.pth.tar predicts 7'):
        demo.main([video, '--weights', seven['path'], '--categories', str(three), '--cpu'])
    with pytest.raises(SystemExit, match='missing category file: .*absent.txt'):
        demo.main([video, '--weights', seven['path'], '--categories', str(tmp_path / 'absent.txt'), '--cpu'])
    not_video = tmp_path / 'notes.txt'
    not_video.write_text('hello')
    with pytest.raises(SystemExit, match='notes.txt is neither a frame folder nor a video file'):
        demo.main([str(not_video), '--weights', seven['path'], '--cpu'])


def test_tsn_folder_with_flow_images_reads_only_rgb_frames(tmp_path, synthetic_root, seven, capsys):
    """A TSN-extracted folder holds img_* frames beside flow_x_* / flow_y_* (or x_* / y_*) images: only
    the RGB frames are read, in number order, and the demo says what it skipped."""
    import shutil
    src = synthetic_video(synthetic_root)
    clean = demo.main([str(src), '--weights', seven['path'], '--categories', seven['categories'], '--cpu'])
    capsys.readouterr()
    tsn = tmp_path / 'tsn_video'
    tsn.mkdir()
    frames = sorted(src.iterdir())
    for i, f in enumerate(frames, 1):
        shutil.copy(f, tsn / f'img_{i:05d}.jpg')
        for flow in ('flow_x', 'flow_y', 'x', 'y'):
            shutil.copy(frames[-i], tsn / f'{flow}_{i:05d}.jpg')  # wrong order: picking them would show
    result = demo.main([str(tsn), '--weights', seven['path'], '--categories', seven['categories'], '--cpu'])
    out = capsys.readouterr().out
    assert torch.equal(result['probs'], clean['probs'])
    assert f'of {len(frames)} frames' in out
    assert f'took the {len(frames)} frames named img_<n>.jpg; skipped {4 * len(frames)} other image(s)' in out
    assert 'flow_x_*' in out and 'y_*' in out
    only_flow = tmp_path / 'flow_only'
    only_flow.mkdir()
    shutil.copy(frames[0], only_flow / 'flow_x_00001.jpg')
    with pytest.raises(SystemExit, match='only optical-flow images .* no RGB frames'):
        demo.main([str(only_flow), '--weights', seven['path'], '--cpu'])


def test_a_truncated_video_says_its_header_claims_more(tmp_path, seven, capsys):
    """The real XviD AVI cut in half: its header still claims 164 frames; the demo reads and says
    what decodes."""
    data = (ROOT / 'tests' / 'fixtures' / 'xvid_bframes.avi').read_bytes()
    cut = tmp_path / 'cut.avi'
    cut.write_bytes(data[:len(data) // 2])
    result = demo.main([str(cut), '--weights', seven['path'], '--categories', seven['categories'], '--cpu'])
    out = capsys.readouterr().out
    decoded = re.search(r'cut.avi: 8 of (\d+) frames', out)
    assert decoded and 0 < int(decoded.group(1)) < 164 and max(result['indices']) <= int(decoded.group(1))
    assert f'its header claims 164 frames but {decoded.group(1)} decode (a truncated or damaged file)' in out
