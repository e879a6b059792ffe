"""What every command line of the project shares: help that shows each flag's default, and one
way of ending on a user's mistake (an ``error:`` line naming the file, line or option, exit
status 2, no traceback unless ``--debug``)."""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
import traceback
from typing import Any, Callable, Sequence

from ops.errors import InputError

USAGE_STATUS = 2  # the exit status of a user's mistake, as argparse gives for a bad command line
# A process that leaves the report to rank 0 waits this long before exiting: torchrun stops every
# other process as soon as one exits, and rank 0 must have printed by then.
QUIET_RANK_GRACE_S = 3.0


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps a parser's description as written and appends ``(default: ...)`` to every flag's help,
    unless the help already says what its default is (``(default: the dataset's)``,
    ``Default: frame folders.``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ''
        if action.required or '(default' in text or 'default:' in text.lower():
            return text
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes print ``error: <what is wrong>`` first and a pointer to
    ``-h`` (not the whole usage, which for main.py is a screenful), exit status 2 as argparse's own."""

    def error(self, message: str):
        self.exit(USAGE_STATUS, f'error: {message}\n(python {self.prog} -h lists every flag with its meaning '
                                'and default)\n')


def new_parser(description: str | None, **kwargs) -> argparse.ArgumentParser:
    """An :class:`ArgumentParser` with :class:`HelpFormatter`; ``description`` is shown as written."""
    return ArgumentParser(description=description, formatter_class=HelpFormatter, **kwargs)


def add_debug_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--debug``: the traceback of a user's mistake too (read by :func:`run_cli_main`)."""
    parser.add_argument('--debug', action='store_true',
                        help="on a mistake in the input (a missing file, a bad option), raise with the full "
                             "traceback instead of printing one 'error:' line and exiting with status 2")


# The errors a user can fix by changing the command line or the files it names. Any other
# exception is a bug in the code and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (OSError, InputError)

_WORKER_PREFIX = re.compile(r'^Caught \w+ in DataLoader worker process \d+\.')


def error_message(err: BaseException) -> str:
    """The message of ``err`` for an ``error:`` line; an error raised in a DataLoader worker
    (re-raised by torch with the worker's traceback in its text) is reduced to its own message."""
    text = str(err).strip()
    if _WORKER_PREFIX.match(text) and 'Traceback' in text:
        where = re.search(r'in DataLoader worker process \d+', text)[0]
        name = re.escape(type(err).__name__)
        found = list(re.finditer(rf'^(?:[\w.]+\.)?{name}: ', text, re.M))
        if found:
            text = text[found[-1].end():].strip() + f'\n(raised {where}; --debug shows its traceback)'
    return text or type(err).__name__


def process_rank() -> int:
    """This process's rank under torchrun (``$RANK``), else 0."""
    try:
        return int(os.environ.get('RANK', '0'))
    except ValueError:
        return 0


def run_cli_main(main_fn: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None,
                 every_rank: tuple[type[BaseException], ...] = ()) -> Any:
    """Run an entry point's ``main(argv)``, ending on a user's mistake the way the tools do.

    An OSError (a missing or unreadable file), an :class:`~ops.errors.InputError` (a file's content
    or an option the code cannot honour), or a ``SystemExit`` whose message starts with
    ``error:`` prints ``error: <message>`` on stderr, the first line naming the file, list line or
    option (hints may follow), and exits with status 2: no traceback. With ``--debug`` in
    ``argv`` these are raised as they are, traceback included. Any other exception is a bug and
    propagates unchanged.

    Under torchrun every process exits with status 2; only rank 0 prints, except for errors of
    the types in ``every_rank`` (those one process can meet alone, e.g. a frame of its share of
    the data), which every process prints, tagged with its rank. A process that prints nothing
    waits :data:`QUIET_RANK_GRACE_S` seconds first, so that torchrun, which stops the others when
    one exits, does not stop rank 0 before its message is out.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in args
    rank = process_rank()
    try:
        return main_fn(argv)
    except SystemExit as err:
        if not (isinstance(err.code, str) and err.code.startswith('error:')):
            raise
        if debug:
            traceback.print_exc()
        _report(err.code[len('error:'):].strip(), rank, rank == 0)
    except USER_ERRORS as err:
        if debug:
            raise
        _report(error_message(err), rank, rank == 0 or isinstance(err, every_rank))
    sys.exit(USAGE_STATUS)


def _report(message: str, rank: int, show: bool) -> None:
    if show:
        tag = f'(rank {rank}) ' if rank else ''
        print(f'error: {tag}{message}', file=sys.stderr, flush=True)
    else:
        time.sleep(QUIET_RANK_GRACE_S)
