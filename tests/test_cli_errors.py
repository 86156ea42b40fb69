"""Every mistake a one-line error: each CLI's bad flags, places and files, the settings a
resumed run cannot change, and arguments too large for memory."""

import json
import sys
from pathlib import Path

import pytest
import torch

import agents.base
from agents.checkpoint import CHECKPOINT, load, save
from eval import __main__ as eval_main
from eval.analysis import main as analysis_cli
from eval.report import main as report_cli
from train import train
from train.__main__ import main as train_cli
from train.rl import main as rl_cli
from train.sweep import main as sweep_cli

pytestmark = pytest.mark.usefixtures("small_agents")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.fixture(scope="module")
def classic_run(tmp_path_factory) -> Path:
    """A finished 27-card run (step 4) to evaluate, resume and damage copies of."""
    folder = tmp_path_factory.mktemp("classic")
    patch = pytest.MonkeyPatch()
    for name in ("contrastive", "joint", "classifier"):
        presets = agents.scorer_class(name).Config.presets
        patch.setitem(presets, "small", {**presets["small"], "d_model": 16, "n_heads": 2})
    result = train(
        env="SetClassic27-v0",
        agent="classifier",
        objective="ce",
        steps=4,
        batch_size=16,
        eval_every=2,
        eval_queries=64,
        logdir=str(folder),
    )
    patch.undo()
    return Path(result["run_dir"])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--agent-module", "no.such.module"], "agent module 'no.such.module' cannot be imported"),
        (["--device", "mps"], "device must be cpu, cuda or cuda:N, got 'mps'"),
        (["--env", "CartPole-v1"], "'CartPole-v1' is not a SET environment"),
        (["--batch-size", "100000000"], "batch_size must be at most 65,536"),
        (["--eval-queries", "100000000"], "eval_queries must be at most 1,048,576"),
        (["--seed", "-1"], "seed must be an integer in [0, 2**63)"),
    ],
)
def test_train_flags(tmp_path, arguments, message, cli_error):
    assert message in cli_error(train_cli, [*arguments, "--logdir", str(tmp_path)])


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_train_logdir_that_is_no_folder(tmp_path, where, cli_error):
    (tmp_path / "file").touch()
    logdir = tmp_path / "file" if where == "file" else tmp_path / "file" / "runs"
    error = cli_error(train_cli, ["--steps", "1", "--logdir", str(logdir)])
    assert error == f"error: logdir {logdir} is not a folder"


def test_resume_refuses_changed_settings_and_says_which(classic_run, cli_error):
    argv = ["--resume", str(classic_run), "--lr", "5", "--objective", "ce", "--steps", "6"]
    error = cli_error(train_cli, argv)
    assert "--lr 5.0 (the run's: 0.001)" in error and "--objective" not in error  # ce = ce
    assert "may change only --steps, --device" in error


def test_resume_refuses_fewer_steps_than_reached(classic_run, cli_error):
    error = cli_error(train_cli, ["--resume", str(classic_run), "--steps", "2"])
    assert error == "error: --steps 2 is below the step the run has reached (4)"


def test_resume_takes_the_checkpoint_file_too(classic_run, tmp_path, capsys):
    copy = tmp_path / classic_run.name
    copy.mkdir()
    for path in classic_run.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    train_cli(["--resume", str(copy / CHECKPOINT), "--steps", "6"])
    assert json.loads(capsys.readouterr().out)["run_dir"] == str(copy)
    assert load(copy)["step"] == 6


def test_resume_of_an_rl_run_is_refused(rl_run, cli_error):
    error = cli_error(train_cli, ["--resume", str(rl_run), "--steps", "10"])
    assert "is not a supervised run (an RL run of train.rl?)" in error


def test_a_user_agents_run_resumes_and_evaluates_without_naming_its_module(
    tmp_path, capsys, monkeypatch
):
    import user_scorer

    run_dir = train(
        env="SetClassic27-v0",
        agent="bag_test_scorer",
        agent_module="user_scorer",
        objective="ce",
        steps=2,
        batch_size=16,
        eval_every=2,
        eval_queries=64,
        logdir=str(tmp_path),
    )["run_dir"]
    assert load(run_dir)["agent_module"] == "user_scorer"
    # A fresh process: neither the module nor its agent is known until the checkpoint says.
    monkeypatch.delitem(agents.base._REGISTRY, "bag_test_scorer")
    monkeypatch.delitem(sys.modules, "user_scorer")
    train_cli(["--resume", run_dir, "--steps", "4"])
    assert json.loads(capsys.readouterr().out)["step"] == 4
    monkeypatch.delitem(agents.base._REGISTRY, "bag_test_scorer")
    monkeypatch.delitem(sys.modules, "user_scorer")
    eval_main.main(["--checkpoint", run_dir, "--queries", "32"])
    assert json.loads(capsys.readouterr().out)["agent"] == "bag_test_scorer"
    assert user_scorer  # the module the test imported first is still the same file


def test_a_checkpoint_naming_a_standard_module_is_refused(classic_run, tmp_path, cli_error):
    state = load(classic_run)
    state.update(agent="nope", agent_module="antigravity")
    save(state, tmp_path)
    error = cli_error(eval_main.main, ["--checkpoint", str(tmp_path)])
    assert "names agent module 'antigravity', a standard module: refused" in error


def test_a_recorded_module_that_cannot_be_imported_names_agent_module(
    classic_run, tmp_path, cli_error
):
    state = load(classic_run)
    state.update(agent="bag", agent_module="moved_user_module")  # importable where it trained
    save(state, tmp_path)
    error = cli_error(eval_main.main, ["--checkpoint", str(tmp_path)])
    assert "agent module 'moved_user_module' cannot be imported" in error
    assert "records it for agent 'bag'): pass --agent-module" in error


def test_an_unknown_agent_names_agent_module(classic_run, tmp_path, cli_error):
    state = load(classic_run)
    state.update(agent="bag", agent_module=None)
    save(state, tmp_path)
    error = cli_error(eval_main.main, ["--checkpoint", str(tmp_path)])
    assert "unknown agent 'bag'" in error and "--agent-module" in error


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--env", "SetUnion81-v0"], "SetUnion81-v0 has n_keys 81"),
        (["--env", "SetWildcard27-v0"], "not SetWildcard27-v0: to evaluate it on another game's"),
        (["--env", "SetWildcard27-v0"], "pass --allow-other-env"),
        (["--env", "CartPole-v1"], "'CartPole-v1' is not a SET environment"),
        (["--device", "mps"], "device must be cpu, cuda or cuda:N"),
        (["--queries", "0"], "queries must be from 1 to 1,048,576"),
        (["--queries", "100000000"], "queries must be from 1 to 1,048,576"),
        (["--seed", "-2"], "seed must be an integer"),
        (["--agent-module", "no.such"], "agent module 'no.such' cannot be imported"),
    ],
)
def test_eval_flags(classic_run, arguments, message, cli_error):
    argv = ["--checkpoint", str(classic_run), "--queries", "64", *arguments]
    assert message in cli_error(eval_main.main, argv)


def test_eval_never_prints_nan(classic_run, monkeypatch, cli_error):
    def nan_result(*args, **kwargs):
        return {"queries": 64, "kl": float("nan"), "buckets": {}}

    monkeypatch.setattr(eval_main, "evaluate", nan_result)
    error = cli_error(eval_main.main, ["--checkpoint", str(classic_run)])
    assert "kl = nan" in error


def test_report_of_a_run_trained_as_module_qualified_id(tmp_path, capsys):
    train(
        env="set_env:SetShatter27-v0",
        agent="classifier",
        objective="soft-ce",
        steps=1,
        batch_size=16,
        eval_every=1,
        eval_queries=64,
        logdir=str(tmp_path),
    )
    (run_dir,) = tmp_path.iterdir()
    assert (
        run_dir.name.startswith("SetShatter27-v0__")
        and load(run_dir)["env_id"] == "SetShatter27-v0"
    )
    report_cli([str(tmp_path), "--queries", "64"])
    assert "| classifier |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--batch-size", "1"], "ppo needs batch_size >= 2"),
        (["--n-envs", "1", "--n-steps", "1"], "ppo needs n_steps * n_envs >= 2"),
        (["--ent-coef", "nan"], "ent_coef must be a finite number >= 0"),
        (["--lr", "inf"], "lr must be a finite number > 0"),
        pytest.param(["--device", "cuda"], "CUDA is not available", marks=NO_CUDA),
        (["--device", "mps"], "device must be cpu, cuda or cuda:N"),
        (["--env", "CartPole-v1"], "'CartPole-v1' is not a SET environment"),
        (["--agent-module", "no.such"], "agent module 'no.such' cannot be imported"),
        (["--n-envs", "100000"], "n_envs must be at most 4,096"),
        (["--seed", "-1"], "seed must be an integer"),
    ],
)
def test_rl_flags(tmp_path, arguments, message, cli_error):
    argv = ["--env", "SetClassic27-v0", "--timesteps", "64", "--logdir", str(tmp_path)]
    assert message in cli_error(rl_cli, [*argv, *arguments])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--games", ""], "--games is empty"),
        (["--agents", ","], "--agents is empty"),
        (["--dims", "2000"], "--dims: dim must be an int in 1..1024, got 2000"),
        (["--dims", "four"], "--dims: expected comma-separated values"),
    ],
)
def test_sweep_flags(tmp_path, arguments, message, cli_error):
    argv = ["--out", str(tmp_path), "--dry-run", *arguments]
    assert message in cli_error(sweep_cli, argv)


def test_sweep_out_that_is_a_file(tmp_path, cli_error):
    (tmp_path / "file").touch()
    error = cli_error(sweep_cli, ["--out", str(tmp_path / "file"), "--dry-run"])
    assert error == f"error: --out {tmp_path / 'file'} is not a folder"


def test_sweep_repeats_no_run_for_repeated_dims(tmp_path, capsys):
    sweep_cli(
        ["--out", str(tmp_path), "--games", "Shatter", "--agents", "contrastive"]
        + ["--dims", "4,4,8,4", "--dry-run"]
    )
    commands = capsys.readouterr().out.strip().splitlines()
    assert len(commands) == 2


def test_report_and_analysis_places(tmp_path, cli_error):
    (tmp_path / "file").touch()
    assert "is not a folder" in cli_error(report_cli, [str(tmp_path / "file")])
    error = cli_error(analysis_cli, ["pmi", "--seed", "-1", "--steps", "1"])
    assert "--seed must be an integer" in error


def test_rank_of_a_deck_too_large_to_list_fails_fast(cli_error):
    argv = ["rank", "--game", "classic", "--attributes", "7", "--values", "3"]
    assert "MAX_CELLS" in cli_error(analysis_cli, argv)


@pytest.mark.parametrize("flag", ["--env", "--agent", "--objective", "--agent-module", "--device"])
def test_a_huge_argument_is_quoted_as_an_excerpt(tmp_path, flag, cli_error):
    argv = [flag, "x" * 1_000_000, "--steps", "1", "--logdir", str(tmp_path)]
    assert len(cli_error(train_cli, argv)) < 1000


def test_a_huge_sweep_list_is_quoted_as_an_excerpt(tmp_path, cli_error):
    argv = ["--out", str(tmp_path), "--games", "x" * 1_000_000, "--dry-run"]
    assert len(cli_error(sweep_cli, argv)) < 1000
