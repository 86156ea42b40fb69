"""The study's recipe: its encoder options, its learning-rate schedule, its data and
evaluation settings, and the paper preset's commands that carry them."""

import json
import math
import shlex

import numpy as np
import pytest
import torch

import agents
from agents.base import parse_overrides
from agents.transformer import StudyLayerNorm
from eval import report as report_module
from eval import sets
from eval.report import main as report_cli
from set_env import Deck, make_game
from train import train
from train.__main__ import main as train_cli
from train.config import TrainConfig
from train.data import draw_batch
from train.sweep import AGENTS, GAMES, grid, study_schedule
from train.sweep import main as sweep_cli
from train.trainer import lr_factor

TINY = dict(d_model=16, n_layers=2, n_heads=2, d_ff=32)
STUDY = dict(causal=True, readout="last", norm="post", activation="relu", layer_norm="study")
CLASSIC_AND_WILDCARD = ("SetClassic27-v0", "SetWildcard27-v0")


def study_lr(step: int, d_model: int, warmup: int, decay: float, every: int, until: int):
    """The study's formula, written independently of ``lr_factor``."""
    lr = d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)
    if step > warmup:
        lr *= decay ** ((min(step, until) - warmup) // every)
    return lr


@pytest.mark.parametrize(
    "warmup, decay, every, until", [(36000, 0.9, 2000, 80000), (108000, 0.95, 3000, 900000)]
)
def test_the_schedule_is_the_studys_formula(warmup, decay, every, until):
    settings = study_schedule(warmup, decay, every, until)
    factor = lr_factor("noam", warmup, 10**6, decay, every, until)
    for step in (1, 500, warmup - 1, warmup, warmup + every - 1, warmup + every, 79999, 10**6):
        expected = study_lr(step, 512, warmup, decay, every, until)
        assert settings["lr"] * factor(step) == pytest.approx(expected, rel=1e-5), step
    assert study_schedule(36000)["lr"] == pytest.approx(2.329e-4, rel=1e-3)


def test_the_lr_decay_is_refused_outside_noam_and_out_of_range():
    with pytest.raises(ValueError, match="lr_decay applies to the noam schedule"):
        TrainConfig(lr_decay=0.9).validate()
    with pytest.raises(ValueError, match="lr_decay must be in"):
        TrainConfig(schedule="noam", lr_decay=1.5).validate()
    with pytest.raises(ValueError, match="lr_decay_every"):
        TrainConfig(schedule="noam", lr_decay=0.9, lr_decay_every=0).validate()


@pytest.mark.parametrize("agent", ["contrastive", "classifier", "joint"])
def test_the_study_encoder_trains_at_a_tiny_size(tmp_path, agent):
    dim = ["--dim", "8"] if agent == "contrastive" else []
    options = ",".join(f"{k}={str(v).lower()}" for k, v in {**TINY, **STUDY}.items())
    train_cli(
        ["--env", "SetUnion27-v0", "--agent", agent, "--objective", "ce", "--steps", "3"]
        + ["--batch-size", "8", "--eval-queries", "16", "--logdir", str(tmp_path)]
        + ["--agent-config", options + ",init=study", *dim]
    )
    (run,) = tmp_path.glob("SetUnion27*")
    config = torch.load(run / "checkpoint.pt", weights_only=True)["agent_config"]
    assert {k: config[k] for k in STUDY} == STUDY and config["init"] == "study"


def test_a_last_readout_ignores_trailing_pad_and_reads_every_token():
    scorer = agents.make("classifier", "SetShatter27-v0", **TINY, **STUDY).eval()
    tokens = torch.from_numpy(make_game("shatter", Deck(3, 3)).sample(6, rng()).tokens)
    lengths = (tokens != scorer.spec.pad_id).sum(1)
    assert len(set(lengths.tolist())) > 1
    logits = scorer(tokens)
    for row, length in enumerate(lengths.tolist()):  # each query alone, without its PAD
        torch.testing.assert_close(scorer(tokens[row : row + 1, :length])[0], logits[row])
    changed = tokens.clone()
    changed[:, 1] = tokens[:, 2]  # a causal encoder read last still sees its first tokens
    assert not torch.allclose(scorer(changed), logits)


def test_the_study_layer_norm_and_initialisation():
    x = torch.randn(5, 16)
    norm = StudyLayerNorm(16)
    expected = x - x.mean(-1, keepdim=True) / (x.std(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(norm(x), expected)
    scorer = agents.make("contrastive", "SetUnion27-v0", preset="paper", dim=27)
    assert scorer.encoder.token_embedding.weight.std().item() == pytest.approx(1, abs=0.05)
    assert scorer.encoder.position_embedding.weight.std().item() == pytest.approx(0.03, abs=0.003)
    bound = math.sqrt(1 / 27)
    assert scorer.bias.abs().max() <= bound and scorer.bias.std() > bound / 4  # U(+-sqrt(1/d))
    first = scorer.encoder.blocks[0]
    assert first.mlp[1].__class__ is torch.nn.ReLU and not first.pre_norm


def test_agent_config_overrides_parse_and_bad_ones_are_one_line_errors(tmp_path, cli_error):
    assert parse_overrides("causal=true, d_ff=64,readout=last,x=0.5") == {
        "causal": True,
        "d_ff": 64,
        "readout": "last",
        "x": 0.5,
    }
    base = ["--steps", "1", "--logdir", str(tmp_path), "--agent", "classifier"]
    assert "name=value" in cli_error(train_cli, [*base, "--agent-config", "causal"])
    assert "readout must be one of" in cli_error(train_cli, [*base, "--agent-config", "readout=x"])
    assert "unknown config field" in cli_error(train_cli, [*base, "--agent-config", "depth=3"])


def rng():
    return np.random.default_rng(0)


def test_uniform_training_queries_on_shatter_are_smaller_than_size_weighted():
    game = make_game("shatter", Deck(3, 3))
    weighted = draw_batch(game, 2000, rng(), "card", size_weighted=True)[1].sum(1).mean()
    uniform = draw_batch(game, 2000, rng(), "card", size_weighted=False)[1].sum(1).mean()
    assert uniform < weighted - 0.2


def test_an_all_split_evaluation_set_holds_training_queries():
    test = set(sets.make_eval_set("SetClassic27-v0", 400).texts)
    every = sets.make_eval_set("SetClassic27-v0", 400, split="all")
    assert every.split == "all" and len(set(every.texts) - test) > len(every) // 2
    with pytest.raises(ValueError, match="split must be one of"):
        sets.draw_eval_set("SetClassic27-v0", 10, split="train")


def test_the_paper_sweep_commands_carry_the_studys_settings(tmp_path, capsys):
    sweep_cli(["--preset", "paper", "--out", str(tmp_path), "--dry-run"])
    commands = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
    options = [dict(zip(c[3::2], c[4::2], strict=True)) for c in commands]  # after -m train
    assert len(options) == len(grid("paper", GAMES, (), AGENTS, None))
    for option in options:
        assert option["--batch-size"] == "1024" and option["--weight-decay"] == "0.0"
        assert option["--grad-clip"] == "0.0" and option["--schedule"] == "noam"
        shatter = option["--env"] == "SetShatter27-v0"
        assert ("--agent-config" in option) != shatter
        assert (option.get("--train-distribution") == "uniform") == shatter
        assert (option.get("--eval-split") == "all") == (option["--env"] in CLASSIC_AND_WILDCARD)
    union = {o.get("--dim"): o for o in options if o["--env"] == "SetUnion27-v0"}
    assert union["27"]["--warmup"] == "72000" and union["4"]["--lr-decay"] == "1.0"
    union81 = [o for o in options if o["--env"] == "SetUnion81-v0"]
    assert {o["--seed"] for o in union81} == {"21"} and union81[0]["--lr-decay"] == "0.95"


def test_a_run_evaluated_on_all_queries_reports_its_held_out_numbers(tmp_path, small_agents):
    train(
        env="SetClassic27-v0",
        agent="classifier",
        objective="ce",
        steps=2,
        batch_size=8,
        eval_queries=32,
        eval_split="all",
        logdir=str(tmp_path),
    )
    report_cli([str(tmp_path), "--queries", "64"])
    text = (tmp_path / "report.md").read_text()
    assert "[held-out " in text and "size_weighted all" in text
    config = json.loads((next(tmp_path.glob("Set*")) / "config.json").read_text())
    assert config["eval_split"] == "all"


@pytest.mark.parametrize("agent", ["contrastive", "joint", "classifier"])
def test_the_benchmarks_flop_formula_matches_torchs_count(agent):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.gpu import train_flops_per_example

    scorer = agents.make(agent, "SetUnion27-v0", **TINY)
    tokens = torch.from_numpy(make_game("union", Deck(3, 3)).sample(16, rng()).tokens)
    # The math kernel of attention: the counter does not count the fused CPU kernel.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        scorer(tokens)
    counted = 3 * counter.get_total_flops() / len(tokens)
    assert train_flops_per_example(scorer, tokens.shape[1]) == pytest.approx(counted, rel=0.05)


def test_the_gpu_benchmark_runs_on_cpu(tmp_path, small_agents, capsys):
    from benchmarks import gpu

    out = tmp_path / "benchmark.json"
    gpu.main(
        ["--device", "cpu", "--preset", "small", "--steps", "1", "--warmup", "1"]
        + ["--precisions", "fp32", "--compile-precisions", "", "--batch-size", "8"]
        + ["--out", str(out)]
    )
    result = json.loads(out.read_text())
    assert len(result["rows"]) == len(gpu.ENVS) * len(gpu.SCORERS)
    assert all(row["examples_per_s"] > 0 and 0 <= row["data_wait"] < 1 for row in result["rows"])
    assert result["paper_sweep"]["hours"] > 0
    assert "| SetShatter27-v0 | joint | fp32 | no |" in capsys.readouterr().out


def test_the_reports_bound_is_fitted_on_each_runs_evaluation_set(tmp_path, monkeypatch):
    fitted = []

    def record(env, dims, queries, distribution="size_weighted", split="test", **family):
        fitted.append((env, tuple(dims), distribution, split, family["family"]))
        return dict.fromkeys(dims, 0.5)

    monkeypatch.setattr(report_module, "free_embedding_bound", record)
    for env, distribution, split in (
        ("SetClassic27-v0", "size_weighted", "all"),
        ("SetShatter27-v0", "uniform", "test"),
    ):
        train(
            env=env,
            agent="contrastive",
            dim=4,
            steps=2,
            batch_size=8,
            eval_queries=32,
            eval_distribution=distribution,
            eval_split=split,
            logdir=str(tmp_path),
        )
    report_cli([str(tmp_path), "--queries", "64"])
    assert sorted(fitted) == [
        ("SetClassic27-v0", (4,), "size_weighted", "all", "single"),
        ("SetShatter27-v0", (4,), "uniform", "test", "single"),
    ]
