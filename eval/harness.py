"""Scoring a scorer on a fixed evaluation set, overall and by the number of positives."""

from __future__ import annotations

import math

import numpy as np
import torch

from agents.base import ScorerSpec, scorer_config
from agents.precision import autocast
from eval.metrics import METRICS
from eval.sets import EvalSet, make_eval_set
from set_env.registry import canonical_env_id

# Buckets of the number of positive keys: (label, smallest, largest).
BUCKETS = (("1", 1, 1), ("2-3", 2, 3), ("4-9", 4, 9), ("10-20", 10, 20), ("21+", 21, None))
BASELINES = ("uniform", "oracle")


@torch.no_grad()
def score_eval_set(
    scorer: torch.nn.Module,
    eval_set: EvalSet,
    batch_size: int = 1024,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, np.ndarray]:
    """Per-query metrics of ``scorer`` on ``eval_set``: {metric name: (n,) float array}."""
    device = next(scorer.parameters()).device
    was_training = scorer.training
    scorer.eval()
    try:
        with autocast(device, autocast_dtype):
            return _per_query(lambda tokens: scorer(tokens.to(device)), eval_set, batch_size)
    finally:
        scorer.train(was_training)


def baseline_per_query(name: str, eval_set: EvalSet) -> dict[str, np.ndarray]:
    """Per-query metrics of a scorer that needs no training: ``uniform`` (equal logits) or
    ``oracle`` (uniform over the true positives)."""
    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {name!r}")
    positives = torch.as_tensor(eval_set.positives)
    if name == "uniform":
        logits = torch.zeros(positives.shape)
    else:
        logits = torch.where(positives, 0.0, -1e9)
    return _metrics(logits, positives)


def _per_query(score, eval_set: EvalSet, batch_size: int) -> dict[str, np.ndarray]:
    parts = []
    for start in range(0, len(eval_set), batch_size):
        rows = slice(start, start + batch_size)
        tokens = torch.as_tensor(eval_set.tokens[rows])
        positives = torch.as_tensor(eval_set.positives[rows])
        logits = score(tokens).float().cpu()
        if logits.shape != positives.shape:
            raise ValueError(
                f"the scorer gave logits of shape {tuple(logits.shape)} for {eval_set.env_id}, "
                f"which needs {tuple(positives.shape)} (queries, keys)"
            )
        parts.append(_metrics(logits, positives))
    return {name: np.concatenate([part[name] for part in parts]) for name in METRICS}


def _metrics(logits: torch.Tensor, positives: torch.Tensor) -> dict[str, np.ndarray]:
    return {name: metric(logits, positives).numpy() for name, metric in METRICS.items()}


def summarize(per_query: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of each per-query metric."""
    return {name: float(values.mean()) for name, values in per_query.items()}


def metrics_with_buckets(per_query: dict[str, np.ndarray], eval_set: EvalSet) -> dict:
    """The harness's numbers: means (``kl`` also in bits as ``kl_bits``) and the same per
    bucket of the number of positives (``queries`` per bucket; empty buckets are omitted)."""
    sizes = eval_set.positives.sum(axis=1)
    result = {"queries": len(eval_set), **summarize(per_query)}
    result["kl_bits"] = result["kl"] / math.log(2)
    buckets = {}
    for label, low, high in BUCKETS:
        inside = (sizes >= low) & (sizes <= (high if high is not None else sizes.max()))
        if inside.any():
            chosen = {name: values[inside] for name, values in per_query.items()}
            buckets[label] = {"queries": int(inside.sum()), **summarize(chosen)}
    result["buckets"] = buckets
    return result


def evaluate(
    scorer: torch.nn.Module,
    env_id: str | None = None,
    queries: int = 5120,
    seed: int = 0,
    distribution: str = "size_weighted",
    env_kwargs: dict | None = None,
    batch_size: int = 1024,
    split: str = "test",
    checkpoint: dict | None = None,
    allow_other_env: bool = False,
) -> dict:
    """Evaluate any scorer of the agents interface on the fixed test set of ``env_id`` (with
    ``split="all"``, on queries drawn from all of them, training queries included).

    ``checkpoint``, the state ``agents.checkpoint.load_scorer`` returns beside the scorer,
    tells what the scorer cannot: its agent, training env, token mode and objective. Without
    it they come from the scorer (its ``spec``, ``name`` and config; no objective).
    ``env_id`` defaults to the training env; another env is refused (ValueError) unless
    ``allow_other_env``, and an env of another deck or vocabulary always is. The set's tokens
    follow the scorer's token mode unless ``env_kwargs`` says otherwise.

    Returns what ``python -m eval`` prints: ``env``, ``agent``, ``dim``, ``objective``, then
    ``metrics_with_buckets``' numbers.
    """
    trained = describe(scorer, checkpoint)
    env_id = env_id or trained["env"]
    if env_id is None:
        raise ValueError("env_id is needed: the scorer does not say which env it was trained on")
    if env_kwargs is None:
        env_kwargs = trained["env_kwargs"]
    check_scorer_fits(scorer, env_id, env_kwargs)
    if not allow_other_env:
        check_same_env(trained["env"], env_id)
    eval_set = make_eval_set(env_id, queries, seed, distribution, env_kwargs, split=split)
    numbers = metrics_with_buckets(score_eval_set(scorer, eval_set, batch_size), eval_set)
    return {
        "env": env_id,
        "agent": trained["agent"],
        "dim": trained["dim"],
        "objective": trained["objective"],
        **numbers,
    }


def describe(scorer: torch.nn.Module, checkpoint: dict | None) -> dict:
    """The scorer's agent, dim, training env (None: unknown), env kwargs and objective, from
    its checkpoint when there is one, else from the scorer itself."""
    if checkpoint is not None:
        # An RL checkpoint names its algorithm; a supervised one keeps its training config.
        training = checkpoint.get("train_config") or {}
        return {
            "agent": checkpoint["agent"],
            "dim": checkpoint["agent_config"].get("dim"),
            "env": checkpoint["env_id"],
            "env_kwargs": checkpoint["env_kwargs"],
            "objective": checkpoint.get("objective") or training.get("objective"),
        }
    spec = getattr(scorer, "spec", None)
    spec = spec if isinstance(spec, ScorerSpec) else None
    tokens = spec.env_kwargs.get("tokens") if spec is not None else None
    return {
        "agent": getattr(scorer, "name", None) or None,
        "dim": scorer_config(scorer).get("dim"),
        "env": spec.env_id if spec is not None else None,
        "env_kwargs": {"tokens": tokens} if tokens else {},
        "objective": None,
    }


def check_same_env(trained_on: str | None, env_id: str) -> None:
    """ValueError if the scorer was trained on another env than ``env_id``: its numbers there
    measure another game than the one it learned."""
    if trained_on is None or canonical_env_id(env_id) == canonical_env_id(trained_on):
        return
    raise ValueError(
        f"the scorer was trained on {trained_on}, not {env_id}: to evaluate it on another "
        "game's env, pass --allow-other-env (python: allow_other_env=True)"
    )


def check_scorer_fits(scorer: torch.nn.Module, env_id: str, env_kwargs: dict) -> None:
    """ValueError if ``scorer`` was built for a deck, vocabulary or query length that the env
    does not have (e.g. a 27-card scorer on SetUnion81-v0)."""
    built_for = getattr(scorer, "spec", None)
    if not isinstance(built_for, ScorerSpec):
        return  # a user's scorer: the logits' shape is checked as they come
    needed = ScorerSpec.of(env_id, **env_kwargs)
    for name in ("n_keys", "vocab_size"):
        if getattr(needed, name) != getattr(built_for, name):
            raise ValueError(
                f"the scorer was built for {built_for.env_id} ({name} {getattr(built_for, name)}); "
                f"{env_id} has {name} {getattr(needed, name)}: evaluate it on an env of its deck "
                "and token mode"
            )
    if needed.max_len > built_for.max_len:
        raise ValueError(
            f"the scorer reads queries of up to {built_for.max_len} tokens ({built_for.env_id}); "
            f"{env_id}'s have {needed.max_len}"
        )
