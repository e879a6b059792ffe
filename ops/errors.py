"""The project's kind of error for bad input the user can fix.

:class:`InputError` is a ValueError (code that catches ValueError still does) raised for the
content of a file or the value of an option: a checkpoint that does not read or does not fit, a
malformed list or category file, a frame folder with no usable frames, an option the entry point
cannot honour. The entry points (``main.py``, ``test_models.py``) print its message as one
``error: ...`` line (its first line names the file, list line or option) and exit with status 2;
see :func:`ops.engine.cli.run_cli_main`. A ValueError that is not an InputError is a bug and keeps its
traceback.

Missing or unreadable files are OSErrors (FileNotFoundError, DatasetFilesError, FrameReadError,
VideoReadError, LmdbStoreError), which the entry points treat the same way.
"""
from __future__ import annotations


class InputError(ValueError):
    """Bad input the user can fix; the message names the file, list line or option first."""
