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

Class names come from ``--categories FILE``, else from the checkpoint (main.py stores its
dataset's names in it), else from the ``category.txt`` of the checkpoint's dataset under the data
root (``--root_path``, ``$PAN_DATA_ROOT``, ``./data``); without any, the classes are shown by index. Runs on CUDA when present, else on the CPU (``--cpu`` forces it); on
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ops.backbone_registry import scale_size_for
from ops.data_setup import to_model_input
from ops.dataset import sample_clip
from ops.dataset_config import ENV_ROOT, get_dataset_info, read_categories
from ops.engine.checkpoint import (DEFAULT_INPUT_SIZE, checkpoint_class_names, input_sources, load_pan_model,
                                  trained_input_size)
from ops.engine.cli import new_parser
from ops.engine.compile import PAYS_AFTER, add_compile_flags, compile_for_inference, resolve_compile
from ops.engine.distributed import pick_device
from ops.engine.naming import parse_run_name
from ops.engine.precision import RunPrecision, add_precision_flags, resolve_precision
from ops.frames.frame_source import FrameSource, check_clip_source
from ops.modalities import DEFAULT_DATA_LENGTH, frames_per_segment
from ops.models import PAN
from ops.transforms import build_val_transform
from tools._prep_common import exit_with_error
from tools._timing import sync


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument('video', help='a video file (.mp4, .webm, .avi, .mkv) or a folder of frames')
    p.add_argument('--weights', required=True, default=argparse.SUPPRESS,
                   help='checkpoint of main.py or of the release (required)')
    p.add_argument('--categories', default=None,
                   help="class names, one a line (None: the checkpoint's, else the category.txt of its dataset)")
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


def checkpoint_dataset(checkpoint: dict, weights: str) -> str | None:
    """The dataset a checkpoint was trained on: stored by main.py, else read from the released
    file name; None when neither says."""
    if checkpoint.get('dataset'):
        return checkpoint['dataset']
    try:
        return parse_run_name(weights).dataset
    except ValueError:
        return None


def class_names(categories: str | None, checkpoint: dict, weights: str, root_path: str | None,
                num_class: int) -> tuple[list[str], str]:
    """Names of the model's ``num_class`` classes and where they came from (see
    :func:`find_class_names`); ``class 0``, ``class 1``, ... when none are found."""
    names, source = find_class_names(categories, checkpoint, weights, root_path, num_class)
    return names or [f'class {i}' for i in range(num_class)], source


def find_class_names(categories: str | None, checkpoint: dict, weights: str, root_path: str | None,
                     num_class: int) -> tuple[list[str] | None, str]:
    """Names of the model's ``num_class`` classes (None when there are none) and where they came from.

    ``--categories`` must exist and match the class count; else the names main.py stored in the
    checkpoint; else the dataset's category.txt (dataset stored by main.py, else read from the file
    name; a built-in dataset or one of your own under the data root), which must match if found.
    """
    if categories is None:
        stored = checkpoint_class_names(checkpoint, num_class)
        if stored is not None:
            return stored, f"the checkpoint's {num_class} class names"
    if categories is not None:
        path = Path(categories)
    else:
        dataset = checkpoint_dataset(checkpoint, weights)
        path = None
        if dataset:
            try:
                path = get_dataset_info(dataset, root_path).category_file
            except (OSError, ValueError):  # not a dataset here; synthetic counts its classes from the file
                path = None
        if path is None or not path.is_file():
            where = f' (looked for {path})' if path is not None else ''
            return None, f'class indices: no class names in the checkpoint, no category file{where}; pass --categories'

    names = read_categories(path)
    if len(names) != num_class:
        raise ValueError(f'{path} lists {len(names)} classes but {weights} predicts {num_class}: '
                         'wrong category file or checkpoint?')
    return names, str(path)


@dataclass
class Classifier:
    """A checkpoint ready to classify clips as validation samples and crops them: the model (eval
    mode, precision applied, on ``device``), its options and checkpoint dict, the class names and
    where they came from, the crop size and the frames per segment."""
    weights: str
    model: PAN
    options: dict
    checkpoint: dict
    names: list[str]
    names_source: str
    precision: RunPrecision
    device: torch.device
    input_size: int
    new_length: int

    def transform(self):
        """Validation's crop: uint8 frames ``(F, H, W, 3)`` -> uint8 ``(F * 3, S, S)``, not normalised."""
        return build_val_transform(self.input_size, scale_size_for(self.input_size), self.model.input_mean,
                                   self.model.input_std, normalize=False)


@dataclass
class ClipScores:
    """One clip's result: ``probs`` ``(num_class,)``; ``inputs`` the normalised model input
    ``(1, T*L*3, S, S)`` on the device; ``crops`` uint8 ``(T*L, 3, S, S)``; the 1-based frame
    ``indices``, the frame ``source``, and the seconds spent reading and in the forward pass."""
    probs: torch.Tensor
    inputs: torch.Tensor
    crops: torch.Tensor
    indices: np.ndarray
    source: FrameSource
    seconds: dict[str, float]

    def top(self, names: list[str], k: int) -> list[tuple[int, str, float]]:
        """The ``k`` likeliest classes as (index, name, probability), likeliest first."""
        values, order = self.probs.topk(min(k, len(names)))
        return [(int(i), names[int(i)], float(v)) for v, i in zip(values, order)]


def load_classifier(weights: str, device: torch.device, precision: RunPrecision, *,
                    num_segments: int | None = None, input_size: int | None = None,
                    categories: str | None = None, root_path: str | None = None) -> Classifier:
    """The model of checkpoint ``weights`` with its class names (:func:`class_names`). Raises
    OSError / ValueError naming the file for a missing or unreadable checkpoint or category file."""
    if not os.path.isfile(weights):
        raise FileNotFoundError(f'checkpoint not found: {weights}')
    model, options, checkpoint = load_pan_model(weights, num_segments, device)
    precision.apply(model)
    names, names_source = class_names(categories, checkpoint, weights, root_path, options['num_class'])
    new_length = frames_per_segment(options['modality'], options.get('data_length', DEFAULT_DATA_LENGTH))
    return Classifier(weights, model, options, checkpoint, names, names_source, precision, device,
                      input_size or trained_input_size(checkpoint), new_length)


def classify_clip(classifier: Classifier, video: str) -> ClipScores:
    """The class probabilities of the validation clip of ``video`` (a file or a frame folder).
    OSError / ValueError name the file when it does not read."""
    start = time.perf_counter()
    model, device = classifier.model, classifier.device
    frames, indices, source = sample_clip(video, model.num_segments, classifier.new_length)
    crops = classifier.transform()(frames)
    inputs = to_model_input(crops[None], model.input_mean, model.input_std, device)
    sync(device)
    read = time.perf_counter()
    with torch.inference_mode(), classifier.precision.autocast():
        logits = model(inputs)
    probs = torch.softmax(logits.float(), dim=1)[0].cpu()
    sync(device)
    done = time.perf_counter()
    size = classifier.input_size
    return ClipScores(probs, inputs, crops.reshape(-1, 3, size, size), indices, source,
                      {'read': read - start, 'forward': done - read})


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    device = torch.device('cpu') if args.cpu else pick_device()
    precision = resolve_precision(args.amp, args.channels_last, device)
    start = time.perf_counter()
    try:
        check_clip_source(args.video)
        classifier = load_classifier(args.weights, device, precision, num_segments=args.num_segments,
                                     input_size=args.input_size, categories=args.categories,
                                     root_path=args.root_path)
        compiled = resolve_compile(args.compile, 1, PAYS_AFTER['test'], 'clip (one video)')
        if compiled.enabled:
            compile_for_inference(classifier.model)
    except (OSError, ValueError) as err:  # missing file, unreadable or mismatched checkpoint / categories
        exit_with_error(err)
    sync(device)
    loaded = time.perf_counter()
    try:
        scores = classify_clip(classifier, args.video)
    except (OSError, ValueError) as err:
        exit_with_error(err)

    options, model, names = classifier.options, classifier.model, classifier.names
    head = 'VAP' if options['has_VAP'] else 'TSN'
    print(f"=> PAN {options['modality']} ({options['base_model']}, {model.num_segments} segments x "
          f"{classifier.new_length} frames, head {head}, {options['num_class']} classes) from {args.weights} "
          f'on {device}')
    print('=> ' + input_sources(classifier.checkpoint, {'segments': args.num_segments and '--num_segments',
                                             'size': args.input_size and '--input_size'}))
    print(f'{precision.describe()}, {compiled.describe()}')
    size = classifier.input_size
    print(f'=> {args.video}: {len(scores.indices)} of {scores.source.num_frames} frames, '
          f'{size}x{size} crops; classes: {classifier.names_source}')
    if scores.source.note:
        print(f'=> {args.video}: {scores.source.note}')
    top = scores.top(names, args.top)
    for rank, (_, name, prob) in enumerate(top, 1):
        print(f'{rank}. {name} ({prob:.4f})')
    seconds = {'model': loaded - start, **scores.seconds}
    seconds['total'] = sum(seconds.values())
    print(f"time: load model {seconds['model']:.3f} s, read + transform {seconds['read']:.3f} s, "
          f"forward {seconds['forward']:.3f} s, total {seconds['total']:.3f} s")
    return {'top': top, 'probs': scores.probs, 'seconds': seconds, 'indices': scores.indices,
            'precision': precision}


if __name__ == '__main__':
    main()
