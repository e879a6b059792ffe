"""Running a trained PAN outside training: streaming inference one segment at a time
(:class:`~ops.deploy.streaming.OnlinePAN`) and ONNX export checked with ONNX Runtime.

It may import the model (:mod:`ops.models` and its parts), :mod:`ops.frames` and
:mod:`ops.errors`; never the training engine, the clip side, an entry point or a tool.
"""
