"""Evaluation: the metrics (one implementation, shared with training), fixed held-out sets,
and scoring a scorer on them."""

from eval.harness import evaluate

__all__ = ["evaluate"]
