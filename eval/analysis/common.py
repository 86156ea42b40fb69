"""What the analyses share: the game behind an env id, the optimiser's step size, and a
figure drawn into a PNG file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eval.figures import pyplot, save
from set_env.games import Game
from set_env.registry import make_env

LR = 0.05  # Adam's learning rate, for the pmi tables and the free embeddings


def env_game(env_id: str, env_kwargs: dict | None = None) -> Game:
    """The game behind an env id (ValueError for an unknown id or bad kwargs)."""
    return make_env(env_id, **(env_kwargs or {})).unwrapped.game


@contextmanager
def figure_axes(path: Path, figsize: tuple[float, float] = (6, 4)) -> Iterator:
    """Yield the axes of a new figure, then save it as the PNG ``path``, with a legend of
    its labelled lines if it has any."""
    figure, axes = pyplot().subplots(figsize=figsize)
    yield axes
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    save(figure, path)
