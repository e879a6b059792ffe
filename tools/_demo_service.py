"""What the web demo's page (tools/web_demo.py) runs on, with no web framework: a checkpoint loaded
once, an uploaded video's top-5 classes, its PA maps beside its frames and its annotated video,
the browser cameras' streams, the model card, and the limits that refuse a file before long work.

    service = DemoService(classifier, Limits(max_upload_mb=50, max_seconds=60))
    result = service.classify_video('clip.mp4')       # top-5, PA grid; UploadError: a message for the page
    service.annotate_video('clip.mp4')                # tools/online_demo.py --out, path of the .mp4
    update = service.cameras.push(session_key, frame)  # one camera frame (H, W, 3) uint8 of one page

It lives in tools/, not ops/deploy/, because it is made of the tools: the classifier of
tools/demo.py (checkpoint, class names, validation clip), the segment step and the annotated video
of tools/online_demo.py, the PA figure of tools/visualize_pa.py; ops/deploy may import none of them.
The page's framework (Gradio) is imported by tools/web_demo.py alone, so all of this is tested
without it.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import numpy as np
import torch
from PIL import Image

from ops.backbone_registry import scale_size_for
from ops.dataset import parse_list_file
from ops.dataset_config import get_dataset_info
from ops.deploy.streaming import is_causal
from ops.errors import InputError
from ops.frames.frame_stream import SegmentCutter
from ops.frames.video_reader import VIDEO_EXTENSIONS, ffmpeg_reason, is_video_file
from tools import online_demo
from tools.demo import Classifier, checkpoint_dataset, classify_clip
from tools.visualize_pa import colorize, normalise_map, pair_tiles, render_grid

DEFAULT_MAX_UPLOAD_MB = 50.0
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_MAX_CAMERAS = 4
CAMERA_TOP = 3
CAMERA_IDLE_S = 300.0      # a camera stream silent this long is forgotten (its page was closed)
CAMERA_GAP_S = 5.0         # frames further apart than this start a new stream (the camera was stopped)
CLOSED_KEPT = 1000         # keys of closed pages remembered, so a late frame of one starts no stream
EXAMPLES = 6               # validation videos offered as examples, one per class while they last
KEPT_VIDEOS = 16           # annotated videos kept on disk for the page to fetch, newest first
PA_TILE = 96               # pixels of a tile of the PA figure


class UploadError(InputError):
    """A file the page refuses, with the message it shows (naming the file)."""


@dataclass(frozen=True)
class Limits:
    """What an upload may be: at most ``max_upload_mb`` MiB and ``max_seconds`` of video."""
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_seconds: float = DEFAULT_MAX_SECONDS

    def __post_init__(self) -> None:
        for flag, value in (('--max_upload_mb', self.max_upload_mb), ('--max_seconds', self.max_seconds)):
            if not value > 0:
                raise InputError(f'{flag} must be positive, got {value}')


@dataclass
class VideoFacts:
    """What the header of an accepted upload says: name shown, size in MiB, frame rate and length
    (None where the header does not say)."""
    name: str
    megabytes: float
    fps: float | None
    seconds: float | None
    width: int
    height: int


@dataclass
class VideoResult:
    """An upload's classification: ``top`` (index, name, probability), likeliest first; ``pa_grid``
    the sampled frames above their PA maps (None for an RGB model); ``summary`` one line of facts."""
    top: list[tuple[int, str, float]]
    pa_grid: Image.Image | None
    summary: str
    facts: VideoFacts
    indices: np.ndarray


def check_upload(path: str, limits: Limits, name: str | None = None) -> VideoFacts:
    """Refuse what is no video or is over the limits, from the file's size and header alone (before
    any decoding). ``name``: how the message calls the file (default: its base name)."""
    name = name or os.path.basename(path)
    if not os.path.isfile(path):
        raise UploadError(f'{name}: no such file')
    megabytes = os.path.getsize(path) / 2 ** 20
    if megabytes > limits.max_upload_mb:
        raise UploadError(f'{name}: {megabytes:.1f} MB is over the upload limit of {limits.max_upload_mb:g} MB '
                          '(--max_upload_mb)')
    if not is_video_file(path):
        raise UploadError(f'{name} is not a video file: expected one of {", ".join(VIDEO_EXTENSIONS)}')
    if megabytes == 0:
        raise UploadError(f'{name} is empty (0 bytes): an interrupted copy or download?')
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise UploadError(f'{name} holds no video stream')
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            if container.duration:
                seconds = container.duration / av.time_base
            elif stream.frames and fps:
                seconds = stream.frames / fps
            else:
                seconds = None
            width, height = stream.codec_context.width, stream.codec_context.height
    except av.FFmpegError as err:
        raise UploadError(_named(f'{name} is not a video that can be read: {ffmpeg_reason(err)}', path, name)) from None
    if seconds is not None and seconds > limits.max_seconds:
        raise UploadError(f'{name}: {seconds:.1f} s of video is over the limit of {limits.max_seconds:g} s '
                          '(--max_seconds)')
    return VideoFacts(name, megabytes, fps, seconds, width, height)


def _named(message: object, path: str, name: str) -> str:
    """A message with the upload's (temporary) path replaced by the name the user knows it by."""
    text = str(message).replace(path, name)
    return text if name in text else f'{name}: {text}'


def pa_figure(classifier: Classifier, inputs: torch.Tensor, crops: torch.Tensor) -> Image.Image | None:
    """The model's own PA maps of a clip beside the frames they come from: the top row frame t of
    each pair, the bottom row its map (tools/visualize_pa.py's figure, 'jet' colours).

    ``inputs`` the normalised model input ``(1, T*L*3, S, S)``; ``crops`` uint8 ``(T*L, 3, S, S)``.
    None for an RGB model (it computes no PA)."""
    model = classifier.model
    if model.modality == 'RGB':
        return None
    with torch.inference_mode(), classifier.precision.autocast():
        features = model.features(inputs)             # (T, C, S, S), PA maps last
    maps = features[:, -(classifier.new_length - 1):].float().cpu()
    rgb, shown = pair_tiles(crops, maps, 'jet')
    image = render_grid([rgb, shown])
    scale = PA_TILE / crops.shape[-1]   # tiles of PA_TILE pixels, whatever the crop size
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)


def checkpoint_label(weights: str) -> str:
    """How the page names a checkpoint: its file name, after its run folder for main.py's
    ``ckpt.pth.tar`` / ``ckpt.best.pth.tar`` (every run's file is called that)."""
    name = os.path.basename(weights)
    if name.startswith('ckpt.'):
        return f'{os.path.basename(os.path.dirname(os.path.abspath(weights)))}/{name}'
    return name


def model_card(classifier: Classifier) -> list[tuple[str, str]]:
    """(what, value) rows describing the checkpoint: architecture, segments, input, precision,
    validation accuracy and epoch, classes, how the camera mode streams it."""
    options, checkpoint, model = classifier.options, classifier.checkpoint, classifier.model
    if not options.get('is_shift'):
        shift = 'no temporal shift'
    else:
        kind = 'causal' if options.get('causal_shift') else 'bidirectional'
        shift = f"{kind} temporal shift (1/{options.get('shift_div', 8)} of the channels, " \
                f"{options.get('shift_place', 'blockres')})"
    head = 'VAP head' if options['has_VAP'] else f"TSN head ({options.get('consensus_type', 'avg')})"
    size = classifier.input_size
    best = checkpoint.get('best_prec1')
    if best is None:
        accuracy = 'not stored in the checkpoint'
    else:
        accuracy = f'{float(best):.2f}% top-1'
        if 'is_best' in checkpoint:   # main.py's checkpoints: the run's best so far, this epoch or before
            accuracy += " (this epoch's, the run's best so far)" if checkpoint['is_best'] else \
                " (the run's best up to this epoch, reached earlier)"
    epoch = checkpoint.get('epoch')
    if epoch is None:
        trained = 'not stored in the checkpoint'
    else:
        trained = f'{int(epoch)} epoch(s)'
        if checkpoint.get('batch'):
            trained += f" and {int(checkpoint['batch'])} batch(es) of the next"
    dataset = checkpoint_dataset(checkpoint, classifier.weights)
    return [
        ('checkpoint', checkpoint_label(classifier.weights)),
        ('architecture', f"PAN {options['modality']}, {options['base_model']}, {shift}, {head}"),
        ('segments', f'{model.num_segments} segments x {classifier.new_length} frame(s)'),
        ('input size', f'{size}x{size} centre crop (short side scaled to {scale_size_for(size)})'),
        ('precision', classifier.precision.describe().removeprefix('=> ')),
        ('validation accuracy', accuracy),
        ('trained', trained),
        ('classes', f"{options['num_class']} ({dataset or 'dataset not stored'}); "
                    f'names: {classifier.names_source}'),
        ('camera mode', 'causal: one segment per step' if is_causal(model) else
         'bidirectional checkpoint: needs a causal one (see the Camera tab)'),
    ]


def causal_hint(classifier: Classifier) -> str:
    """Why a bidirectional checkpoint gets no camera mode, and how to train one that does."""
    dataset = checkpoint_dataset(classifier.checkpoint, classifier.weights) or 'DATASET'
    options = classifier.options
    name = checkpoint_label(classifier.weights)
    return (f'The camera mode needs a causal checkpoint: {name} is bidirectional '
            '(its temporal shift reads the next segment, so a live stream would wait for the future). '
            'Train one with `--causal_shift`, e.g. '
            f"`python main.py {dataset} {options['modality']} --arch {options['base_model']} --causal_shift`, "
            f'or fine-tune this one: `... --causal_shift --tune_from {classifier.weights}`.')


def example_videos(classifier: Classifier, root_path: str | None, limit: int = EXAMPLES) -> list[str]:
    """Up to ``limit`` validation videos of the checkpoint's dataset that are video files on disk,
    one per class first; none when the dataset, its list or its videos are not here."""
    dataset = checkpoint_dataset(classifier.checkpoint, classifier.weights)
    if dataset is None:
        return []
    try:
        info = get_dataset_info(dataset, root_path)
        records = parse_list_file(info.val_list)
    except (OSError, ValueError):
        return []
    found: dict[int, list[str]] = {}
    for record in records:
        path = info.resolve(record.path)
        if is_video_file(str(path)) and path.is_file():
            found.setdefault(record.label, []).append(str(path))
    # one of each class, then the second of each, ... in label order
    rounds = itertools.zip_longest(*(found[label] for label in sorted(found)))
    return [p for p in itertools.chain.from_iterable(rounds) if p is not None][:limit]


# ---------------------------------------------------------------- camera streams

@dataclass
class CameraUpdate:
    """A camera stream after one frame: frames received, segments stepped (``seen`` of the
    ``num_segments`` a window needs), the latest ``top`` classes (None before the first window),
    the last step's latency (s), segments per second since the stream's first step, the last
    segment's PA map ``(S, S)`` (None: none yet, or RGB) and a ``note`` (a restart, a refusal)."""
    frames: int
    steps: int
    num_segments: int
    top: list[tuple[int, str, float]] | None = None
    latency: float | None = None
    segments_per_s: float | None = None
    pa_map: torch.Tensor | None = None
    note: str = ''

    def lines(self) -> list[str]:
        """The update as the page shows it, one fact a line."""
        if self.top is None:
            status = f'warming up: {min(self.steps, self.num_segments)}/{self.num_segments} segments seen'
        else:
            status = f'after segment {self.steps}: ' + ' | '.join(
                f'{rank}. {name} {prob:.3f}' for rank, (_, name, prob) in enumerate(self.top, 1))
        timing = []
        if self.latency is not None:
            timing.append(f'step latency {self.latency * 1e3:.1f} ms')
        if self.segments_per_s is not None:
            timing.append(f'{self.segments_per_s:.2f} segments/s')
        timing.append(f'{self.frames} frames received')
        return [line for line in (self.note, status, ', '.join(timing)) if line]

    def pa_image(self, size: int = PA_TILE * 2) -> np.ndarray | None:
        """The last segment's PA map in colour, uint8 ``(size, size, 3)``."""
        if self.pa_map is None:
            return None
        image = Image.fromarray(colorize(normalise_map(self.pa_map), 'jet'))
        return np.asarray(image.resize((size, size), Image.BILINEAR))


class CameraSession:
    """One page's camera stream: frames pushed one at a time, a segment of ``new_length`` consecutive
    frames every ``stride`` frames, each stepped through this session's own OnlinePAN (a copy of
    the model: sessions share no state). ``clock`` is for tests."""

    def __init__(self, classifier: Classifier, stride: int, top: int = CAMERA_TOP,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.classifier, self.stride, self.top_k, self.clock = classifier, stride, top, clock
        self.step = online_demo.SegmentClassifier(classifier.model, classifier.names, classifier.input_size,
                                                  classifier.precision, classifier.device, top)
        self.lock = threading.Lock()   # one frame at a time per stream, in arrival order
        self.last_seen = clock()
        self.reset()

    def reset(self) -> None:
        """A new stream: no frame, no segment seen."""
        self.step.online.reset()
        self.cutter = SegmentCutter(self.classifier.new_length, self.stride)
        self.frames = 0
        self.steps = 0
        self.size: tuple[int, int] | None = None
        self.first_step: float | None = None
        self.last = CameraUpdate(0, 0, self.classifier.model.num_segments)

    def push(self, frame: np.ndarray | torch.Tensor) -> CameraUpdate:
        """Take one RGB frame ``(H, W, 3)`` (uint8; an alpha channel is dropped)."""
        # a copy: the caller's array may change under us
        frame = frame if torch.is_tensor(frame) else torch.from_numpy(np.array(frame))
        if frame.dim() != 3 or frame.shape[-1] not in (3, 4) or frame.dtype != torch.uint8:
            raise InputError(f'a camera frame must be uint8 (H, W, 3), got {tuple(frame.shape)} '
                             f'{frame.dtype}')
        frame = frame[..., :3]
        with self.lock:
            now = self.clock()
            note = ''
            size = tuple(frame.shape[:2])
            if self.frames and now - self.last_seen > CAMERA_GAP_S:
                note = f'no frame for {now - self.last_seen:.0f} s: a new stream'
                self.reset()
            elif self.size is not None and size != self.size:
                note = (f'the camera changed size ({self.size[1]}x{self.size[0]} -> {size[1]}x{size[0]}): '
                        'a new stream')
                self.reset()
            self.last_seen, self.size = now, size
            segment = self.cutter.push(self.frames, frame)
            self.frames += 1
            update = CameraUpdate(self.frames, self.steps, self.classifier.model.num_segments, self.last.top,
                                  self.last.latency, self.last.segments_per_s, self.last.pa_map, note)
            if segment is not None:
                result = self.step.step(segment[1])
                done = self.clock()
                self.steps += 1
                self.first_step = self.first_step if self.first_step is not None else done - result.latency
                elapsed = done - self.first_step
                update.steps = self.steps
                update.latency = result.latency
                update.segments_per_s = self.steps / elapsed if elapsed > 0 else None
                update.pa_map = result.pa_map
                if result.top is not None:
                    update.top = result.top
            self.last = update
            return update


@dataclass
class CameraSessions:
    """The camera streams of all open pages, by the page's session key: each gets its own
    :class:`CameraSession` on its first frame; a stream is dropped when its user restarts it
    (:meth:`drop`), when its page closes (:meth:`close`: a frame still in flight then starts
    nothing) or after ``idle_s`` without a frame; at most ``max_sessions`` at once (each holds a
    copy of the model)."""
    factory: Callable[[], CameraSession]
    max_sessions: int = DEFAULT_MAX_CAMERAS
    idle_s: float = CAMERA_IDLE_S
    clock: Callable[[], float] = time.monotonic
    _sessions: dict[str, CameraSession] = field(default_factory=dict)
    _closed: deque[str] = field(default_factory=lambda: deque(maxlen=CLOSED_KEPT))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, key: str, frame: np.ndarray | torch.Tensor) -> CameraUpdate:
        """One frame of the stream of page ``key``. Raises UploadError when ``max_sessions`` other
        pages are streaming, or the page was closed."""
        with self._lock:
            if key in self._closed:
                raise UploadError('this page was closed: its stream is gone')
            now = self.clock()
            for stale in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_s]:
                del self._sessions[stale]
            session = self._sessions.get(key)
            if session is None:
                if len(self._sessions) >= self.max_sessions:
                    raise UploadError(f'{len(self._sessions)} cameras are streaming, the most this server '
                                      'takes (--max_cameras): try again later')
                session = self._sessions[key] = self.factory()
        return session.push(frame)

    def drop(self, key: str) -> None:
        """Forget the stream of page ``key``: its next frame starts a new one."""
        with self._lock:
            self._sessions.pop(key, None)

    def close(self, key: str) -> None:
        """Forget the stream of page ``key`` for good: the page is gone (keys are not reused)."""
        with self._lock:
            self._sessions.pop(key, None)
            self._closed.append(key)

    def __len__(self) -> int:
        return len(self._sessions)


# ---------------------------------------------------------------- the service

class DemoService:
    """A loaded checkpoint and what the page asks of it. ``categories`` and ``root_path``: where the
    classifier's names came from (tools/demo.py's flags), for the annotated video's run of
    tools/online_demo.py; ``camera_stride``: frames from one camera segment's start to the next
    (None: tools/online_demo.py's camera default); ``max_cameras``: camera streams at once."""

    def __init__(self, classifier: Classifier, limits: Limits = Limits(), *, categories: str | None = None,
                 root_path: str | None = None, camera_stride: int | None = None,
                 max_cameras: int = DEFAULT_MAX_CAMERAS) -> None:
        self.classifier = classifier
        self.limits = limits
        self.root_path = root_path
        model = classifier.model
        self.camera_stride = camera_stride or online_demo.default_stride(None, model.num_segments,
                                                                         classifier.new_length)
        if self.camera_stride < 1:
            raise InputError(f'--camera_stride must be at least 1, got {self.camera_stride}')
        self.causal = is_causal(model)
        self.cameras = CameraSessions(self._new_camera, max_cameras)
        # tools/online_demo.py loads the checkpoint as this service did: same names, device, precision
        precision = classifier.precision
        self.tool_flags = ['--amp' if precision.dtype is not None else '--no_amp',
                           '--channels_last' if precision.channels_last else '--no_channels_last']
        if classifier.device.type == 'cpu':
            self.tool_flags.append('--cpu')
        for flag, value in (('--categories', categories), ('--root_path', root_path)):
            if value is not None:
                self.tool_flags += [flag, value]
        self._videos = tempfile.mkdtemp(prefix='pan_web_demo_')
        self._written: deque[str] = deque()
        self._count = itertools.count()

    def _new_camera(self) -> CameraSession:
        if not self.causal:
            raise UploadError(causal_hint(self.classifier))
        return CameraSession(self.classifier, self.camera_stride)

    def model_card(self) -> list[tuple[str, str]]:
        return model_card(self.classifier)

    def examples(self) -> list[str]:
        return example_videos(self.classifier, self.root_path)

    def classify_video(self, path: str, name: str | None = None, top: int = 5) -> VideoResult:
        """The top classes of the validation clip of an upload and its PA figure. UploadError (its
        message names the file) for a file that is no video, over the limits, or does not decode."""
        name = name or os.path.basename(path)
        facts = check_upload(path, self.limits, name)
        try:
            scores = classify_clip(self.classifier, path)
        except (OSError, ValueError) as err:   # truncated, undecodable, no frame
            raise UploadError(_named(err, path, name)) from None
        grid = pa_figure(self.classifier, scores.inputs, scores.crops)
        rate = f' at {facts.fps:g} fps' if facts.fps else ''
        length = f' ({facts.seconds:.1f} s)' if facts.seconds is not None else ''
        decoded = scores.source.num_frames
        summary = (f'{name}: {facts.width}x{facts.height}, {decoded} frames decoded{rate}{length}; '
                   f'{len(scores.indices)} sampled ({self.classifier.model.num_segments} segments x '
                   f'{self.classifier.new_length}); read {scores.seconds["read"]:.2f} s, '
                   f'forward {scores.seconds["forward"] * 1e3:.0f} ms')
        return VideoResult(scores.top(self.classifier.names, top), grid, summary, facts, scores.indices)

    def annotate_video(self, path: str, name: str | None = None) -> str:
        """tools/online_demo.py's annotated video of an upload (top-3 and PA overlay over time), as
        its ``--out`` writes it; the path of the .mp4, kept until :data:`KEPT_VIDEOS` newer ones."""
        name = name or os.path.basename(path)
        check_upload(path, self.limits, name)
        out = os.path.join(self._videos, f'annotated_{next(self._count)}.mp4')
        argv = [path, '--weights', self.classifier.weights, '--out', out, '--top', str(CAMERA_TOP),
                '--input_size', str(self.classifier.input_size), *self.tool_flags]
        try:
            written = online_demo.main(argv)['frames_written']   # prints its steps to the server's log
            if not written:
                raise UploadError(f'no video frames in {name}')
        except (OSError, ValueError) as err:
            with contextlib.suppress(OSError):
                os.remove(out)
            raise UploadError(_named(err, path, name)) from None
        self._written.append(out)
        while len(self._written) > KEPT_VIDEOS:
            with contextlib.suppress(OSError):
                os.remove(self._written.popleft())
        return out

    def close(self) -> None:
        """Remove the annotated videos written."""
        shutil.rmtree(self._videos, ignore_errors=True)
