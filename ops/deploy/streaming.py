"""Online (streaming) PAN: one segment in per step, the logits of the last ``num_segments`` out.

    online = OnlinePAN(model)          # a PAN; wrapped in eval mode
    for segment in segments:           # each (new_length * 3, H, W), normalised as the model's input
        logits = online.step(segment)  # None until num_segments segments were seen, then (num_class,)
    online.reset()                     # a new stream
    online = OnlinePAN(model, compiler=compile_for_inference)   # the step torch.compiled (ops.engine.compile)

Two ways of stepping, chosen by the model:

- **causal** (``causal_shift=True``, or no shift at all, and no temporal pooling): the feature of
  segment ``k`` depends on segments ``<= k`` only, so each step runs one segment through the
  network. Each shift keeps a buffer, the shifted channels ``[:fold]`` of the previous segment at
  that layer (zeros before the first, as the offline shift pads), and the head keeps the last
  ``num_segments`` segment features, a ``(1, num_segments, D)`` window. The first full window's
  logits are the offline model's on those segments; later ones those of a causal run over the
  whole stream, the head applied to its last ``num_segments`` features.
- **bidirectional** (every released checkpoint): a segment's features depend on its successors,
  so each step re-runs the last ``num_segments`` segments through the backbone, and only what
  depends on no neighbour is cached: each segment's backbone input (its PA maps, and for Lite
  the RGB frame beside them). Each output is the offline model's on that window.

:class:`CausalStep` is the causal step with its state explicit (inputs and outputs), which
``ops.deploy.onnx_export`` exports as the online ONNX model.

``compiler`` (a function that compiles a module in place, e.g.
``ops.engine.compile.compile_for_inference``): the causal step is compiled with its state kept
outside the graph, as its inputs and outputs, so every step of every stream runs the one graph;
the first step of a stream, which has no state yet, runs eagerly and makes the state's tensors.
A bidirectional model compiles its backbone, which runs on a full window at every step.
"""
from __future__ import annotations

import copy
from collections import deque
from typing import Callable

import torch
from torch import nn

from ops.models import PAN
from ops.temporal_shift import TemporalShift


class _StepBuffers:
    """The shift buffers of one step: ``given`` (read by each shift by its index; None: zeros,
    a new stream) and ``kept`` (what each shift leaves for the next step)."""

    def __init__(self) -> None:
        self.given: list[torch.Tensor] | None = None
        self.kept: dict[int, torch.Tensor] = {}


class StreamingShift(nn.Module):
    """The causal shift of a :class:`~ops.temporal_shift.TemporalShift` for one segment at a time.

    Shapes: ``x`` is ``(N, C, H, W)``, one segment of each of N streams; channels ``[:fold]``
    are replaced by the previous segment's (the buffer ``(N, fold, H, W)``), the rest stay.
    """

    def __init__(self, shift: TemporalShift, index: int, buffers: _StepBuffers) -> None:
        super().__init__()
        self.net = shift.net
        self.fold_div = shift.fold_div
        self.index = index
        self.state = buffers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fold = x.size(1) // self.fold_div
        given = self.state.given
        previous = torch.zeros_like(x[:, :fold]) if given is None else given[self.index]
        self.state.kept[self.index] = x[:, :fold]
        return self.net(torch.cat((previous, x[:, fold:]), dim=1))


def is_causal(model: PAN) -> bool:
    """Whether each segment's feature depends on earlier segments only, so one segment a step suffices."""
    return (model.causal_shift or not model.is_shift) and not model.temporal_pool


def _replace_shifts(module: nn.Module, buffers: _StepBuffers, count: list[int]) -> None:
    for name, child in module.named_children():
        if isinstance(child, TemporalShift):
            setattr(module, name, StreamingShift(child, count[0], buffers))
            count[0] += 1
            _replace_shifts(child.net, buffers, count)  # a 'block' shift wraps a whole block
        else:
            _replace_shifts(child, buffers, count)


class CausalStep(nn.Module):
    """One step of a causal PAN with its state explicit (a copy of ``model``; eval mode).

    ``forward(segment, window, *buffers) -> (logits, window, *buffers)``:
    ``segment`` ``(N, new_length * 3, H, W)``, one segment of N streams; ``window``
    ``(N, num_segments, D)``, the last segment features (oldest first); ``buffers`` one
    ``(N, C_l // shift_div, H_l, W_l)`` tensor per shift, in the order of the network's layers.
    ``window`` None (with no buffers) starts a stream: zeros, as :meth:`initial_state` gives.
    Returns the logits ``(N, num_class)`` of the new window, the window and the new buffers.
    """

    def __init__(self, model: PAN) -> None:
        super().__init__()
        if not is_causal(model):
            raise ValueError('CausalStep needs a causal PAN (causal_shift=True or no shift, no temporal_pool)')
        self.pan = copy.deepcopy(model).eval()
        self._shift_state = _StepBuffers()
        count = [0]
        _replace_shifts(self.pan.base_model, self._shift_state, count)
        self.num_buffers = count[0]
        name = self.pan.base_model.last_layer_name
        self.head = getattr(self.pan.base_model, name)   # VAP, or TSN's dropout / fc
        setattr(self.pan.base_model, name, nn.Identity())  # the backbone now ends at the segment feature

    def classify(self, window: torch.Tensor) -> torch.Tensor:
        """The head on a window of segment features: ``(N, T, D)`` -> ``(N, num_class)``."""
        return self.pan.consensus(self.head(window.reshape(-1, window.size(-1))))

    def forward(self, segment: torch.Tensor, window: torch.Tensor | None = None, *buffers: torch.Tensor):
        return self.advance(self.pan.features(segment), window, *buffers)

    def advance(self, inputs: torch.Tensor, window: torch.Tensor | None = None, *buffers: torch.Tensor):
        """:meth:`forward` from the segment's backbone input ``(N, C, H, W)`` (``PAN.features``)."""
        self._shift_state.given = list(buffers) if window is not None else None
        self._shift_state.kept = {}
        feature = self.pan.base_model(inputs)   # (N, D)
        kept = [self._shift_state.kept[i] for i in range(self.num_buffers)]
        self._shift_state.given, self._shift_state.kept = None, {}
        if window is None:
            window = feature.new_zeros(feature.size(0), self.pan.head_segments, feature.size(1))
        window = torch.cat((window[:, 1:], feature[:, None]), dim=1)
        return (self.classify(window), window, *kept)

    def initial_state(self, segment: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The zero state ``(window, *buffers)`` of new streams shaped like ``segment`` ``(N, L*3, H, W)``."""
        with torch.no_grad():
            _, window, *kept = self.forward(segment)
        return tuple(torch.zeros_like(t) for t in (window, *kept))


class _OnlineStep(nn.Module):
    """A causal step that also returns the segment's backbone input: ``(segment, window, *buffers)``
    -> ``(inputs, logits, window, *buffers)``, shapes as :class:`CausalStep`'s, ``inputs``
    ``(N, C, H, W)``; one module, so that the step compiles whole."""

    def __init__(self, step: CausalStep) -> None:
        super().__init__()
        self.step = step

    def forward(self, segment: torch.Tensor, window: torch.Tensor | None = None, *buffers: torch.Tensor):
        inputs = self.step.pan.features(segment)   # depends on this segment alone
        return (inputs, *self.step.advance(inputs, window, *buffers))


class OnlinePAN:
    """A PAN (copied, eval mode) fed one segment at a time; see the module docstring.

    ``step(segment)``: ``segment`` ``(new_length * 3, H, W)``, laid out and normalised as that
    segment's slice of the model input; returns None until ``num_segments`` segments have been
    seen, then the logits ``(num_class,)`` over the last ``num_segments``. Run it under the
    precision's autocast for bf16. ``causal`` says which way it steps. ``compiler``: compiles a
    module in place (None: eager); see the module docstring.
    """

    def __init__(self, model: PAN, compiler: Callable[[nn.Module], nn.Module] | None = None) -> None:
        self.num_segments = model.num_segments
        self.new_length = model.new_length
        self.causal = is_causal(model)
        self.compiled = compiler is not None
        if self.causal:
            self._step = CausalStep(model)
            self._run = _OnlineStep(self._step)
            if compiler is not None:
                compiler(self._run)
        else:
            self._pan = copy.deepcopy(model).eval()
            if compiler is not None:
                compiler(self._pan.base_model)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: forget every segment seen."""
        self.seen = 0
        self._size: tuple[int, int] | None = None
        self._state: tuple[torch.Tensor, ...] = ()   # causal: (window, *buffers); () before the first step
        self._inputs: deque[torch.Tensor] = deque(maxlen=self.num_segments)  # bidirectional: backbone inputs
        self.backbone_input: torch.Tensor | None = None   # the last segment's (C, H, W): RGB and / or PA maps

    def _check(self, segment: torch.Tensor) -> None:
        want = self.new_length * 3
        if segment.dim() != 3 or segment.size(0) != want:
            raise ValueError(f'OnlinePAN.step expects one segment (new_length*3={want}, H, W), '
                             f'got shape {tuple(segment.shape)}')
        size = tuple(segment.shape[-2:])
        if self._size is not None and size != self._size:
            raise ValueError(f'OnlinePAN.step: segment size {size} changed within a stream (was {self._size}); '
                             'reset() first')
        self._size = size

    @torch.inference_mode()
    def step(self, segment: torch.Tensor) -> torch.Tensor | None:
        self._check(segment)
        logits = None
        if self.causal:
            # A stream's first step has no state: eager (``forward`` bypasses a compiled call), so
            # that the compiled graph only ever sees the state's tensors and never recompiles.
            run = self._run if self._state else self._run.forward
            inputs, logits, *state = run(segment[None], *self._state)
            if self.compiled:
                # The graph is guarded on its inputs' strides, and an eager step leaves views
                # (the shifted channels of a layer's input) where the graph leaves fresh tensors:
                # the state goes back in one layout whichever made it, so no step recompiles.
                state = [t.clone(memory_format=torch.contiguous_format) for t in state]
            self._state = tuple(state)
        else:
            inputs = self._pan.features(segment[None])   # (1, C, H, W): depends on this segment alone
            self._inputs.append(inputs)
            if len(self._inputs) == self.num_segments:
                logits = self._pan.consensus(self._pan.base_model(torch.cat(tuple(self._inputs))))
        self.backbone_input = inputs[0]
        self.seen += 1
        return logits[0] if self.seen >= self.num_segments else None
