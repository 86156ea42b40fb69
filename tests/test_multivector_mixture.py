"""The multi-vector (MaxSim) and mixture-of-logits scorers: shapes, the single-vector case is
the contrastive scorer's dot product, training with every objective (Python and CLI),
evaluation, checkpoints, the SB3 policy, bad config values."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from test_rl import policy_for
from test_train import tiny_config

import agents
from agents.checkpoint import load_scorer
from agents.mixture import MixtureConfig
from agents.multivector import MultiVectorConfig
from eval import evaluate
from set_env.registry import make_env
from train.__main__ import main as cli
from train.trainer import train

NAMES = ("multivector", "mixture")
ENV = "SetUnion27-v0"


@pytest.fixture
def small_scorers(monkeypatch, small_agents):
    """Shrink the two scorers' small presets (and the built-ins') to TINY's encoder."""
    for config_type in (MultiVectorConfig, MixtureConfig):
        monkeypatch.setattr(config_type, "presets", {**config_type.presets, "small": TINY})


def queries(env_id: str = ENV, n: int = 6, **env_kwargs) -> torch.Tensor:
    """(n, max_len) real queries of the env (left-aligned, PAD after)."""
    env = make_env(env_id, **env_kwargs)
    return torch.as_tensor(np.stack([env.reset(seed=i)[0] for i in range(n)]))


def test_registered_and_shaped():
    assert {"multivector", "mixture"} <= set(agents.available())
    tokens = queries()
    multi = agents.make("multivector", ENV, dim=8, vectors=3, key_vectors_per_key=5, **TINY)
    assert multi.encode_queries(tokens).shape == (6, 3, 8)
    assert multi.key_vectors().shape == (27, 5, 8) and multi(tokens).shape == (6, 27)
    assert multi.floats_per_key == 5 * 8 + 1
    mixture = agents.make("mixture", ENV, dim=8, components=3, **TINY)
    assert mixture.encode_queries(tokens).shape == (6, 3, 8)
    assert mixture.key_vectors().shape == (27, 3, 8) and mixture(tokens).shape == (6, 27)
    torch.testing.assert_close(mixture.gates(tokens).sum(-1), torch.ones(6, 27))
    assert mixture.floats_per_key == 3 * 8 + 8 + 1


def test_defaults():
    assert (MultiVectorConfig().dim, MultiVectorConfig().vectors) == (16, 4)
    assert MultiVectorConfig().key_vectors_per_key == 4
    assert (MixtureConfig().dim, MixtureConfig().components) == (16, 4)
    paper = agents.scorer_class("contrastive").Config.presets["paper"]
    assert MultiVectorConfig.presets["paper"] == MixtureConfig.presets["paper"] == paper


@pytest.mark.parametrize(
    "name, sizes",
    [("multivector", dict(vectors=1, key_vectors_per_key=1)), ("mixture", dict(components=1))],
)
def test_one_vector_is_a_dot_product_plus_bias(name, sizes):
    scorer = agents.make(name, ENV, dim=8, key_bias_init="uniform", **sizes, **TINY)
    tokens = queries()
    q = scorer.encode_queries(tokens)[:, 0]  # (B, d)
    k = scorer.key_vectors()[:, 0]  # (n_keys, d)
    expected = torch.stack([torch.stack([q[b] @ k[j] for j in range(27)]) for b in range(6)])
    torch.testing.assert_close(scorer(tokens), expected + scorer.bias)


@pytest.mark.parametrize("name", ["contrastive", "classifier", "joint", "mixture"])
@pytest.mark.parametrize("readout", ["first", "last"])
def test_weights_of_the_one_vector_readout_still_load(name, readout):
    """Before the encoder read m readouts (the multi-vector scorer's), its readout was one
    (d,) vector: such weights load into the (1, d) readout and score the same."""
    sizes = {"dim": 4} if name in ("contrastive", "mixture") else {}
    config = dict(readout=readout, causal=True, **TINY, **sizes)
    scorer = agents.make(name, ENV, **config).eval()
    weights = scorer.state_dict()
    assert weights["encoder.readout"].shape == (1, TINY["d_model"])
    reloaded = agents.make(name, ENV, **config).eval()
    reloaded.load_state_dict({**weights, "encoder.readout": weights["encoder.readout"][0]})
    tokens = queries()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(tokens), scorer(tokens), rtol=0, atol=0)


@pytest.mark.parametrize("readout", ["first", "last"])
def test_readouts_differ_and_ignore_trailing_pad(readout):
    scorer = agents.make("multivector", ENV, dim=4, vectors=3, readout=readout, causal=True, **TINY)
    tokens = queries()
    longest = int((tokens != 0).sum(1).max())
    vectors = scorer.encode_queries(tokens)  # (B, 3, 4)
    assert not torch.allclose(vectors[:, 0], vectors[:, 1])
    torch.testing.assert_close(scorer.encode_queries(tokens[:, :longest]), vectors)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("objective", ["infonce", "ce", "soft-ce"])
def test_trains_with_every_objective(tmp_path, small_scorers, name, objective):
    config = tiny_config(tmp_path, agent=name, objective=objective, dim=6, steps=3, eval_every=3)
    result = train(config)
    assert len(result["losses"]) == 3 and np.isfinite(result["losses"]).all()
    assert Path(result["run_dir"]).name.startswith(f"SetWildcard27-v0__{name}-d6__{objective}")


@pytest.mark.parametrize(
    "name, config",
    [("multivector", "vectors=2,key_vectors_per_key=3"), ("mixture", "components=2")],
)
def test_cli_trains_evaluates_and_round_trips(tmp_path, capsys, small_scorers, name, config):
    argv = ["--env", "SetClassic27-v0", "--agent", name, "--dim", "5", "--agent-config", config]
    argv += ["--objective", "soft-ce", "--steps", "2", "--batch-size", "8"]
    cli(argv + ["--eval-queries", "32", "--logdir", str(tmp_path)])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and "kl" in summary
    scorer, state = load_scorer(summary["run_dir"])
    assert state["agent"] == name and type(scorer) is agents.scorer_class(name)
    assert scorer.config.dim == 5 and scorer.config.d_model == TINY["d_model"]
    rebuilt = agents.make(name, "SetClassic27-v0", **state["agent_config"])
    rebuilt.load_state_dict(scorer.state_dict())
    tokens = queries("SetClassic27-v0")
    torch.testing.assert_close(rebuilt.eval()(tokens), scorer(tokens))
    numbers = evaluate(scorer, queries=64, checkpoint=state)
    assert numbers["agent"] == name and numbers["dim"] == 5
    assert 0 <= numbers["topk_overlap"] <= 1


@pytest.mark.parametrize("name", NAMES)
def test_sb3_policy_builds_predicts_and_trains(tmp_path, small_scorers, tiny_rl_run, name):
    policy = policy_for(ENV, name)
    tokens = queries()
    distribution = policy.get_distribution(tokens.float())
    expected = torch.log_softmax(policy.scorer(tokens), dim=-1)
    torch.testing.assert_close(distribution.distribution.logits, expected)
    actions, _ = policy.predict(tokens.numpy(), deterministic=True)
    assert actions.shape == (6,)
    run_dir = tiny_rl_run(tmp_path, agent=name)
    scorer, state = load_scorer(run_dir / "checkpoint.pt")
    assert state["agent"] == name and isinstance(scorer, agents.scorer_class(name))


@pytest.mark.parametrize(
    "name, field, value",
    [
        ("multivector", "dim", 0),
        ("multivector", "vectors", 0),
        ("multivector", "key_vectors_per_key", 2.5),
        ("multivector", "key_bias_init", "ones"),
        ("multivector", "n_heads", 5),
        ("mixture", "components", 65),
        ("mixture", "dim", "8"),
        ("mixture", "readout", "middle"),
    ],
)
def test_bad_config_names_the_field(name, field, value):
    with pytest.raises(ValueError, match=field):
        agents.make(name, ENV, **{field: value})
