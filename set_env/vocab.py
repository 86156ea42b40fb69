"""Token vocabularies, the canonical query text, and the train/test split.

Every query is held as a row of *card tokens* (the ``tokens="card"`` ids below), padded with
PAD. The text, the ``tokens="attribute"`` ids and the split are all functions of that row.

Card-token grammar (mirrors the text grammar, without the spaces and closing brackets that
carry no information)::

    pair term    card card              "(c1 c2)"
    shared term  "<" card card          "<c1 c2>"
    subset term  "{" card+ "}"          "{k1,k2,...}"
    operator     "|" or "^" between terms

Vocabularies, index = token id:

* ``card``: ``<pad> | ^ < { }`` then every query card text in card-id order
  (``***, **0, ..., 222`` on 3 x 3), i.e. ``6 + (v+1)**a`` tokens.
* ``attribute``: the same six, then one token per (attribute, value or ``*``), written
  ``"j:x"`` (``0:*, 0:0, ..., 2:2``); a card becomes its ``a`` attribute tokens.
* ``pair``: the same six, then one token per unordered pair of query cards, written as its
  pair term ``"(c1 c2)"``: the pair of card ids ``low <= high`` is token
  ``6 + high * (high + 1) / 2 + low``, i.e. ``6 + n(n+1)/2`` tokens for ``n = (v+1)**a``
  cards. A pair term is one token, a shared term ``<`` and its pair's token; operators stay
  tokens. Explicit subsets have no pair form, and decks whose pair vocabulary would exceed
  ``MAX_PAIR_VOCAB`` tokens refuse the mode.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from set_env.checks import check_choice
from set_env.deck import Deck

SPECIALS = ("<pad>", "|", "^", "<", "{", "}")
PAD, UNION, SYMDIFF, SHARED_OPEN, SUBSET_OPEN, SUBSET_CLOSE = range(len(SPECIALS))
CARD0 = len(SPECIALS)
TOKEN_MODES = ("card", "attribute", "pair")
MAX_PAIR_VOCAB = 1 << 20  # tokens of the pair vocabulary: more would not fit an embedding

# The role of a token decides how it is written in the text. A special token is its own
# role (roles 0-5); a card's role depends on the role of the token before it.
_PAIR_FIRST, _PAIR_SECOND, _SHARED_FIRST, _SHARED_SECOND, _SUBSET_FIRST, _SUBSET_NEXT = range(
    CARD0, CARD0 + 6
)
_N_ROLES = CARD0 + 6
# Text written around a card token, by role.
_CARD_AFFIXES = {
    _PAIR_FIRST: ("(", " "),
    _PAIR_SECOND: ("", ")"),
    _SHARED_FIRST: ("", " "),
    _SHARED_SECOND: ("", ">"),
    _SUBSET_FIRST: ("", ""),
    _SUBSET_NEXT: (",", ""),
}
_CARD_AFTER = {  # role of a card, by the role before it; any other -> _PAIR_FIRST
    _PAIR_FIRST: _PAIR_SECOND,
    SHARED_OPEN: _SHARED_FIRST,
    _SHARED_FIRST: _SHARED_SECOND,
    SUBSET_OPEN: _SUBSET_FIRST,
    _SUBSET_FIRST: _SUBSET_NEXT,
    _SUBSET_NEXT: _SUBSET_NEXT,
}


def _role_transitions() -> np.ndarray:
    """(role before, token class) -> role; a token's class is its id, or CARD0 for a card."""
    table = np.tile(np.arange(CARD0 + 1), (_N_ROLES, 1))
    table[:, CARD0] = [_CARD_AFTER.get(role, _PAIR_FIRST) for role in range(_N_ROLES)]
    return table.ravel()


_TRANSITIONS = _role_transitions()
_SPECIAL_TEXT = ("", " | ", " ^ ", "<", "{", "}")

_EXPANSION_CELLS = 1 << 24  # attribute tokens expanded at once by from_card_tokens

TEST_FRACTION_DENOMINATOR = 10
_DENOMINATOR = np.uint64(TEST_FRACTION_DENOMINATOR)


class Vocab:
    """The token vocabulary of one deck in one token mode (``TOKEN_MODES``)."""

    def __init__(self, deck: Deck, mode: str = "card"):
        check_choice("tokens", mode, TOKEN_MODES)
        self.deck, self.mode = deck, mode
        if mode == "card":
            self.tokens = list(SPECIALS) + list(deck.card_texts)
        elif mode == "attribute":
            symbols = "*" + "0123456789abcdefghijklmnopqrstuvwxyz"[: deck.n_values]
            self.tokens = list(SPECIALS) + [
                f"{j}:{s}" for j in range(deck.n_attributes) for s in symbols
            ]
        else:
            self.tokens = list(SPECIALS) + _pair_texts(deck)

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"Vocab({self.deck}, mode={self.mode!r}, size={len(self)})"

    def width(self, n_cards: int, n_specials: int) -> int:
        """Token length of a query with that many card and special tokens (in pair tokens,
        the cards of pair and shared terms, two to a token)."""
        if self.mode == "pair":
            return n_specials + n_cards // 2
        return n_specials + n_cards * (self.deck.n_attributes if self.mode == "attribute" else 1)

    def key_tokens(self) -> np.ndarray:
        """(n_keys, tokens per key) ids: each key (plain card) in this mode. In pair tokens a
        key is the pair ``(k k)``, the pair term whose answer is exactly ``{k}``."""
        cards = self.deck.key_to_card[:, None]  # (n_keys, 1)
        if self.mode == "pair":
            return CARD0 + cards * (cards + 1) // 2 + cards
        return self.from_card_tokens(CARD0 + cards, self.width(1, 0))

    @cached_property
    def _expansion(self) -> np.ndarray:
        """(card vocab size, a) attribute tokens of each card token; specials stay, padded."""
        deck = self.deck
        table = np.full((CARD0 + deck.n_cards, deck.n_attributes), PAD, dtype=np.int64)
        table[:CARD0, 0] = np.arange(CARD0)
        offsets = np.arange(deck.n_attributes) * (deck.n_values + 1)
        table[CARD0:] = CARD0 + offsets + deck.card_values + 1
        return table

    def from_card_tokens(self, card_tokens: np.ndarray, width: int) -> np.ndarray:
        """(n, L) card tokens -> (n, width) token ids in this vocabulary's mode."""
        if self.mode == "card":
            if card_tokens.shape[1] == width:
                return np.asarray(card_tokens, dtype=np.int64)
            out = np.zeros((len(card_tokens), width), dtype=np.int64)  # PAD is 0
            out[:, : card_tokens.shape[1]] = card_tokens
            return out
        if self.mode == "pair":
            return _pair_tokens(card_tokens, width)
        # Row blocks keep the (rows, L, a) expansion and compact's temporaries small: on
        # one array they would take several times the output's memory.
        n, length = card_tokens.shape
        rows_at_once = max(1, _EXPANSION_CELLS // max(1, length * self.deck.n_attributes))
        out = np.empty((n, width), dtype=np.int64)
        for start in range(0, n, rows_at_once):
            block = card_tokens[start : start + rows_at_once]
            pieces = self._expansion[block]  # (rows, L, a)
            out[start : start + len(block)] = compact(pieces.reshape(len(block), -1), width, PAD)
        return out


def _pair_texts(deck: Deck) -> list[str]:
    """The pair vocabulary's texts, ``"(c_low c_high)"`` in token order."""
    n = deck.n_cards
    size = CARD0 + n * (n + 1) // 2
    if size > MAX_PAIR_VOCAB:
        raise ValueError(
            f"tokens='pair' on the {deck.n_attributes}x{deck.n_values} deck would need {size} "
            f"tokens, more than MAX_PAIR_VOCAB = {MAX_PAIR_VOCAB}; use 'card' or 'attribute'"
        )
    texts = deck.card_texts
    return [f"({texts[low]} {texts[high]})" for high in range(n) for low in range(high + 1)]


def _pair_tokens(card_tokens: np.ndarray, width: int) -> np.ndarray:
    """(n, L) card tokens -> (n, width) pair tokens: each pair of cards (low, high) of a pair
    or shared term becomes ``CARD0 + high (high + 1) / 2 + low``; other tokens stay."""
    roles = _roles(card_tokens)
    if np.isin(roles, (_SUBSET_FIRST, _SUBSET_NEXT)).any():
        raise ValueError(
            "tokens='pair' encodes pair and shared terms only, not explicit subsets "
            "'{k1,...}'; use 'card' or 'attribute'"
        )
    low, high = card_tokens[:, :-1] - CARD0, card_tokens[:, 1:] - CARD0
    first = (roles[:, :-1] == _PAIR_FIRST) | (roles[:, :-1] == _SHARED_FIRST)
    out = np.asarray(card_tokens, dtype=np.int64).copy()
    out[:, :-1] = np.where(first, CARD0 + high * (high + 1) // 2 + low, out[:, :-1])
    out[(roles == _PAIR_SECOND) | (roles == _SHARED_SECOND)] = PAD
    return compact(out, width, PAD)


def compact(values: np.ndarray, width: int, fill) -> np.ndarray:
    """Move each row's non-``fill`` entries to its front, in order: (n, m) -> (n, width)."""
    keep = values != fill
    slot = np.cumsum(keep, axis=1) - 1
    rows, cols = np.nonzero(keep)
    out = np.full((len(values), width), fill, dtype=values.dtype)
    out[rows, slot[rows, cols]] = values[rows, cols]
    return out


def _roles(card_tokens: np.ndarray) -> np.ndarray:
    """(n, L) card tokens -> (n, L) role of each token (see the grammar above)."""
    classes = np.minimum(card_tokens, CARD0)
    roles = np.empty(card_tokens.shape, dtype=np.intp)
    role = np.full(len(card_tokens), PAD, dtype=np.intp)
    for i in range(card_tokens.shape[1]):
        role = _TRANSITIONS[role * (CARD0 + 1) + classes[:, i]]
        roles[:, i] = role
    return roles


class TextFormatter:
    """Writes rows of card tokens as canonical query texts, vectorised over rows.

    Each token is written as a chunk that depends on its role (``(c1 `` for the first card
    of a pair, ``c2)`` for the second, `` | `` for an operator, ...); a text is its row's
    chunks end to end.
    """

    def __init__(self, deck: Deck):
        self._n_tokens = CARD0 + deck.n_cards
        chunks = [[""] * self._n_tokens for _ in range(_N_ROLES)]  # chunks[role][token]
        for role, row in enumerate(chunks):
            row[:CARD0] = _SPECIAL_TEXT
            if role in _CARD_AFFIXES:
                before, after = _CARD_AFFIXES[role]
                row[CARD0:] = [before + text + after for text in deck.card_texts]
        flat = [chunk for row in chunks for chunk in row]  # index role * n_tokens + token
        self._width = max(len(chunk) for chunk in flat)
        self._chunks = np.zeros((len(flat), self._width), dtype=np.uint8)
        for i, chunk in enumerate(flat):
            self._chunks[i, : len(chunk)] = np.frombuffer(chunk.encode(), np.uint8)
        self._lengths = np.array([len(chunk) for chunk in flat])

    def texts(self, card_tokens: np.ndarray) -> np.ndarray:
        """(n, L) card tokens -> (n,) array of str."""
        n = len(card_tokens)
        if n == 0:
            return np.zeros(0, dtype=str)
        chunk_ids = _roles(card_tokens) * self._n_tokens + card_tokens  # (n, L)
        lengths = self._lengths[chunk_ids]
        widths = lengths.max(axis=0)  # (L,) column widths
        columns = np.concatenate([j * self._width + np.arange(w) for j, w in enumerate(widths)])
        chars = np.take(self._chunks, chunk_ids, axis=0).reshape(n, -1)[:, columns]
        short = lengths < widths
        if short.any():
            # A chunk narrower than its column leaves NUL bytes, harmful only before text.
            written_after = np.cumsum(lengths[:, ::-1], axis=1)[:, ::-1] - lengths
            gaps = (short & (written_after > 0)).any(axis=1)
            chars[gaps] = compact(chars[gaps], chars.shape[1], 0)
        # ASCII bytes widened to UCS-4 code points are numpy's str dtype.
        return np.ascontiguousarray(chars, dtype=np.uint32).view(f"U{chars.shape[1]}").ravel()


_MIX_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))
_MIX_FACTORS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = (x ^ (x >> _MIX_SHIFTS[0])) * _MIX_FACTORS[0]
    x = (x ^ (x >> _MIX_SHIFTS[1])) * _MIX_FACTORS[1]
    return x ^ (x >> _MIX_SHIFTS[2])


def position_weights(length: int) -> np.ndarray:
    """(length,) uint64: ``K_i = mix64(i + 1) | 1``, the split hash's weight of position i."""
    return _mix64(np.arange(1, length + 1, dtype=np.uint64)) | np.uint64(1)


def hash_sum(card_tokens: np.ndarray) -> np.ndarray:
    """(n, L) card tokens -> (n,) uint64: ``sum_i t_i * K_i mod 2**64``."""
    weights = position_weights(card_tokens.shape[1])
    return np.einsum("ij,j->i", card_tokens.astype(np.uint64), weights)  # wraps mod 2**64


def is_test_sum(sums: np.ndarray) -> np.ndarray:
    """(n,) uint64 hash sums -> (n,) bool: the query is in the test split."""
    return _mix64(sums) % _DENOMINATOR == 0


def is_test_query(card_tokens: np.ndarray) -> np.ndarray:
    """(n, L) card tokens -> (n,) bool: the query is in the test split (about 10%).

    The split rule: ``mix64(sum_i t_i * K_i mod 2**64) % 10 == 0``, over the query's card
    tokens ``t_i`` (positions from 0), with ``K_i = mix64(i + 1) | 1`` and ``mix64`` the
    splitmix64 finaliser. PAD is 0, so padding never changes a query's split.
    """
    return is_test_sum(hash_sum(card_tokens))
