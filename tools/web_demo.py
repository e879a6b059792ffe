"""A PAN checkpoint in the browser: drop a video or turn on the camera, see what it recognises and
where it sees motion.

    pip install -r requirements-web.txt      # Gradio (optional: nothing else imports it)
    python tools/web_demo.py --weights CHECKPOINT [--host 127.0.0.1] [--port 7860]
        [--max_upload_mb 50] [--max_seconds 60] [--categories category.txt] [--root_path DATA]
        [--input_size S] [--camera_fps 10] [--camera_stride K] [--max_cameras 4] [--cpu]
        [--amp | --no_amp] [--channels_last | --no_channels_last]

then open http://127.0.0.1:7860. The page has three tabs:

- **Video**: an upload (and up to six validation videos of the checkpoint's dataset as examples,
  when they are video files on disk). It shows the top-5 classes of the validation clip (the
  centre of each segment, as tools/demo.py), the clip's frames above the PA maps the model computes
  from them, and then the annotated video of tools/online_demo.py ``--out``: the top-3 and the PA
  overlay over time. A file that is no video, is truncated, decodes no frame, or is over
  ``--max_upload_mb`` / ``--max_seconds`` is answered with a message on the page.
- **Camera** (a causal checkpoint, ``main.py --causal_shift``): the browser sends
  ``--camera_fps`` frames a second; every ``--camera_stride`` frames (default
  ``2 x new_length``, online_demo's camera default) a segment goes through this page's own
  ``OnlinePAN``, one segment a step, and the page shows the live top-3, the step latency and the
  segments/s. Each page has its own stream state; at most ``--max_cameras`` stream at once. A
  bidirectional checkpoint gets the message of how to train a causal one.
- **Model**: the model card (architecture, segments, input size, precision, validation accuracy,
  epoch, classes) and the limits.

The server binds to 127.0.0.1 (this machine only) unless ``--host`` says otherwise. Class names,
model and precision come from the checkpoint as tools/demo.py takes them.
"""
# No "from __future__ import annotations": Gradio reads the handlers' gr.Request annotations, and
# gradio is imported inside build_app (an optional requirement), where a string could not be resolved.
import argparse
import functools
import os
import traceback
from collections.abc import Callable

import torch

from ops.dataset_config import ENV_ROOT
from ops.engine.checkpoint import DEFAULT_INPUT_SIZE
from ops.engine.cli import new_parser, run_cli_main
from ops.engine.distributed import pick_device
from ops.engine.precision import add_precision_flags, resolve_precision
from ops.errors import InputError
from tools._demo_service import (DEFAULT_MAX_CAMERAS, DEFAULT_MAX_SECONDS, DEFAULT_MAX_UPLOAD_MB, DemoService,
                                 Limits, UploadError, causal_hint, checkpoint_label)
from tools.demo import load_classifier

DEFAULT_HOST = '127.0.0.1'
DEFAULT_PORT = 7860
DEFAULT_CAMERA_FPS = 10.0
# system fonts: the page asks nothing of any other server
FONTS = ['ui-sans-serif', 'system-ui', 'sans-serif']


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument('--weights', required=True, default=argparse.SUPPRESS,
                   help='checkpoint of main.py or of the release (required)')
    p.add_argument('--host', default=DEFAULT_HOST,
                   help='address to listen on (0.0.0.0: every interface, reachable from other machines)')
    p.add_argument('--port', type=int, default=DEFAULT_PORT, help='port to listen on')
    p.add_argument('--max_upload_mb', type=float, default=DEFAULT_MAX_UPLOAD_MB, help='largest upload, in MiB')
    p.add_argument('--max_seconds', type=float, default=DEFAULT_MAX_SECONDS,
                   help='longest uploaded video, in seconds')
    p.add_argument('--categories', default=None,
                   help="class names, one a line (None: the category.txt of the checkpoint's dataset, "
                        'else indices)')
    p.add_argument('--root_path', default=None,
                   help=f"data root of the checkpoint's dataset: its category.txt and validation videos "
                        f'(None: ${ENV_ROOT}, else ./data)')
    p.add_argument('--input_size', type=int, default=None,
                   help=f"crop size (None: the checkpoint's, else {DEFAULT_INPUT_SIZE})")
    p.add_argument('--camera_fps', type=float, default=DEFAULT_CAMERA_FPS,
                   help='frames per second the browser sends from its camera')
    p.add_argument('--camera_stride', type=int, default=None,
                   help='camera frames from one segment start to the next '
                        '(None: 2 x new_length, as online_demo)')
    p.add_argument('--max_cameras', type=int, default=DEFAULT_MAX_CAMERAS,
                   help='camera streams at once (each holds a copy of the model)')
    p.add_argument('--cpu', action='store_true', help='run on the CPU even when CUDA is present')
    add_precision_flags(p)
    return p


def _markdown_table(rows: list[tuple[str, str]]) -> str:
    """Rows of (what, value) as a Markdown table, the first row its head."""
    lines = [f'| {what} | {value.replace("|", "/")} |' for what, value in rows]
    return '\n'.join([lines[0], '| --- | --- |', *lines[1:]])


def _guarded(fn: Callable, failure: Callable[[str], tuple], refused: str) -> Callable:
    """``fn`` whose UploadError becomes its message on the page (after ``refused``, in bold) and
    whose other errors (bugs) a line on the page and a traceback in the server's log: the server
    goes on serving."""
    @functools.wraps(fn)   # keeps fn's signature, which Gradio reads to pass gr.Request
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UploadError as err:
            return failure(f'**{refused}** {err}')
        except Exception as err:  # noqa: BLE001 - a bug must not take the page down
            traceback.print_exc()
            return failure(f'**Internal error** ({type(err).__name__}); the server log has the details.')
    return run


def build_app(service: DemoService, camera_fps: float = DEFAULT_CAMERA_FPS):
    """The page (a ``gradio.Blocks``) of ``service``; see the module docstring."""
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
    import gradio as gr

    classifier = service.classifier
    limits = service.limits
    title = f'PAN: {checkpoint_label(classifier.weights)}'

    def classify(path: str | None):
        if not path:
            return None, 'Drop a video' + (', or pick an example.' if examples else '.'), None, None, False
        result = service.classify_video(path)
        top = {name: prob for _, name, prob in result.top}
        return top, result.summary, result.pa_grid, None, True

    def annotate(path: str | None, ok: bool):
        if not path or not ok:
            return None, gr.skip()
        return service.annotate_video(path), gr.skip()   # the summary stays

    def on_frame(frame, request: gr.Request):
        if frame is None:
            return gr.skip(), gr.skip()
        update = service.cameras.push(request.session_hash, frame)
        return '\n\n'.join(update.lines()), update.pa_image()

    def restart(request: gr.Request):
        service.cameras.drop(request.session_hash)
        return 'Stream restarted: the next frames start a new one.', None

    def forget(request: gr.Request):
        service.cameras.close(request.session_hash)

    with gr.Blocks(title=title, delete_cache=(3600, 3600)) as app:
        options = classifier.options
        gr.Markdown(f'## PAN demo\n`{checkpoint_label(classifier.weights)}`: {options["modality"]} on '
                    f'{options["base_model"]}, {options["num_class"]} classes')
        with gr.Tab('Video', id='video'):
            with gr.Row():
                with gr.Column(scale=1):
                    video = gr.Video(label='video', sources=['upload'], elem_id='upload')
                    run = gr.Button('Classify', variant='primary', elem_id='classify')
                    summary = gr.Markdown(elem_id='summary')   # facts of the clip, or why it was refused
                    examples = service.examples()
                    if examples:
                        gr.Examples(examples, inputs=video, label='validation videos')
                with gr.Column(scale=1):
                    top5 = gr.Label(label='top-5 (validation clip)', num_top_classes=5, elem_id='top5')
            pa = gr.Image(label="sampled frames (top) and the model's PA maps (bottom)", elem_id='pa',
                          type='pil', interactive=False)
            annotated = gr.Video(elem_id='annotated', interactive=False,
                                 label='annotated: top-3 and PA map over time (online_demo --out)')
            ok = gr.State(False)
            outputs = [top5, summary, pa, annotated, ok]
            classify_safe = _guarded(classify, lambda message: (None, message, None, None, False),
                                     'Cannot use this file.')
            annotate_safe = _guarded(annotate, lambda message: (None, message), 'No annotated video.')
            # change: an upload, an example picked, or a clear (which empties the results)
            for trigger in (video.change, run.click):
                trigger(classify_safe, inputs=video, outputs=outputs).then(
                    annotate_safe, inputs=[video, ok], outputs=[annotated, summary], show_progress_on=annotated)
        with gr.Tab('Camera', id='camera'):
            if service.causal:
                gr.Markdown(f'Causal checkpoint: a segment every {service.camera_stride} frames, '
                            f'{camera_fps:g} frames/s sent, {classifier.model.num_segments} segments a window.')
                with gr.Row():
                    camera = gr.Image(label='camera', sources=['webcam'], streaming=True, elem_id='camera',
                                      webcam_options=gr.WebcamOptions(mirror=False))
                    with gr.Column():
                        live = gr.Markdown('Start the camera.', elem_id='live')
                        pa_live = gr.Image(label='PA map of the last segment', elem_id='pa_live',
                                           interactive=False, height=160)
                        again = gr.Button('Restart stream', elem_id='restart')
                on_frame_safe = _guarded(on_frame, lambda message: (message, None), 'Camera refused.')
                # concurrency_limit=None: the pages' streams run side by side (each session locks its own)
                camera.stream(on_frame_safe, inputs=camera, outputs=[live, pa_live], show_progress='hidden',
                              stream_every=1 / camera_fps, concurrency_limit=None)
                again.click(restart, outputs=[live, pa_live])
            else:
                gr.Markdown(causal_hint(classifier), elem_id='live')
        with gr.Tab('Model', id='model'):
            rows = service.model_card() + [
                ('uploads', f'at most {limits.max_upload_mb:g} MB and {limits.max_seconds:g} s of video'),
            ]
            gr.Markdown(_markdown_table(rows), elem_id='card')
        app.unload(forget)
    return app


def launch(app, host: str, port: int, limits: Limits, allowed: list[str], block: bool = True):
    """Serve ``app`` on ``host:port``; ``allowed``: folders the page may serve files from (examples)."""
    import gradio as gr
    theme = gr.themes.Default(font=FONTS, font_mono=['ui-monospace', 'monospace'])
    return app.launch(server_name=host, server_port=port, max_file_size=int(limits.max_upload_mb * 2 ** 20),
                      allowed_paths=allowed, show_error=False, prevent_thread_lock=not block, theme=theme,
                      footer_links=[], quiet=not block)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.camera_fps <= 0:
        raise InputError(f'--camera_fps must be positive, got {args.camera_fps}')
    if args.max_cameras < 1:
        raise InputError(f'--max_cameras must be at least 1, got {args.max_cameras}')
    limits = Limits(args.max_upload_mb, args.max_seconds)
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise InputError('the web demo needs Gradio: pip install -r requirements-web.txt') from None
    device = torch.device('cpu') if args.cpu else pick_device()
    precision = resolve_precision(args.amp, args.channels_last, device)
    classifier = load_classifier(args.weights, device, precision, input_size=args.input_size,
                                 categories=args.categories, root_path=args.root_path)
    service = DemoService(classifier, limits, categories=args.categories, root_path=args.root_path,
                          camera_stride=args.camera_stride, max_cameras=args.max_cameras)
    print(f"=> PAN {classifier.options['modality']} ({classifier.options['base_model']}) from {args.weights} "
          f'on {device}; classes: {classifier.names_source}')
    print(precision.describe())
    allowed = sorted({os.path.dirname(p) for p in service.examples()})
    try:
        launch(build_app(service, args.camera_fps), args.host, args.port, limits, allowed)
    finally:
        service.close()


if __name__ == '__main__':
    run_cli_main(main)
