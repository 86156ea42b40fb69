"""The rules and the deck against the brute-force oracle in ``tests/oracle.py``."""

from __future__ import annotations

import itertools

import numpy as np
import oracle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from set_env import rules
from set_env.deck import Deck

DECK_SHAPES = [(3, 3), (4, 3), (2, 5), (3, 4)]  # (n_attributes, n_values)
DECKS = [Deck(a, v) for a, v in DECK_SHAPES]
deck_ids = [f"{a}x{v}" for a, v in DECK_SHAPES]
# Decks whose card texts use letters too (base-36 digits past 9), for the invariants.
INVARIANT_DECKS = [*DECKS, Deck(2, 12), Deck(1, 36)]
invariant_ids = [*deck_ids, "2x12", "1x36"]


@st.composite
def cards_of(draw, plain=False, size=8):
    """A deck and ``size`` pairs of card ids (key ids where ``plain``)."""
    deck = draw(st.sampled_from(DECKS))
    top = deck.n_keys if plain else deck.n_cards
    ids = st.integers(0, top - 1)
    first = draw(st.lists(ids, min_size=1, max_size=size))
    second = draw(st.lists(ids, min_size=len(first), max_size=len(first)))
    return deck, np.array(first, dtype=np.int64), np.array(second, dtype=np.int64)


def oracle_card(deck: Deck, card_id: int) -> tuple:
    return oracle.all_cards(deck.n_attributes, deck.n_values)[card_id]


# ---------------------------------------------------------------- the deck


@pytest.mark.parametrize("deck", INVARIANT_DECKS, ids=invariant_ids)
def test_deck_sizes_and_key_ids(deck):
    a, v = deck.n_attributes, deck.n_values
    assert deck.n_keys == v**a
    assert deck.n_cards == (v + 1) ** a
    keys = oracle.all_keys(a, v)  # itertools.product order == base-v order
    assert [oracle.key_id(k, v) for k in keys] == list(range(deck.n_keys))
    assert deck.key_values.shape == (deck.n_keys, a)
    assert [tuple(int(x) for x in row) for row in deck.key_values] == list(keys)
    for key in range(deck.n_keys):
        assert oracle.key_card(key, a, v) == keys[key]
        assert deck.key_text(key) == oracle.card_to_text(keys[key])


@pytest.mark.parametrize("deck", INVARIANT_DECKS, ids=invariant_ids)
def test_deck_card_ids_sort_like_texts(deck):
    a, v = deck.n_attributes, deck.n_values
    cards = oracle.all_cards(a, v)
    texts = [oracle.card_to_text(c) for c in cards]
    assert list(deck.card_texts) == texts
    assert texts == sorted(texts)  # card-id order is text order
    assert len(set(texts)) == deck.n_cards
    assert [oracle.card_code(c, v) for c in cards] == list(range(deck.n_cards))
    expected_values = [[-1 if x is None else x for x in c] for c in cards]
    assert deck.card_values.tolist() == expected_values
    for card_id, text in enumerate(texts):
        assert deck.card_id(text) == card_id
        assert oracle.card_from_text(text, a, v) == cards[card_id]


@pytest.mark.parametrize("deck", INVARIANT_DECKS, ids=invariant_ids)
def test_deck_key_to_card_and_back(deck):
    a, v = deck.n_attributes, deck.n_values
    key_to_card, card_to_key = deck.key_to_card, deck.card_to_key
    assert key_to_card.shape == (deck.n_keys,)
    assert card_to_key.shape == (deck.n_cards,)
    np.testing.assert_array_equal(card_to_key[key_to_card], np.arange(deck.n_keys))
    assert np.all(np.diff(key_to_card) > 0)  # keys ascending -> card ids ascending
    for card_id, card in enumerate(oracle.all_cards(a, v)):
        if oracle.is_plain(card):
            key = oracle.key_id(card, v)
            assert card_to_key[card_id] == key
            assert key_to_card[key] == card_id
        else:
            assert card_to_key[card_id] == -1
    assert (card_to_key >= 0).sum() == deck.n_keys


@pytest.mark.parametrize("deck", DECKS, ids=deck_ids)
@pytest.mark.parametrize("text", ["", "0", "0000000", "Z12", " 01", "01 "])
def test_deck_card_id_rejects(deck, text):
    if len(text) == deck.n_attributes and all(c in "*0123456789" for c in text):
        pytest.skip("a valid card on this deck")
    with pytest.raises(ValueError):
        deck.card_id(text)


# ---------------------------------------------------------------- pack / unpack


@given(
    n_keys=st.sampled_from([1, 7, 8, 25, 27, 63, 64, 65, 81, 128, 130]),
    rows=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_pack_unpack_round_trip(n_keys, rows, seed):
    rng = np.random.default_rng(seed)
    answer = rng.random((rows, n_keys)) < rng.random()
    packed = rules.pack(answer)
    n_words = -(-n_keys // 64)
    assert packed.shape == (rows, n_words)
    assert packed.dtype == np.uint64
    # bit k % 64 of word k // 64 <=> key k
    for r in range(rows):
        words = [0] * n_words
        for k in range(n_keys):
            if answer[r, k]:
                words[k // 64] |= 1 << (k % 64)
        assert [int(w) for w in packed[r]] == words
    back = rules.unpack(packed, n_keys)
    assert back.dtype == bool
    np.testing.assert_array_equal(back, answer)
    # and the other way: random words, unpacked, packed again, lose only the spare bits
    words = rng.integers(0, 1 << 64, size=(rows, n_words), dtype=np.uint64)
    mask = np.array(
        [sum(1 << b for b in range(64) if 64 * w + b < n_keys) for w in range(n_words)],
        dtype=np.uint64,
    )
    np.testing.assert_array_equal(rules.pack(rules.unpack(words, n_keys)), words & mask)


def test_pack_one_dimensional():
    answer = np.zeros(81, dtype=bool)
    answer[[0, 63, 64, 80]] = True
    packed = rules.pack(answer)
    assert packed.shape == (2,)
    assert int(packed[0]) == 1 | (1 << 63)
    assert int(packed[1]) == 1 | (1 << 16)
    np.testing.assert_array_equal(rules.unpack(packed, 81), answer)
    assert rules.n_words(Deck(4, 3)) == 2
    np.testing.assert_array_equal(rules.packed_keys(Deck(4, 3), np.array([0, 63, 64, 80])), packed)


# ---------------------------------------------------------------- the pair rule


def check_pair_rows(deck, first, second):
    a, v = deck.n_attributes, deck.n_values
    direct = rules.pair_answer(deck, first, second)
    packed = rules.packed_pair_answer(deck, first, second)
    assert direct.shape == (len(first), deck.n_keys)
    assert packed.shape == (len(first), rules.n_words(deck))
    via_table = rules.unpack(packed, deck.n_keys)
    for i, (c1, c2) in enumerate(zip(first.tolist(), second.tolist(), strict=True)):
        expected = oracle.pair_rule(a, v, oracle_card(deck, c1), oracle_card(deck, c2))
        assert oracle.to_ids(direct[i]) == expected, (c1, c2)
        assert oracle.to_ids(via_table[i]) == expected, (c1, c2)
        # the pair rule is symmetric
        assert oracle.pair_rule(a, v, oracle_card(deck, c2), oracle_card(deck, c1)) == expected


@given(cards_of())
@settings(max_examples=50, deadline=None)
def test_pair_answer_matches_oracle(drawn):
    check_pair_rows(*drawn)


@given(cards_of(plain=True))
@settings(max_examples=25, deadline=None)
def test_pair_answer_plain_cards(drawn):
    deck, first, second = drawn
    check_pair_rows(deck, deck.key_to_card[first], deck.key_to_card[second])
    # plain pairs: (v - 2) ** (attributes that differ) keys; exactly one on v = 3
    answer = rules.pair_answer(deck, deck.key_to_card[first], deck.key_to_card[second])
    differ = (deck.key_values[first] != deck.key_values[second]).sum(axis=1)
    np.testing.assert_array_equal(answer.sum(axis=1), (deck.n_values - 2) ** differ)


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=5, deadline=None)
def test_pair_answer_scalar_and_large_deck(seed):
    # Deck(6, 4) has 4096 keys: too large for the lookup table, so packing is computed.
    deck = Deck(6, 4)
    rng = np.random.default_rng(seed)
    first, second = rng.integers(deck.n_cards, size=(2, 3))
    check_pair_rows(deck, first, second)
    one = rules.pair_answer(deck, np.int64(first[0]), np.int64(second[0]))
    assert one.shape == (deck.n_keys,)


def test_pair_table_exhaustive_3x3():
    deck = Deck(3, 3)
    a, v = 3, 3
    cards = np.arange(deck.n_cards)
    first, second = (g.ravel() for g in np.meshgrid(cards, cards, indexing="ij"))
    direct = rules.pair_answer(deck, first, second)
    via_table = rules.unpack(rules.packed_pair_answer(deck, first, second), deck.n_keys)
    all_cards = oracle.all_cards(a, v)
    for i, (c1, c2) in enumerate(zip(first.tolist(), second.tolist(), strict=True)):
        expected = oracle.pair_rule(a, v, all_cards[c1], all_cards[c2])
        assert oracle.to_ids(direct[i]) == expected
        assert oracle.to_ids(via_table[i]) == expected
    # on v = 3 an answer is a sub-cube: 3 ** (attributes with a '*'), never empty
    n_wild = (deck.card_values[first] < 0) | (deck.card_values[second] < 0)
    np.testing.assert_array_equal(direct.sum(axis=1), 3 ** n_wild.sum(axis=1))


# ---------------------------------------------------------------- the shared rule


@given(cards_of(plain=True))
@settings(max_examples=50, deadline=None)
def test_shared_answer_matches_oracle(drawn):
    deck, first, second = drawn
    distinct = first != second
    first, second = first[distinct], second[distinct]
    a, v = deck.n_attributes, deck.n_values
    direct = rules.shared_answer(deck, first, second)
    via_table = rules.unpack(rules.packed_shared_answer(deck, first, second), deck.n_keys)
    for i, (k1, k2) in enumerate(zip(first.tolist(), second.tolist(), strict=True)):
        c1, c2 = oracle.key_card(k1, a, v), oracle.key_card(k2, a, v)
        expected = oracle.shared_rule(a, v, c1, c2)
        assert oracle.to_ids(direct[i]) == expected
        assert oracle.to_ids(via_table[i]) == expected
        shares = any(x == y for x, y in zip(c1, c2, strict=True))
        assert bool(expected) == shares  # a pair sharing nothing has no answer
        # every key in the answer shares a value with both cards
        for k in expected:
            card = oracle.key_card(k, a, v)
            assert any(card[j] == c1[j] == c2[j] for j in range(a))


def test_shared_exhaustive_3x3():
    deck = Deck(3, 3)
    keys = np.arange(deck.n_keys)
    first, second = (g.ravel() for g in np.meshgrid(keys, keys, indexing="ij"))
    direct = rules.shared_answer(deck, first, second)
    for i, (k1, k2) in enumerate(itertools.product(range(27), repeat=2)):
        if k1 == k2:
            continue
        c1, c2 = oracle.key_card(k1, 3, 3), oracle.key_card(k2, 3, 3)
        assert oracle.to_ids(direct[i]) == oracle.shared_rule(3, 3, c1, c2)


def test_pair_rule_with_letter_values():
    deck = Deck(2, 12)
    rng = np.random.default_rng(0)
    first, second = rng.integers(deck.n_cards, size=(2, 200))
    check_pair_rows(deck, first, second)
    keys = rng.integers(deck.n_keys, size=(2, 200))
    direct = rules.shared_answer(deck, keys[0], keys[1])
    for i, (k1, k2) in enumerate(zip(*keys.tolist(), strict=True)):
        c1, c2 = oracle.key_card(k1, 2, 12), oracle.key_card(k2, 2, 12)
        if c1 != c2:
            assert oracle.to_ids(direct[i]) == oracle.shared_rule(2, 12, c1, c2)
