"""A query in words, for ``render_mode="ansi"``."""

from __future__ import annotations

import numpy as np

from set_env.query import Query


def render_ansi(query: Query, chosen=None) -> str:
    """The query with its cards in words, its answer and the chosen key(s)."""
    deck = query.deck
    lines = [f"query: {query.text}"]
    for i, term in enumerate(query.terms):
        op = f"{query.ops[i - 1]} " if i else "  "
        names = ", ".join(deck.describe(card) for card in term.cards)
        lines.append(f"  {op}{term.rule}: {names}")
    keys = np.flatnonzero(query.positives)
    lines.append(f"answer ({len(keys)}): " + " ".join(deck.key_text(k) for k in keys))
    if chosen is not None:
        picked = np.flatnonzero(np.asarray(chosen)) if np.ndim(chosen) else [int(chosen)]
        marks = [f"{deck.key_text(k)}{'+' if query.positives[k] else '-'}" for k in picked]
        lines.append("chosen: " + " ".join(marks) + "   (+ in the answer, - not)")
    return "\n".join(lines) + "\n"
