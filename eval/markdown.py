"""Markdown tables: one writer for the report, the analysis tools and the trainer's
hyperparameter text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], title: str = "") -> str:
    """A markdown table (the first column left-aligned, the others right-aligned, as numbers
    read best), under a ``### title`` when given, ending with a blank line."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([*lines, ""])
