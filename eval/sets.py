"""Fixed held-out evaluation sets: the same queries for every model of an env.

A set is generated deterministically, then cached on disk (``$SET_EVAL_CACHE``, default
``~/.cache/set-contrastive/eval-sets``) with a SHA-256 of its contents; a cache file that is
missing, unreadable or does not match its hash is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

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

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for array in (self.tokens, self.positives, np.array(self.texts)):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "set-contrastive" / "eval-sets"
    return Path(os.environ.get("SET_EVAL_CACHE", default))


def make_eval_set(
    env_id: str,
    queries: int = 5120,
    seed: int = 0,
    distribution: str = "size_weighted",
    env_kwargs: dict | None = None,
    cache: bool = True,
) -> EvalSet:
    """The evaluation set of ``draw_eval_set``, through the on-disk cache."""
    if not cache:
        return draw_eval_set(env_id, queries, seed, distribution, env_kwargs)
    key = json.dumps([env_id, sorted((env_kwargs or {}).items()), queries, seed, distribution])
    path = cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
    cached = _read_cached(path, env_id, seed, distribution)
    if cached is not None:
        return cached
    eval_set = draw_eval_set(env_id, queries, seed, distribution, env_kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(
        temporary,
        tokens=eval_set.tokens,
        positives=eval_set.positives,
        texts=np.array(eval_set.texts),
        sha256=eval_set.content_hash(),
    )
    os.replace(temporary, path)
    return eval_set


def _read_cached(path: Path, env_id: str, seed: int, distribution: str) -> EvalSet | None:
    try:
        with np.load(path) as data:
            eval_set = EvalSet(
                env_id,
                distribution,
                seed,
                data["tokens"],
                data["positives"],
                tuple(data["texts"].tolist()),
            )
            expected = str(data["sha256"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # missing or damaged: recompute
    return eval_set if eval_set.content_hash() == expected else None


def draw_eval_set(
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
