"""The multi-vector scorer: ColBERT's late interaction (MaxSim) between the query and a key.

The query encoder reads ``vectors`` (m) readout positions into m query vectors, each key has
``key_vectors_per_key`` (m_k) learned vectors, all of width ``dim``, and the logit is

    sum_i max_j q_i . k_j + b_k

With m = m_k = 1 it is the contrastive scorer's q . k + b_k; with more vectors a key stores
m_k * dim + 1 floats (``floats_per_key``) and the score is no longer a single dot product.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch
from torch import nn

from agents.base import ScorerSpec, register
from agents.contrastive import KeyTableConfig, KeyTableScorer, check_count
from agents.transformer import QueryEncoder

MAX_VECTORS = 64


@dataclass
class MultiVectorConfig(KeyTableConfig):
    """m query vectors from m readouts, m_k vectors per key, all of width ``dim``."""

    vectors: int = 4
    """m: query vectors, read at m learned readout positions (1..64)."""
    key_vectors_per_key: int = 4
    """m_k: learned vectors per key (1..64)."""

    def validate(self) -> None:
        super().validate()
        check_count("vectors", self.vectors, MAX_VECTORS)
        check_count("key_vectors_per_key", self.key_vectors_per_key, MAX_VECTORS)


@register("multivector")
class MultiVectorScorer(KeyTableScorer):
    """logits = sum over query vectors of the max over the key's vectors of q_i . k_j, plus a
    per-key bias (ColBERT's MaxSim)."""

    Config = MultiVectorConfig

    def __init__(self, env: gym.Env | str | ScorerSpec, preset: str = "small", **config):
        super().__init__(env, preset, **config)
        c = self.config
        self.encoder = QueryEncoder(self.spec, c, n_readouts=c.vectors)
        self.project = nn.Linear(c.d_model, c.dim)
        self.add_key_table(c.key_vectors_per_key)

    @property
    def floats_per_key(self) -> int:
        """The floats stored per key: m_k * dim vectors and the bias."""
        return self.config.key_vectors_per_key * self.config.dim + 1

    def encode_queries(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, m, dim) query vectors of (B, L) ids."""
        return self.project(self.encoder(tokens))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, n_keys) logits of (B, L) ids."""
        queries = self.encode_queries(tokens)  # (B, m, dim)
        similarity = torch.einsum("bid,kjd->bkij", queries, self.key_vectors())  # (B, K, m, m_k)
        return similarity.amax(dim=-1).sum(dim=-1) + self.bias  # (B, n_keys)
