"""``free-embedding``: the best KL that free query and key vectors of dimension d reach, with
no encoder: what a dimension-d contrastive model cannot represent at all, as opposed to what
it fails to learn."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agents.checkpoint import iter_runs
from eval.analysis.common import LR, env_game, figure_axes
from eval.metrics import kl_to_uniform_positives
from eval.sets import DISTRIBUTIONS, SPLITS, cache_dir, check_queries, draw_eval_set
from set_env import GENERATOR_VERSION
from set_env.checks import is_int
from set_env.files import write_json_atomic
from set_env.registry import canonical_env_id

CRITICAL_KL = 0.01  # the KL (nats) a dimension must reach to count as representing a game


def answers_to_fit(
    env_id: str,
    queries: int = 5120,
    seed: int = 0,
    env_kwargs: dict | None = None,
    distribution: str = "size_weighted",
    split: str = "test",
) -> tuple[np.ndarray, np.ndarray, int]:
    """The answers a free embedding must represent, weighted like an evaluation set (by
    default the study's: size-weighted test queries): (m, n_keys) bool distinct answers,
    (m,) weights, the number of queries behind them.

    Finite games use every distinct query of the split, weighted by its answer size when
    size-weighted; the others the evaluation set (``draw_eval_set``: ``queries`` of them,
    seeded), already drawn so. Queries with equal answers share one row: they want the same
    vector.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    game = env_game(env_id, env_kwargs)
    if game.finite:
        positives = game.enumerate(split="test" if split == "test" else None).positives
        sizes = (
            positives.sum(axis=1) if distribution == "size_weighted" else np.ones(len(positives))
        )
    else:
        check_queries(queries)
        eval_set = draw_eval_set(env_id, queries, seed, distribution, env_kwargs, split)
        positives, sizes = eval_set.positives, np.ones(len(eval_set))
    answers, inverse = np.unique(positives, axis=0, return_inverse=True)
    return answers, np.bincount(inverse.ravel(), weights=sizes), len(positives)


def fit_free_embedding(
    answers: np.ndarray,
    weights: np.ndarray,
    dim: int,
    steps: int = 2000,
    seed: int = 0,
    bar=None,
) -> float:
    """The best weighted mean KL (nats) that free query vectors (m, dim), key vectors
    (n_keys, dim) and key biases (n_keys,) reach, logits = q . k + b, full-batch Adam."""
    generator = torch.Generator().manual_seed(seed)
    m, n_keys = answers.shape
    queries = torch.randn(m, dim, generator=generator).requires_grad_()
    keys = (torch.randn(n_keys, dim, generator=generator) / math.sqrt(dim)).requires_grad_()
    bias = torch.zeros(n_keys, requires_grad=True)
    positives = torch.as_tensor(answers)
    weights = torch.as_tensor(weights / weights.sum(), dtype=torch.float32)  # (m,)
    optimizer = torch.optim.Adam([queries, keys, bias], lr=LR)
    best = math.inf
    for _ in range(steps):
        logits = queries @ keys.T + bias  # (m, n_keys)
        loss = (kl_to_uniform_positives(logits, positives) * weights).sum()
        best = min(best, loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if bar is not None:
            bar.update(1)
    return best


def free_embedding(
    env_id: str,
    dims=(1, 2, 4, 8, 16, 27),
    queries: int = 5120,
    steps: int = 2000,
    seed: int = 0,
    env_kwargs: dict | None = None,
    distribution: str = "size_weighted",
    split: str = "test",
) -> dict:
    """The representational limit with no encoder: the best KL per dimension, and the
    smallest dimension reaching KL < 0.01 (None if none does).

    The optimiser's best is an upper bound on what dimension d can represent: it can stop in
    a local minimum (classic's 27 singletons fit d = 1, keys on a parabola, yet Adam stops
    near 0.36 on all of them). ``queries`` and ``seed`` choose the sample of an infinite
    game's queries; ``distribution`` and ``split`` the evaluation set they come from
    (``answers_to_fit``).

    Returns {"env", "queries", "subsets", "dims": {d: best KL}, "critical_dim"}.
    """
    dims = check_dims(dims)
    if not is_int(steps) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    answers, weights, n_queries = answers_to_fit(
        env_id, queries, seed, env_kwargs, distribution, split
    )
    best = {}
    with tqdm(total=steps * len(dims), desc="free embedding", file=sys.stderr) as bar:
        for dim in dims:
            bar.set_postfix(dim=dim)
            best[dim] = round(fit_free_embedding(answers, weights, dim, steps, seed, bar), 6)
    critical = next((d for d in sorted(best) if best[d] < CRITICAL_KL), None)
    return {
        "env": env_id,
        "queries": n_queries,
        "subsets": len(answers),
        "dims": best,
        "critical_dim": critical,
    }


def free_embedding_bound(
    env_id: str,
    dims,
    queries: int = 5120,
    steps: int = 2000,
    seed: int = 0,
    distribution: str = "size_weighted",
    split: str = "test",
) -> dict[int, float]:
    """``free_embedding``'s best KL per dim on an evaluation set's queries, each cached on
    disk beside the evaluation sets (keyed by env, dim, queries, steps, seed, distribution,
    split and the generator's version): the curve the report draws under the trained models,
    computed once per machine."""
    env_id = canonical_env_id(env_id)
    setting = [queries, steps, seed, GENERATOR_VERSION, distribution, split]
    keys = {d: json.dumps([env_id, d, *setting]) for d in check_dims(dims)}
    best = {d: _cached_bound(key) for d, key in keys.items()}
    missing = [d for d, kl in best.items() if kl is None]
    if missing:
        answers, weights, _ = answers_to_fit(env_id, queries, seed, None, distribution, split)
        desc = f"free-embedding bound {env_id}"
        with tqdm(total=steps * len(missing), desc=desc, file=sys.stderr) as bar:
            for dim in missing:
                best[dim] = round(fit_free_embedding(answers, weights, dim, steps, seed, bar), 6)
                path = _bound_path(keys[dim])
                if path is not None:
                    write_json_atomic(path, {"key": keys[dim], "kl": best[dim]})
    return best


def _bound_path(key: str) -> Path | None:
    folder = cache_dir()
    return (
        None
        if folder is None
        else folder / f"free-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    )


def _cached_bound(key: str) -> float | None:
    """The cached KL of ``key``, or None if there is none (or it is damaged or foreign)."""
    path = _bound_path(key)
    try:
        cached = json.loads(path.read_text())
        return float(cached["kl"]) if cached["key"] == key else None
    except (AttributeError, OSError, ValueError, KeyError, TypeError):
        return None


def check_dims(dims) -> list[int]:
    """The dimensions, sorted and without repeats; ValueError unless all are integers >= 1."""
    dims = list(dims)
    if not dims or not all(is_int(d) and d >= 1 for d in dims):
        raise ValueError(f"--dims must be positive integers, e.g. 2,4,8, got {dims!r}")
    return sorted(set(int(d) for d in dims))


def sweep_kls(folder: Path, env_id: str) -> dict[int, float]:
    """{dim: KL} of a sweep's trained contrastive runs of ``env_id``: the KL each checkpoint
    recorded at its last evaluation (the size-weighted test set). A later run of a dim wins."""
    kls = {}
    env_id = canonical_env_id(env_id)
    for run in iter_runs(folder):
        if run.metadata is None and run.error is None:
            continue  # no checkpoint yet
        try:
            if run.error is not None:
                raise ValueError(run.error)
            state = run.metadata
            env, agent, metrics = state["env_id"], state["agent"], state.get("metrics") or {}
            dim = state["agent_config"]["dim"] if agent == "contrastive" else None
        except (ValueError, KeyError, TypeError) as error:
            print(f"warning: skipped {run.path}: {error}", file=sys.stderr)
            continue
        if canonical_env_id(env) == env_id and agent == "contrastive" and "kl" in metrics:
            kls[dim] = float(metrics["kl"])
    if not kls:
        raise ValueError(f"--sweep: no contrastive run of {env_id} with metrics under {folder}")
    return dict(sorted(kls.items()))


def plot_free_embedding(result: dict, path: Path, sweep: dict | None = None) -> None:
    """Best KL against d, the 0.01 threshold, and (with a sweep) the trained models' KL."""
    dims = sorted(result["dims"])
    floor = 1e-6  # a KL of 0 still shows on the log axis
    with figure_axes(path) as axes:
        kls = [max(result["dims"][d], floor) for d in dims]
        axes.plot(dims, kls, "o-", label="free embedding")
        if sweep:
            trained = [max(v, floor) for v in sweep.values()]
            axes.plot(list(sweep), trained, "s--", label="trained contrastive")
        axes.axhline(CRITICAL_KL, color="grey", linestyle=":", label=f"KL = {CRITICAL_KL}")
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("dimension d")
        axes.set_ylabel("KL (nats)")
        axes.set_title(f"{result['env']}: critical dim {result['critical_dim']}")
