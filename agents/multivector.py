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
import torch.nn.functional as F
from torch import nn

from agents.base import ScorerSpec, register
from agents.contrastive import KeyTableConfig, KeyTableScorer, check_count
from agents.transformer import QueryEncoder, TransformerConfig

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


class MultiReadoutEncoder(QueryEncoder):
    """QueryEncoder read at m readout positions: (B, L) ids -> (B, m, d).

    ``readout = "first"``: m learned vectors before the tokens (positions 0..m-1), each
    reading every token; ``"last"``: after the last token. With m = 1 it computes what
    QueryEncoder does (its readout is then a (1, d) parameter).
    """

    def __init__(self, spec: ScorerSpec, config: TransformerConfig, n_readouts: int):
        super().__init__(spec, config)
        d_model, self.n_readouts = config.d_model, n_readouts
        self.position_embedding = nn.Embedding(spec.max_len + n_readouts, d_model)
        self.readout = nn.Parameter(0.02 * torch.randn(n_readouts, d_model))

    def embed(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids -> the first block's input (B, m + L, d) and the attend mask
        (B, 1, 1, m + L): True at the readouts and at every non-PAD token."""
        batch, length = tokens.shape
        if length > self.max_len:
            raise ValueError(f"queries hold at most {self.max_len} tokens, got {length}")
        m = self.n_readouts
        x = self.token_embedding(tokens)  # (B, L, d)
        readouts = self.readout.expand(batch, m, -1)  # (B, m, d)
        is_token = tokens != self.pad_id  # (B, L)
        if self.read_last:
            slot = torch.arange(length + m, device=tokens.device) - is_token.sum(1, keepdim=True)
            at_readout = (slot >= 0) & (slot < m)  # (B, m + L)
            which = slot.clamp(0, m - 1)[..., None].expand(-1, -1, x.shape[-1])
            x = torch.where(
                at_readout[..., None], readouts.gather(1, which), F.pad(x, (0, 0, 0, m))
            )
            attend = F.pad(is_token, (0, m)) | at_readout
        else:
            x = torch.cat([readouts, x], dim=1)
            attend = F.pad(is_token, (m, 0), value=True)
        x = x + self.position_embedding.weight[: m + length]  # (B, m + L, d)
        return x, attend[:, None, None, :]

    def readout_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, m) the readouts' positions: 0..m-1, or after the query."""
        offsets = torch.arange(self.n_readouts, device=tokens.device)
        start = (tokens != self.pad_id).sum(dim=1) if self.read_last else 0 * tokens[:, 0]
        return start[:, None] + offsets  # (B, m)

    def self_mask(self, attend: torch.Tensor) -> torch.Tensor:
        """``attend`` (B, 1, 1, m + L), or with ``causal`` the (B, 1, m + L, m + L) mask where
        position i sees positions up to i (and readouts that come first see all)."""
        if not self.causal:
            return attend
        length = attend.shape[-1]
        earlier = torch.ones(length, length, dtype=torch.bool, device=attend.device).tril()
        if not self.read_last:
            earlier[: self.n_readouts] = True
        return attend & earlier

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, m, d) the readouts after the last block (and the final LayerNorm, pre-LN)."""
        x, attend = self.embed(tokens)  # (B, m + L, d)
        mask = self.self_mask(attend)
        *body, last = self.blocks
        for block in body:
            x = block(x, mask=mask)
        rows = torch.arange(len(x), device=x.device)[:, None]
        at = self.readout_positions(tokens)  # (B, m)
        if mask.shape[-2] > 1:  # causal: each readout's own row of the mask
            mask = mask[rows, :, at].transpose(1, 2)  # (B, 1, m, m + L)
        readouts = last(x[rows, at], context=x, mask=mask)  # (B, m, d)
        return self.ln_f(readouts)


@register("multivector")
class MultiVectorScorer(KeyTableScorer):
    """logits = sum over query vectors of the max over the key's vectors of q_i . k_j, plus a
    per-key bias (ColBERT's MaxSim)."""

    Config = MultiVectorConfig

    def __init__(self, env: gym.Env | str | ScorerSpec, preset: str = "small", **config):
        super().__init__(env, preset, **config)
        c = self.config
        self.encoder = MultiReadoutEncoder(self.spec, c, c.vectors)
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
