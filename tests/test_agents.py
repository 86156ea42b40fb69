"""The scorer agents: shapes and dtypes on every deck and token mode, configs and presets, the
contrastive scorer's dot-product form, the joint scorer's two attention forms, independence
of the other queries in a batch and of trailing PAD, the registry, and gradient flow."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import agents
from agents import ScorerSpec

BUILT_INS = ("classifier", "contrastive", "joint")
TINY = dict(d_model=32, n_layers=2, n_heads=2, d_ff=64)  # fast, still multi-head multi-layer
CASES = [
    (env_id, tokens)
    for env_id in ("SetUnion27-v0", "SetClassic81-v0")
    for tokens in ("card", "attribute")
]
VARIANTS = [  # (agent, config): every built-in and every option that changes its forward
    ("classifier", {}),
    ("contrastive", {}),
    ("contrastive", {"similarity": "cosine"}),
    ("joint", {}),
    ("joint", {"attention": "full"}),
]


def queries(env_id: str, tokens: str = "card", n: int = 4, seed: int = 0) -> torch.Tensor:
    """(n, max_len) query token ids of an env."""
    game = gym.make(env_id, tokens=tokens).unwrapped.game
    batch = game.sample(n, np.random.default_rng(seed), split=None, tokens=tokens)
    return torch.as_tensor(batch.tokens)


@pytest.fixture(scope="module")
def specs():
    return {case: ScorerSpec.of(case[0], tokens=case[1]) for case in CASES}


def make(name: str, env, seed: int = 0, **config) -> agents.Scorer:
    torch.manual_seed(seed)
    return agents.make(name, env, **{**TINY, **config})


@pytest.mark.parametrize("name, config", VARIANTS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: "-".join(case))
def test_logits_shape_dtype_and_bf16_autocast(name, config, case, specs):
    spec = specs[case]
    tokens = queries(*case)
    scorer = make(name, spec, **config)
    logits = scorer(tokens)
    assert logits.shape == (len(tokens), spec.n_keys)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = scorer(tokens)
    assert low.shape == logits.shape and torch.isfinite(low.float()).all()


def test_contrastive_logits_are_dot_products():
    tokens = queries("SetUnion27-v0")
    scorer = make("contrastive", "SetUnion27-v0", dim=8)
    with torch.no_grad():
        nn.init.normal_(scorer.bias)  # a bias that is not all zero must be added too
        queries_, keys = scorer.encode_queries(tokens), scorer.key_vectors()
        assert queries_.shape == (len(tokens), 8) and keys.shape == (27, 8)
        expected = queries_ @ keys.T + scorer.bias
        torch.testing.assert_close(scorer(tokens), expected)


def test_contrastive_cosine():
    tokens = queries("SetUnion27-v0")
    scorer = make("contrastive", "SetUnion27-v0", dim=8, similarity="cosine")
    with torch.no_grad():
        queries_, keys = scorer.encode_queries(tokens), scorer.key_vectors()
        torch.testing.assert_close(queries_.norm(dim=1), torch.ones(len(tokens)))
        torch.testing.assert_close(keys.norm(dim=1), torch.ones(27))
        assert scorer.log_temperature.item() == pytest.approx(math.log(10))
        expected = 10 * queries_ @ keys.T + scorer.bias
        torch.testing.assert_close(scorer(tokens), expected)
        assert scorer(tokens).abs().max() <= 10 + 1e-4


@pytest.mark.parametrize("dim", [1, 1024])
def test_contrastive_dim_range_and_key_init(dim):
    scorer = make("contrastive", "SetUnion27-v0", dim=dim)
    assert scorer.key_vectors().shape == (27, dim)
    weights = scorer.key_embedding.detach()
    bound = math.sqrt(1 / dim)
    assert weights.abs().max() <= bound
    assert weights.abs().max() > 0.5 * bound  # uniform over the range, not N(0, 0.02)
    assert (scorer.bias == 0).all()


@pytest.mark.parametrize(
    "name, bad",
    [
        ("contrastive", {"dim": 0}),
        ("contrastive", {"dim": 1025}),
        ("contrastive", {"similarity": "l2"}),
        ("contrastive", {"d_model": 30, "n_heads": 4}),
        ("classifier", {"n_layers": 0}),
        ("classifier", {"d_ff": -1}),
        ("joint", {"attention": "causal"}),
        ("joint", {"no_such_field": 1}),
    ],
)
def test_bad_config_raises(name, bad):
    with pytest.raises(ValueError):
        agents.make(name, "SetUnion27-v0", **bad)


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match="preset"):
        agents.make("contrastive", "SetUnion27-v0", preset="huge")


def test_presets_and_overrides():
    paper = agents.make("contrastive", "SetUnion27-v0", preset="paper", n_layers=1, dim=4)
    assert (paper.config.d_model, paper.config.n_layers, paper.config.dim) == (512, 1, 4)
    assert len(paper.encoder.blocks) == 1
    small = agents.make("joint", "SetUnion27-v0")
    assert (small.config.d_model, small.config.attention) == (128, "prefix")


def test_paper_sizes():
    counts = {
        name: agents.make(name, "SetUnion27-v0", preset="paper").n_parameters()
        for name in BUILT_INS
    }
    for name in ("classifier", "joint"):
        assert 0.4 <= counts[name] / counts["contrastive"] <= 0.6, counts


@pytest.mark.parametrize("case", CASES, ids=lambda case: "-".join(case))
def test_joint_prefix_is_full_without_query_attending_to_key(case, specs):
    tokens = queries(*case)
    scorer = make("joint", specs[case])
    with torch.no_grad():
        prefix = scorer(tokens)
        reference = scorer._score_full(tokens, query_sees_key=False)
        full = scorer._score_full(tokens, query_sees_key=True)
    torch.testing.assert_close(prefix, reference, rtol=1e-5, atol=1e-5)
    assert (full - prefix).abs().max() > 1e-4  # a different function of the same parameters


def test_joint_full_attention_uses_full_form():
    tokens = queries("SetUnion27-v0")
    scorer = make("joint", "SetUnion27-v0", attention="full")
    with torch.no_grad():
        torch.testing.assert_close(scorer(tokens), scorer._score_full(tokens, True))


@pytest.mark.parametrize("name, config", VARIANTS)
def test_logits_independent_of_batch_and_trailing_pad(name, config):
    # Shatter queries are explicit subsets of varying length, so rows differ in their PAD.
    tokens = queries("SetShatter27-v0", n=8, seed=1)
    scorer = make(name, "SetShatter27-v0", **config).eval()
    with torch.no_grad():
        batch = scorer(tokens)
        alone = torch.cat([scorer(row[None]) for row in tokens])
        used = int((tokens != 0).sum(dim=1).max())
        assert used < tokens.shape[1]
        trimmed = scorer(tokens[:, :used])
    torch.testing.assert_close(alone, batch, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(trimmed, batch, rtol=1e-5, atol=1e-5)


def test_longer_queries_than_the_env_raise():
    scorer = make("classifier", "SetClassic27-v0")
    with pytest.raises(ValueError, match="at most"):
        scorer(torch.ones(1, 3, dtype=torch.long))


@pytest.mark.parametrize("name, config", VARIANTS)
def test_gradients_reach_every_parameter(name, config):
    scorer = make(name, "SetUnion27-v0", **config)
    scorer(queries("SetUnion27-v0")).sum().backward()
    for parameter_name, parameter in scorer.named_parameters():
        assert parameter.grad is not None, parameter_name  # DDP needs no unused parameters
        assert parameter.grad.abs().sum() > 0, parameter_name


def test_built_from_env_id_env_or_spec():
    env = gym.make("SetUnion27-v0", tokens="attribute")
    spec = ScorerSpec.of(env)
    assert spec.key_tokens.shape == (27, 3) and spec.max_len == 55
    from_id = agents.make("joint", "SetUnion27-v0")
    assert from_id.spec.key_tokens.shape == (27, 1)
    for source in (env, spec):
        scorer = agents.make("joint", source)
        assert scorer.spec.vocab_size == len(env.unwrapped.vocab)
        np.testing.assert_array_equal(scorer.key_tokens.numpy(), spec.key_tokens)


@agents.register("test_constant")
class ConstantScorer(nn.Module):
    """The smallest custom scorer: a learned logit per key."""

    def __init__(self, env, **config):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(ScorerSpec.of(env).n_keys))

    def forward(self, tokens):
        return self.logits.expand(len(tokens), -1)


def test_registry():
    assert set(BUILT_INS) <= set(agents.available())
    with pytest.raises(ValueError, match="unknown agent"):
        agents.make("nope", "SetUnion27-v0")
    custom = agents.make("test_constant", "SetClassic81-v0")
    assert custom(queries("SetClassic81-v0")).shape == (4, 81)
    with pytest.raises(ValueError):
        agents.register("not_a_module")(object)


def test_a_causal_encoder_reads_left_to_right():
    """Token i sees only tokens up to i, the readout sees them all; the joint scorer's
    prefix form stays its full form without the query attending to the key."""
    tokens = queries("SetSymDiff27-v0", "pair")
    spec = ScorerSpec.of("SetSymDiff27-v0", tokens="pair")
    causal = make("joint", spec, causal=True)
    bidirectional = make("joint", spec)
    bidirectional.load_state_dict(causal.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            causal(tokens), causal._score_full(tokens, False), rtol=1e-5, atol=1e-5
        )
        assert (causal(tokens) - bidirectional(tokens)).abs().max() > 1e-4
        encoder = causal.encoder
        x, attend = encoder.embed(tokens)
        mask = encoder.self_mask(attend)
        first = encoder.blocks[0](x, mask=mask)
        changed = tokens.clone()
        changed[:, -1] = tokens[:, 0]
        second = encoder.blocks[0](encoder.embed(changed)[0], mask=mask)
    length = tokens.shape[1]
    torch.testing.assert_close(first[:, 1:length], second[:, 1:length])  # tokens before the last
    assert (first[:, 0] - second[:, 0]).abs().max() > 1e-6  # the readout reads the last too
