"""Scorer agents (torch): one interface, a registry, the built-in scorers.

    import agents
    scorer = agents.make("contrastive", "SetUnion27-v0", dim=16, preset="small")
    logits = scorer(tokens)          # (B, L) int64 -> (B, n_keys)

A new architecture is one class plus one line::

    @agents.register("my_scorer")
    class MyScorer(torch.nn.Module):
        def __init__(self, env, **config): ...
        def forward(self, tokens): ...   # (B, L) -> (B, n_keys)
"""

from agents import classifier, contrastive, joint, mixture, multivector  # noqa: E402,F401  (register the built-ins)
from agents.base import Scorer, ScorerSpec, available, make, make_config, register, scorer_class

__all__ = [
    "Scorer",
    "ScorerSpec",
    "available",
    "make",
    "make_config",
    "register",
    "scorer_class",
]
