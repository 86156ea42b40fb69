"""One query as a value: its terms and operators, canonical text, tokens and answer.

Canonical text grammar (every query has exactly one text)::

    query := term (" " op " " term)*      op: "|" union, "^" symmetric difference; left to right
    term  := "(" card " " card ")"        the pair rule
           | "<" card " " card ">"        the shared rule
           | "{" key ("," key)* "}"       an explicit subset, keys ascending
    card  := one character per attribute: its value as a base-36 digit (0-9, a-z), or "*"

Within a pair the smaller card text comes first, so a pair and its swap are one query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from set_env import rules
from set_env.checks import EXCERPT_LIMIT, check_choice, excerpt, is_int
from set_env.deck import Deck
from set_env.vocab import (
    CARD0,
    PAD,
    SHARED_OPEN,
    SUBSET_CLOSE,
    SUBSET_OPEN,
    SYMDIFF,
    TOKEN_MODES,
    UNION,
    TextFormatter,
    Vocab,
    is_test_query,
)

RULES = ("pair", "shared", "subset")
OPERATORS = ("|", "^")
_OPERATOR_TOKENS = {"|": UNION, "^": SYMDIFF}


@lru_cache(maxsize=16)
def text_formatter(deck: Deck) -> TextFormatter:
    return TextFormatter(deck)


def vocab(deck: Deck, mode: str = "card") -> Vocab:
    check_choice("tokens", mode, TOKEN_MODES)  # before the cache, which hashes its arguments
    return _vocab(deck, mode)


@lru_cache(maxsize=32)
def _vocab(deck: Deck, mode: str) -> Vocab:
    return Vocab(deck, mode)


@dataclass(frozen=True)
class Term:
    """One term: ``rule`` is ``"pair"``, ``"shared"`` or ``"subset"``; ``cards`` are card ids
    (for a subset, the card ids of its keys)."""

    rule: str
    cards: tuple[int, ...]


@dataclass(frozen=True)
class Query:
    """A query on ``deck``: terms combined left to right by ``ops`` (``"|"`` or ``"^"``).

    The constructor validates and canonicalises (pair cards in text order, subset keys
    ascending), so equal queries compare equal.
    """

    deck: Deck
    terms: tuple[Term, ...]
    ops: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.deck, Deck):
            raise ValueError(f"deck must be a Deck, got {excerpt(self.deck)}")
        for name in ("terms", "ops"):
            if not isinstance(getattr(self, name), (tuple, list)):
                raise ValueError(f"{name} must be a tuple, got {excerpt(getattr(self, name))}")
        if not self.terms:
            raise ValueError("a query needs at least one term")
        if len(self.ops) != len(self.terms) - 1:
            raise ValueError(
                f"a query of {len(self.terms)} terms needs {len(self.terms) - 1} operators, "
                f"got {len(self.ops)}"
            )
        for op in self.ops:
            check_choice("operator", op, OPERATORS)
        terms = tuple(_canonical_term(self.deck, term) for term in self.terms)
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "ops", tuple(self.ops))

    @cached_property
    def card_tokens(self) -> np.ndarray:
        """(L,) int64 ids in the card vocabulary: the canonical token form of the query."""
        tokens = []
        for i, term in enumerate(self.terms):
            if i:
                tokens.append(_OPERATOR_TOKENS[self.ops[i - 1]])
            cards = [CARD0 + c for c in term.cards]
            if term.rule == "pair":
                tokens += cards
            elif term.rule == "shared":
                tokens += [SHARED_OPEN, *cards]
            else:
                tokens += [SUBSET_OPEN, *cards, SUBSET_CLOSE]
        return np.array(tokens, dtype=np.int64)

    @cached_property
    def text(self) -> str:
        return str(text_formatter(self.deck).texts(self.card_tokens[None])[0])

    @cached_property
    def positives(self) -> np.ndarray:
        """(n_keys,) bool: the answer, evaluated term by term, left to right."""
        answer = self._term_answer(self.terms[0])
        for op, term in zip(self.ops, self.terms[1:], strict=True):
            combine = np.logical_or if op == "|" else np.logical_xor
            answer = combine(answer, self._term_answer(term))
        answer.setflags(write=False)  # cached: the same array serves every caller
        return answer

    @property
    def n_positives(self) -> int:
        return int(self.positives.sum())

    @property
    def is_test(self) -> bool:
        """Whether the query belongs to the test split."""
        return bool(is_test_query(self.card_tokens[None])[0])

    def tokens(self, mode: str = "card") -> np.ndarray:
        """(L,) token ids in the ``mode`` vocabulary, unpadded."""
        row = self.card_tokens[None]
        width = vocab(self.deck, mode).width(*_count_cards(row))
        return vocab(self.deck, mode).from_card_tokens(row, width)[0]

    def _term_answer(self, term: Term) -> np.ndarray:
        deck = self.deck
        if term.rule == "pair":
            return rules.pair_answer(deck, np.int64(term.cards[0]), np.int64(term.cards[1]))
        keys = deck.card_to_key[list(term.cards)]
        if term.rule == "shared":
            return rules.shared_answer(deck, keys[0], keys[1])
        answer = np.zeros(deck.n_keys, dtype=bool)
        answer[keys] = True
        return answer

    @classmethod
    def from_card_tokens(cls, deck: Deck, card_tokens: np.ndarray) -> Query:
        """Decode one row of card tokens (PAD allowed at the end)."""
        terms, ops, cards, rule = [], [], [], "pair"
        for token in (int(t) for t in card_tokens if t != PAD):
            if token >= CARD0:
                cards.append(token - CARD0)
                if rule != "subset" and len(cards) == 2:
                    terms.append(Term(rule, tuple(cards)))
                    cards, rule = [], "pair"
            elif token in (UNION, SYMDIFF):
                ops.append("|" if token == UNION else "^")
            elif token == SHARED_OPEN:
                rule = "shared"
            elif token == SUBSET_OPEN:
                rule = "subset"
            else:
                terms.append(Term("subset", tuple(cards)))
                cards, rule = [], "pair"
        return cls(deck, tuple(terms), tuple(ops))


def _count_cards(card_tokens: np.ndarray) -> tuple[int, int]:
    """(n_cards, n_specials) in one row of card tokens."""
    cards = int((card_tokens >= CARD0).sum())
    return cards, int((card_tokens != PAD).sum()) - cards


def _canonical_term(deck: Deck, term: Term) -> Term:
    if not isinstance(term, Term):
        raise ValueError(f"a query's terms must be Terms, got {excerpt(term)}")
    check_choice("term rule", term.rule, RULES)
    if not isinstance(term.cards, (tuple, list)):
        raise ValueError(f"term cards must be a tuple of card ids, got {excerpt(term.cards)}")
    for card in term.cards:
        if not is_int(card) or not 0 <= card < deck.n_cards:
            raise ValueError(
                f"card id must be an integer in [0, {deck.n_cards}), got {excerpt(card)}"
            )
    cards = tuple(int(c) for c in term.cards)
    if term.rule == "subset":
        if not cards:
            raise ValueError("a subset term needs at least one key")
        if len(set(cards)) != len(cards):
            raise ValueError("a subset term lists each key at most once")
        _require_plain(deck, cards, "a subset term")
        return Term("subset", tuple(sorted(cards)))
    if len(cards) != 2:
        raise ValueError(f"a {term.rule} term needs exactly 2 cards, got {len(cards)}")
    if term.rule == "shared":
        _require_plain(deck, cards, "the shared rule")
        if cards[0] == cards[1]:
            raise ValueError("the shared rule needs two distinct cards")
    return Term(term.rule, tuple(sorted(cards)))


def _require_plain(deck: Deck, cards, where: str) -> None:
    for card in cards:
        if deck.card_to_key[card] < 0:
            raise ValueError(f"{where} takes plain cards (no '*'), got {deck.card_texts[card]!r}")


_TERM_PATTERNS = (
    ("pair", re.compile(r"\((\S+) (\S+)\)")),
    ("shared", re.compile(r"<(\S+) (\S+)>")),
    ("subset", re.compile(r"\{([^{}\s]+)\}")),
)
_OPERATOR_PATTERN = re.compile(r" ([|^]) ")


def parse_query(text: str, deck: Deck) -> Query:
    """Parse a query text (the grammar in this module's docstring) into a ``Query``.

    Raises ``ValueError`` naming the position and what was expected. A pair written in
    either order, or subset keys in any order, give the same (canonical) query.
    """
    if not isinstance(text, str):
        raise ValueError(f"query text must be a str, got {type(text).__name__}")
    if not isinstance(deck, Deck):
        raise ValueError(f"deck must be a Deck, got {excerpt(deck)}")
    terms, ops, position = [], [], 0
    while True:
        term, position = _parse_term(text, position, deck)
        terms.append(term)
        if position == len(text):
            return Query(deck, tuple(terms), tuple(ops))
        match = _OPERATOR_PATTERN.match(text, position)
        if match is None:
            raise ValueError(
                f"query text {excerpt(text)}: expected ' | ' or ' ^ ' or the end at position "
                f"{position}{_near(text, position)}"
            )
        ops.append(match.group(1))
        position = match.end()


def _parse_term(text: str, position: int, deck: Deck) -> tuple[Term, int]:
    for rule, pattern in _TERM_PATTERNS:
        match = pattern.match(text, position)
        if match is None:
            continue
        if rule == "subset":
            cards = tuple(deck.card_id(key) for key in match.group(1).split(","))
        else:
            cards = (deck.card_id(match.group(1)), deck.card_id(match.group(2)))
        return Term(rule, cards), match.end()
    raise ValueError(
        f"query text {excerpt(text)}: expected a term '(c1 c2)', '<c1 c2>' or '{{k1,k2,...}}' "
        f"at position {position}{_near(text, position)}"
    )


def _near(text: str, position: int) -> str:
    """Where a long text goes wrong past the excerpt its message quotes: the text there."""
    if len(text) <= EXCERPT_LIMIT:
        return ""
    return f" (found {text[position : position + 20]!r})"
