"""Export a PAN checkpoint to ONNX and check it with ONNX Runtime against PyTorch.

    python tools/export_onnx.py CHECKPOINT --out model.onnx [--num_segments N] [--input_size S]
        [--online] [--steps 4]

The model (modality, backbone, shift, head, classes, segments) is rebuilt from the checkpoint alone
(ops/engine/checkpoint.py). The offline graph takes ``clip`` ``(N, T * L * 3, S, S)``, normalised as the
model's input, and returns ``logits`` ``(N, num_class)``; the batch N is dynamic. ``--online``
(a causal checkpoint, trained with ``main.py --causal_shift``) exports one streaming step instead,
its state as explicit inputs and outputs (``segment``, ``window``, ``shift_*`` -> ``logits``,
``window_out``, ``shift_*_out``; see ops/deploy/onnx_export.py).

The exported file is run with ONNX Runtime (CPU) on batches of 1 and 3 (online: ``--steps`` steps
of each), and the largest difference to PyTorch printed; the tool fails (status 1) when it
exceeds 1e-4 of the largest |logit|. The export runs in fp32.

The file's metadata (read back with ONNX Runtime and printed) records what a user needs without the
checkpoint: ``class_names`` (JSON; the checkpoint's, else ``--categories`` or the dataset's
category.txt), ``num_segments``, ``frames_per_segment``, ``input_size``, ``input_mean``,
``input_std`` (JSON), ``modality``, ``arch``, ``graph`` and ``input_layout``. Segments and input size
are the checkpoint's unless ``--num_segments`` / ``--input_size`` are given.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from ops.dataset_config import ENV_ROOT
from ops.deploy.onnx_export import (ONNX_OPSET, check_offline, check_online, export_offline, export_online,
                                    model_metadata, read_metadata, write_metadata)
from ops.deploy.streaming import is_causal
from ops.engine.checkpoint import DEFAULT_INPUT_SIZE, input_sources, load_pan_model, trained_input_size
from ops.engine.cli import add_debug_flag, new_parser, run_cli_main
from ops.errors import InputError
from tools.demo import find_class_names

CHECK_FAILED_STATUS = 1


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument('weights', help='checkpoint of main.py or of the release')
    p.add_argument('--out', required=True, default=argparse.SUPPRESS, help='ONNX file to write (required)')
    p.add_argument('--num_segments', type=int, default=None, help="segments per clip (None: the checkpoint's)")
    p.add_argument('--input_size', type=int, default=None,
                   help=f"crop side S (None: the checkpoint's --input_size, else {DEFAULT_INPUT_SIZE})")
    p.add_argument('--online', action='store_true',
                   help="export the causal model's single streaming step, its buffers as inputs and outputs "
                        '(default: off, the offline clip model)')
    p.add_argument('--steps', type=int, default=4, help='streaming steps of the --online check')
    p.add_argument('--categories', default=None,
                   help="class names for the file's metadata, one a line (None: the checkpoint's, else the "
                        'category.txt of its dataset, else none recorded)')
    p.add_argument('--root_path', default=None,
                   help=f"data root holding the dataset's category.txt (None: ${ENV_ROOT}, else ./data)")
    add_debug_flag(p)
    return p


@torch.no_grad()  # restored on return: tests call main() in-process
def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    model, options, checkpoint = load_pan_model(args.weights, args.num_segments)
    size = args.input_size or trained_input_size(checkpoint)
    if args.online and not is_causal(model):
        raise InputError(f'--online: {args.weights} has a bidirectional shift (every step would need the next '
                         'segments); export a checkpoint trained with main.py --causal_shift, or leave out --online')
    if args.steps < 1:
        raise InputError(f'--steps must be at least 1, got {args.steps}')
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f'--out {args.out}: folder {out_dir} does not exist')
    kind = 'online step' if args.online else 'offline clip model'
    try:
        known, names_source = find_class_names(args.categories, checkpoint, args.weights, args.root_path,
                                               options['num_class'])
    except ValueError as err:  # a category file of another count
        raise InputError(str(err)) from err
    print(f"=> PAN {options['modality']} ({options['base_model']}, {model.num_segments} segments x "
          f"{model.new_length} frames, {size}x{size}, causal {is_causal(model)}) from {args.weights}: "
          f'{kind}, ONNX opset {ONNX_OPSET}')
    print('=> ' + input_sources(checkpoint, {'segments': args.num_segments and '--num_segments',
                                             'size': args.input_size and '--input_size'})
          + f'; classes: {names_source if known else "none recorded (no names found; pass --categories)"}')
    start = time.perf_counter()
    if args.online:
        step = export_online(model, args.out, size)
    else:
        export_offline(model, args.out, size)
    write_metadata(args.out, model_metadata(model, size, known, kind))
    found = check_online(step, args.out, size, args.steps) if args.online else check_offline(model, args.out, size)
    metadata = read_metadata(args.out)
    print(f'=> wrote {args.out} ({os.path.getsize(args.out) / 2 ** 20:.1f} MB) in {time.perf_counter() - start:.1f} s; '
          'ONNX Runtime (CPU) against PyTorch:')
    for comparison in found:
        print('   ' + comparison.describe())
    print('=> metadata (read back with ONNX Runtime): '
          + ', '.join(f'{k}={v if len(v) <= 60 else v[:57] + "..."}' for k, v in sorted(metadata.items())))
    ok = all(c.ok for c in found)
    if not ok:
        print(f'error: {args.out} differs from PyTorch by more than the bound', file=sys.stderr)
        sys.exit(CHECK_FAILED_STATUS)
    return {'comparisons': found, 'input_size': size, 'metadata': metadata}


if __name__ == '__main__':
    run_cli_main(main)
