"""What the entry points (``main.py``, ``test_models.py``) and the tools run on: the command-line
conventions, checkpoints, run state and lock, resumable sampling, distributed
set-up, optimizer, logs, run names, precision, compilation and test reports.

It may import the model (:mod:`ops.models` and its parts), the clip side (:mod:`ops.dataset`,
:mod:`ops.data_setup`, ...), :mod:`ops.frames` and the leaves :mod:`ops.utils` / :mod:`ops.errors` /
:mod:`ops.safe_files` (crash-safe files, shared with :mod:`ops.frames`' video index); never
:mod:`ops.deploy`, an entry point or a tool.
"""
