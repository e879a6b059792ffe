"""Your own videos, end to end, as a user runs it: class folders of clips in every container the
readers take (upper-case extensions, spaces in names, a frame folder among the videos, a corrupt
file, an empty class) -> tools/prepare_dataset.py -> main.py (one short epoch) -> test_models.py
without test flags -> tools/demo.py from another folder -> tools/export_onnx.py, its metadata read
back with ONNX Runtime. Entry points run in-process (tiny clips, ResNet-18, 2 segments, 32 px)."""
import json

import pytest
from PIL import Image

import main as train_main
import test_models
from ops.deploy.onnx_export import read_metadata
from ops.engine.checkpoint import read_checkpoint
from ops.errors import InputError
from test_video_reader import write_video
from tools import demo, export_onnx, prepare_dataset

NAME = 'my_clips'
TRAIN = ['--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2', '--input_size', '32', '-b', '2',
         '--epochs', '1', '-j', '0', '--lr', '0.01', '--print-freq', '50']
# class -> (file name, codec): every container the readers take, upper-case extensions, spaces in names
CLIPS = {'swipe left': [('a clip.mp4', 'mpeg4'), ('b.avi', 'mpeg4'), ('c.mkv', 'mpeg4'), ('d.webm', 'vp8')],
         'swipe right': [('e.mov', 'mpeg4'), ('f.m4v', 'mpeg4'), ('G CLIP.MP4', 'mpeg4'), ('h.AVI', 'mpeg4')]}


def make_videos(folder):
    """Two classes of 4 videos (the second also holds a frame folder and a corrupt file), a text
    file, and an empty class."""
    for cls, clips in CLIPS.items():
        (folder / cls).mkdir(parents=True)
        for name, codec in clips:
            write_video(folder / cls / name, 8, codec, gop=4, size=(32, 32))
    frames = folder / 'swipe right' / 'frames of a clip'
    frames.mkdir()
    for i in range(1, 9):
        Image.new('RGB', (32, 32), (20 * i, 40, 90)).save(frames / f'img_{i:05d}.jpg')
    (folder / 'swipe right' / 'broken.avi').write_bytes(b'\x00RIFF not really an avi' * 40)
    (folder / 'swipe left' / 'notes.txt').write_text('not a clip')
    (folder / 'nothing here').mkdir()


def test_a_folder_of_clips_becomes_a_trained_tested_exported_model(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv('PAN_DATA_ROOT', raising=False)
    videos, root, work, elsewhere = (tmp_path / d for d in ('videos', 'data', 'work', 'elsewhere'))
    make_videos(videos)
    for d in (work, elsewhere):
        d.mkdir()
    monkeypatch.chdir(work)

    # an empty class stops it, naming the folder, after the report, with nothing written
    assert prepare_dataset.main([str(videos), '--name', NAME, '--root_path', str(root), '--workers', '1']) == 2
    out, err = capsys.readouterr()
    assert f'{videos / "nothing here"}' in err and 'hold no usable clip' in err
    assert 'no usable clip' in out and not (root / NAME / 'dataset.json').exists()

    (videos / 'nothing here').rmdir()
    assert prepare_dataset.main([str(videos), '--name', NAME, '--root_path', str(root), '--workers', '1']) == 0
    out = capsys.readouterr().out
    assert f'{videos / "swipe right" / "broken.avi"}: cannot be opened' in out
    assert f'{videos / "swipe left" / "notes.txt"}: not a video file or frame folder' in out
    lines = [line.rsplit(' ', 2) for f in ('train_videofolder.txt', 'val_videofolder.txt')
             for line in (root / NAME / f).read_text().splitlines()]
    listed = {path for path, _, _ in lines}
    assert listed == {f'{c}/{n}' for c, clips in CLIPS.items() for n, _ in clips} | {'swipe right/frames of a clip'}
    assert {int(count) for _, count, _ in lines} == {8}
    assert (root / NAME / 'category.txt').read_text() == 'swipe left\nswipe right\n'
    assert json.loads((root / NAME / 'dataset.json').read_text())['image_tmpl'] == 'img_{:05d}.jpg'

    # main.py trains on it by name; the checkpoint holds the class names
    args = [NAME, 'Lite', *TRAIN, '--root_path', str(root)]
    train_main.main(args)
    run = next((work / 'checkpoint').iterdir())
    ckpt = run / 'ckpt.best.pth.tar'
    assert read_checkpoint(str(ckpt))['class_names'] == ['swipe left', 'swipe right']
    # the same command again would replace it: refused before anything is written, naming the ways on
    ways = r' already holds a run.*--resume auto.*--store_name.*--overwrite'
    with pytest.raises(InputError, match=r'(?s)^checkpoint/' + run.name + ways):
        train_main.main(args)
    capsys.readouterr()

    # test_models.py without --test_segments / --input_size: the checkpoint's 2 segments at 32 px
    result = test_models.main([NAME, f'--weights={ckpt}', '--root_path', str(root), '-j', '0', '--no_amp',
                               '--save_scores', str(work / 'scores.npz')])
    out = capsys.readouterr().out
    assert '2 segments x 4 frames, head VAP, 32x32 crops; segments, frames per segment, input size from the ' \
           'checkpoint' in out
    assert 'swipe left' in out and 'swipe right' in out and 0 <= result['top1'] <= 100

    # the demo from another folder, with no data root there: class names from the checkpoint
    monkeypatch.chdir(elsewhere)
    shown = demo.main(['--weights', str(ckpt), str(videos / 'swipe right' / 'G CLIP.MP4'), '--no_amp'])
    out = capsys.readouterr().out
    assert "classes: the checkpoint's 2 class names" in out
    assert {name for _, name, _ in shown['top']} == {'swipe left', 'swipe right'}
    assert f"1. {shown['top'][0][1]} (" in out

    # ONNX: the file carries class names, input size, mean, std and segments
    onnx_file = elsewhere / 'model.onnx'
    export_onnx.main([str(ckpt), '--out', str(onnx_file)])
    meta = read_metadata(str(onnx_file))
    assert json.loads(meta['class_names']) == ['swipe left', 'swipe right']
    assert (meta['num_segments'], meta['frames_per_segment'], meta['input_size']) == ('2', '4', '32')
    assert json.loads(meta['input_mean']) == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads(meta['input_std']) == pytest.approx([0.229, 0.224, 0.225])
