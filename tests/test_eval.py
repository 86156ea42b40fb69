"""The evaluation harness: fixed cached sets, baselines, buckets, the Python API and the CLI."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import agents
from agents.checkpoint import load_scorer
from eval import harness, sets
from eval.__main__ import main as cli
from eval.harness import baseline_per_query, evaluate, metrics_with_buckets
from eval.sets import make_eval_set
from train import train


def test_eval_set_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SET_EVAL_CACHE", str(tmp_path))
    first = make_eval_set("SetUnion27-v0", 300, seed=1)
    (path,) = tmp_path.iterdir()
    drawn = sets.draw_eval_set("SetUnion27-v0", 300, seed=1)
    np.testing.assert_array_equal(first.tokens, drawn.tokens)
    # The cached copy is served without drawing again.
    monkeypatch.setattr(sets, "draw_eval_set", lambda *args: pytest.fail("drew again"))
    again = make_eval_set("SetUnion27-v0", 300, seed=1)
    np.testing.assert_array_equal(again.positives, first.positives)
    assert again.texts == first.texts


@pytest.mark.parametrize("damage", ["truncate", "tamper"])
def test_a_damaged_cache_is_recomputed(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("SET_EVAL_CACHE", str(tmp_path))
    first = make_eval_set("SetWildcard27-v0", 200)
    (path,) = tmp_path.iterdir()
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:  # valid file, contents that no longer match their hash
        with np.load(path) as data:
            arrays = dict(data)
        arrays["positives"] = ~arrays["positives"]
        np.savez(path, **arrays)
    again = make_eval_set("SetWildcard27-v0", 200)
    np.testing.assert_array_equal(again.positives, first.positives)


def test_token_modes_share_the_queries():
    card = make_eval_set("SetSymDiff27-v0", 100)
    attribute = make_eval_set("SetSymDiff27-v0", 100, env_kwargs={"tokens": "attribute"})
    assert card.texts == attribute.texts
    assert card.tokens.shape[1] < attribute.tokens.shape[1]


def test_baselines_on_set_union27():
    for distribution, expected in (("size_weighted", 0.38), ("uniform", 0.46)):
        eval_set = make_eval_set("SetUnion27-v0", 5120, distribution=distribution)
        uniform = metrics_with_buckets(baseline_per_query("uniform", eval_set), eval_set)
        sizes = eval_set.positives.sum(axis=1)
        assert uniform["kl"] == pytest.approx(np.mean(np.log(27 / sizes)), rel=1e-5)
        assert uniform["kl"] == pytest.approx(expected, abs=0.01)
        oracle = metrics_with_buckets(baseline_per_query("oracle", eval_set), eval_set)
        assert oracle["kl"] == pytest.approx(0.0, abs=1e-6) and oracle["topk_overlap"] == 1.0


def test_report_buckets_partition_the_queries():
    eval_set = make_eval_set("SetUnion27-v0", 1000)
    result = metrics_with_buckets(baseline_per_query("uniform", eval_set), eval_set)
    assert result["kl_bits"] == pytest.approx(result["kl"] / math.log(2))
    buckets = result["buckets"]
    assert set(buckets) <= {"1", "2-3", "4-9", "10-20", "21+"}
    assert sum(bucket["queries"] for bucket in buckets.values()) == 1000
    weighted = sum(bucket["kl"] * bucket["queries"] for bucket in buckets.values()) / 1000
    assert weighted == pytest.approx(result["kl"], rel=1e-5)


class LookupScorer(nn.Module):
    """A scorer of the agents interface built outside the registry."""

    def __init__(self, n_keys=27):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_keys))

    def forward(self, tokens):
        return self.bias.expand(len(tokens), -1)


def test_evaluate_is_the_packages_api():
    import eval

    assert eval.evaluate is evaluate


def test_evaluate_accepts_any_scorer_and_repeats_itself():
    built_in = agents.make("contrastive", "SetClassic27-v0", d_model=32, n_layers=1, n_heads=2)
    first = evaluate(built_in, "SetClassic27-v0", queries=128)
    assert first == evaluate(built_in, "SetClassic27-v0", queries=128)
    assert first["env"] == "SetClassic27-v0" and first["queries"] == 128
    plain = evaluate(LookupScorer(), "SetUnion27-v0", queries=256)
    eval_set = make_eval_set("SetUnion27-v0", 256)
    uniform = harness.summarize(baseline_per_query("uniform", eval_set))
    assert plain["kl"] == pytest.approx(uniform["kl"], rel=1e-5)
    # What the scorer tells about itself; only a checkpoint knows its objective.
    assert (first["agent"], first["dim"], first["objective"]) == ("contrastive", 16, None)
    assert (plain["agent"], plain["dim"], plain["objective"]) == (None, None, None)
    with pytest.raises(ValueError, match="env_id is needed"):
        evaluate(LookupScorer(), queries=256)


def test_evaluate_refuses_another_games_env_unless_allowed():
    scorer = agents.make("contrastive", "SetClassic27-v0", d_model=32, n_layers=1, n_heads=2)
    assert evaluate(scorer, queries=64)["env"] == "SetClassic27-v0"  # the trained env
    with pytest.raises(ValueError, match="trained on SetClassic27-v0, not SetWildcard27-v0"):
        evaluate(scorer, "SetWildcard27-v0", queries=64)
    other = evaluate(scorer, "SetWildcard27-v0", queries=64, allow_other_env=True)
    assert other["env"] == "SetWildcard27-v0" and other["queries"] == 64


def test_cli_prints_one_json_object_and_writes_tensorboard(tmp_path, capsys):
    run = train(
        env="SetWildcard27-v0",
        agent="contrastive",
        dim=4,
        objective="infonce",
        steps=2,
        batch_size=8,
        eval_every=2,
        eval_queries=32,
        logdir=str(tmp_path),
    )
    capsys.readouterr()
    arguments = ["--checkpoint", str(Path(run["run_dir"]) / "checkpoint.pt"), "--queries", "64"]
    cli(arguments + ["--tensorboard"])
    output = json.loads(capsys.readouterr().out)
    expected = {
        "env",
        "agent",
        "dim",
        "objective",
        "queries",
        "kl",
        "kl_bits",
        "topk_overlap",
        "entropy_bits",
        "buckets",
    }
    assert set(output) == expected
    assert (output["agent"], output["dim"], output["objective"]) == ("contrastive", 4, "infonce")
    cli(arguments)
    assert json.loads(capsys.readouterr().out) == output  # the same call, the same numbers
    scorer, checkpoint = load_scorer(run["run_dir"])
    assert evaluate(scorer, queries=64, checkpoint=checkpoint) == output  # the API's dict
    cli(arguments + ["--env", "SetClassic27-v0", "--allow-other-env"])
    assert json.loads(capsys.readouterr().out)["env"] == "SetClassic27-v0"
    events = [p for p in Path(run["run_dir"]).iterdir() if p.name.startswith("events")]
    assert len(events) >= 2  # the run's own, and the one --tensorboard added


def test_cli_finds_a_user_agent_through_agent_module(tmp_path, capsys, monkeypatch):
    import user_scorer  # registers bag_test_scorer, as a user's script would before training

    run_dir = train(
        env="SetClassic27-v0",
        agent="bag_test_scorer",
        objective="ce",
        steps=2,
        batch_size=8,
        eval_every=2,
        eval_queries=32,
        logdir=str(tmp_path),
    )["run_dir"]
    capsys.readouterr()
    # A fresh process: nothing registers the agent, and the run records no module.
    monkeypatch.delitem(agents.base._REGISTRY, "bag_test_scorer")
    monkeypatch.delitem(sys.modules, user_scorer.__name__)
    with pytest.raises(SystemExit):
        cli(["--checkpoint", run_dir, "--queries", "32"])
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: unknown agent 'bag_test_scorer'")
    assert "pass --agent-module, the module that registers it" in error
    cli(["--checkpoint", run_dir, "--queries", "32", "--agent-module", user_scorer.__name__])
    assert json.loads(capsys.readouterr().out)["agent"] == "bag_test_scorer"


def test_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["--checkpoint", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: no checkpoint")
