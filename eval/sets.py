"""Fixed held-out evaluation sets: the same queries for every model of an env."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from agents.base import make_env

DISTRIBUTIONS = ("size_weighted", "uniform")


@dataclass(frozen=True)
class EvalSet:
    """Test-split queries of an env: ``tokens`` (n, max_len) int64 in the env's token mode,
    ``positives`` (n, n_keys) bool, and their canonical ``texts``."""

    env_id: str
    distribution: str
    seed: int
    tokens: np.ndarray
    positives: np.ndarray
    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.tokens)


def make_eval_set(
    env_id: str,
    queries: int = 5120,
    seed: int = 0,
    distribution: str = "size_weighted",
    env_kwargs: dict | None = None,
) -> EvalSet:
    """``queries`` test-split queries of ``env_id``, drawn like the study's test sets
    (size-weighted) or uniformly. They depend only on the game, deck, count, seed and
    distribution, so every model of an env, in either token mode, meets the same queries."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if queries < 1:
        raise ValueError(f"queries must be >= 1, got {queries}")
    env = make_env(env_id, **(env_kwargs or {})).unwrapped
    game = env.game
    # The generator depends on the game and deck, not on the token mode.
    key = zlib.crc32(f"{game!r}".encode())
    rng = np.random.default_rng([seed, key])
    batch = game.sample(
        queries,
        rng,
        split="test",
        size_weighted=distribution == "size_weighted",
        tokens=env.tokens,
    )
    return EvalSet(env_id, distribution, seed, batch.tokens, batch.positives, tuple(batch.texts()))
