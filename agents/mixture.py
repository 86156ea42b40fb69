"""The mixture-of-logits scorer (Zhai et al. 2023): P gated dot products per (query, key).

The query encoder's readout gives P query vectors q_p and P gate vectors G_p, each key has P
vectors k_p and a gate vector g_k, all of width ``dim``, and the logit is

    sum_p pi_p(query, key) q_p . k_p + b_k,   pi(query, key) = softmax_p(G_p . g_k)

With P = 1 the gate is 1 and the logit is the contrastive scorer's q . k + b_k. A key stores
P * dim + dim + 1 floats (``floats_per_key``).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch
from torch import nn

from agents.base import ScorerSpec, register
from agents.contrastive import KeyTableConfig, KeyTableScorer, check_count
from agents.multivector import MAX_VECTORS
from agents.transformer import QueryEncoder


@dataclass
class MixtureConfig(KeyTableConfig):
    """P component pairs of width ``dim`` and their per-(query, key) gates."""

    components: int = 4
    """P: (query, key) vector pairs whose dot products the gates mix (1..64)."""

    def validate(self) -> None:
        super().validate()
        check_count("components", self.components, MAX_VECTORS)


@register("mixture")
class MixtureScorer(KeyTableScorer):
    """logits = sum_p softmax_p(G_p(query) . g_k) q_p . k_p + a per-key bias."""

    Config = MixtureConfig

    def __init__(self, env: gym.Env | str | ScorerSpec, preset: str = "small", **config):
        super().__init__(env, preset, **config)
        c = self.config
        self.encoder = QueryEncoder(self.spec, c)
        self.project = nn.Linear(c.d_model, c.components * c.dim)
        self.gate = nn.Linear(c.d_model, c.components * c.dim)
        self.add_key_table(c.components)
        self.gate_embedding = nn.Parameter(self.uniform(self.spec.n_keys, c.dim))

    @property
    def floats_per_key(self) -> int:
        """The floats stored per key: P * dim component vectors, the dim gate vector, the
        bias."""
        return (self.config.components + 1) * self.config.dim + 1

    def encode_queries(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, P, dim) the query's component vectors of (B, L) ids."""
        return self.heads(tokens)[0]

    def gates(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, n_keys, P) the gates pi of (B, L) ids: each (query, key)'s sum to 1."""
        return self.heads(tokens)[1]

    def heads(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The query vectors (B, P, dim) and the gates (B, n_keys, P) of (B, L) ids."""
        readout = self.encoder(tokens)[:, 0]  # (B, d_model)
        split = (self.config.components, self.config.dim)
        queries = self.project(readout).unflatten(-1, split)  # (B, P, d)
        query_gates = self.gate(readout).unflatten(-1, split)  # (B, P, d)
        gate_logits = torch.einsum("bpd,kd->bkp", query_gates, self.gate_embedding)  # (B, K, P)
        return queries, gate_logits.softmax(dim=-1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, n_keys) logits of (B, L) ids."""
        queries, gates = self.heads(tokens)  # (B, P, d), (B, K, P)
        similarity = torch.einsum("bpd,kpd->bkp", queries, self.key_vectors())  # (B, K, P)
        return (gates * similarity).sum(dim=-1) + self.bias  # (B, n_keys)
