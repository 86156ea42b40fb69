"""Transformer pieces shared by the scorers, nanoGPT style: pre-LayerNorm blocks, GELU MLPs,
no dropout, and the study's BERT-like initialisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from agents.base import ScorerSpec


@dataclass
class TransformerConfig:
    """The sizes of a query encoder (the defaults are the ``small`` preset)."""

    d_model: int = 128
    """Width of the residual stream."""
    n_layers: int = 2
    """Number of transformer blocks."""
    n_heads: int = 8
    """Attention heads per block; must divide ``d_model``."""
    d_ff: int = 256
    """Hidden width of each block's MLP."""
    causal: bool = False
    """Query tokens attend only to themselves and earlier tokens (the readout, which comes
    first, still reads them all): a left-to-right encoder, as the study's for the pair games."""

    def validate(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "d_ff"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")


def init_weights(module: nn.Module) -> None:
    """BERT-like init (use with ``model.apply``): Linear and Embedding weights N(0, 0.02),
    biases 0, LayerNorm weight 1 and bias 0."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln_1 = nn.LayerNorm(d_model)
        # Queries and keys/values are separate projections so that x can attend to a context
        # other than itself (the joint scorer's key streams attend to the query).
        self.to_query = nn.Linear(d_model, d_model)
        self.to_key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, Lx, d) attends to itself, or to ``context`` (B, Lc, d) when given. ``mask``:
        bool, True = may attend, broadcastable to (B, heads, Lx, Lc)."""
        h = self.ln_1(x)  # (B, Lx, d)
        k, v = self.keys_values(h if context is None else self.ln_1(context))  # (B, heads, Lc, dh)
        y = F.scaled_dot_product_attention(self.queries(h), k, v, attn_mask=mask)
        return self.finish(x, y)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)  # (B, heads, L, dh)

    def queries(self, h: torch.Tensor) -> torch.Tensor:
        """LN'd (B, L, d) -> attention queries (B, heads, L, dh)."""
        return self.split_heads(self.to_query(h))

    def keys_values(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LN'd (B, L, d) -> attention keys and values, each (B, heads, L, dh)."""
        return tuple(map(self.split_heads, self.to_key_value(h).chunk(2, dim=-1)))

    def finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The block's residual stream x (B, L, d) after attention's output y (B, heads, L, dh)."""
        x = x + self.out(y.transpose(1, 2).flatten(2))
        return x + self.mlp(self.ln_2(x))  # (B, L, d)


class QueryEncoder(nn.Module):
    """Reads a query (B, L) of token ids into a readout vector (B, d).

    The sequence is a learned readout vector (position 0) then the query's tokens, with
    learned positions. No position attends to PAD, so trailing PAD changes nothing: a batch
    may be cut to its longest query.
    """

    def __init__(
        self,
        spec: ScorerSpec,
        d_model: int,
        n_layers: int,
        n_heads: int,
        d_ff: int,
        causal: bool = False,
    ):
        super().__init__()
        self.pad_id, self.max_len, self.causal = spec.pad_id, spec.max_len, causal
        self.token_embedding = nn.Embedding(spec.vocab_size, d_model)
        self.position_embedding = nn.Embedding(spec.max_len + 1, d_model)
        self.readout = nn.Parameter(0.02 * torch.randn(d_model))
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)

    @classmethod
    def of(cls, spec: ScorerSpec, config: TransformerConfig) -> QueryEncoder:
        return cls(
            spec, config.d_model, config.n_layers, config.n_heads, config.d_ff, config.causal
        )

    def embed(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids -> the first block's input (B, 1 + L, d) and the attend mask
        (B, 1, 1, 1 + L): True at the readout and at every non-PAD token."""
        batch, length = tokens.shape
        if length > self.max_len:
            raise ValueError(f"queries hold at most {self.max_len} tokens, got {length}")
        readout = self.readout.expand(batch, 1, -1)  # (B, 1, d)
        x = torch.cat([readout, self.token_embedding(tokens)], dim=1)  # (B, 1 + L, d)
        x = x + self.position_embedding.weight[: 1 + length]
        # The readout is always attendable, so no row of the mask is all False.
        attend = F.pad(tokens != self.pad_id, (1, 0), value=True)  # (B, 1 + L)
        return x, attend[:, None, None, :]

    def self_mask(self, attend: torch.Tensor) -> torch.Tensor:
        """The query's own attention: ``attend`` (B, 1, 1, 1 + L), or with ``causal`` the
        (B, 1, 1 + L, 1 + L) mask where token i sees positions up to i and the readout all."""
        if not self.causal:
            return attend
        length = attend.shape[-1]
        earlier = torch.ones(length, length, dtype=torch.bool, device=attend.device).tril()
        earlier[0] = True  # the readout reads every token
        return attend & earlier

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, attend = self.embed(tokens)  # (B, 1 + L, d)
        mask = self.self_mask(attend)
        *body, last = self.blocks
        for block in body:
            x = block(x, mask=mask)
        # Only the readout is read, so the last block computes no other position.
        readout = last(x[:, :1], context=x, mask=attend)  # (B, 1, d)
        return self.ln_f(readout[:, 0])  # (B, d)
