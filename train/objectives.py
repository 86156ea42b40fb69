"""Supervised objectives, as modules: (logits (B, n_keys), positives (B, n_keys), keys (B,))
-> scalar loss. ``keys`` holds one positive key per query, drawn uniformly."""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from set_env.checks import excerpt

_REGISTRY: dict[str, type[nn.Module]] = {}


def register(name: str):
    """Class decorator: ``@register("infonce")`` makes the loss module trainable as
    ``--objective infonce``."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def available() -> tuple[str, ...]:
    """The registered objective names, in the order they were registered."""
    return tuple(_REGISTRY)


@register("infonce")
class InfoNCE(nn.Module):
    """CLIP's symmetric loss over the B x B matrix of batch queries x batch keys.

    ``logits[:, keys]`` scores every query against every query's key; the diagonal holds the
    positives. Cross-entropy over rows (which key?) and over columns (which query?),
    averaged. A key drawn twice in a batch counts as a negative for the other query, as in
    the study, unless ``mask_duplicates``.
    """

    def __init__(self, mask_duplicates: bool = False):
        super().__init__()
        self.mask_duplicates = mask_duplicates

    def forward(self, logits, positives, keys):
        """The mean of the row-wise and column-wise cross-entropies of the (B, B) scores."""
        scores = logits.float()[:, keys]  # (B, B): query i against the key of query j
        if self.mask_duplicates:
            same_key = keys[:, None] == keys[None, :]
            off_diagonal = ~torch.eye(len(keys), dtype=torch.bool, device=keys.device)
            scores = scores.masked_fill(same_key & off_diagonal, float("-inf"))
        target = torch.arange(len(keys), device=keys.device)
        return (F.cross_entropy(scores, target) + F.cross_entropy(scores.T, target)) / 2


@register("ce")
class CrossEntropy(nn.Module):
    """Cross-entropy over all keys for the sampled positive key."""

    def forward(self, logits, positives, keys):
        """Cross-entropy of the logits (B, n_keys) for the sampled keys (B,)."""
        return F.cross_entropy(logits.float(), keys)


@register("soft-ce")
class SoftCrossEntropy(nn.Module):
    """Cross-entropy against the uniform distribution over all positives: the optimum of
    ``ce`` with less variance."""

    def forward(self, logits, positives, keys):
        """Cross-entropy against the uniform distribution over each query's positives."""
        target = positives.float() / positives.sum(dim=-1, keepdim=True)
        return -(target * torch.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def make_objective(name: str, mask_duplicates: bool = False) -> nn.Module:
    """The loss module registered as ``name``; ``mask_duplicates`` goes to those that take it
    (infonce). ValueError for an unknown name."""
    if name not in _REGISTRY:
        raise ValueError(f"objective must be one of {available()}, got {excerpt(name)}")
    cls = _REGISTRY[name]
    if "mask_duplicates" in inspect.signature(cls).parameters:
        return cls(mask_duplicates=mask_duplicates)
    return cls()
