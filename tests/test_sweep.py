"""The sweep: the grid, filtering, commands, and resuming after a killed run."""

import pytest

from agents.checkpoint import load
from train import train
from train.sweep import grid
from train.sweep import main as sweep


def test_grid_of_the_presets():
    quick = grid("quick", ("Union", "Shatter"), (), ("contrastive", "joint", "classifier"), None)
    assert len(quick) == 2 * (5 + 2)
    assert {run.preset for run in quick} == {"small"}
    union_joint = next(r for r in quick if r.env == "SetUnion27-v0" and r.agent == "joint")
    assert union_joint.objective == "soft-ce" and union_joint.steps == 800
    assert ("curriculum", "480") in union_joint.options
    paper = grid("paper", ("Classic", "Union"), (), ("contrastive", "joint"), None)
    union81 = [run for run in paper if run.env == "SetUnion81-v0"]
    assert sorted(run.dim for run in union81 if run.dim) == [16, 24, 32, 64, 81, 128, 512]
    assert len(paper) == 2 * (7 + 1) + (7 + 1)


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


@pytest.mark.parametrize(
    "arguments", [["--games", "Poker"], ["--agents", "lstm"], ["--dims", "0"], ["--jobs", "0"]]
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
        objective="infonce",
        preset="small",
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
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(runs) == 2 and all(load(run)["step"] == 2 for run in runs)
    sweep(arguments)
    captured = capsys.readouterr()
    assert captured.out == "" and "2 already finished" in captured.err
