"""The games: what a query looks like, how it is drawn, and the batched generator.

Each game draws candidate queries as rows of card tokens with their packed answers, all in
vectorised numpy; ``Game.sample`` keeps the candidates that fit the split (and the size
weighting) until it has ``n``, and ``Game.answer_chunks`` keeps their packed answers alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from set_env import rules
from set_env.checks import check_choice, excerpt, is_int
from set_env.deck import Deck
from set_env.query import Query, text_formatter, vocab
from set_env.vocab import (
    CARD0,
    PAD,
    SHARED_OPEN,
    SUBSET_CLOSE,
    SUBSET_OPEN,
    SYMDIFF,
    TOKEN_MODES,
    UNION,
    compact,
    hash_sum,
    is_test_sum,
    position_weights,
)

# Bump whenever the sampling code changes which queries a seed draws: evaluation-set caches
# are keyed by it, and a stale cache would otherwise serve queries the code no longer draws.
GENERATOR_VERSION = 1

SPLITS = ("train", "test", None)
MAX_PAIRS = 256  # pairs in a union or symdiff query: 3 * 256 - 1 tokens is already long
# Cells (query x token or key) one sample() returns, or one enumerate() computes (query x
# key x attribute): 2**28 bound the arrays to a few GiB, and refuse before any work.
MAX_CELLS = 1 << 28
_MAX_DRAW = 1 << 13  # candidates drawn at once: keeps the work in cache
_CHUNK_CELLS = 1 << 26  # bound on (candidate, card, key, attribute) cells computed at once
_MAX_TABLE = 1 << 22  # entries of a game's lookup table of pair draws
_GIVE_UP = 1 << 22  # candidates drawn with none kept before sample() calls a split empty


@dataclass(frozen=True)
class QueryBatch:
    """A batch of queries: ``tokens`` (n, max_len) int64 in the requested token mode,
    ``positives`` (n, n_keys) bool, ``n_positives`` (n,) int64, and ``card_tokens`` (n, L)
    the canonical card form."""

    game: Game
    card_tokens: np.ndarray
    positives: np.ndarray
    n_positives: np.ndarray
    tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.positives)

    def texts(self) -> list[str]:
        """The canonical query texts."""
        return self.text_array().tolist()

    def text_array(self) -> np.ndarray:
        return text_formatter(self.game.deck).texts(self.card_tokens)

    def query(self, i: int) -> Query:
        return Query.from_card_tokens(self.game.deck, self.card_tokens[i])


class Candidates(NamedTuple):
    """Candidate queries: (n, n_words) packed answers, (n,) split hash sums
    (``vocab.hash_sum`` of their card tokens), and ``kept_card_tokens(keep)``, which gives
    the card tokens of the candidates a boolean mask keeps: games that can build rows later
    build only the kept ones."""

    answers: np.ndarray
    hash_sums: np.ndarray
    kept_card_tokens: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def of(cls, card_tokens: np.ndarray, answers: np.ndarray) -> Candidates:
        return cls(answers, hash_sum(card_tokens), card_tokens.__getitem__)


class Game(ABC):
    """A game on a deck. Subclasses set ``name`` and implement ``_draw``."""

    name: str = ""
    takes_pairs = False
    finite = False
    token_modes = ("card", "attribute")  # pair games add "pair"

    def __init__(self, deck: Deck, n_pairs: int | None = None):
        if n_pairs is not None and not self.takes_pairs:
            raise ValueError(
                f"n_pairs applies to the union and symdiff games only, not {self.name!r}"
            )
        self.deck = deck

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.deck})"

    @property
    @abstractmethod
    def layout(self) -> tuple[int, int]:
        """(card slots, special-token slots) of the longest query."""

    @property
    def max_answer_size(self) -> int:
        """An upper bound on answer sizes, the scale of size-weighted rejection."""
        return self.deck.n_keys

    def max_len(self, tokens: str = "card") -> int:
        """Length of the padded token rows in a token mode."""
        check_choice("tokens", tokens, TOKEN_MODES)
        if tokens not in self.token_modes:
            raise ValueError(
                f"tokens={tokens!r}: the {self.name} game has no pairs; its token modes are "
                f"{self.token_modes}"
            )
        return vocab(self.deck, tokens).width(*self.layout)

    @abstractmethod
    def _draw(self, n: int, rng: np.random.Generator) -> Candidates:
        """About ``n`` candidate queries."""

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        split: str | None = "train",
        size_weighted: bool = False,
        tokens: str = "card",
    ) -> QueryBatch:
        """Draw ``n`` queries of ``split`` (``"train"``, ``"test"`` or None for all).

        With ``size_weighted`` a query's probability is proportional to its answer size,
        which makes (query, positive key) pairs uniform: the study's training distribution.
        Queries with an empty answer are always redrawn. ``n`` is at most
        ``max_sample(tokens)``: ``MAX_CELLS`` bounds the output, and a larger ``n`` is a
        ``ValueError`` before any work.
        """
        n = _check_draw(n, rng, split)
        self.max_len(tokens)  # validates the token mode before any work
        if not isinstance(size_weighted, (bool, np.bool_)):
            raise ValueError(f"size_weighted must be a bool, got {excerpt(size_weighted)}")
        if n > self.max_sample(tokens):
            raise ValueError(
                f"n={excerpt(n)} queries of {self!r} need n * (max_len + n_keys) = "
                f"{excerpt(n * self._cells_per_query(tokens))} cells, more than "
                f"MAX_CELLS = {MAX_CELLS}: n must be at most {self.max_sample(tokens)} "
                f"for this game and tokens={tokens!r}"
            )
        chunk = self._chunk_size
        kept_tokens, kept_answers, kept_sizes = [], [], []
        # The split's share of queries: a fixed first guess keeps the draws reproducible.
        have, drawn, rate = 0, 0, {"train": 0.9, "test": 0.1, None: 1.0}[split]
        while have < n or not kept_tokens:
            m = min(chunk, int((n - have) / rate * 1.1) + 32)
            candidates = self._draw(m, rng)
            keep, sizes = _fitting(candidates, split)
            if size_weighted:
                keep &= rng.random(len(sizes)) * self.max_answer_size < sizes
            kept_tokens.append(candidates.kept_card_tokens(keep))
            kept_answers.append(candidates.answers[keep])
            kept_sizes.append(sizes[keep])
            kept = int(np.count_nonzero(keep))
            have, drawn, rate = have + kept, drawn + m, max(kept / m, 1e-3)
            self._check_found(have, drawn, split)
        positives = rules.unpack(np.concatenate(kept_answers)[:n], self.deck.n_keys)
        sizes = np.concatenate(kept_sizes)[:n]
        return self._batch(np.concatenate(kept_tokens)[:n], positives, tokens, sizes)

    def answer_chunks(
        self, n: int, rng: np.random.Generator, split: str | None = None
    ) -> Iterator[np.ndarray]:
        """Yield the packed answers of ``n`` queries of ``split``: (m, n_words) uint64 chunks
        (``rules.pack``'s words), ``n`` rows in all, drawn from ``sample``'s distribution (not
        size-weighted, empty answers redrawn) without building the queries' tokens.

        Each cache-sized chunk is drawn when it is asked for: a caller that keeps only what it
        needs of each (the distinct answers, a count) draws any ``n`` in little memory.
        """
        n = _check_draw(n, rng, split)
        have, drawn = 0, 0
        while have < n:
            # a few spare candidates make up for the empty answers and the other split
            m = min(self._chunk_size, n - have + 64)
            candidates = self._draw(m, rng)
            keep, _ = _fitting(candidates, split)
            answers = candidates.answers[keep][: n - have]
            have, drawn = have + len(answers), drawn + m
            self._check_found(have, drawn, split)
            if len(answers):
                yield answers

    def _check_found(self, found: int, drawn: int, split) -> None:
        """Give up on a split that ``drawn`` candidates, none of them in it, show empty."""
        if found == 0 and drawn >= _GIVE_UP:
            raise ValueError(
                f"{self!r} drew {drawn} candidates and none fits split={split!r}: "
                f"that split of this game has no queries"
            )

    def max_sample(self, tokens: str = "card") -> int:
        """The most queries one ``sample`` returns in a token mode (``MAX_CELLS`` bounds it)."""
        return MAX_CELLS // self._cells_per_query(tokens)

    def _cells_per_query(self, tokens: str) -> int:
        """A sampled query's tokens and answer: (max_len,) tokens and (n_keys,) positives."""
        return self.max_len(tokens) + self.deck.n_keys

    @cached_property
    def _chunk_size(self) -> int:
        """Candidates drawn at once: cache-sized, and smaller where each costs more."""
        cards, _ = self.layout
        cost = cards * self.deck.n_keys * self.deck.n_attributes
        return max(64, min(_CHUNK_CELLS // cost, _MAX_DRAW))

    def enumerate(self, split: str | None = None, tokens: str = "card") -> QueryBatch:
        """Every distinct query of the game (of ``split``), in canonical-token order."""
        raise ValueError(
            f"enumerate() lists finite, small games only (classic, wildcard, shared), "
            f"not {self.name!r}"
        )

    def _check_enumerable(self, n_candidates: int, split, tokens: str) -> None:
        """Fail before any work where listing ``n_candidates`` queries would not fit."""
        check_split(split)
        deck = self.deck
        per_query = deck.n_keys * deck.n_attributes + self.max_len(tokens)  # validates tokens
        if n_candidates * per_query > MAX_CELLS:
            raise ValueError(
                f"enumerate() of {self!r} would compute {n_candidates} queries x "
                f"(n_keys * n_attributes + max_len) = {n_candidates * per_query} cells, "
                f"more than MAX_CELLS = {MAX_CELLS}: the deck is too large to list every query"
            )

    def _batch(self, card_tokens, positives, tokens: str, sizes=None) -> QueryBatch:
        token_ids = vocab(self.deck, tokens).from_card_tokens(card_tokens, self.max_len(tokens))
        sizes = positives.sum(axis=1) if sizes is None else sizes
        return QueryBatch(self, card_tokens, positives, sizes, token_ids)

    def _enumerated(self, candidates: Candidates, split, tokens) -> QueryBatch:
        every = np.ones(len(candidates.answers), dtype=bool)
        card_tokens, first = np.unique(
            candidates.kept_card_tokens(every), axis=0, return_index=True
        )
        positives = rules.unpack(candidates.answers[first], self.deck.n_keys)
        keep = positives.any(axis=1)
        if split is not None:
            keep &= is_test_sum(hash_sum(card_tokens)) == (split == "test")
        return self._batch(card_tokens[keep], positives[keep], tokens)


class _DrawTable(NamedTuple):
    """A pair game's draws, tabulated: what a query's row, answer and split hash sum are
    built from, by lookups instead of per-query work."""

    triples: np.ndarray  # (n_draws, 3): each draw's pair tokens, then a union
    answers: np.ndarray  # (n_draws, n_words): each draw's packed pair answer
    slot_sums: np.ndarray  # (n_pairs * n_draws,) slot-major: a draw's share of the hash sum
    union_sum: np.uint64  # the operators' share of the hash sum when all are unions
    op_weights: np.ndarray  # (n_pairs - 1,) the hash weights of the operator positions


def check_split(split) -> None:
    check_choice("split", split, SPLITS)


def _check_draw(n, rng, split) -> int:
    """``n`` as a Python int (cell counts of it must not overflow int64); ValueError for a
    negative or non-integer ``n``, an unknown split or an ``rng`` that is no Generator."""
    if not is_int(n) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {excerpt(n)}")
    check_split(split)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {excerpt(rng)}")
    return int(n)


def _fitting(candidates: Candidates, split) -> tuple[np.ndarray, np.ndarray]:
    """Which candidates have a non-empty answer and belong to ``split`` ((n,) bool), and
    their answer sizes ((n,) int64)."""
    sizes = np.einsum("ij->i", np.bitwise_count(candidates.answers).astype(np.int64))
    keep = sizes > 0
    if split is not None:
        keep &= is_test_sum(candidates.hash_sums) == (split == "test")
    return keep, sizes


class _PairGame(Game):
    """Games of pair-rule terms ``(c1 c2)`` joined by operators.

    Card 1 is a uniform plain card; card 2 is a uniform plain card (``plain_second``) or a
    uniform query card, i.e. each attribute uniform over the v values and ``*``. Both come
    from one uniform *draw* ``first_key * n_second + second``.
    """

    token_modes = TOKEN_MODES
    plain_second = False
    n_pairs = 1
    mixed_ops = False  # whether operators other than union occur

    @property
    def layout(self) -> tuple[int, int]:
        return 2 * self.n_pairs, self.n_pairs - 1

    @property
    def _n_second(self) -> int:
        return self.deck.n_keys if self.plain_second else self.deck.n_cards

    @property
    def _n_draws(self) -> int:
        return self.deck.n_keys * self._n_second

    def _draw(self, n, rng):
        dtype = np.uint16 if self._n_draws <= 1 << 16 else np.int64
        draws = rng.integers(self._n_draws, size=(n, self.n_pairs), dtype=dtype)
        return self._rows(draws, self._draw_ops(n, rng))

    def _draw_ops(self, n, rng) -> np.ndarray:
        """(n, n_pairs - 1) operator tokens."""
        return np.full((n, self.n_pairs - 1), UNION, dtype=np.int64)

    def _pairs(self, draws: np.ndarray):
        """Draws -> the canonical pairs' (..., 2) card tokens and (..., n_words) answers."""
        deck = self.deck
        first, second = np.divmod(draws.astype(np.int64), self._n_second)
        first = deck.key_to_card[first]
        second = deck.key_to_card[second] if self.plain_second else second
        low, high = np.minimum(first, second), np.maximum(first, second)
        tokens = np.stack([CARD0 + low, CARD0 + high], axis=-1)
        return tokens, rules.packed_pair_answer(deck, low, high)

    @cached_property
    def _draw_table(self) -> _DrawTable | None:
        """``_pairs`` of every draw, and each pair slot's share of the split hash sum; None
        where the deck is too large to tabulate."""
        deck = self.deck
        building_cells = self._n_draws * deck.n_keys * deck.n_attributes
        if self._n_draws * self.n_pairs > _MAX_TABLE or building_cells > _CHUNK_CELLS:
            return None
        tokens, answers = self._pairs(np.arange(self._n_draws))
        weights = position_weights(3 * self.n_pairs).reshape(self.n_pairs, 3)[:, :2]
        slot_sums = np.einsum("dt,pt->pd", tokens.astype(np.uint64), weights)
        # Each pair's tokens followed by a union: a query's row is one take, (n, n_pairs, 3).
        triples = np.concatenate([tokens, np.full((len(tokens), 1), UNION)], axis=1)
        op_weights = position_weights(3 * self.n_pairs).reshape(self.n_pairs, 3)[:-1, 2]
        union_sum = (op_weights * np.uint64(UNION)).sum()  # the operators' share, all unions
        return _DrawTable(triples, answers, slot_sums.ravel(), union_sum, op_weights)

    def _rows(self, draws: np.ndarray, ops: np.ndarray) -> Candidates:
        """(n, n_pairs) draws and (n, n_pairs - 1) operator tokens -> candidates."""
        n_pairs = draws.shape[1]
        draws = draws.astype(np.intp)
        table = self._draw_table
        if table is None:
            pair_tokens, terms = self._pairs(draws)
            return Candidates.of(_pair_layout(pair_tokens, ops), self._joined(terms, ops))
        # The split hash sum is linear in the tokens: add up each slot's tabulated share.
        slots = draws + np.arange(n_pairs) * self._n_draws
        sums = np.einsum("ij->i", np.take(table.slot_sums, slots))  # fast, wraps mod 2**64
        if self.mixed_ops:
            sums += np.einsum("ij,j->i", ops.astype(np.uint64), table.op_weights)
        else:
            sums += table.union_sum

        def kept_card_tokens(keep):
            rows = np.take(table.triples, draws[keep], axis=0)  # (kept, n_pairs, 3)
            if self.mixed_ops:
                rows[:, :-1, 2] = ops[keep]
            return rows.reshape(len(rows), 3 * n_pairs)[:, :-1]

        terms = np.take(table.answers, draws, axis=0)
        return Candidates(self._joined(terms, ops), sums, kept_card_tokens)

    def _joined(self, terms: np.ndarray, ops: np.ndarray) -> np.ndarray:
        """(n, n_pairs, n_words) packed terms -> (n, n_words): joined by the (n, n_pairs - 1)
        operators, or (games of unions only, the fast path) all by union."""
        return _apply_ops(terms, ops) if self.mixed_ops else _union_all(terms)

    def _enumerate_draws(self, split, tokens) -> QueryBatch:
        """Every query of a one-pair game: every draw, duplicates (swaps) removed."""
        self._check_enumerable(self._n_draws, split, tokens)
        draws = np.arange(self._n_draws)[:, None]
        no_ops = np.empty((self._n_draws, 0), dtype=np.int64)
        return self._enumerated(self._rows(draws, no_ops), split, tokens)


def _union_all(terms: np.ndarray) -> np.ndarray:
    """(n, n_pairs, n_words) packed terms -> (n, n_words): their union."""
    answer = terms[:, 0].copy()
    for i in range(1, terms.shape[1]):
        answer |= terms[:, i]
    return answer


def _apply_ops(terms: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """(n, n_pairs, n_words) packed terms and (n, n_pairs - 1) operator tokens (union or
    symdiff) -> (n, n_words): the terms joined left to right."""
    # a | t == a ^ t ^ (a & t): one branch-free step serves both operators.
    union_words = np.where(ops == UNION, ~np.uint64(0), np.uint64(0))[..., None]
    answer = terms[:, 0]
    for i in range(1, terms.shape[1]):
        term = terms[:, i]
        answer = answer ^ term ^ (answer & term & union_words[:, i - 1])
    return answer


def _pair_layout(pair_tokens: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """(n, n_pairs, 2) pair tokens, (n, n_pairs - 1) operators -> (n, 3 n_pairs - 1) rows."""
    n, n_pairs, _ = pair_tokens.shape
    rows = np.zeros((n, n_pairs, 3), dtype=np.int64)  # card, card, operator (PAD after last)
    rows[:, :, :2], rows[:, :-1, 2] = pair_tokens, ops
    return rows.reshape(n, 3 * n_pairs)[:, :-1]


class ClassicGame(_PairGame):
    """A pair of plain cards (repeats allowed) -> the card completing the SET."""

    name = "classic"
    plain_second = True
    finite = True

    @property
    def max_answer_size(self) -> int:
        return max(1, self.deck.n_values - 2) ** self.deck.n_attributes

    def enumerate(self, split=None, tokens="card"):
        return self._enumerate_draws(split, tokens)


class WildcardGame(_PairGame):
    """One pair: card 1 plain, card 2 with each attribute a value or ``*`` -> a sub-cube."""

    name = "wildcard"
    finite = True

    def enumerate(self, split=None, tokens="card"):
        return self._enumerate_draws(split, tokens)


class UnionGame(_PairGame):
    """``n_pairs`` wildcard pairs joined by union."""

    name = "union"
    takes_pairs = True

    def __init__(self, deck: Deck, n_pairs: int | None = None):
        super().__init__(deck, n_pairs)
        if n_pairs is None:
            n_pairs = 8
        if not is_int(n_pairs) or not 1 <= n_pairs <= MAX_PAIRS:
            raise ValueError(
                f"n_pairs must be an integer from 1 to MAX_PAIRS = {MAX_PAIRS}, "
                f"got {excerpt(n_pairs)}"
            )
        self.n_pairs = int(n_pairs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.deck}, n_pairs={self.n_pairs})"


class SymDiffGame(UnionGame):
    """``n_pairs`` wildcard pairs; each operator uniform over union and symmetric difference,
    applied left to right. Empty results are redrawn."""

    name = "symdiff"
    mixed_ops = True

    def _draw_ops(self, n, rng):
        return np.where(rng.random((n, self.n_pairs - 1)) < 0.5, UNION, SYMDIFF)


class ShatterGame(Game):
    """An explicit subset ``{k1,k2,...}``: each key in it with probability 1/2, empty redrawn."""

    name = "shatter"

    @property
    def layout(self) -> tuple[int, int]:
        return self.deck.n_keys, 2

    def _draw(self, n, rng):
        deck = self.deck
        words = rng.integers(0, 1 << 64, size=(n, rules.n_words(deck)), dtype=np.uint64)
        positives = rules.unpack(words, deck.n_keys)
        card_tokens = np.where(positives, CARD0 + deck.key_to_card, PAD)
        width = deck.n_keys + 2
        card_tokens = np.concatenate(
            [
                np.full((n, 1), SUBSET_OPEN),
                card_tokens,
                np.full((n, 1), SUBSET_CLOSE),
            ],
            axis=1,
        )
        card_tokens = compact(card_tokens, width, PAD)
        return Candidates.of(card_tokens, rules.pack(positives))  # pack clears bits past n_keys


class SharedGame(Game):
    """An unordered pair of distinct plain cards ``<c1 c2>`` -> the shared rule; pairs that
    share nothing (no answer) are redrawn."""

    name = "shared"
    token_modes = TOKEN_MODES
    finite = True

    def __init__(self, deck: Deck, n_pairs: int | None = None):
        super().__init__(deck, n_pairs)
        if deck.n_attributes < 2:
            raise ValueError(
                "the shared game needs n_attributes >= 2: two distinct cards of one attribute "
                "share no value"
            )

    @property
    def layout(self) -> tuple[int, int]:
        return 2, 1

    def _draw(self, n, rng):
        first, second = rng.integers(self.deck.n_keys, size=(2, n))
        distinct = first != second
        return self._shared_rows(first[distinct], second[distinct])

    def _shared_rows(self, first, second):
        low, high = np.minimum(first, second), np.maximum(first, second)
        card_tokens = np.stack(
            [
                np.full_like(low, SHARED_OPEN),
                CARD0 + self.deck.key_to_card[low],
                CARD0 + self.deck.key_to_card[high],
            ],
            axis=1,
        )
        return Candidates.of(card_tokens, rules.packed_shared_answer(self.deck, low, high))

    def enumerate(self, split=None, tokens="card"):
        n_keys = self.deck.n_keys
        self._check_enumerable(n_keys * (n_keys - 1) // 2, split, tokens)
        first, second = np.triu_indices(n_keys, k=1)
        return self._enumerated(self._shared_rows(first, second), split, tokens)


GAMES: dict[str, type[Game]] = {
    game.name: game
    for game in (
        ClassicGame,
        WildcardGame,
        UnionGame,
        SymDiffGame,
        ShatterGame,
        SharedGame,
    )
}


def make_game(name: str, deck: Deck, n_pairs: int | None = None) -> Game:
    """The game called ``name`` (one of ``GAMES``) on ``deck``."""
    check_choice("game", name, tuple(GAMES))
    if not isinstance(deck, Deck):
        raise ValueError(f"deck must be a Deck, got {excerpt(deck)}")
    return GAMES[name](deck, n_pairs)
