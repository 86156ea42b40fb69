"""The sweep: the grid, filtering, commands, and resuming after a killed run."""

import dataclasses

import pytest

from agents.checkpoint import load
from train import train
from train.__main__ import build_parser
from train.config import TrainConfig, config_to_argv, parse_given
from train.sweep import AGENT_CHOICES, GAMES, PRESETS, QUICK_RECIPES, grid
from train.sweep import main as sweep


def test_grid_of_the_presets():
    quick = grid("quick", ("Union", "Shatter"), (), ("contrastive", "joint", "classifier"), None)
    assert len(quick) == 2 * (4 + 2)
    configs = [run.config for run in quick]
    assert {config.preset for config in configs} == {"small"}
    assert {config.objective for config in configs} == {"soft-ce"}
    union_joint = next(c for c in configs if c.env == "SetUnion27-v0" and c.agent == "joint")
    assert union_joint.steps == 500 and union_joint.tokens == "pair"
    shatter = {c.dim: c.steps for c in configs if c.env == "SetShatter27-v0" and c.dim}
    assert shatter == {4: 1500, 8: 1500, 16: 1500, 27: 600}  # per-dim overrides
    paper = grid("paper", ("Classic", "Union"), (), ("contrastive", "joint"), None)
    union81 = [run.config for run in paper if run.config.env == "SetUnion81-v0"]
    assert sorted(config.dim for config in union81 if config.dim) == [16, 24, 32, 64, 81, 128, 512]
    assert len(paper) == 2 * (7 + 1) + (7 + 1)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_run_of_every_preset_is_its_config_as_a_training_command(tmp_path, preset):
    """The recipes' settings are TrainConfig fields with values it accepts, and each run's
    command parses back to its config."""
    parser = build_parser()
    for run in grid(preset, GAMES, (), AGENT_CHOICES, None):
        given = parse_given(parser, run.arguments(tmp_path))
        assert TrainConfig(**given) == dataclasses.replace(run.config, logdir=str(tmp_path))


def test_config_to_argv_is_the_inverse_of_the_parser():
    every_field = TrainConfig(
        **{"env": "SetShatter27-v0", "agent": "joint", "dim": 8, "objective": "ce"},
        **{"preset": "paper", "agent_config": "causal=true,readout=last", "steps": 7},
        **{"batch_size": 32, "precision": "bf16", "device": "cuda:1", "logdir": "out"},
        **{"seed": 3, "agent_module": "my_pkg.agents", "resume": "out/run", "eval_every": 2},
        **{"eval_queries": 9, "eval_distribution": "uniform", "eval_split": "all"},
        **{"train_distribution": "uniform", "lr": 2e-3, "warmup": 5, "schedule": "noam"},
        **{"lr_decay": 0.9, "lr_decay_every": 3, "lr_decay_until": 40, "weight_decay": 0.1},
        **{"adam_beta1": 0.8, "adam_beta2": 0.95, "adam_eps": 1e-8, "grad_clip": 0.5},
        **{"mask_duplicates": True, "tokens": "pair", "compile": True, "log_every": 4},
        curriculum=6,
    )
    default = TrainConfig()
    assert all(
        getattr(every_field, field.name) != getattr(default, field.name)
        for field in dataclasses.fields(TrainConfig)
    ), "a field left at its default: set it here too"
    for config in (every_field, default):
        assert TrainConfig(**parse_given(build_parser(), config_to_argv(config))) == config


def test_filters_and_dry_run_print_each_command(tmp_path, capsys):
    sweep(
        [
            "--out",
            str(tmp_path),
            "--games",
            "Classic,Shatter",
            "--dims",
            "4,8",
            "--agents",
            "contrastive,joint",
            "--steps",
            "5",
            "--dry-run",
        ]
    )
    commands = capsys.readouterr().out.strip().splitlines()
    assert len(commands) == 2 * 3
    assert all(" -m train " in line and "--steps 5" in line for line in commands)
    assert sum("--dim 8" in line for line in commands) == 2


def test_multivector_and_mixture_train_at_each_dim_with_their_sizes():
    sizes = {"vectors": 2, "components": 3}
    runs = grid("quick", ("Union",), (4, 8), ("multivector", "mixture", "joint"), None, sizes)
    assert [run.label for run in runs] == [
        "SetUnion27-v0__multivector-m2-d4__soft-ce__small__s0",
        "SetUnion27-v0__multivector-m2-d8__soft-ce__small__s0",
        "SetUnion27-v0__mixture-P3-d4__soft-ce__small__s0",
        "SetUnion27-v0__mixture-P3-d8__soft-ce__small__s0",
        "SetUnion27-v0__joint__soft-ce__small__s0",
    ]
    assert runs[0].config.agent_config == "vectors=2,key_vectors_per_key=2"
    assert runs[2].config.agent_config == "components=3"
    # The paper preset trains them with infoNCE, on the study's encoder options.
    paper = grid("paper", ("Union",), (8,), ("mixture",), None)[0].config
    assert paper.objective == "infonce"
    assert paper.agent_config == "causal=true,readout=last,components=4"
    # Another size is another run: its folder does not count as this one's.
    other = grid("quick", ("Union",), (4,), ("mixture",), None, {"components": 2})[0]
    assert not other.matches(dataclasses.asdict(runs[2].config))
    assert runs[2].matches(dataclasses.asdict(runs[2].config))


@pytest.mark.parametrize(
    "arguments",
    [
        ["--games", "Poker"],
        ["--agents", "lstm"],
        ["--dims", "0"],
        ["--jobs", "0"],
        ["--agents", "multivector", "--vectors", "0"],
        ["--agents", "mixture", "--components", "65"],
        ["--device", "gpu"],
    ],
)
def test_bad_flags(tmp_path, capsys, arguments):
    with pytest.raises(SystemExit) as exit_info:
        sweep(["--out", str(tmp_path), *arguments])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")


def test_a_sweep_resumes_a_killed_run_and_skips_finished_ones(tmp_path, capsys):
    # A run killed after its step-1 checkpoint, as the sweep would have started it.
    partial = train(
        env="SetShatter27-v0",
        agent="contrastive",
        dim=4,
        objective="soft-ce",
        preset="small",
        lr=QUICK_RECIPES["Shatter"].for_run("contrastive", 4)["lr"],
        steps=1,
        logdir=str(tmp_path),
    )
    arguments = [
        "--out",
        str(tmp_path),
        "--games",
        "Shatter",
        "--agents",
        "contrastive,classifier",
        "--dims",
        "4",
        "--steps",
        "2",
        "--jobs",
        "2",
    ]
    capsys.readouterr()
    sweep(arguments)
    commands = capsys.readouterr().out
    assert f"--resume {partial['run_dir']}" in commands
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name != "logs")
    assert len(runs) == 2 and all(load(run)["step"] == 2 for run in runs)
    sweep(arguments)
    captured = capsys.readouterr()
    assert captured.out == "" and "2 already finished" in captured.err


def test_the_sweep_prints_one_line_per_finished_run_and_logs_each(tmp_path, capsys):
    sweep(
        ["--out", str(tmp_path), "--games", "Classic", "--agents", "classifier"]
        + ["--steps", "2", "--jobs", "1"]
    )
    err = capsys.readouterr().err
    done = [line for line in err.splitlines() if line.startswith("done ")]
    assert len(done) == 1 and "SetClassic27-v0__classifier__soft-ce" in done[0] and "kl " in done[0]
    assert err.count("TensorBoard:") == 1 and "it/s" not in err  # no run's own progress bar
    (log,) = (tmp_path / "logs").iterdir()
    assert "it/s" in log.read_text()


def test_list_flags_take_spaces_or_commas(tmp_path, capsys):
    base = ["--out", str(tmp_path), "--dry-run"]
    sweep([*base, "--games", "Union,Shatter", "--dims", "4,8", "--agents", "contrastive"])
    with_commas = capsys.readouterr().out
    sweep([*base, "--games", "Union", "Shatter", "--dims", "4", "8", "--agents", "contrastive"])
    assert capsys.readouterr().out == with_commas and with_commas.count("\n") == 4


def test_device_is_every_runs_device(tmp_path, capsys):
    """The paper preset is a GPU's job: --device puts every run of the local launcher there
    (a CPU-only machine can still print the commands)."""
    sweep(
        ["--out", str(tmp_path), "--preset", "paper", "--games", "Shatter", "--device", "cuda:1"]
        + ["--agents", "joint,classifier", "--dry-run"]
    )
    commands = capsys.readouterr().out.strip().splitlines()
    assert len(commands) == 2 and all(line.endswith("--device cuda:1") for line in commands)
