"""``free-embedding``: the best KL that free query and key vectors of dimension d reach, with
no encoder: what a dimension-d contrastive model cannot represent at all, as opposed to what
it fails to learn."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import NamedTuple

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


FAMILIES = ("single", "multivector", "mixture")  # the scorer families a free embedding fits


class FamilySize(NamedTuple):
    """How a family beyond one vector is sized: the size's name (its flag and JSON key), its
    letter in labels and run names, and the scorer config fields it sets."""

    name: str
    letter: str
    fields: tuple[str, ...]


# multivector's m is its number of query vectors and of key vectors alike, as fitted here.
FAMILY_SIZES = {
    "multivector": FamilySize("vectors", "m", ("vectors", "key_vectors_per_key")),
    "mixture": FamilySize("components", "P", ("components",)),
}


def check_family(family: str, vectors: int = 4, components: int = 4) -> int:
    """The family's size: 1 for single, ``vectors`` for multivector, ``components`` for
    mixture; ValueError for an unknown family or a size below 1."""
    if family not in FAMILIES:
        raise ValueError(f"--family must be one of {', '.join(FAMILIES)}, got {family!r}")
    for name, value in (("vectors", vectors), ("components", components)):
        if not is_int(value) or value < 1:
            raise ValueError(f"--{name} must be an integer >= 1, got {value!r}")
    return {"single": 1, "multivector": vectors, "mixture": components}[family]


def floats_per_key(family: str, dim: int, size: int = 1) -> int:
    """The floats one key stores in ``family`` at dimension ``dim`` (``size`` its vectors
    or components): d + 1, m d + 1 or P d + P + 1 (the +1 is the bias)."""
    return {"single": dim, "multivector": size * dim, "mixture": size * (dim + 1)}[family] + 1


def init_parameters(
    family: str, n_answers: int, n_keys: int, dim: int, size: int, generator
) -> dict[str, torch.Tensor]:
    """The free parameters of ``family``, initialised (single draws exactly as it always did):
    queries (n_answers[, size], dim), keys (n_keys[, size], dim), biases (n_keys,) and, for
    mixture, gates (n_answers, size) and (n_keys, size)."""
    shape = () if family == "single" else (size,)
    params = {
        "queries": torch.randn(n_answers, *shape, dim, generator=generator),
        "keys": torch.randn(n_keys, *shape, dim, generator=generator) / math.sqrt(dim),
        "bias": torch.zeros(n_keys),
    }
    if family == "mixture":
        params["query_gates"] = torch.randn(n_answers, size, generator=generator)
        params["key_gates"] = torch.zeros(n_keys, size)  # uniform gates at the start
    return {name: value.requires_grad_() for name, value in params.items()}


def family_logits(family: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The (n_answers, n_keys) logits of ``family``: single q . k + b; multivector
    sum_i max_j q_i . k_j + b (ColBERT's MaxSim); mixture sum_p pi_p q_p . k_p + b with
    pi = softmax_p(u_p v_p), u the query's gate vector and v the key's."""
    queries, keys, bias = params["queries"], params["keys"], params["bias"]
    if family == "single":
        return queries @ keys.T + bias
    # The vectors' and components' axes come first: reducing over a short last axis (a
    # softmax or max over 4) is several times slower on CPU than over a leading one.
    if family == "multivector":
        return torch.einsum("aid,kjd->ijak", queries, keys).amax(dim=1).sum(dim=0) + bias
    scores = torch.einsum("apd,kpd->pak", queries, keys)
    gate_logits = params["query_gates"].T[:, :, None] * params["key_gates"].T[:, None]
    return (torch.softmax(gate_logits, dim=0) * scores).sum(dim=0) + bias  # (P, a, k) -> (a, k)


def fit_free_embedding(
    answers: np.ndarray,
    weights: np.ndarray,
    dim: int,
    steps: int = 2000,
    seed: int = 0,
    bar=None,
    family: str = "single",
    vectors: int = 4,
    components: int = 4,
) -> float:
    """The best weighted mean KL (nats) that free queries and keys of ``family`` reach at
    dimension ``dim``, full-batch Adam: single vectors (logits = q . k + b), ``vectors``
    vectors each (multivector) or ``components`` gated pairs (mixture); ``family_logits``."""
    size = check_family(family, vectors, components)
    generator = torch.Generator().manual_seed(seed)
    params = init_parameters(family, *answers.shape, dim, size, generator)
    positives = torch.as_tensor(answers)
    weights = torch.as_tensor(weights / weights.sum(), dtype=torch.float32)  # (m,)
    optimizer = torch.optim.Adam(list(params.values()), lr=LR)
    best = math.inf
    for _ in range(steps):
        loss = (kl_to_uniform_positives(family_logits(family, params), positives) * weights).sum()
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
    family: str = "single",
    vectors: int = 4,
    components: int = 4,
) -> dict:
    """The representational limit with no encoder: the best KL per dimension, and the
    smallest dimension reaching KL < 0.01 (None if none does), of a scorer ``family``:
    single vectors, ``vectors`` vectors per query and key (multivector) or ``components``
    gated pairs (mixture); ``family_logits`` gives their logits.

    The optimiser's best is an upper bound on what dimension d can represent: it can stop in
    a local minimum (classic's 27 singletons fit d = 1, keys on a parabola, yet Adam stops
    near 0.36 on all of them). ``queries`` and ``seed`` choose the sample of an infinite
    game's queries; ``distribution`` and ``split`` the evaluation set they come from
    (``answers_to_fit``).

    Returns {"env", "queries", "subsets", "dims": {d: best KL}, "critical_dim", "family",
    "vectors" or "components" (not for single), "floats_per_key": {d: floats}}.
    """
    dims = check_dims(dims)
    size = check_family(family, vectors, components)
    if not is_int(steps) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    answers, weights, n_queries = answers_to_fit(
        env_id, queries, seed, env_kwargs, distribution, split
    )
    best = {}
    with tqdm(total=steps * len(dims), desc="free embedding", file=sys.stderr) as bar:
        for dim in dims:
            bar.set_postfix(dim=dim)
            kl = fit_free_embedding(answers, weights, dim, steps, seed, bar, family, size, size)
            best[dim] = round(kl, 6)
    critical = next((d for d in sorted(best) if best[d] < CRITICAL_KL), None)
    return {
        "env": env_id,
        "queries": n_queries,
        "subsets": len(answers),
        "dims": best,
        "critical_dim": critical,
        "family": family,
        **family_size(family, size),
        "floats_per_key": {d: floats_per_key(family, d, size) for d in dims},
    }


def scorer_family(agent: str, agent_config: dict) -> tuple[str, int] | None:
    """The free-embedding family of a trained scorer and its size: ("single", 1) for the
    contrastive scorer, ("multivector", m) for a multivector one with m query and m key
    vectors, ("mixture", P); None for a scorer no family bounds (joint, classifier, or
    multivector with m != m_k)."""
    if agent == "contrastive":
        return "single", 1
    if agent not in FAMILY_SIZES:
        return None
    sizes = {agent_config.get(name) for name in FAMILY_SIZES[agent].fields}
    return (agent, sizes.pop()) if len(sizes) == 1 else None


def family_order(family: tuple[str, int]) -> tuple:
    """A sort key of (family, size): single, multivector, mixture, each by size."""
    return (FAMILIES.index(family[0]), family[1])


def family_label(family: str, size: int) -> str:
    """How tables and legends name a family: "single", "multivector m=4", "mixture P=4"."""
    if family not in FAMILY_SIZES:
        return family
    return f"{family} {FAMILY_SIZES[family].letter}={size}"


def family_size(family: str, size: int) -> dict[str, int]:
    """{"vectors": m} for multivector, {"components": P} for mixture, {} for single."""
    return {FAMILY_SIZES[family].name: size} if family in FAMILY_SIZES else {}


def free_embedding_bound(
    env_id: str,
    dims,
    queries: int = 5120,
    steps: int = 2000,
    seed: int = 0,
    distribution: str = "size_weighted",
    split: str = "test",
    family: str = "single",
    vectors: int = 4,
    components: int = 4,
) -> dict[int, float]:
    """``free_embedding``'s best KL per dim on an evaluation set's queries, each cached on
    disk beside the evaluation sets (keyed by env, dim, queries, steps, seed, distribution,
    split, the generator's version and, unless single, the family and its size): the curve
    the report draws under the trained models, computed once per machine."""
    env_id = canonical_env_id(env_id)
    size = check_family(family, vectors, components)
    setting = [queries, steps, seed, GENERATOR_VERSION, distribution, split]
    if family != "single":
        setting += [family, size]  # single's keys stay those of its older caches
    keys = {d: json.dumps([env_id, d, *setting]) for d in check_dims(dims)}
    best = {d: _cached_bound(key) for d, key in keys.items()}
    missing = [d for d, kl in best.items() if kl is None]
    if missing:
        answers, weights, _ = answers_to_fit(env_id, queries, seed, None, distribution, split)
        desc = f"free-embedding bound {env_id}"
        with tqdm(total=steps * len(missing), desc=desc, file=sys.stderr) as bar:
            for dim in missing:
                kl = fit_free_embedding(answers, weights, dim, steps, seed, bar, family, size, size)
                best[dim] = round(kl, 6)
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
