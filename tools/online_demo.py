"""Classify a stream online with a PAN checkpoint: a video file, a frame folder or a camera.

    python tools/online_demo.py --weights CHECKPOINT SOURCE [--stride K] [--out annotated.mp4]
        [--realtime] [--fps F] [--categories category.txt] [--top 3] [--num_segments N] [--input_size S] [--cpu]
        [--amp | --no_amp] [--channels_last | --no_channels_last] [--compile | --no_compile]

SOURCE is a video file, a folder of frames, or a camera (``/dev/video0``, read through PyAV's
v4l2 input). Frames are read one after another; every ``--stride`` frames the ``new_length``
consecutive frames starting there (4 for PA and Lite, 1 for RGB) form a segment, cropped and
normalised as validation does, and go to ``ops.deploy.streaming.OnlinePAN``. Once ``num_segments``
segments have been seen, each step prints the top classes of the last ``num_segments`` segments,
the step's latency and the running segments/s. A causal checkpoint (``main.py --causal_shift``)
runs one segment per step; a bidirectional one (every released checkpoint) re-runs the window.

The default stride spaces the segments as the model's clips were: a source with a known length
(a file, a folder) gets ``round(frames / num_segments)``, the spacing of validation's segments
on this very video, so the last window covers it as the offline clip does; a camera gets
``2 * new_length`` frames (8 segments x 8 frames is 2.6 s at 25 fps, about a Something-Something
video).

``--realtime`` reads the source as a live camera delivers it, at its frame rate (``--fps``, else
the file's, else 25): a frame not taken before the next one arrives is dropped, and the count of
drops is reported. ``--out`` writes the frames read with the current top classes and PA map (the
mean of the segment's PA maps, over the model's crop; none for RGB) drawn on them, as H.264 MP4
(plays in browsers) at the source's exact frame rate, or MPEG-4 Part 2 where PyAV has no H.264
encoder; it says which. A video that decodes fewer frames than its header claims is said so, and
its length is the frames that decode.

A long stream compiles its step (ops/engine/compile.py; the state stays outside the graph, so no
step recompiles): a camera, or a file of 500 steps or more; a shorter file runs eagerly, since the
compilation (tens of seconds on a CPU, at the second step) would cost more than it saves.
``--compile`` / ``--no_compile`` decide instead.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch

from ops.backbone_registry import scale_size_for
from ops.data_setup import to_model_input
from ops.dataset_config import ENV_ROOT
from ops.deploy.streaming import OnlinePAN
from ops.engine.checkpoint import DEFAULT_INPUT_SIZE, input_sources, load_pan_model, trained_input_size
from ops.engine.cli import add_debug_flag, new_parser, run_cli_main
from ops.engine.compile import PAYS_AFTER, add_compile_flags, compile_for_inference, resolve_compile
from ops.engine.distributed import pick_device
from ops.engine.precision import RunPrecision, add_precision_flags, resolve_precision
from ops.errors import InputError
from ops.frames.frame_source import stack_clip
from ops.frames.frame_stream import LateFrameDropper, open_frame_stream, segments
from ops.models import PAN
from ops.transforms import build_val_transform
from tools._annotated_video import AnnotatedVideoWriter, crop_box
from tools.demo import class_names

DEFAULT_FPS = 25.0
CAMERA_STRIDE_SEGMENTS = 2  # a camera's default stride, in segments' lengths


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument('source', help='a video file, a folder of frames, or a camera (/dev/video0)')
    p.add_argument('--weights', required=True, default=argparse.SUPPRESS,
                   help='checkpoint of main.py or of the release (required)')
    p.add_argument('--stride', type=int, default=None,
                   help='frames from one segment start to the next (None: round(frames / num_segments) '
                        f'for a file or folder, {CAMERA_STRIDE_SEGMENTS} x new_length for a camera)')
    p.add_argument('--out', default=None, help='write the annotated video here, .mp4 (None: no video written)')
    p.add_argument('--realtime', action='store_true',
                   help='drop frames when the model falls behind the frame rate, as a live camera does '
                        '(default: off, every frame of a file or folder is used)')
    p.add_argument('--fps', type=float, default=None,
                   help=f"frame rate of the source for --realtime and --out (None: the file's, else {DEFAULT_FPS:g})")
    p.add_argument('--categories', default=None,
                   help="class names, one a line (None: the checkpoint's, else the category.txt of its dataset, "
                        'else indices)')
    p.add_argument('--root_path', default=None,
                   help=f"data root holding the dataset's category.txt (None: ${ENV_ROOT}, else ./data)")
    p.add_argument('--num_segments', type=int, default=None,
                   help="segments in the model's window (None: the checkpoint's)")
    p.add_argument('--input_size', type=int, default=None,
                   help=f"crop size (None: the checkpoint's, else {DEFAULT_INPUT_SIZE})")
    p.add_argument('--top', type=int, default=3, help='classes to print')
    p.add_argument('--cpu', action='store_true', help='run on the CPU even when CUDA is present')
    add_precision_flags(p)
    add_compile_flags(p, f'on for a camera or a stream of {PAYS_AFTER["stream"]} steps or more, where it pays, '
                         'off for shorter ones')
    add_debug_flag(p)
    return p


@dataclass
class Prediction:
    """One step's output: the segment (first frame, 0-based), its top classes (index, name,
    probability), the step's latency in seconds."""
    start: int
    top: list[tuple[int, str, float]]
    latency: float


@dataclass
class SegmentResult:
    """What one segment gives: the top classes of the last ``num_segments`` segments (None until
    that many were seen), the step's latency in seconds, and the segment's PA map ``(S, S)``, the
    mean of its ``new_length - 1`` maps over the model's crop (None for RGB)."""
    top: list[tuple[int, str, float]] | None
    latency: float
    pa_map: torch.Tensor | None


class SegmentClassifier:
    """A stream's classifier: each segment's ``new_length`` uint8 frames ``(H, W, 3)`` are cropped
    and normalised as validation does and stepped through an :class:`OnlinePAN` of ``model`` (its
    own copy: one per stream); ``top`` classes of ``names`` are kept. ``compiler``: compiles the
    streaming step (see :class:`OnlinePAN`)."""

    def __init__(self, model: PAN, names: list[str], input_size: int, precision: RunPrecision,
                 device: torch.device, top: int, compiler: Callable | None = None) -> None:
        self.model, self.names, self.precision, self.device, self.top = model, names, precision, device, top
        self.online = OnlinePAN(model, compiler=compiler)
        self.transform = build_val_transform(input_size, scale_size_for(input_size), model.input_mean,
                                             model.input_std, normalize=False)

    def step(self, frames: list[torch.Tensor]) -> SegmentResult:
        began = time.perf_counter()
        model = self.model
        # stack_clip: a stream whose resolution changes mid-segment is brought to one size
        clip = stack_clip(dict(enumerate(frames)), range(len(frames)), 'a segment of the stream')
        segment = to_model_input(self.transform(clip)[None], model.input_mean, model.input_std, self.device)[0]
        with self.precision.autocast():
            logits = self.online.step(segment)
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        latency = time.perf_counter() - began
        pa_map = None
        if model.modality != 'RGB':
            pa_map = self.online.backbone_input[-(model.new_length - 1):].float().mean(dim=0).cpu()
        top = None
        if logits is not None:
            probs = torch.softmax(logits.float(), dim=0).cpu()
            values, order = probs.topk(min(self.top, len(self.names)))
            top = [(int(i), self.names[int(i)], float(v)) for v, i in zip(values, order)]
        return SegmentResult(top, latency, pa_map)


def default_stride(num_frames: int | None, num_segments: int, new_length: int) -> int:
    """Validation's segment spacing on a source of known length, else a camera's default."""
    if num_frames:
        return max(1, round(num_frames / num_segments))
    return CAMERA_STRIDE_SEGMENTS * new_length


def stream_steps(num_frames: int | None, new_length: int, stride: int) -> int | None:
    """Steps (segments) of a source of ``num_frames`` frames; None for a live source (no length)."""
    if not num_frames:
        return None
    return (num_frames - new_length) // stride + 1 if num_frames >= new_length else 0


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    for flag, value in (('--stride', args.stride), ('--top', args.top), ('--num_segments', args.num_segments)):
        if value is not None and value < 1:
            raise InputError(f'{flag} must be at least 1, got {value}')
    if args.fps is not None and args.fps <= 0:
        raise InputError(f'--fps must be positive, got {args.fps}')
    if args.out is not None and not args.out.lower().endswith('.mp4'):
        raise InputError(f'--out {args.out}: the annotated video is written as .mp4')
    device = torch.device('cpu') if args.cpu else pick_device()
    precision = resolve_precision(args.amp, args.channels_last, device)
    stream = open_frame_stream(args.source)
    try:
        model, options, checkpoint = load_pan_model(args.weights, args.num_segments, device)
        names, names_source = class_names(args.categories, checkpoint, args.weights, args.root_path,
                                          options['num_class'])
    except InputError:
        raise
    except ValueError as err:  # a file name that names no settings, a category file of another count
        raise InputError(f'{args.weights}: {err}') from err
    precision.apply(model)
    size = args.input_size or trained_input_size(checkpoint)
    scale = scale_size_for(size)
    stride = args.stride or default_stride(stream.num_frames, model.num_segments, model.new_length)
    compiled = resolve_compile(args.compile, stream_steps(stream.num_frames, model.new_length, stride),
                               PAYS_AFTER['stream'], 'steps')
    classifier = SegmentClassifier(model, names, size, precision, device, args.top,
                                   compiler=compile_for_inference if compiled.enabled else None)
    online = classifier.online
    # exact (a Fraction) so --out keeps the source's rate: 30000/1001 stays 29.97
    frame_rate = Fraction(str(args.fps)) if args.fps else (stream.rate or Fraction(str(DEFAULT_FPS)))
    fps = float(frame_rate)
    way = 'causal: one segment a step' if online.causal else 'bidirectional: the window re-run each step'
    print(f"=> PAN {options['modality']} ({options['base_model']}, {model.num_segments} segments x "
          f'{model.new_length} frames, {size}x{size}) from {args.weights} on {device}; {way}')
    print('=> ' + input_sources(checkpoint, {'segments': args.num_segments and '--num_segments',
                                             'size': args.input_size and '--input_size'}))
    print(f'{precision.describe()}, {compiled.describe()}')
    length = f'{stream.num_frames} frames' if stream.num_frames else 'live'
    # 30000/1001 is shown as such beside its 29.97; 25 or 29.97 given as such need no fraction
    exact = f' ({frame_rate.numerator}/{frame_rate.denominator})' if round(fps, 3) != fps else ''
    print(f'=> {args.source}: {length} at {fps:g} fps{exact}, a segment every {stride} frames; '
          f'classes: {names_source}')
    if stream.note:
        print(f'=> {args.source}: {stream.note}')

    dropper = LateFrameDropper(fps, stream.live) if args.realtime else None
    frames = dropper(stream.frames()) if dropper else stream.frames()
    writer = AnnotatedVideoWriter(args.out, frame_rate) if args.out else None
    predictions: list[Prediction] = []
    lines: list[str] = []
    pa_map = None
    steps = 0
    started = None
    pending: dict[int, torch.Tensor] = {}  # frames read but not yet written (the segment's own)

    def write_frames(upto: int) -> None:
        for index in sorted(i for i in pending if i <= upto):
            frame = pending.pop(index)
            if writer:
                writer.write(frame, lines, pa_map, crop_box(frame.shape[1], frame.shape[0], scale, size))

    def remember(indexed):
        for index, frame in indexed:
            pending[index] = frame
            yield index, frame

    try:
        for start, segment_frames in segments(remember(frames), model.new_length, stride):
            write_frames(start - 1)
            result = classifier.step(segment_frames)
            done = time.perf_counter()
            started = started or done - result.latency
            steps += 1
            pa_map = result.pa_map
            rate = steps / (done - started)
            where = f'segment {steps} (frames {start + 1}-{start + model.new_length})'
            if result.top is None:
                print(f'{where}: {online.seen}/{model.num_segments} segments seen | '
                      f'{result.latency * 1e3:.1f} ms, {rate:.2f} segments/s')
            else:
                top = result.top
                predictions.append(Prediction(start, top, result.latency))
                shown = ' | '.join(f'{rank}. {name} {prob:.3f}' for rank, (_, name, prob) in enumerate(top, 1))
                print(f'{where}: {shown} | {result.latency * 1e3:.1f} ms, {rate:.2f} segments/s')
                lines = [f'{rank}. {name} {prob:.2f}' for rank, (_, name, prob) in enumerate(top, 1)]
            write_frames(start + model.new_length - 1)
        write_frames(float('inf'))
    finally:
        if writer:
            writer.close()
    elapsed = time.perf_counter() - started if started else 0.0
    summary = f'=> {steps} segments in {elapsed:.2f} s ({steps / elapsed if elapsed else 0:.2f} segments/s), ' \
              f'{len(predictions)} predictions'
    if dropper:
        summary += f'; --realtime at {fps:g} fps dropped {dropper.dropped} frames'
    print(summary)
    if not predictions and not stream.live:
        print(f'=> no prediction: {stream.num_frames} frames made {steps} segment(s) of {model.new_length} frames, '
              f'and a prediction needs {model.num_segments} (the model\'s window); tools/demo.py classifies '
              'short videos, repeating frames as the release samples them')
    if writer:
        w, h = writer.size or (0, 0)
        enlarged = f' (each frame enlarged {writer.factor}x)' if writer.factor > 1 else ''
        print(f'=> wrote {args.out}: {writer.frames_written} frames, {w}x{h}{enlarged}, {writer.codec} '
              f'({writer.encoder}) at {fps:g} fps{exact}')
    return {'predictions': predictions, 'stride': stride, 'dropped': dropper.dropped if dropper else 0,
            'frames_written': writer.frames_written if writer else 0, 'causal': online.causal,
            'encoder': writer.encoder if writer else None, 'rate': frame_rate}


if __name__ == '__main__':
    run_cli_main(main)
