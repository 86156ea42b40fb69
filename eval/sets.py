"""Fixed held-out evaluation sets: the same queries for every model of an env.

A set is generated deterministically, then cached on disk (``$SET_EVAL_CACHE``, default
``~/.cache/set-contrastive/eval-sets``). A cache file is named by a hash of its key (env id,
env kwargs, count, seed, distribution and ``set_env.GENERATOR_VERSION``), stores that key
and a SHA-256 of its contents, and is used only when both match: a file copied over another,
one drawn by an older generator, an empty or damaged one are all recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from set_env import GENERATOR_VERSION
from set_env.checks import check_seed, excerpt, is_int
from set_env.files import write_atomic
from set_env.registry import canonical_env_id, make_env

DISTRIBUTIONS = ("size_weighted", "uniform")
# "test": the held-out queries; "all": any query, training ones included (the study
# evaluated classic and wildcard so, having no held-out split).
SPLITS = ("test", "all")
MAX_QUERIES = 1 << 20  # an evaluation set of more would not fit in memory on every deck
DEFAULT_CACHE = Path.home() / ".cache" / "set-contrastive" / "eval-sets"
_warned: list[Path] = []  # the unusable default cache is reported once per process


@dataclass(frozen=True)
class EvalSet:
    """Evaluation queries of an env (of its test split, or of ``split="all"``): ``tokens``
    (n, max_len) int64 in the env's token mode, ``positives`` (n, n_keys) bool, and their
    canonical ``texts``."""

    env_id: str
    distribution: str
    seed: int
    tokens: np.ndarray
    positives: np.ndarray
    texts: tuple[str, ...]
    split: str = "test"

    def __len__(self) -> int:
        return len(self.tokens)

    def content_hash(self) -> str:
        """SHA-256 (hex) of the queries' tokens, answers and texts: the cache's integrity check."""
        digest = hashlib.sha256()
        for array in (self.tokens, self.positives, np.array(self.texts)):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def cache_dir() -> Path | None:
    """The cache folder: ``$SET_EVAL_CACHE`` (unset or empty: the default). None when the
    default cannot be created (the sets are then drawn each time); ValueError when the
    folder a user named cannot be."""
    named = os.environ.get("SET_EVAL_CACHE", "")
    folder = Path(named) if named else DEFAULT_CACHE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "not writable")
    except OSError as error:
        if named:
            reason = error.strerror or str(error)
            raise ValueError(
                f"SET_EVAL_CACHE={named!r} is not a writable folder ({reason})"
            ) from None
        if not _warned:
            print(f"warning: no evaluation-set cache ({folder}: {error})", file=sys.stderr)
            _warned.append(folder)
        return None
    return folder


def cache_key(env_id, queries, seed, distribution, env_kwargs, split="test") -> str:
    """What a cached set is: the file stores it, and a file of another key is never used."""
    return json.dumps(
        {
            "env": env_id,
            "env_kwargs": sorted((env_kwargs or {}).items()),
            "queries": queries,
            "seed": seed,
            "distribution": distribution,
            "split": split,
            "generator": GENERATOR_VERSION,
        },
        sort_keys=True,
    )


def make_eval_set(
    env_id: str,
    queries: int = 5120,
    seed: int = 0,
    distribution: str = "size_weighted",
    env_kwargs: dict | None = None,
    cache: bool = True,
    split: str = "test",
) -> EvalSet:
    """The evaluation set of ``draw_eval_set``, through the on-disk cache."""
    env_id = canonical_env_id(env_id)
    folder = cache_dir() if cache else None
    if folder is None:
        return draw_eval_set(env_id, queries, seed, distribution, env_kwargs, split)
    key = cache_key(env_id, queries, seed, distribution, env_kwargs, split)
    path = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
    cached = _read_cached(path, key, env_id, seed, distribution, split)
    if cached is not None:
        return cached
    eval_set = draw_eval_set(env_id, queries, seed, distribution, env_kwargs, split)
    arrays = {
        "tokens": eval_set.tokens,
        "positives": eval_set.positives,
        "texts": np.array(eval_set.texts),
        "sha256": eval_set.content_hash(),
        "key": key,
    }
    write_atomic(path, lambda file: np.savez(file, **arrays))
    return eval_set


def _read_cached(path: Path, key: str, env_id: str, seed: int, distribution: str, split: str):
    """The cached set at ``path`` if it is readable, of ``key``, and matches its hash."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            eval_set = EvalSet(
                env_id,
                distribution,
                seed,
                data["tokens"],
                data["positives"],
                tuple(data["texts"].tolist()),
                split,
            )
            expected = str(data["sha256"])
    except Exception:  # missing, empty, truncated or foreign: recompute
        return None
    return eval_set if eval_set.content_hash() == expected else None


def check_queries(queries) -> int:
    """ValueError unless ``queries`` is an integer in [1, MAX_QUERIES]."""
    if not is_int(queries):
        raise ValueError(f"queries must be an integer >= 1, got {queries!r}")
    if not 1 <= queries <= MAX_QUERIES:
        raise ValueError(f"queries must be from 1 to {MAX_QUERIES:,}, got {queries:,}")
    return int(queries)


def draw_eval_set(
    env_id: str,
    queries: int = 5120,
    seed: int = 0,
    distribution: str = "size_weighted",
    env_kwargs: dict | None = None,
    split: str = "test",
) -> EvalSet:
    """``queries`` queries of ``env_id``'s test split (or of all its queries, ``split="all"``),
    drawn like the study's test sets (size-weighted) or uniformly. They depend only on the
    game, deck, count, seed, distribution and split, so every model of an env, in any token
    mode, meets the same queries."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {excerpt(split)}")
    check_queries(queries)
    check_seed(seed)
    env = make_env(env_id, **(env_kwargs or {})).unwrapped
    game = env.game
    # The generator depends on the game and deck, not on the token mode.
    key = zlib.crc32(f"{game!r}".encode())
    rng = np.random.default_rng([seed, key])
    batch = game.sample(
        queries,
        rng,
        split="test" if split == "test" else None,
        size_weighted=distribution == "size_weighted",
        tokens=env.tokens,
    )
    texts = tuple(batch.texts())
    return EvalSet(env_id, distribution, seed, batch.tokens, batch.positives, texts, split)
