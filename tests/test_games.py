"""The games: sampled batches against the oracle, tokens, splits, enumeration, statistics."""

from __future__ import annotations

import itertools
import resource
import subprocess
import sys

import numpy as np
import oracle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from set_env import games
from set_env import vocab as vocab_module
from set_env.deck import Deck
from set_env.games import GAMES, UnionGame, make_game
from set_env.query import vocab
from set_env.vocab import is_test_query

DECK_SHAPES = [(3, 3), (4, 3), (2, 5), (3, 4)]  # (n_attributes, n_values)
DECKS = [Deck(a, v) for a, v in DECK_SHAPES]
deck_ids = [f"{a}x{v}" for a, v in DECK_SHAPES]
GAME_NAMES = ("classic", "wildcard", "union", "symdiff", "shatter", "shared")
SPLITS = ("train", "test", None)
TOKEN_MODES = ("card", "attribute")
SAMPLE_SETTINGS = list(itertools.product(SPLITS, (False, True), TOKEN_MODES))

# Token ids as documented in set_env/vocab.py (written out here, not imported).
PAD, UNION, SYMDIFF, SHARED_OPEN, SUBSET_OPEN, SUBSET_CLOSE = range(6)
CARD0 = 6


def test_documented_token_ids():
    assert (vocab_module.PAD, vocab_module.UNION, vocab_module.SYMDIFF) == (0, 1, 2)
    assert (vocab_module.SHARED_OPEN, vocab_module.SUBSET_OPEN) == (3, 4)
    assert (vocab_module.SUBSET_CLOSE, vocab_module.CARD0) == (5, 6)
    assert set(GAMES) == set(GAME_NAMES)


@pytest.mark.parametrize("deck", DECKS, ids=deck_ids)
def test_vocabularies_as_documented(deck):
    a, v = deck.n_attributes, deck.n_values
    specials = ["<pad>", "|", "^", "<", "{", "}"]
    card_vocab = vocab(deck, "card").tokens
    assert card_vocab == specials + [oracle.card_to_text(c) for c in oracle.all_cards(a, v)]
    symbols = "*" + oracle.DIGITS[:v]
    attribute_vocab = vocab(deck, "attribute").tokens
    assert attribute_vocab == specials + [f"{j}:{s}" for j in range(a) for s in symbols]


# ---------------------------------------------------------------- independent decoders


def card_text(deck: Deck, token: int) -> str:
    return oracle.card_to_text(oracle.all_cards(deck.n_attributes, deck.n_values)[token - CARD0])


def render(deck: Deck, row) -> str:
    """Card tokens -> text, following the grammar in vocab.py's docstring."""
    toks = [int(t) for t in row if t != PAD]
    parts, i = [], 0
    while i < len(toks):
        t = toks[i]
        if t == UNION:
            parts.append(" | ")
            i += 1
        elif t == SYMDIFF:
            parts.append(" ^ ")
            i += 1
        elif t == SHARED_OPEN:
            parts.append(f"<{card_text(deck, toks[i + 1])} {card_text(deck, toks[i + 2])}>")
            i += 3
        elif t == SUBSET_OPEN:
            end = toks.index(SUBSET_CLOSE, i)
            parts.append("{" + ",".join(card_text(deck, k) for k in toks[i + 1 : end]) + "}")
            i = end + 1
        else:
            assert t >= CARD0
            parts.append(f"({card_text(deck, t)} {card_text(deck, toks[i + 1])})")
            i += 2
    return "".join(parts)


def attribute_row(deck: Deck, row) -> list[int]:
    """Card tokens -> attribute tokens: specials stay, a card becomes its a tokens
    ``CARD0 + j * (v + 1) + code`` (code: '*' -> 0, value x -> x + 1)."""
    a, v = deck.n_attributes, deck.n_values
    cards = oracle.all_cards(a, v)
    out = []
    for t in (int(t) for t in row if t != PAD):
        if t < CARD0:
            out.append(t)
        else:
            for j, x in enumerate(cards[t - CARD0]):
                out.append(CARD0 + j * (v + 1) + (0 if x is None else x + 1))
    return out


def pad_only_at_end(tokens: np.ndarray) -> bool:
    used = tokens != PAD
    return bool(np.all(used[:, :-1] | ~used[:, 1:]))


def expected_max_len(name: str, deck: Deck, mode: str) -> int:
    a = deck.n_attributes if mode == "attribute" else 1
    cards, specials = {
        "classic": (2, 0),
        "wildcard": (2, 0),
        "union": (16, 7),
        "symdiff": (16, 7),
        "shatter": (deck.n_keys, 2),
        "shared": (2, 1),
    }[name]
    return specials + a * cards


# ---------------------------------------------------------------- sampled batches


def check_batch(name, deck, batch, n, split, tokens):
    a, v = deck.n_attributes, deck.n_values
    game = batch.game
    assert len(batch) == n
    assert batch.positives.shape == (n, deck.n_keys)
    assert batch.positives.dtype == bool
    assert batch.tokens.dtype == np.int64
    assert batch.tokens.shape == (n, game.max_len(tokens))
    assert game.max_len(tokens) == expected_max_len(name, deck, tokens)
    assert pad_only_at_end(batch.tokens)
    assert pad_only_at_end(batch.card_tokens)
    np.testing.assert_array_equal(batch.n_positives, batch.positives.sum(axis=1))
    assert np.all(batch.n_positives > 0)

    # tokens in the requested mode follow from the card tokens
    for row, card_row in zip(batch.tokens, batch.card_tokens, strict=True):
        expected = (
            [int(t) for t in card_row if t != PAD]
            if tokens == "card"
            else attribute_row(deck, card_row)
        )
        assert row.tolist() == expected + [PAD] * (len(row) - len(expected))

    split_flags = is_test_query(batch.card_tokens)
    if split == "test":
        assert split_flags.all()
    elif split == "train":
        assert not split_flags.any()

    texts = batch.texts()
    assert len(texts) == n
    for i, text in enumerate(texts):
        assert render(deck, batch.card_tokens[i]) == text
        terms, ops, canonical = oracle.parse(text, a, v)
        assert canonical, text  # pairs: smaller card text first; subsets ascending
        assert oracle.to_ids(batch.positives[i]) == oracle.evaluate(text, a, v), text
        check_game_shape(name, deck, text, terms, ops)


def check_game_shape(name, deck, text, terms, ops):
    a, v = deck.n_attributes, deck.n_values
    rules_used = {rule for rule, _ in terms}
    if name in ("classic", "wildcard"):
        assert len(terms) == 1 and rules_used == {"pair"} and not ops
        c1, c2 = terms[0][1]
        if name == "classic":
            assert oracle.is_plain(c1) and oracle.is_plain(c2)
            answer = oracle.evaluate(text, a, v)
            differ = sum(x != y for x, y in zip(c1, c2, strict=True))
            assert len(answer) == (v - 2) ** differ
            if v == 3:
                assert len(answer) == 1  # the card completing the SET
        else:
            assert oracle.is_plain(c1) or oracle.is_plain(c2)  # card 1 is plain
    elif name in ("union", "symdiff"):
        assert len(terms) == 8 and rules_used == {"pair"}
        assert all(oracle.is_plain(c1) or oracle.is_plain(c2) for _, (c1, c2) in terms)
        if name == "union":
            assert set(ops) == {"|"}
        else:
            assert set(ops) <= {"|", "^"}
    elif name == "shatter":
        assert len(terms) == 1 and rules_used == {"subset"} and not ops
        keys = [oracle.key_id(c, v) for c in terms[0][1]]
        assert keys == sorted(set(keys))  # strictly ascending
        texts = [oracle.card_to_text(c) for c in terms[0][1]]
        assert texts == sorted(texts)
    elif name == "shared":
        assert len(terms) == 1 and rules_used == {"shared"} and not ops
        c1, c2 = terms[0][1]
        assert oracle.is_plain(c1) and oracle.is_plain(c2) and c1 != c2
        assert any(x == y for x, y in zip(c1, c2, strict=True))


@pytest.mark.parametrize("deck", DECKS, ids=deck_ids)
@pytest.mark.parametrize("name", GAME_NAMES)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 24))
@settings(max_examples=10, deadline=None)
def test_sampled_batches_match_oracle(name, deck, seed, n):
    game = make_game(name, deck)
    rng = np.random.default_rng(seed)
    for split, size_weighted, tokens in SAMPLE_SETTINGS:
        batch = game.sample(n, rng, split=split, size_weighted=size_weighted, tokens=tokens)
        check_batch(name, deck, batch, n, split, tokens)


@given(
    name=st.sampled_from(GAME_NAMES),
    deck=st.sampled_from(DECKS),
    seed=st.integers(0, 2**32 - 1),
    split=st.sampled_from(SPLITS),
    size_weighted=st.booleans(),
    tokens=st.sampled_from(TOKEN_MODES),
    n_pairs=st.integers(1, 4),
)
@settings(max_examples=40, deadline=None)
def test_sampled_batches_random_settings(name, deck, seed, split, size_weighted, tokens, n_pairs):
    takes_pairs = name in ("union", "symdiff")
    game = make_game(name, deck, n_pairs if takes_pairs else None)
    batch = game.sample(16, np.random.default_rng(seed), split, size_weighted, tokens)
    a, v = deck.n_attributes, deck.n_values
    assert batch.tokens.shape == (16, game.max_len(tokens))
    assert pad_only_at_end(batch.tokens)
    for i, text in enumerate(batch.texts()):
        terms, ops, canonical = oracle.parse(text, a, v)
        assert canonical
        assert oracle.to_ids(batch.positives[i]) == oracle.evaluate(text, a, v)
        if takes_pairs:
            assert len(terms) == n_pairs


# ---------------------------------------------------------------- the split


def test_split_fraction_union27():
    game = UnionGame(Deck(3, 3))
    batch = game.sample(20000, np.random.default_rng(12345), split=None)
    assert abs(is_test_query(batch.card_tokens).mean() - 0.10) <= 0.01


@pytest.mark.parametrize("name", GAME_NAMES)
def test_split_is_a_function_of_the_query(name):
    deck = Deck(3, 3)
    game = make_game(name, deck)
    rng = np.random.default_rng(7)
    test = game.sample(200, rng, split="test")
    train = game.sample(200, rng, split="train")
    assert is_test_query(test.card_tokens).all()
    assert not is_test_query(train.card_tokens).any()
    assert not set(test.texts()) & set(train.texts())
    # padding does not change the split
    padded = np.pad(test.card_tokens, ((0, 0), (0, 5)))
    assert is_test_query(padded).all()


# ---------------------------------------------------------------- enumeration


def expected_counts(deck: Deck) -> dict[str, int]:
    """Distinct queries, with K = v**a plain cards and C = (v+1)**a query cards.

    * classic: unordered pairs of plain cards with repeats, K (K + 1) / 2.
    * wildcard: card 1 plain, card 2 any card. Plain-plain pairs as in classic, plus
      K (C - K) pairs of a plain card and a card with a '*' (never the same query twice,
      as exactly one card has a '*'); pair answers are never empty for v >= 3.
      Total K (K + 1) / 2 + K (C - K).
    * shared: unordered distinct plain pairs sharing a value. Each card shares nothing with
      (v - 1)**a cards (itself excluded, as it shares everything with itself), so
      (K (K - 1) - K (v - 1)**a) / 2.
    """
    a, v = deck.n_attributes, deck.n_values
    k, c = v**a, (v + 1) ** a
    return {
        "classic": k * (k + 1) // 2,
        "wildcard": k * (k + 1) // 2 + k * (c - k),
        "shared": (k * (k - 1) - k * (v - 1) ** a) // 2,
    }


def oracle_enumeration(name: str, deck: Deck) -> set[str]:
    a, v = deck.n_attributes, deck.n_values
    plain = sorted(oracle.card_to_text(c) for c in oracle.all_keys(a, v))
    cards = sorted(oracle.card_to_text(c) for c in oracle.all_cards(a, v))
    if name == "classic":
        return {f"({x} {y})" for x, y in itertools.combinations_with_replacement(plain, 2)}
    if name == "wildcard":
        return {"({} {})".format(*sorted((x, y))) for x in plain for y in cards}
    return {
        f"<{x} {y}>"
        for x, y in itertools.combinations(plain, 2)
        if any(p == q for p, q in zip(x, y, strict=True))
    }


def test_enumeration_counts_3x3():
    deck = Deck(3, 3)
    assert expected_counts(deck) == {"classic": 378, "wildcard": 1377, "shared": 243}
    for name, count in expected_counts(deck).items():
        assert len(make_game(name, deck).enumerate()) == count


@pytest.mark.parametrize("deck", DECKS, ids=deck_ids)
@pytest.mark.parametrize("name", ["classic", "wildcard", "shared"])
def test_enumerate(name, deck):
    game = make_game(name, deck)
    everything = game.enumerate()
    texts = everything.texts()
    assert len(texts) == expected_counts(deck)[name]
    assert len(set(texts)) == len(texts)
    assert set(texts) == oracle_enumeration(name, deck)
    np.testing.assert_array_equal(everything.n_positives, everything.positives.sum(axis=1))
    assert np.all(everything.n_positives > 0)
    assert everything.tokens.shape == (len(texts), game.max_len("card"))
    # canonical-token order
    rows = [tuple(r) for r in everything.card_tokens.tolist()]
    assert rows == sorted(rows)

    test, train = game.enumerate(split="test"), game.enumerate(split="train")
    assert is_test_query(test.card_tokens).all()
    assert not is_test_query(train.card_tokens).any()
    assert len(test) + len(train) == len(everything)
    assert set(test.texts()) | set(train.texts()) == set(texts)
    assert not set(test.texts()) & set(train.texts())
    assert 0 < len(test) < len(everything)

    attribute = game.enumerate(tokens="attribute")
    assert attribute.tokens.shape == (len(texts), game.max_len("attribute"))
    np.testing.assert_array_equal(attribute.card_tokens, everything.card_tokens)

    a, v = deck.n_attributes, deck.n_values
    if deck.n_keys <= 27:  # the full oracle check on the small decks
        for i, text in enumerate(texts):
            assert oracle.to_ids(everything.positives[i]) == oracle.evaluate(text, a, v)


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", GAME_NAMES)
@pytest.mark.parametrize("deck", DECKS[:2], ids=deck_ids[:2])
def test_determinism(name, deck):
    game = make_game(name, deck)
    for split, size_weighted, tokens in [("train", False, "card"), (None, True, "attribute")]:
        batches = [
            game.sample(32, np.random.default_rng(seed), split, size_weighted, tokens)
            for seed in (3, 3, 4)
        ]
        for field in ("card_tokens", "positives", "tokens"):
            np.testing.assert_array_equal(getattr(batches[0], field), getattr(batches[1], field))
        assert batches[0].texts() == batches[1].texts()
        assert not np.array_equal(batches[0].card_tokens, batches[2].card_tokens)


# ---------------------------------------------------------------- distributions


def wildcard_size_moments(v: int, a: int) -> tuple[float, float]:
    """E[s], E[s^2] of the wildcard game's answer size under its uniform draw.

    Attributes are independent: card 2's attribute is '*' (prob 1/(v+1), v values allowed),
    equal to card 1's (prob 1/(v+1), 1 value) or another value (prob (v-1)/(v+1), v-2
    values); s is the product over attributes, so both moments are products too.
    """
    p = 1 / (v + 1)
    m1 = p * v + p * 1 + (v - 1) * p * (v - 2)
    m2 = p * v**2 + p * 1 + (v - 1) * p * (v - 2) ** 2
    return m1**a, m2**a


@pytest.mark.parametrize("shape", [(3, 3), (2, 5)])
def test_size_weighted_wildcard_mean(shape):
    a, v = shape
    game = make_game("wildcard", Deck(a, v))
    m1, m2 = wildcard_size_moments(v, a)
    if shape == (3, 3):
        assert (m1, m2) == (pytest.approx(3.375), pytest.approx(27.0))  # mean weighted: 8
    rng = np.random.default_rng(2024)
    uniform = game.sample(20000, rng, split=None).n_positives.mean()
    weighted = game.sample(20000, rng, split=None, size_weighted=True).n_positives.mean()
    assert uniform == pytest.approx(m1, rel=0.03)
    assert weighted == pytest.approx(m2 / m1, rel=0.03)


def test_size_weighted_classic_5_values():
    # plain pairs on v = 5: per attribute s = 1 (equal, prob 1/5) or 3 (prob 4/5)
    game = make_game("classic", Deck(2, 5))
    m1, m2 = (1 / 5 + 3 * 4 / 5) ** 2, (1 / 5 + 9 * 4 / 5) ** 2
    weighted = game.sample(20000, np.random.default_rng(5), None, True).n_positives.mean()
    assert weighted == pytest.approx(m2 / m1, rel=0.03)


def test_symdiff_operator_frequencies():
    batch = make_game("symdiff", Deck(3, 3)).sample(4000, np.random.default_rng(11), None)
    ops = batch.card_tokens[:, 2::3]
    assert set(np.unique(ops).tolist()) == {UNION, SYMDIFF}
    assert abs((ops == SYMDIFF).mean() - 0.5) < 0.02


def test_wildcard_card2_attribute_distribution():
    # each attribute of card 2 is uniform over the v values and '*': a '*' with prob 1/(v+1)
    deck = Deck(3, 3)
    batch = make_game("wildcard", deck).sample(20000, np.random.default_rng(8), None)
    values = deck.card_values[batch.card_tokens - CARD0]  # (n, 2, a)
    assert not ((values[:, 0] < 0).any(axis=1) & (values[:, 1] < 0).any(axis=1)).any()
    assert np.allclose((values < 0).any(axis=1).mean(axis=0), 0.25, atol=0.015)


def test_classic_repeats_allowed():
    # ordered uniform draws: a repeated card with prob 1 / K
    deck = Deck(3, 3)
    batch = make_game("classic", deck).sample(20000, np.random.default_rng(9), None)
    repeats = (batch.card_tokens[:, 0] == batch.card_tokens[:, 1]).mean()
    assert abs(repeats - 1 / 27) < 0.006


def test_shatter_key_frequencies():
    batch = make_game("shatter", Deck(3, 3)).sample(4000, np.random.default_rng(10), None)
    assert np.allclose(batch.positives.mean(axis=0), 0.5, atol=0.04)


def test_shared_covers_every_pair():
    deck = Deck(3, 3)
    batch = make_game("shared", deck).sample(10000, np.random.default_rng(12), None)
    assert set(batch.texts()) == oracle_enumeration("shared", deck)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("shape", [(3, 2), (0, 3), (3, 37), (9, 3), (-1, 3), (3, 1)])
def test_bad_decks(shape):
    with pytest.raises(ValueError):
        Deck(*shape)


def test_largest_decks_allowed():
    assert Deck(6, 4).n_keys == 4096
    assert Deck(1, 36).n_keys == 36
    with pytest.raises(ValueError):
        Deck(2, 65)


def test_bad_game_arguments():
    deck = Deck(3, 3)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        make_game("nope", deck)
    with pytest.raises(ValueError):
        UnionGame(deck, n_pairs=0)
    with pytest.raises(ValueError):
        make_game("union", deck, n_pairs=-2)
    with pytest.raises(ValueError):
        make_game("classic", deck, n_pairs=8)
    for name in ("wildcard", "shatter", "shared"):
        with pytest.raises(ValueError):
            make_game(name, deck, n_pairs=2)
    game = make_game("union", deck)
    assert game.n_pairs == 8
    with pytest.raises(ValueError):
        game.sample(4, rng, split="val")
    with pytest.raises(ValueError):
        game.sample(4, rng, tokens="word")
    with pytest.raises(ValueError):
        game.sample(-1, rng)
    for name in ("union", "symdiff", "shatter"):
        with pytest.raises(ValueError):
            make_game(name, deck).enumerate()
    classic = make_game("classic", deck)
    with pytest.raises(ValueError):
        classic.enumerate(split="val")
    with pytest.raises(ValueError):
        classic.enumerate(tokens="word")


@pytest.mark.parametrize("name", GAME_NAMES)
def test_sample_zero_queries(name):
    # sample() documents n >= 0; n == 0 should give an empty batch.
    game = make_game(name, Deck(3, 3))
    batch = game.sample(0, np.random.default_rng(0))
    assert len(batch) == 0
    assert batch.tokens.shape == (0, game.max_len("card"))


def test_shared_game_needs_two_attributes():
    # Two distinct 1-attribute cards never share a value: no shared query has an answer.
    with pytest.raises(ValueError, match="n_attributes >= 2"):
        make_game("shared", Deck(1, 3))


def test_sampling_an_empty_split_raises_instead_of_hanging(monkeypatch):
    # Pretend every query is a training query: the test split is then empty.
    monkeypatch.setattr(games, "is_test_sum", lambda sums: np.zeros(len(sums), dtype=bool))
    with pytest.raises(ValueError, match="has no queries"):
        make_game("classic", Deck(3, 3)).sample(1, np.random.default_rng(0), split="test")


@pytest.mark.parametrize("name", GAME_NAMES)
@pytest.mark.parametrize("shape", [(6, 4)], ids=["6x4"])
def test_large_decks_without_lookup_tables(name, shape):
    # Decks this size skip some or all of the lookup tables (pair answers, pair draws),
    # so the computed paths are checked against the oracle too.
    deck = Deck(*shape)
    game = make_game(name, deck)
    rng = np.random.default_rng(sum(shape))
    for split, tokens in [(None, "card"), ("test", "attribute")]:
        batch = game.sample(3, rng, split=split, tokens=tokens)
        check_batch(name, deck, batch, 3, split, tokens)


_SAMPLE_SCRIPT = """
import numpy as np
from set_env.deck import Deck
from set_env.games import make_game
make_game({name!r}, Deck({a}, {v})).sample(3, np.random.default_rng(0), split=None)
"""


def _limit_memory():
    limit = 3 << 30  # 3 GiB of address space: sampling 3 queries needs a few MiB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.parametrize("name", ["classic", "wildcard"])
def test_sampling_a_few_queries_fits_in_memory(name):
    # Deck(5, 4) is a valid deck (1024 keys <= 4096). Run in a child process under an
    # address-space limit, so the failure is a MemoryError rather than the OOM killer.
    result = subprocess.run(
        [sys.executable, "-c", _SAMPLE_SCRIPT.format(name=name, a=5, v=4)],
        preexec_fn=_limit_memory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-500:]
