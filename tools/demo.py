"""Classify one video with a PAN checkpoint: print the top-5 classes and the time taken.

    python tools/demo.py --weights CHECKPOINT VIDEO_FILE_OR_FRAME_FOLDER
        [--categories category.txt] [--root_path DATA] [--num_segments N] [--input_size S] [--top 5] [--cpu]
        [--amp | --no_amp] [--channels_last | --no_channels_last] [--compile]

The model (modality, backbone, shift, head, class count, segments) is rebuilt from the checkpoint
alone: the options main.py stores in it, else the released file name
(``PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar``). The clip is sampled
and cropped as validation does: the centre of each segment (``data_length`` consecutive frames
for PA / Lite), short side to ``input_size * 256 / 224``, centre crop ``input_size`` (default:
the ``--input_size`` the checkpoint was trained with, else 224), ImageNet normalisation.

Class names come from ``--categories FILE``, else from the ``category.txt`` of the checkpoint's
dataset under the data root (``--root_path``, ``$PAN_DATA_ROOT``, ``./data``); without either, the
classes are shown by index. Runs on CUDA when present, else on the CPU (``--cpu`` forces it); on
the CPU in bf16 and channels-last where it has AMX or AVX-512 BF16, else in fp32 (ops/engine/precision.py;
``--amp`` / ``--no_amp``, ``--channels_last`` / ``--no_channels_last`` override it). The model runs
eagerly: compiling it (``--compile``, ops/engine/compile.py) takes longer than one video's forward
pass saves; the forward time then includes the compilation.

Output::

    1. moving left (0.9731)
    2. moving up (0.0154)
    ...
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from ops.backbone_registry import scale_size_for
from ops.data_setup import to_model_input
from ops.dataset import sample_clip
from ops.dataset_config import ENV_ROOT, get_dataset_info, known_datasets, read_categories
from ops.engine.checkpoint import DEFAULT_INPUT_SIZE, load_pan_model, trained_input_size
from ops.engine.cli import new_parser
from ops.engine.compile import PAYS_AFTER, add_compile_flags, compile_for_inference, resolve_compile
from ops.engine.distributed import pick_device
from ops.engine.naming import parse_run_name
from ops.engine.precision import add_precision_flags, resolve_precision
from ops.frames.frame_source import check_clip_source
from ops.modalities import DEFAULT_DATA_LENGTH, frames_per_segment
from ops.transforms import build_val_transform
from tools._prep_common import exit_with_error


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument('video', help='a video file (.mp4, .webm, .avi, .mkv) or a folder of frames')
    p.add_argument('--weights', required=True, default=argparse.SUPPRESS,
                   help='checkpoint of main.py or of the release (required)')
    p.add_argument('--categories', default=None,
                   help="class names, one a line (None: the category.txt of the checkpoint's dataset)")
    p.add_argument('--root_path', default=None,
                   help=f"data root holding the dataset's category.txt (None: ${ENV_ROOT}, else ./data)")
    p.add_argument('--num_segments', type=int, default=None, help="segments sampled (None: the checkpoint's)")
    p.add_argument('--input_size', type=int, default=None,
                   help=f"crop size (None: the checkpoint's, else {DEFAULT_INPUT_SIZE})")
    p.add_argument('--top', type=int, default=5, help='classes to print')
    p.add_argument('--cpu', action='store_true', help='run on the CPU even when CUDA is present')
    add_precision_flags(p)
    add_compile_flags(p, 'off: for one video compiling takes longer than it saves')
    return p


def class_names(categories: str | None, checkpoint: dict, weights: str, root_path: str | None,
                num_class: int) -> tuple[list[str], str]:
    """Names of the model's ``num_class`` classes and where they came from.

    ``--categories`` must exist and match the class count; the dataset's category.txt (dataset
    stored by main.py, else read from the file name) must match if found, else indices are used.
    """
    if categories is not None:
        path = Path(categories)
    else:
        dataset = checkpoint.get('dataset')
        if dataset is None:
            try:
                dataset = parse_run_name(weights).dataset
            except ValueError:
                dataset = None
        path = None
        if dataset in known_datasets():
            try:
                path = get_dataset_info(dataset, root_path).category_file
            except (OSError, ValueError):  # synthetic counts its classes from the missing file
                path = None
        if path is None or not path.is_file():
            where = f' (looked for {path})' if path is not None else ''
            note = f'class indices: no category file{where}; pass --categories'
            return [f'class {i}' for i in range(num_class)], note
    names = read_categories(path)
    if len(names) != num_class:
        raise ValueError(f'{path} lists {len(names)} classes but {weights} predicts {num_class}: '
                         'wrong category file or checkpoint?')
    return names, str(path)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    device = torch.device('cpu') if args.cpu else pick_device()
    precision = resolve_precision(args.amp, args.channels_last, device)
    start = time.perf_counter()
    try:
        check_clip_source(args.video)
        if not os.path.isfile(args.weights):
            raise FileNotFoundError(f'checkpoint not found: {args.weights}')
        model, options, checkpoint = load_pan_model(args.weights, args.num_segments, device)
        precision.apply(model)
        compiled = resolve_compile(args.compile, 1, PAYS_AFTER['test'], 'clip (one video)')
        if compiled.enabled:
            compile_for_inference(model)
        names, names_source = class_names(args.categories, checkpoint, args.weights, args.root_path,
                                          options['num_class'])
    except (OSError, ValueError) as err:  # missing file, unreadable or mismatched checkpoint / categories
        exit_with_error(err)
    _sync(device)
    loaded = time.perf_counter()

    input_size = args.input_size or trained_input_size(checkpoint)
    new_length = frames_per_segment(options['modality'], options.get('data_length', DEFAULT_DATA_LENGTH))
    transform = build_val_transform(input_size, scale_size_for(input_size), model.input_mean, model.input_std,
                                    normalize=False)
    try:
        frames, indices, source = sample_clip(args.video, model.num_segments, new_length)
    except (OSError, ValueError) as err:
        exit_with_error(err)
    clip = to_model_input(transform(frames)[None], model.input_mean, model.input_std, device)
    _sync(device)
    read = time.perf_counter()

    with torch.inference_mode(), precision.autocast():
        logits = model(clip)
    probs = torch.softmax(logits.float(), dim=1)[0].cpu()
    _sync(device)
    done = time.perf_counter()

    head = 'VAP' if options['has_VAP'] else 'TSN'
    print(f"=> PAN {options['modality']} ({options['base_model']}, {model.num_segments} segments x "
          f"{new_length} frames, head {head}, {options['num_class']} classes) from {args.weights} "
          f'on {device}')
    print(f'{precision.describe()}, {compiled.describe()}')
    print(f'=> {args.video}: {len(indices)} of {source.num_frames} frames, '
          f'{input_size}x{input_size} crops; classes: {names_source}')
    if source.note:
        print(f'=> {args.video}: {source.note}')
    values, order = probs.topk(min(args.top, len(names)))
    top = [(int(i), names[int(i)], float(v)) for v, i in zip(values, order)]
    for rank, (_, name, prob) in enumerate(top, 1):
        print(f'{rank}. {name} ({prob:.4f})')
    seconds = {'model': loaded - start, 'read': read - loaded, 'forward': done - read, 'total': done - start}
    print(f"time: load model {seconds['model']:.3f} s, read + transform {seconds['read']:.3f} s, "
          f"forward {seconds['forward']:.3f} s, total {seconds['total']:.3f} s")
    return {'top': top, 'probs': probs, 'seconds': seconds, 'indices': indices, 'precision': precision}


if __name__ == '__main__':
    main()
