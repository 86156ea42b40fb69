"""The contrastive scorer: a query vector dotted with a learned vector per key.

Every (query, key) logit is ``q . k + b_k`` with ``q, k`` in R^dim, so the set of keys a
query can rank above a threshold is a half-space's worth of the key vectors: with more keys
than about ``dim``, some subsets cannot be separated. That bound is what the study measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from agents.base import Scorer, ScorerSpec, register
from agents.transformer import STUDY_ENCODER, QueryEncoder, TransformerConfig, initialise

SIMILARITIES = ("dot", "cosine")
KEY_BIAS_INITS = ("zeros", "uniform")
MAX_DIM = 1024
PAPER_PRESET = dict(
    d_model=512, n_layers=8, n_heads=8, d_ff=1024, **STUDY_ENCODER, key_bias_init="uniform"
)


def check_count(name: str, value, high: int) -> None:
    """Returns None; ValueError naming ``name`` unless ``value`` is an int in 1..high."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValueError(f"{name} must be an int in 1..{high}, got {value!r}")


@dataclass
class KeyTableConfig(TransformerConfig):
    """A query encoder and a table of key vectors of width ``dim``: the fields every
    key-table scorer shares (contrastive, multi-vector, mixture)."""

    presets: ClassVar[dict[str, dict]] = {
        "small": {},  # TransformerConfig's defaults
        "paper": PAPER_PRESET,
    }

    dim: int = 16
    """Width of the query and key vectors (1..1024): the bound under study."""
    key_bias_init: str = "zeros"
    """The key bias's start: ``zeros``, or ``uniform`` in +-sqrt(1 / dim) like the key
    table (the study's)."""

    def validate(self) -> None:
        super().validate()
        check_count("dim", self.dim, MAX_DIM)
        if self.key_bias_init not in KEY_BIAS_INITS:
            raise ValueError(
                f"key_bias_init must be one of {KEY_BIAS_INITS}, got {self.key_bias_init!r}"
            )


@dataclass
class ContrastiveConfig(KeyTableConfig):
    """A query encoder and a table of key vectors, both of width ``dim``."""

    presets: ClassVar[dict[str, dict]] = {
        "small": {},  # TransformerConfig's defaults
        "paper": PAPER_PRESET,
    }

    similarity: str = "dot"
    """``"dot"``: q . k; ``"cosine"``: cos(q, k) times a learned temperature."""

    def validate(self) -> None:
        super().validate()
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}")


class KeyTableScorer(Scorer):
    """A query encoder's scorer with a table of vectors of width ``dim`` per key (uniform in
    +-sqrt(1 / dim)) and a per-key bias. A subclass builds its layers, then calls
    ``add_key_table``."""

    def add_key_table(self, *shape: int) -> None:
        """Returns None: initialises the layers built so far by the config's scheme, then adds
        the (n_keys, *shape, dim) key table and the (n_keys,) bias, by ``key_bias_init``."""
        c = self.config
        initialise(self, c.init)
        self.bound = math.sqrt(1 / c.dim)
        self.key_embedding = nn.Parameter(self.uniform(self.spec.n_keys, *shape, c.dim))
        self.bias = nn.Parameter(torch.zeros(self.spec.n_keys))
        if c.key_bias_init == "uniform":
            nn.init.uniform_(self.bias, -self.bound, self.bound)

    def uniform(self, *shape: int) -> torch.Tensor:
        """A tensor of ``shape``, uniform in +-sqrt(1 / dim)."""
        return torch.empty(*shape).uniform_(-self.bound, self.bound)

    def key_vectors(self) -> torch.Tensor:
        """(n_keys, ..., dim) the key table."""
        return self.key_embedding


@register("contrastive")
class ContrastiveScorer(KeyTableScorer):
    """logits = encode_queries(tokens) @ key_vectors().T (times the temperature, for cosine)
    + a per-key bias."""

    Config = ContrastiveConfig
    contrastive = True

    def __init__(self, env: gym.Env | str | ScorerSpec, preset: str = "small", **config):
        super().__init__(env, preset, **config)
        c = self.config
        self.encoder = QueryEncoder(self.spec, c)
        self.project = nn.Linear(c.d_model, c.dim)
        self.add_key_table()
        self.cosine = c.similarity == "cosine"
        if self.cosine:  # only then: an unused parameter would stall DDP
            self.log_temperature = nn.Parameter(torch.tensor(math.log(10.0)))

    def encode_queries(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, dim) query vectors (unit length for cosine)."""
        queries = self.project(self.encoder(tokens)[:, 0])  # (B, dim)
        return F.normalize(queries, dim=-1) if self.cosine else queries

    def key_vectors(self) -> torch.Tensor:
        """(n_keys, dim) key vectors (unit length for cosine)."""
        keys = super().key_vectors()
        return F.normalize(keys, dim=-1) if self.cosine else keys

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.encode_queries(tokens) @ self.key_vectors().T  # (B, n_keys)
        if self.cosine:
            logits = logits * self.log_temperature.exp()
        return logits + self.bias
