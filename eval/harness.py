"""Scoring a scorer on an evaluation set."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from eval.metrics import METRICS
from eval.sets import EvalSet


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
    per_query = {name: [] for name in METRICS}
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
    )
    try:
        for start in range(0, len(eval_set), batch_size):
            tokens = torch.as_tensor(eval_set.tokens[start : start + batch_size], device=device)
            positives = torch.as_tensor(
                eval_set.positives[start : start + batch_size], device=device
            )
            with autocast:
                logits = scorer(tokens)
            for name, metric in METRICS.items():
                per_query[name].append(metric(logits.float(), positives).cpu())
    finally:
        scorer.train(was_training)
    return {name: torch.cat(values).numpy() for name, values in per_query.items()}


def summarize(per_query: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of each per-query metric."""
    return {name: float(values.mean()) for name, values in per_query.items()}
