"""Shared test set-up."""

from pathlib import Path

import pytest

import agents

TINY = dict(d_model=32, n_layers=1, n_heads=2, d_ff=64)


@pytest.fixture(autouse=True, scope="session")
def private_eval_cache(tmp_path_factory):
    """Evaluation sets cache into a temporary folder, not the user's ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("SET_EVAL_CACHE", str(tmp_path_factory.mktemp("eval-sets")))
    yield
    patch.undo()


@pytest.fixture
def small_agents(monkeypatch):
    """Shrink the built-ins' small presets so that a smoke run takes a fraction of a second."""
    for name in ("contrastive", "joint", "classifier"):
        config_type = agents.scorer_class(name).Config
        monkeypatch.setitem(config_type.presets, "small", {**config_type.presets["small"], **TINY})


@pytest.fixture
def cli_error(capsys):
    """``cli_error(main, argv)``: run a CLI's ``main`` that must exit with ``code`` (2, a
    usage error, by default) and return its last stderr line, which must be ``error: ...``."""

    def run(main, argv, code: int = 2) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == code
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines and lines[-1].startswith("error: "), lines
        return lines[-1]

    return run


@pytest.fixture
def tiny_rl_run(small_agents):
    """Trains a tiny PPO run (64 steps, 2 envs) under a folder; keyword arguments replace
    the defaults (SetClassic27-v0, the classifier). Returns the run's folder."""
    from train.rl import train_rl

    def run(logdir: Path, **overrides) -> Path:
        settings = dict(
            env="SetClassic27-v0",
            agent="classifier",
            timesteps=64,
            n_envs=2,
            n_steps=32,
            batch_size=32,
            eval_every=64,
            eval_queries=16,
        )
        result = train_rl(**{**settings, **overrides}, logdir=str(logdir))
        return Path(result["run_dir"])

    return run


@pytest.fixture
def rl_run(tmp_path, tiny_rl_run) -> Path:
    """The folder of a tiny finished PPO run of the classifier on SetClassic27-v0."""
    return tiny_rl_run(tmp_path / "rl")
