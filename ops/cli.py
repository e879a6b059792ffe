"""What every command line of the project shares: help that shows each flag's default, and one
way of ending on a user's mistake (an ``error:`` line naming the file, line or option, exit
status 2, no traceback unless ``--debug``)."""
from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps a parser's description as written and appends ``(default: ...)`` to every flag's help."""


def new_parser(description: str | None, **kwargs) -> argparse.ArgumentParser:
    """An ArgumentParser with :class:`HelpFormatter`; ``description`` is shown as written."""
    return argparse.ArgumentParser(description=description, formatter_class=HelpFormatter, **kwargs)
