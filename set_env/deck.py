"""The deck: cards as vectors of attribute values, their ids and their texts.

A plain card has one value in ``0 .. v-1`` per attribute; its key id is the card read as a
base-v number, attribute 0 most significant. A query card may also hold the wildcard ``*`` in
any attribute. Every query card (plain or not) has a *card id* in ``0 .. (v+1)**a - 1``: each
attribute is coded ``*`` -> 0 and value ``x`` -> ``x + 1`` and read as a base-(v+1) number.
That numbering sorts cards exactly as their canonical texts sort, since ``*`` precedes the
digits in ASCII.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from set_env.checks import excerpt, is_int

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
WILDCARD = "*"
MAX_KEYS = 4096

ATTRIBUTE_NAMES = ("colour", "fill", "shape", "count")
VALUE_NAMES = {
    "colour": ("red", "green", "purple", "blue", "orange", "teal", "brown", "pink"),
    "fill": ("solid", "striped", "open", "dotted", "checked", "hatched"),
    "shape": ("diamond", "oval", "squiggle", "rectangle", "triangle", "cross"),
    "count": ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}


@dataclass(frozen=True)
class Deck:
    """The ``n_values ** n_attributes`` cards of a SET deck (27 = 3 x 3, 81 = 4 x 3).

    Any ``n_attributes >= 1`` and ``3 <= n_values <= 36`` with at most 4096 cards is allowed;
    the upper bound on values comes from the card text, one base-36 digit per attribute.
    """

    n_attributes: int = 3
    n_values: int = 3

    def __post_init__(self):
        a, v = self.n_attributes, self.n_values
        if not is_int(a) or a < 1:
            raise ValueError(f"n_attributes must be an integer >= 1, got {excerpt(a)}")
        if not is_int(v) or not 3 <= v <= len(DIGITS):
            raise ValueError(
                f"n_values must be an integer from 3 to {len(DIGITS)}, got {excerpt(v)}"
            )
        # v >= 3 > 2, so past MAX_KEYS.bit_length() attributes there are too many cards:
        # the check must not compute v ** a for a huge a.
        if a >= MAX_KEYS.bit_length() or v**a > MAX_KEYS:
            cards = f" = {v**a}" if a < MAX_KEYS.bit_length() else ""
            raise ValueError(
                f"n_values ** n_attributes must be at most {MAX_KEYS} cards, "
                f"got {v}**{excerpt(a)}{cards}"
            )

    @property
    def n_keys(self) -> int:
        """Number of plain cards, which are the keys a query selects from."""
        return self.n_values**self.n_attributes

    @property
    def n_cards(self) -> int:
        """Number of query cards: plain cards and cards with wildcards."""
        return (self.n_values + 1) ** self.n_attributes

    @cached_property
    def key_values(self) -> np.ndarray:
        """(n_keys, a) int64: the attribute values of each key."""
        return _frozen(_digits(np.arange(self.n_keys), self.n_values, self.n_attributes))

    @cached_property
    def card_values(self) -> np.ndarray:
        """(n_cards, a) int64: the attribute values of each query card, -1 for ``*``."""
        return _frozen(_digits(np.arange(self.n_cards), self.n_values + 1, self.n_attributes) - 1)

    @cached_property
    def key_to_card(self) -> np.ndarray:
        """(n_keys,) int64: the card id of each plain card."""
        weights = (self.n_values + 1) ** np.arange(self.n_attributes - 1, -1, -1)
        return _frozen((self.key_values + 1) @ weights)

    @cached_property
    def card_to_key(self) -> np.ndarray:
        """(n_cards,) int64: the key id of each plain card id, -1 for cards with a wildcard."""
        table = np.full(self.n_cards, -1, dtype=np.int64)
        table[self.key_to_card] = np.arange(self.n_keys)
        return _frozen(table)

    @cached_property
    def card_texts(self) -> tuple[str, ...]:
        """The canonical text of every card id, e.g. ``"0*2"``."""
        symbols = WILDCARD + DIGITS[: self.n_values]
        return tuple("".join(symbols[c + 1] for c in row) for row in self.card_values)

    @cached_property
    def _card_ids(self) -> dict[str, int]:
        return {text: i for i, text in enumerate(self.card_texts)}

    def card_id(self, text: str) -> int:
        """The card id of a card text; ``ValueError`` if it is not a card of this deck."""
        card = self._card_ids.get(text) if isinstance(text, str) else None
        if card is None:
            raise ValueError(
                f"card {excerpt(text)} is not a card of the {self.n_values}x{self.n_attributes} "
                f"deck: expected {self.n_attributes} characters, each one of "
                f"{DIGITS[: self.n_values]!r} or {WILDCARD!r}"
            )
        return card

    def key_text(self, key: int) -> str:
        return self.card_texts[self.key_to_card[key]]

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """Human names of the attributes: colour, fill, shape, count, then attr4, attr5, ..."""
        extra = tuple(f"attr{j}" for j in range(len(ATTRIBUTE_NAMES), self.n_attributes))
        return (ATTRIBUTE_NAMES + extra)[: self.n_attributes]

    def value_name(self, attribute: int, value: int) -> str:
        """Human name of one attribute value, ``"any <attribute>"`` for the wildcard."""
        name = self.attribute_names[attribute]
        if value < 0:
            return f"any {name}"
        names = VALUE_NAMES.get(name, ())
        return names[value] if value < len(names) else f"{name}{value}"

    def describe(self, card: int) -> str:
        """A card id in words, e.g. ``"red solid any shape"``."""
        return " ".join(self.value_name(j, x) for j, x in enumerate(self.card_values[card]))


def _frozen(array: np.ndarray) -> np.ndarray:
    """Read-only: the deck's tables are shared by every game, query and cache."""
    array.setflags(write=False)
    return array


def _digits(numbers: np.ndarray, base: int, width: int) -> np.ndarray:
    """(n,) -> (n, width): base-``base`` digits, most significant first."""
    powers = base ** np.arange(width - 1, -1, -1)
    return (numbers[:, None] // powers) % base
