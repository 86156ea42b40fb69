"""The joint scorer, a cross-encoder: the key is part of the sequence the transformer reads.

Each key is one position of the sequence: a learned SCORE vector plus the embeddings of the
key's tokens (the query's token embedding; in attribute tokens, the sum of the key's
attribute tokens). The logit of (query, key) is a linear read-out of that position after the
blocks, so it is no dot product of a query vector and a key vector, and the study's ``dim``
bound does not apply.

Two exact attention forms over the same parameters:

* ``"full"``: each [query; key] sequence is read bidirectionally (the query also attends to
  the key): B * n_keys sequences.
* ``"prefix"``: the query attends only to itself, so it is encoded once per query; each key
  position attends to the query's (non-PAD) positions of the same layer and to itself. All
  keys go through one attention call per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import torch
from torch import nn

from agents.base import Scorer, ScorerSpec, register
from agents.transformer import QueryEncoder, TransformerConfig, init_weights

ATTENTIONS = ("prefix", "full")
# Tokens per chunk of [query; key] sequences in the full form: bounds the memory of a
# forward without grad (with grad, every chunk's activations are kept for backward).
FULL_CHUNK_TOKENS = 1 << 15


@dataclass
class JointConfig(TransformerConfig):
    """One transformer reading query and key together."""

    presets: ClassVar[dict[str, dict]] = {
        "small": dict(d_model=128, n_layers=2, n_heads=8, d_ff=256),
        "paper": dict(d_model=512, n_layers=4, n_heads=4, d_ff=1024),
    }

    attention: str = "prefix"
    """``"prefix"``: keys attend to the query, the query only to itself (fast: one query
    encoding); ``"full"``: query and key attend to each other (one sequence per key)."""

    def validate(self) -> None:
        super().validate()
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")


@register("joint")
class JointScorer(Scorer):
    """logits[b, k] = Linear(d_model, 1)(LN(key position of [query b; key k]))."""

    Config = JointConfig

    def __init__(self, env: gym.Env | str | ScorerSpec, preset: str = "small", **config):
        super().__init__(env, preset, **config)
        d_model = self.config.d_model
        key_tokens = torch.as_tensor(self.spec.key_tokens, dtype=torch.long)  # (n_keys, t)
        self.register_buffer("key_tokens", key_tokens, persistent=False)
        self.encoder = QueryEncoder.of(self.spec, self.config)
        self.score_token = nn.Parameter(0.02 * torch.randn(d_model))
        self.head = nn.Linear(d_model, 1)
        self.apply(init_weights)
        # Prefix form: among the key positions, each sees itself only.
        self.register_buffer("same_key", torch.eye(len(key_tokens), dtype=torch.bool), False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.config.attention == "prefix":
            return self._score_prefix(tokens)
        return self._score_full(tokens, query_sees_key=True)

    def key_positions(self) -> torch.Tensor:
        """(n_keys, d): each key's position, the SCORE vector plus its token embeddings."""
        return self.score_token + self.encoder.token_embedding(self.key_tokens).sum(dim=1)

    def _logits(self, score_states: torch.Tensor) -> torch.Tensor:
        """(..., d) final SCORE states -> (...) logits."""
        return self.head(self.encoder.ln_f(score_states)).squeeze(-1)

    def _score_prefix(self, tokens: torch.Tensor) -> torch.Tensor:
        x, attend = self.encoder.embed(tokens)  # (B, 1 + L, d), (B, 1, 1, 1 + L)
        batch = len(tokens)
        keys = self.key_positions().expand(batch, -1, -1)  # (B, n_keys, d)
        n_keys = keys.shape[1]
        mask = torch.cat(  # (B, 1, n_keys, 1 + L + n_keys)
            [attend.expand(-1, -1, n_keys, -1), self.same_key.expand(batch, 1, -1, -1)], dim=-1
        )
        *body, last = self.encoder.blocks
        for block in body:
            keys = block(keys, context=torch.cat([x, keys], dim=1), mask=mask)
            x = block(x, mask=self.encoder.self_mask(attend))
        # Nothing reads the query's last-layer output, so the last block computes keys only.
        keys = last(keys, context=torch.cat([x, keys], dim=1), mask=mask)
        return self._logits(keys)  # (B, n_keys)

    def _score_full(self, tokens: torch.Tensor, query_sees_key: bool) -> torch.Tensor:
        """Each [query; key] sequence through the blocks on its own. With
        ``query_sees_key=False`` query positions do not attend to the key: the prefix form,
        computed the slow way (a reference for it)."""
        x, attend = self.encoder.embed(tokens)  # (B, Lq, d), (B, 1, 1, Lq), Lq = 1 + L
        batch, query_len, _ = x.shape
        keys = self.key_positions()  # (n_keys, d)
        mask = self._full_mask(attend, query_sees_key)  # (B, 1, S, S), S = Lq + 1
        if self.encoder.causal:  # the query's own positions as in encoder.self_mask
            query = self.encoder.self_mask(attend)  # (B, 1, Lq, Lq)
            mask[..., :query_len, :query_len] &= query
        chunk = max(1, FULL_CHUNK_TOKENS // (batch * (query_len + 1)))
        *body, last = self.encoder.blocks
        logits = []
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]  # (c, d)
            size = len(part)
            h = torch.cat(
                [
                    x[:, None].expand(-1, size, -1, -1),
                    part[None, :, None].expand(batch, -1, -1, -1),
                ],
                dim=2,
            ).flatten(0, 1)  # (B c, S, d)
            part_mask = mask.repeat_interleave(size, dim=0)  # (B c, 1, S, S)
            for block in body:
                h = block(h, mask=part_mask)
            # As in the prefix form, the last block computes the key position only.
            scores = last(h[:, -1:], context=h, mask=part_mask[:, :, -1:])  # (B c, 1, d)
            logits.append(self._logits(scores).view(batch, size))  # (B, c)
        return torch.cat(logits, dim=1)  # (B, n_keys)

    @staticmethod
    def _full_mask(attend: torch.Tensor, query_sees_key: bool) -> torch.Tensor:
        """(B, 1, 1, Lq) query attend mask -> (B, 1, S, S) mask of [query; key] sequences:
        every position sees the non-PAD query positions; the key position sees itself, and
        query positions see it only if ``query_sees_key``."""
        columns = torch.cat([attend, attend.new_ones(*attend.shape[:-1], 1)], dim=-1)
        is_key = torch.arange(columns.shape[-1], device=attend.device) >= attend.shape[-1]
        allowed = is_key[:, None] | ~is_key[None, :] | query_sees_key  # (S, S) row -> column
        return columns & allowed
