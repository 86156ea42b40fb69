"""The command lines' shared look: ``python -m NAME`` as the program, a one-line
description, the default of every flag, and examples to copy."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each flag's default after its help (none for flags without one); the description and
    the examples as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def make_parser(module: str, description: str, examples: list[str]) -> argparse.ArgumentParser:
    """The parser of ``python -m module``: ``description`` is one line, ``examples`` are
    complete command lines."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=description,
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=HelpFormatter,
    )
