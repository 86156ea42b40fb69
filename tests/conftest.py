"""Shared test set-up."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def private_eval_cache(tmp_path_factory):
    """Evaluation sets cache into a temporary folder, not the user's ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("SET_EVAL_CACHE", str(tmp_path_factory.mktemp("eval-sets")))
    yield
    patch.undo()
