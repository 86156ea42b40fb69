"""The rules as pure, vectorised functions, and answer sets packed into 64-bit words.

An answer is a set of keys. In bulk it is held packed: ``(..., n_words)`` uint64 with bit
``k % 64`` of word ``k // 64`` set when key ``k`` is in it, so union is ``|`` and symmetric
difference is ``^``. ``unpack`` turns it into a ``(..., n_keys)`` bool array.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from set_env.deck import Deck

# Lookup tables are built when they hold at most this many (pair, key) cells.
_TABLE_CELLS = 1 << 25


def n_words(deck: Deck) -> int:
    return -(-deck.n_keys // 64)


def pack(answer: np.ndarray) -> np.ndarray:
    """(..., n_keys) bool -> (..., n_words) uint64."""
    n_keys = answer.shape[-1]
    width = -(-n_keys // 64) * 64
    padded = np.zeros(answer.shape[:-1] + (width,), dtype=bool)
    padded[..., :n_keys] = answer
    packed = np.packbits(padded, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8")


def unpack(packed: np.ndarray, n_keys: int) -> np.ndarray:
    """(..., n_words) uint64 -> (..., n_keys) bool."""
    as_bytes = np.ascontiguousarray(packed).astype("<u8", copy=False).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, count=n_keys, bitorder="little")
    return bits.view(bool)


def pair_answer(deck: Deck, card1: np.ndarray, card2: np.ndarray) -> np.ndarray:
    """The pair rule: (...) card ids, (...) card ids -> (..., n_keys) bool.

    Attribute by attribute, key k is allowed when (card1, card2, k) are all the same or all
    different: a ``*`` in either card allows any value, equal values allow that value,
    different values allow every value different from both. The answer is the product.
    """
    v1 = deck.card_values[card1][..., None, :]  # (..., 1, a)
    v2 = deck.card_values[card2][..., None, :]
    keys = deck.key_values  # (n_keys, a)
    wild = (v1 < 0) | (v2 < 0)
    same = (v1 == v2) & (keys == v1)
    different = (v1 != v2) & (keys != v1) & (keys != v2)
    return (wild | same | different).all(axis=-1)


def shared_answer(deck: Deck, key1: np.ndarray, key2: np.ndarray) -> np.ndarray:
    """The shared rule: (...) key ids, (...) key ids -> (..., n_keys) bool.

    Key k is in the answer when it has at least one of the values the two cards share
    (same attribute, same value). Cards sharing nothing have an empty answer.
    """
    v1 = deck.key_values[key1][..., None, :]  # (..., 1, a)
    v2 = deck.key_values[key2][..., None, :]
    return ((v1 == v2) & (deck.key_values == v1)).any(axis=-1)


@lru_cache(maxsize=16)
def _pair_table(deck: Deck) -> np.ndarray | None:
    """(n_cards * n_cards, n_words) packed pair answers, or None for decks too large."""
    if deck.n_cards**2 * deck.n_keys > _TABLE_CELLS:
        return None
    cards = np.arange(deck.n_cards)
    return pack(pair_answer(deck, cards[:, None], cards[None, :])).reshape(-1, n_words(deck))


@lru_cache(maxsize=16)
def _shared_table(deck: Deck) -> np.ndarray | None:
    if deck.n_keys**3 > _TABLE_CELLS:
        return None
    keys = np.arange(deck.n_keys)
    return pack(shared_answer(deck, keys[:, None], keys[None, :])).reshape(-1, n_words(deck))


def packed_pair_answer(deck: Deck, card1: np.ndarray, card2: np.ndarray) -> np.ndarray:
    """``pack(pair_answer(...))``, through a lookup table where the deck is small."""
    table = _pair_table(deck)
    if table is None:
        return pack(pair_answer(deck, card1, card2))
    return np.take(table, card1 * deck.n_cards + card2, axis=0)


def packed_shared_answer(deck: Deck, key1: np.ndarray, key2: np.ndarray) -> np.ndarray:
    """``pack(shared_answer(...))``, through a lookup table where the deck is small."""
    table = _shared_table(deck)
    if table is None:
        return pack(shared_answer(deck, key1, key2))
    return np.take(table, key1 * deck.n_keys + key2, axis=0)


def packed_keys(deck: Deck, keys: np.ndarray) -> np.ndarray:
    """(m,) key ids -> (n_words,) packed set of those keys."""
    answer = np.zeros(deck.n_keys, dtype=bool)
    answer[keys] = True
    return pack(answer)
