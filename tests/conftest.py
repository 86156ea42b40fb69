"""Shared test set-up."""

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
