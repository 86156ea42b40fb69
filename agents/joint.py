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
  position attends to the query's (non-PAD) positions of the same layer and to itself, so
  the query's keys and values serve both, and a key never computes attention to another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from agents.base import Scorer, ScorerSpec, register
from agents.transformer import QueryEncoder, TransformerConfig, initialise

ATTENTIONS = ("prefix", "full")
# Tokens per chunk of [query; key] sequences in the full form: bounds the memory of a
# forward without grad (with grad, every chunk's activations are kept for backward).
FULL_CHUNK_TOKENS = 1 << 15


@dataclass
class JointConfig(TransformerConfig):
    """One transformer reading query and key together."""

    presets: ClassVar[dict[str, dict]] = {
        "small": {},  # TransformerConfig's defaults
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
        self.encoder = QueryEncoder(self.spec, self.config)
        self.score_token = nn.Parameter(0.02 * torch.randn(d_model))
        self.head = nn.Linear(d_model, 1)
        initialise(self, self.config.init)

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
        x, attend = self.encoder.embed(tokens)  # (B, Lq, d), (B, 1, 1, Lq), Lq = 1 + L
        query_mask = self.encoder.self_mask(attend)
        # Before the first block the key positions do not depend on the query: one row each.
        keys = self.key_positions()[None]  # (1, n_keys, d), then (B, n_keys, d)
        blocks = self.encoder.blocks
        for depth, block in enumerate(blocks):
            h = block.attention_input(x)  # (B, Lq, d)
            # The query's keys and values, read both by its own positions and by the keys'.
            k, v = block.keys_values(h)  # (B, heads, Lq, dh)
            keys = block.finish(keys, self._key_attention(block, keys, k, v, attend))
            # Nothing reads the query's last-layer output.
            if depth < len(blocks) - 1:
                y = F.scaled_dot_product_attention(block.queries(h), k, v, attn_mask=query_mask)
                x = block.finish(x, y)
        return self._logits(keys)  # (B, n_keys)

    @staticmethod
    def _key_attention(block, keys, query_k, query_v, attend) -> torch.Tensor:
        """Attention of each key position (keys (B or 1, n_keys, d)) over the query's non-PAD
        positions (their keys and values (B, heads, Lq, dh), ``attend`` (B, 1, 1, Lq)) and
        itself, never over the other keys: (B, heads, n_keys, dh)."""
        h = block.attention_input(keys)
        q, (k, v) = block.queries(h), block.keys_values(h)  # (B or 1, heads, n_keys, dh)
        scale = q.shape[-1] ** -0.5
        to_query = (q @ query_k.transpose(-1, -2)).masked_fill(~attend, float("-inf"))
        to_self = (q * k).sum(dim=-1, keepdim=True).expand(*to_query.shape[:-1], 1)
        weights = torch.softmax(scale * torch.cat([to_query, to_self], dim=-1), dim=-1)
        return weights[..., :-1] @ query_v + weights[..., -1:] * v  # (B, heads, n_keys, dh)

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
