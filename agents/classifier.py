"""The classifier scorer, the study's non-contrastive baseline: a query encoder and a linear
layer with one output per key.

Its logits are also ``q . w_k + b_k``, but with ``q`` of width ``d_model`` rather than a
chosen ``dim``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import torch
from torch import nn

from agents.base import Scorer, ScorerSpec, register
from agents.transformer import STUDY_ENCODER, QueryEncoder, TransformerConfig, initialise


@dataclass
class ClassifierConfig(TransformerConfig):
    """A query encoder read out by a linear layer over the keys."""

    presets: ClassVar[dict[str, dict]] = {
        "small": {},  # TransformerConfig's defaults
        "paper": dict(d_model=512, n_layers=4, n_heads=4, d_ff=1024, **STUDY_ENCODER),
    }


@register("classifier")
class ClassifierScorer(Scorer):
    """logits = Linear(d_model, n_keys)(query readout)."""

    Config = ClassifierConfig

    def __init__(self, env: gym.Env | str | ScorerSpec, preset: str = "small", **config):
        super().__init__(env, preset, **config)
        self.encoder = QueryEncoder(self.spec, self.config)
        self.head = nn.Linear(self.config.d_model, self.spec.n_keys)
        initialise(self, self.config.init)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens)[:, 0])  # (B, n_keys)
