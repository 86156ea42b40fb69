"""List flags that take their items space-separated, comma-separated or both: ``--dims 2 4 8``,
``--dims 2,4,8`` (the form of older scripts) and ``--dims 2,4 8`` are all [2, 4, 8]."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from set_env.checks import excerpt


class JoinedLists(argparse.Action):
    """``nargs="+"`` with a ``list_of`` type, which makes each word a list: the flag's value is
    their items in one list. A default string goes through the type alone, already one list."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [item for word in values for item in word])


def list_of(item: Callable[[str], object], allowed: Sequence[str] | None = None):
    """An argparse ``type=`` for one word of a list flag: its comma-separated parts, each
    through ``item`` (which raises ValueError for a bad one) and, with ``allowed``, one of
    those; argparse reports a bad part as ``argument --FLAG: why``."""

    def parse(word: str) -> list:
        parts = [part.strip() for part in word.split(",") if part.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected at least one item, got {excerpt(word)}")
        try:
            items = [item(part) for part in parts]
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        unknown = [part for part in items if allowed is not None and part not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; allowed: {','.join(allowed)}")
        return items

    return parse


def integer(text: str) -> int:
    """``text`` as an int; ValueError naming what a list of integers looks like."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"must be integers, space- or comma-separated (e.g. 2 4 8), got {excerpt(text)}"
        ) from None
