"""Transformer pieces shared by the scorers: nanoGPT-style blocks (pre-LayerNorm, GELU, no
dropout, BERT-like initialisation) by default, and as options the study's own encoder
(post-LayerNorm, ReLU, its LayerNorm, PyTorch's default initialisation, a causal encoder
read at an EOS position)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from agents.base import ScorerSpec

CHOICES = {
    "norm": ("pre", "post"),
    "activation": ("gelu", "relu"),
    "layer_norm": ("standard", "study"),
    "init": ("bert", "study"),
    "readout": ("first", "last"),
}
STUDY_POSITION_STD = 0.03
# The study's encoder (its code, SecondPass-CardGame-experiments/transformer.py): the paper
# presets of the contrastive scorer and the classifier, the study's two models.
STUDY_ENCODER = dict(norm="post", activation="relu", layer_norm="study", init="study")


@dataclass
class TransformerConfig:
    """The sizes and form of a query encoder. Its defaults are every scorer's ``small``
    preset: they train on a CPU in minutes."""

    d_model: int = 128
    """Width of the residual stream."""
    n_layers: int = 2
    """Number of transformer blocks."""
    n_heads: int = 8
    """Attention heads per block; must divide ``d_model``."""
    d_ff: int = 256
    """Hidden width of each block's MLP."""
    causal: bool = False
    """Query tokens attend only to themselves and earlier tokens (a readout that comes first
    still reads them all): a left-to-right encoder, as the study's for the pair games."""
    readout: str = "first"
    """Where the query is read: ``first``, a learned vector before the tokens (SOS);
    ``last``, a learned vector after the last token (EOS; the study's, with ``causal``)."""
    norm: str = "pre"
    """``pre``: x + f(LN(x)) and a final LayerNorm (GPT-2's); ``post``: LN(x + f(x)) (the
    original transformer's and the study's)."""
    activation: str = "gelu"
    """The MLP's nonlinearity: ``gelu`` or ``relu`` (the study's)."""
    layer_norm: str = "standard"
    """``standard`` (torch's LayerNorm) or ``study``: the study's gain * (x - mean / (std +
    1e-6)) + bias, which shifts x by its mean over its std but does not normalise it."""
    init: str = "bert"
    """``bert``: Linear and Embedding weights N(0, 0.02), biases 0; ``study``: PyTorch's
    default Linear init, token embeddings (and the readout vector) N(0, 1), positions
    N(0, 0.03^2)."""

    def validate(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "d_ff"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if not isinstance(self.causal, bool):
            raise ValueError(f"causal must be true or false, got {self.causal!r}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")


def init_weights(module: nn.Module) -> None:
    """BERT-like init (use with ``model.apply``): Linear and Embedding weights N(0, 0.02),
    biases 0, LayerNorm weight 1 and bias 0."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, (nn.LayerNorm, StudyLayerNorm)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def initialise(model: nn.Module, scheme: str) -> None:
    """Initialise every layer of ``model`` by ``TransformerConfig.init``'s ``scheme``. A
    scorer calls it once its layers are built, then sets its own parameters (a key table)."""
    if scheme == "bert":
        model.apply(init_weights)
        return
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding, nn.LayerNorm, StudyLayerNorm)):
            module.reset_parameters()  # torch's defaults: N(0, 1) for an Embedding
    for module in model.modules():
        if isinstance(module, QueryEncoder):
            nn.init.normal_(module.position_embedding.weight, std=STUDY_POSITION_STD)
            nn.init.normal_(module.readout)  # a token like the others


class StudyLayerNorm(nn.Module):
    """The study's "LayerNorm": weight * (x - mean / (std + eps)) + bias, with the unbiased
    std. As written it subtracts mean / std from x rather than normalising x; kept so that the
    study's model can be trained exactly."""

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        std = x.std(dim=-1, keepdim=True)
        return self.weight * (x - mean / (std + self.eps)) + self.bias


def layer_norm(config: TransformerConfig) -> nn.Module:
    if config.layer_norm == "study":
        return StudyLayerNorm(config.d_model)
    return nn.LayerNorm(config.d_model)


class Block(nn.Module):
    """A transformer block. Pre-LN: x + attention(LN(x)), then x + MLP(LN(x)); post-LN:
    LN(x + attention(x)), then LN(x + MLP(x))."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        d_model, d_ff = config.d_model, config.d_ff
        self.n_heads, self.pre_norm = config.n_heads, config.norm == "pre"
        self.ln_1 = layer_norm(config)
        # Queries and keys/values are separate projections so that x can attend to a context
        # other than itself (the joint scorer's key streams attend to the query).
        self.to_query = nn.Linear(d_model, d_model)
        self.to_key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ln_2 = layer_norm(config)
        activation = nn.ReLU() if config.activation == "relu" else nn.GELU()
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), activation, nn.Linear(d_ff, d_model))

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, Lx, d) attends to itself, or to ``context`` (B, Lc, d) when given. ``mask``:
        bool, True = may attend, broadcastable to (B, heads, Lx, Lc)."""
        h = self.attention_input(x)  # (B, Lx, d)
        c = h if context is None else self.attention_input(context)  # (B, Lc, d)
        k, v = self.keys_values(c)  # (B, heads, Lc, dh)
        y = F.scaled_dot_product_attention(self.queries(h), k, v, attn_mask=mask)
        return self.finish(x, y)

    def attention_input(self, x: torch.Tensor) -> torch.Tensor:
        """What attention reads of the residual stream x: LN(x) pre-LN, x itself post-LN."""
        return self.ln_1(x) if self.pre_norm else x

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)  # (B, heads, L, dh)

    def queries(self, h: torch.Tensor) -> torch.Tensor:
        """Attention input (B, L, d) -> attention queries (B, heads, L, dh)."""
        return self.split_heads(self.to_query(h))

    def keys_values(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention input (B, L, d) -> attention keys and values, each (B, heads, L, dh)."""
        return tuple(map(self.split_heads, self.to_key_value(h).chunk(2, dim=-1)))

    def finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The block's residual stream x (B, L, d) after attention's output y (B, heads, L, dh)."""
        x = x + self.out(y.transpose(1, 2).flatten(2))
        if self.pre_norm:
            return x + self.mlp(self.ln_2(x))  # (B, L, d)
        x = self.ln_1(x)
        return self.ln_2(x + self.mlp(x))


class QueryEncoder(nn.Module):
    """Reads a query (B, L) of token ids into m readout vectors (B, m, d).

    The sequence is the query's tokens with m learned readout vectors before them (``readout
    = "first"``, positions 0..m-1) or after the last one (``"last"``), and learned positions;
    each readout reads every token. Most scorers read one (m = 1); the multi-vector scorer
    reads several. Queries are left-aligned; no position attends to PAD, so trailing PAD
    changes nothing: a batch may be cut to its longest query.
    """

    def __init__(self, spec: ScorerSpec, config: TransformerConfig, n_readouts: int = 1):
        super().__init__()
        d_model = config.d_model
        self.pad_id, self.max_len, self.n_readouts = spec.pad_id, spec.max_len, n_readouts
        self.causal, self.read_last = config.causal, config.readout == "last"
        self.token_embedding = nn.Embedding(spec.vocab_size, d_model)
        self.position_embedding = nn.Embedding(spec.max_len + n_readouts, d_model)
        self.readout = nn.Parameter(0.02 * torch.randn(n_readouts, d_model))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        # Post-LN blocks end normalised already.
        self.ln_f = layer_norm(config) if config.norm == "pre" else nn.Identity()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints written before the encoder read several readouts hold one (d,) vector.
        readout = state_dict.get(prefix + "readout")
        if readout is not None and readout.dim() == 1:
            state_dict[prefix + "readout"] = readout[None]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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
        # The readouts are always attendable, so no row of the mask is all False.
        x = x + self.position_embedding.weight[: m + length]  # (B, m + L, d)
        return x, attend[:, None, None, :]

    def readout_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, m) the readouts' positions: 0..m-1, or after the query."""
        offsets = torch.arange(self.n_readouts, device=tokens.device)
        if not self.read_last:
            return offsets.expand(len(tokens), -1)
        return (tokens != self.pad_id).sum(dim=1, keepdim=True) + offsets  # (B, m)

    def self_mask(self, attend: torch.Tensor) -> torch.Tensor:
        """The query's own attention: ``attend`` (B, 1, 1, m + L), or with ``causal`` the
        (B, 1, m + L, m + L) mask where position i sees positions up to i (and readouts that
        come first see all)."""
        if not self.causal:
            return attend
        length = attend.shape[-1]
        earlier = torch.ones(length, length, dtype=torch.bool, device=attend.device).tril()
        if not self.read_last:
            earlier[: self.n_readouts] = True  # the readouts read every token
        return attend & earlier

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, m, d) the readouts after the last block (and the final LayerNorm, pre-LN)."""
        x, attend = self.embed(tokens)  # (B, m + L, d)
        mask = self.self_mask(attend)
        *body, last = self.blocks
        for block in body:
            x = block(x, mask=mask)
        # Only the readouts are read, so the last block computes no other position.
        rows = torch.arange(len(x), device=x.device)[:, None]
        at = self.readout_positions(tokens)  # (B, m)
        if mask.shape[-2] > 1:  # causal: each readout's own row of the mask
            mask = mask[rows, :, at].transpose(1, 2)  # (B, 1, m, m + L)
        readouts = last(x[rows, at], context=x, mask=mask)  # (B, m, d)
        return self.ln_f(readouts)
