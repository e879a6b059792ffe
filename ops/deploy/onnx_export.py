"""ONNX export of PAN models, checked against PyTorch with ONNX Runtime (CPU).

Two graphs, both fp32 with a dynamic batch dimension:

- offline: ``clip`` ``(N, T * L * 3, S, S)`` -> ``logits`` ``(N, num_class)``, the model's forward
  (RGB, PA or Lite on any registered backbone);
- online (a causal model): one :class:`~ops.deploy.streaming.CausalStep`, its state explicit:
  ``segment`` ``(N, L * 3, S, S)``, ``window`` ``(N, T, D)``, ``shift_0 .. shift_{k-1}`` ->
  ``logits``, ``window_out``, ``shift_0_out .. shift_{k-1}_out``; feed each step the previous
  step's outputs, zeros (``initial_state``) at the start of a stream.

Each file carries metadata (:func:`model_metadata`): class names, segments, frames per segment,
input size, mean and std, so it can be used without the checkpoint.

The exporter is torch.export's (``dynamo=True``, opset :data:`ONNX_OPSET`). The temporal shift is
written with slices, pads and a concatenation (``ops.temporal_shift``) and PA's L2 distance with
``vector_norm``, so both export as graph ops and the batch stays symbolic.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ops.deploy.streaming import CausalStep
from ops.models import PAN

ONNX_OPSET = 18
TOLERANCE = 1e-4  # of the largest |logit|: the check's bound on ONNX Runtime against PyTorch
EXPORT_BATCH = 2  # torch.export fixes a dimension it sees as 1, so the example batch is 2


@dataclass(frozen=True)
class Comparison:
    """ONNX Runtime against PyTorch on one input: the largest absolute difference of the logits
    and the largest |logit| (PyTorch's)."""
    what: str
    max_diff: float
    max_logit: float

    @property
    def ok(self) -> bool:
        return self.max_diff <= TOLERANCE * self.max_logit

    def describe(self) -> str:
        return (f'{self.what}: max |ONNX Runtime - PyTorch| {self.max_diff:.3g}, max |logit| {self.max_logit:.3g} '
                f"({self.max_diff / max(self.max_logit, 1e-30):.2g} of it; bound {TOLERANCE:g}) "
                f"{'ok' if self.ok else 'FAILED'}")


def clip_shape(model: PAN, batch: int, input_size: int) -> tuple[int, int, int, int]:
    """The offline input's shape ``(N, T * L * 3, S, S)``."""
    return batch, model.num_segments * model.new_length * 3, input_size, input_size


def _export(module: torch.nn.Module, args: tuple, path: str, input_names: list[str], output_names: list[str],
            dynamic: tuple) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the exporter's progress and deprecation chatter
        program = torch.onnx.export(module, args, dynamo=True, input_names=input_names, output_names=output_names,
                                    dynamic_shapes=dynamic, opset_version=ONNX_OPSET, verbose=False)
    program.save(path)


def export_offline(model: PAN, path: str, input_size: int) -> None:
    """Write ``model`` (eval mode, fp32) as an ONNX graph with a dynamic batch to ``path``."""
    model = model.eval().float()
    x = torch.randn(clip_shape(model, EXPORT_BATCH, input_size))
    _export(model, (x,), path, ['clip'], ['logits'], ({0: torch.export.Dim('batch')},))


def online_names(num_buffers: int) -> tuple[list[str], list[str]]:
    """Input and output names of the online graph."""
    shifts = [f'shift_{i}' for i in range(num_buffers)]
    return ['segment', 'window', *shifts], ['logits', 'window_out', *[f'{s}_out' for s in shifts]]


def export_online(model: PAN, path: str, input_size: int) -> CausalStep:
    """Write the single step of causal ``model`` with its buffers as explicit inputs and outputs;
    returns the exported :class:`CausalStep`."""
    step = CausalStep(model.float())
    segment = torch.randn(EXPORT_BATCH, model.new_length * 3, input_size, input_size)
    state = step.initial_state(segment)
    inputs, outputs = online_names(step.num_buffers)
    batch = torch.export.Dim('batch')
    # torch.export groups the *buffers of forward into one entry of the dynamic shapes
    dynamic = ({0: batch}, {0: batch}, tuple({0: batch} for _ in range(step.num_buffers)))
    _export(step, (segment, *state), path, inputs, outputs, dynamic)
    return step


def model_metadata(model: PAN, input_size: int, class_names: list[str] | None, graph: str) -> dict[str, str]:
    """What a user of the ONNX file needs besides the graph, as the file's metadata (strings; lists
    as JSON): the class names (when known), segment count, frames per segment, input size, the
    mean and std the input is normalised with, modality, backbone and which ``graph`` it is."""
    meta = {
        'graph': graph,
        'modality': model.modality,
        'arch': model.base_model_name,
        'num_segments': str(model.num_segments),
        'frames_per_segment': str(model.new_length),
        'input_size': str(input_size),
        'input_mean': json.dumps([float(v) for v in model.input_mean]),
        'input_std': json.dumps([float(v) for v in model.input_std]),
        'input_layout': 'RGB frames in [0, 1], minus input_mean, over input_std; '
                        + ('segment (N, frames_per_segment*3, S, S)' if graph == 'online step' else
                           'clip (N, num_segments*frames_per_segment*3, S, S), segments in time order'),
    }
    if class_names is not None:
        meta['num_class'] = str(len(class_names))
        meta['class_names'] = json.dumps(list(class_names), ensure_ascii=False)
    return meta


def write_metadata(path: str, metadata: dict[str, str]) -> None:
    """Set the ONNX file's ``metadata_props`` to ``metadata`` (rewrites the file)."""
    import onnx
    proto = onnx.load(path)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, path)


def read_metadata(path: str) -> dict[str, str]:
    """The file's metadata as ONNX Runtime reads it."""
    return dict(ort_session(path).get_modelmeta().custom_metadata_map)


def ort_session(path: str, threads: int | None = None):
    """An ONNX Runtime CPU session of the file at ``path`` (``threads``: its intra-op threads;
    None: ONNX Runtime's choice)."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # Idle threads sleep instead of spinning: on a small shared CPU a spinning pool slows whatever
    # runs next (PyTorch timed beside it, the other jobs of the machine).
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def _compare(what: str, ours: np.ndarray, ref: torch.Tensor) -> Comparison:
    return Comparison(what, float(np.abs(ours - ref.numpy()).max()), float(ref.abs().max()))


def check_offline(model: PAN, path: str, input_size: int, batches: tuple[int, ...] = (1, 3),
                  seed: int = 0) -> list[Comparison]:
    """Run the exported offline graph with ONNX Runtime on random clips of each batch size."""
    session = ort_session(path)
    gen = torch.Generator().manual_seed(seed)
    found = []
    for n in batches:
        x = torch.randn(clip_shape(model, n, input_size), generator=gen)
        with torch.no_grad():
            ref = model.eval()(x)
        found.append(_compare(f'batch {n}', session.run(None, {'clip': x.numpy()})[0], ref))
    return found


def check_online(step: CausalStep, path: str, input_size: int, steps: int, batches: tuple[int, ...] = (1, 3),
                 seed: int = 0) -> list[Comparison]:
    """Run the exported step for ``steps`` steps of random segments, each step fed the previous
    one's outputs, beside PyTorch's :class:`CausalStep`; one comparison per batch size, the worst step."""
    session = ort_session(path)
    inputs, _ = online_names(step.num_buffers)
    gen = torch.Generator().manual_seed(seed)
    found = []
    for n in batches:
        segment = torch.randn(n, step.pan.new_length * 3, input_size, input_size, generator=gen)
        state = step.initial_state(segment)
        ort_state = [t.numpy() for t in state]
        worst = None
        for k in range(steps):
            segment = torch.randn(segment.shape, generator=gen)
            with torch.no_grad():
                logits, *state = step(segment, *state)
            ort_logits, *ort_state = session.run(None, dict(zip(inputs, [segment.numpy(), *ort_state])))
            seen = _compare(f'batch {n}, {steps} steps', ort_logits, logits)
            if worst is None or seen.max_diff / max(seen.max_logit, 1e-30) > worst.max_diff / max(worst.max_logit, 1e-30):
                worst = seen
        found.append(worst)
    return found
