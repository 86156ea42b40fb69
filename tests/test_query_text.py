"""Query texts: round trips through ``parse_query`` and rejection of malformed text."""

from __future__ import annotations

import random

import numpy as np
import oracle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from set_env.deck import Deck
from set_env.games import make_game
from set_env.query import Query, parse_query
from set_env.vocab import PAD, is_test_query

DECK_SHAPES = [(3, 3), (4, 3), (2, 5), (3, 4)]  # (n_attributes, n_values)
DECKS = [Deck(a, v) for a, v in DECK_SHAPES]
GAME_NAMES = ("classic", "wildcard", "union", "symdiff", "shatter", "shared")
D33 = Deck(3, 3)


def unpadded(row: np.ndarray) -> list[int]:
    return [int(t) for t in row if t != PAD]


def render(terms, ops) -> str:
    """Oracle terms and operators -> text, in the order given (canonical or not)."""
    parts = []
    for i, (rule, cards) in enumerate(terms):
        if i:
            parts.append(f" {ops[i - 1]} ")
        texts = [oracle.card_to_text(c) for c in cards]
        if rule == "pair":
            parts.append(f"({texts[0]} {texts[1]})")
        elif rule == "shared":
            parts.append(f"<{texts[0]} {texts[1]}>")
        else:
            parts.append("{" + ",".join(texts) + "}")
    return "".join(parts)


def check_against_oracle(text: str, deck: Deck) -> Query | None:
    """Either both parsers accept ``text`` with the same answer, or the library raises
    ValueError (and never another exception) where the oracle rejects it."""
    a, v = deck.n_attributes, deck.n_values
    try:
        expected = oracle.evaluate(text, a, v)
    except oracle.OracleError:
        with pytest.raises(ValueError):
            parse_query(text, deck)
        return None
    query = parse_query(text, deck)
    assert oracle.to_ids(query.positives) == expected, text
    assert oracle.is_canonical(query.text, a, v)
    assert oracle.evaluate(query.text, a, v) == expected
    if oracle.is_canonical(text, a, v):
        assert query.text == text
    return query


# ---------------------------------------------------------------- round trips


@given(
    name=st.sampled_from(GAME_NAMES),
    deck=st.sampled_from(DECKS),
    seed=st.integers(0, 2**32 - 1),
    split=st.sampled_from(("train", "test", None)),
    size_weighted=st.booleans(),
)
@settings(max_examples=50, deadline=None)
def test_sampled_queries_round_trip(name, deck, seed, split, size_weighted):
    game = make_game(name, deck)
    card = game.sample(8, np.random.default_rng(seed), split, size_weighted, "card")
    attribute = game.sample(8, np.random.default_rng(seed), split, size_weighted, "attribute")
    np.testing.assert_array_equal(card.card_tokens, attribute.card_tokens)
    for i, text in enumerate(card.texts()):
        query = parse_query(text, deck)
        assert query.text == text
        np.testing.assert_array_equal(query.positives, card.positives[i])
        assert query.n_positives == int(card.positives[i].sum())
        assert query.tokens("card").tolist() == unpadded(card.card_tokens[i])
        assert query.tokens("card").tolist() == unpadded(card.tokens[i])
        assert query.tokens("attribute").tolist() == unpadded(attribute.tokens[i])
        assert query.card_tokens.tolist() == unpadded(card.card_tokens[i])
        assert query == card.query(i)
        assert card.query(i).text == text
        assert query.is_test == bool(is_test_query(card.card_tokens[i : i + 1])[0])
        if split is not None:
            assert query.is_test == (split == "test")
        check_against_oracle(text, deck)


@given(
    name=st.sampled_from(GAME_NAMES),
    deck=st.sampled_from(DECKS),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_swapped_pairs_parse_to_the_same_query(name, deck, seed):
    a, v = deck.n_attributes, deck.n_values
    shuffle = random.Random(seed)
    batch = make_game(name, deck).sample(4, np.random.default_rng(seed), None)
    for text in batch.texts():
        terms, ops, _ = oracle.parse(text, a, v)
        swapped = render([(rule, tuple(reversed(cards))) for rule, cards in terms], ops)
        shuffled = render(
            [(rule, tuple(shuffle.sample(cards, len(cards)))) for rule, cards in terms], ops
        )
        canonical = parse_query(text, deck)
        for variant in (swapped, shuffled):
            query = parse_query(variant, deck)
            assert query == canonical
            assert query.text == text
            np.testing.assert_array_equal(query.positives, canonical.positives)
            assert query.is_test == canonical.is_test


def test_mixed_operator_example():
    text = "(0*2 112) | (0*1 201) ^ (120 22*)"
    query = parse_query(text, D33)
    assert query.text == text
    assert query.ops == ("|", "^")
    assert oracle.to_ids(query.positives) == oracle.evaluate(text, 3, 3)
    # left to right: ((0*2 112) | (0*1 201)) ^ (120 22*)
    first = oracle.evaluate("(0*2 112)", 3, 3) | oracle.evaluate("(0*1 201)", 3, 3)
    assert oracle.evaluate(text, 3, 3) == first ^ oracle.evaluate("(120 22*)", 3, 3)
    swapped = parse_query("(112 0*2) | (201 0*1) ^ (22* 120)", D33)
    assert swapped == query and swapped.text == text


@pytest.mark.parametrize(
    "text",
    [
        "{002,000,001}",
        "<111 000>",
        "{000} | (012 112) ^ <000 011>",
        "(*** ***)",
        "(000 000)",
        "<000 011> ^ <000 011>",
    ],
)
def test_other_well_formed_texts(text):
    query = check_against_oracle(text, D33)
    assert query is not None
    assert parse_query(query.text, D33) == query
    np.testing.assert_array_equal(
        Query.from_card_tokens(D33, query.card_tokens).positives, query.positives
    )


# ---------------------------------------------------------------- malformed texts


@pytest.mark.parametrize(
    "text",
    [
        "",
        "(00 12)",
        "(012 112",
        "(012 112) | ",
        "(012 112) & (000 111)",
        "{}",
        "{012,012}",
        "<012 012>",
        "<0*2 012>",
        "(01z 012)",
        "(012  112)",
        " (012 112)",
        "(012 112) ",
        "(012 112)|(000 111)",
        "(012 112) (000 111)",
        "(012 112) || (000 111)",
        "(012,112)",
        "(012 112 000)",
        "(012)",
        "{0*1}",
        "{012,}",
        "{,012}",
        "{012 112}",
        "<012 112",
        "[012 112]",
        "(012 113)",
        "(012 11A)",
        "(0122 112)",
        "(012\t112)",
        "(012 112)\n",
    ],
)
def test_malformed_texts_raise_value_error(text):
    with pytest.raises(oracle.OracleError):
        oracle.evaluate(text, 3, 3)
    with pytest.raises(ValueError):
        parse_query(text, D33)


@pytest.mark.parametrize("value", [None, 12, b"(012 112)", ["(012 112)"]])
def test_non_text_raises_value_error(value):
    with pytest.raises(ValueError):
        parse_query(value, D33)


QUERY_ALPHABET = "()<>{}*, |^&0123abz\t"


@given(text=st.text(alphabet=QUERY_ALPHABET, max_size=30), deck=st.sampled_from(DECKS))
@settings(max_examples=50, deadline=None)
def test_random_strings_raise_value_error_or_agree(text, deck):
    check_against_oracle(text, deck)


@given(text=st.text(max_size=20))
@settings(max_examples=25, deadline=None)
def test_arbitrary_unicode_raises_value_error_or_agrees(text):
    check_against_oracle(text, D33)


EDITS = st.tuples(
    st.sampled_from(("delete", "insert", "replace", "swap")),
    st.integers(0, 10**6),
    st.sampled_from(QUERY_ALPHABET),
)


@given(
    name=st.sampled_from(GAME_NAMES),
    deck=st.sampled_from(DECKS[:2]),
    seed=st.integers(0, 2**32 - 1),
    edits=st.lists(EDITS, min_size=1, max_size=3),
)
@settings(max_examples=50, deadline=None)
def test_mutated_texts_raise_value_error_or_agree(name, deck, seed, edits):
    """Near-valid texts: one to three character edits of a sampled canonical text."""
    game = make_game(name, deck, 2 if name in ("union", "symdiff") else None)
    text = game.sample(1, np.random.default_rng(seed), None).texts()[0]
    for kind, where, char in edits:
        i = where % (len(text) + 1)
        if kind == "delete":
            text = text[:i] + text[i + 1 :]
        elif kind == "insert":
            text = text[:i] + char + text[i:]
        elif kind == "replace":
            text = text[:i] + char + text[i + 1 :]
        elif len(text) >= 2:
            i = min(i, len(text) - 2)
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    check_against_oracle(text, deck)
