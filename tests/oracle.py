"""A brute-force oracle for the SET rules and query texts, independent of ``set_env``.

Everything here uses plain Python sets, tuples and ``itertools.product`` over attribute
values: no numpy and no imports from the library, so the tests compare two independent
implementations of the spec.

A card is a tuple with one entry per attribute: a value ``0 .. v-1`` or ``None`` for ``*``.
A key id is the plain card read as a base-v number, attribute 0 most significant.
"""

from __future__ import annotations

import functools
import itertools

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
WILD = "*"


class OracleError(ValueError):
    """The oracle's parser rejects a text."""


# ---------------------------------------------------------------- cards and keys


def card_from_text(text: str, a: int, v: int) -> tuple:
    """``"0*2"`` -> ``(0, None, 2)``; ``OracleError`` when it is not a card of the deck."""
    if len(text) != a:
        raise OracleError(f"card {text!r} must have {a} characters")
    values = []
    for ch in text:
        if ch == WILD:
            values.append(None)
        elif ch in DIGITS[:v]:
            values.append(DIGITS.index(ch))
        else:
            raise OracleError(f"bad character {ch!r} in card {text!r}")
    return tuple(values)


def card_to_text(card: tuple) -> str:
    return "".join(WILD if x is None else DIGITS[x] for x in card)


def key_id(card: tuple, v: int) -> int:
    """Plain card -> key id (base v, attribute 0 most significant)."""
    number = 0
    for x in card:
        assert x is not None, "a key has no wildcard"
        number = number * v + x
    return number


def key_card(key: int, a: int, v: int) -> tuple:
    """Key id -> plain card."""
    values = []
    for _ in range(a):
        key, x = divmod(key, v)
        values.append(x)
    return tuple(reversed(values))


def card_code(card: tuple, v: int) -> int:
    """The card id: ``*`` -> 0, value x -> x + 1, read as a base-(v+1) number."""
    number = 0
    for x in card:
        number = number * (v + 1) + (0 if x is None else x + 1)
    return number


@functools.cache
def all_keys(a: int, v: int) -> tuple[tuple, ...]:
    return tuple(itertools.product(range(v), repeat=a))


@functools.cache
def all_cards(a: int, v: int) -> tuple[tuple, ...]:
    """Every query card, in card-id order (``*`` first, then the values)."""
    return tuple(itertools.product([None, *range(v)], repeat=a))


def is_plain(card: tuple) -> bool:
    return None not in card


# ---------------------------------------------------------------- the rules


def allowed_values(x, y, v: int) -> set[int]:
    """Values k for which (x, y, k) is all the same or all different on one attribute."""
    if x is None or y is None:
        return set(range(v))
    if x == y:
        return {x}
    return set(range(v)) - {x, y}


def pair_rule(a: int, v: int, c1: tuple, c2: tuple) -> frozenset[int]:
    """The pair rule: every key allowed attribute by attribute (a product of sets)."""
    per_attribute = [allowed_values(x, y, v) for x, y in zip(c1, c2, strict=True)]
    assert len(per_attribute) == a
    return frozenset(key_id(k, v) for k in itertools.product(*per_attribute))


def shared_rule(a: int, v: int, c1: tuple, c2: tuple) -> frozenset[int]:
    """The shared rule: keys holding at least one (attribute, value) the two cards share."""
    shared = {(j, x) for j, (x, y) in enumerate(zip(c1, c2, strict=True)) if x == y}
    return frozenset(
        key_id(k, v) for k in all_keys(a, v) if any((j, k[j]) in shared for j in range(a))
    )


# ---------------------------------------------------------------- the query text


def parse(text: str, a: int, v: int) -> tuple[list, list[str], bool]:
    """Parse a query text with a hand-written scanner.

    Returns ``(terms, ops, canonical)``: ``terms`` is a list of ``(rule, cards)`` with rule
    ``"pair"``, ``"shared"`` or ``"subset"`` and cards as value tuples; ``ops`` the operators;
    ``canonical`` whether the text is in canonical order (pairs and subsets sorted by card
    text). Pairs in either order and subset keys in any order are accepted, as the library's
    documentation says. ``OracleError`` on anything else.
    """
    if not isinstance(text, str):
        raise OracleError("not a str")
    terms, ops, canonical, i = [], [], True, 0

    def read_card(i: int, stop: str) -> tuple[tuple, int]:
        j = i
        while j < len(text) and text[j] not in stop:
            j += 1
        if j == len(text):
            raise OracleError(f"unterminated card at {i}")
        return card_from_text(text[i:j], a, v), j

    def expect(i: int, ch: str) -> int:
        if i >= len(text) or text[i] != ch:
            raise OracleError(f"expected {ch!r} at {i}")
        return i + 1

    while True:
        if i >= len(text):
            raise OracleError(f"expected a term at {i}")
        opener = text[i]
        if opener in "(<":
            closer = ")" if opener == "(" else ">"
            c1, i = read_card(i + 1, " ")
            i = expect(i, " ")
            c2, i = read_card(i, closer)
            i = expect(i, closer)
            if card_to_text(c1) > card_to_text(c2):
                canonical = False
            if opener == "<":
                if not (is_plain(c1) and is_plain(c2)):
                    raise OracleError("the shared rule takes plain cards")
                if c1 == c2:
                    raise OracleError("the shared rule takes distinct cards")
            terms.append(("pair" if opener == "(" else "shared", (c1, c2)))
        elif opener == "{":
            close = text.find("}", i)
            if close < 0:
                raise OracleError("unterminated subset")
            body = text[i + 1 : close]
            if body == "":
                raise OracleError("empty subset")
            cards = [card_from_text(part, a, v) for part in body.split(",")]
            if not all(is_plain(c) for c in cards):
                raise OracleError("a subset lists plain cards")
            if len(set(cards)) != len(cards):
                raise OracleError("a subset lists each key once")
            texts = [card_to_text(c) for c in cards]
            if texts != sorted(texts):
                canonical = False
            terms.append(("subset", tuple(cards)))
            i = close + 1
        else:
            raise OracleError(f"expected '(', '<' or '{{' at {i}")
        if i == len(text):
            return terms, ops, canonical
        if text[i : i + 3] not in (" | ", " ^ "):
            raise OracleError(f"expected an operator at {i}")
        ops.append(text[i + 1])
        i += 3


def term_answer(term, a: int, v: int) -> frozenset[int]:
    rule, cards = term
    if rule == "pair":
        return pair_rule(a, v, *cards)
    if rule == "shared":
        return shared_rule(a, v, *cards)
    return frozenset(key_id(c, v) for c in cards)


def evaluate(text: str, a: int, v: int) -> frozenset[int]:
    """The answer of a query text: its terms combined left to right by ``|`` and ``^``."""
    terms, ops, _ = parse(text, a, v)
    answer = set(term_answer(terms[0], a, v))
    for op, term in zip(ops, terms[1:], strict=True):
        other = term_answer(term, a, v)
        answer = answer | other if op == "|" else answer ^ other
    return frozenset(answer)


def is_canonical(text: str, a: int, v: int) -> bool:
    return parse(text, a, v)[2]


def to_ids(answer) -> frozenset[int]:
    """A (n_keys,) sequence of bools -> the set of its true indices."""
    return frozenset(i for i, x in enumerate(answer) if x)
