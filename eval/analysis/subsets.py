"""``subsets``: how many distinct answer subsets a game's queries have, the x-axis of the
study's headline figure: a dimension-d contrastive model must give each its own region."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval import reference
from eval.analysis.common import env_game, figure_axes
from set_env import rules
from set_env.checks import is_int
from set_env.games import Game


def distinct_rows(packed: np.ndarray) -> np.ndarray:
    """(n, n_words) uint64 -> its distinct rows, sorted: (m, n_words)."""
    if packed.shape[1] == 1:
        return np.unique(packed[:, 0])[:, None]  # one word: a flat sort, far faster
    return np.unique(packed, axis=0)


def drawn_subsets(game: Game, draws: int, seed: int = 0) -> tuple[np.ndarray, list]:
    """The distinct answers among ``draws`` queries of the game's query distribution (all
    splits, not size-weighted, empty answers redrawn: ``game.sample(split=None)``'s), packed
    (m, n_words); and the growth ``[(draws so far, distinct so far), ...]`` at doublings.

    It reads the game's packed answers (``Game.answer_chunks``) rather than ``sample``'s
    unpacked batches: one uint64 per query on 27 keys, deduplicated at each doubling of the
    draws, so 10 million draws of a 27-card game take seconds.
    """
    if not is_int(draws) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    seen = np.empty((0, rules.n_words(game.deck)), dtype=np.uint64)
    pending, growth, have, mark = [], [], 0, 0
    chunks = game.answer_chunks(draws, np.random.default_rng(seed))
    with tqdm(total=draws, desc=f"{game.name} draws", file=sys.stderr, unit_scale=True) as bar:
        for answers in chunks:
            pending.append(answers)
            have += len(answers)
            bar.update(len(answers))
            if have >= mark or have == draws:
                seen = distinct_rows(np.concatenate([seen, *pending]))
                pending, mark = [], 2 * have
                growth.append((have, len(seen)))
    return seen, growth


def count_exact(game: Game) -> int:
    """The number of distinct answer subsets, counted without drawing: by enumeration for
    the finite games; shatter's are every non-empty subset of the keys."""
    if game.name == "shatter":
        return 2**game.deck.n_keys - 1
    if not game.finite:
        raise ValueError(
            f"cannot count the {game.name} game's subsets exactly: its queries are too many to "
            f"enumerate and their answers have no closed form; count them among draws (--draws N)"
        )
    return len(distinct_rows(rules.pack(game.enumerate(split=None).positives)))


def subsets(
    env_id: str,
    draws: int | None = None,
    exact: bool = False,
    seed: int = 0,
    env_kwargs: dict | None = None,
) -> dict:
    """The number of distinct answer subsets of an env's game, among ``draws`` draws of its
    query distribution or (``exact``) over all its queries.

    Returns {"env", "draws", "distinct", "log2", "exact"} and, for draws, "growth": the
    distinct count at doublings of the draws, which shows whether it has levelled off.
    """
    if exact == (draws is not None):
        raise ValueError("give either draws (a number of queries) or exact=True, not both")
    game = env_game(env_id, env_kwargs)
    if exact:
        distinct, extra = count_exact(game), {}
    else:
        seen, growth = drawn_subsets(game, draws, seed)
        distinct, extra = len(seen), {"growth": growth}
    log2 = round(math.log2(distinct), 4)
    return {
        "env": env_id,
        "draws": draws,
        "distinct": distinct,
        "log2": log2,
        "exact": exact,
        **extra,
    }


def plot_subsets(result: dict, path: Path) -> None:
    """The distinct count against the draws, beside every-draw-distinct and the study's."""
    with figure_axes(path) as axes:
        if result["exact"]:
            axes.axhline(result["log2"], color="tab:blue", label=f"exact: 2^{result['log2']:.2f}")
            axes.set_xlim(0, 1)
            axes.set_xticks([])
        else:
            x, y = np.log2(np.array(result["growth"], dtype=float)).T
            axes.plot(x, y, "o-", label="distinct answer subsets")
            axes.plot(x, x, ":", color="grey", label="every draw distinct")
            axes.set_xlabel("log2(draws)")
        study = _study_log2(result["env"])
        if study is not None:
            axes.axhline(study, color="tab:red", linestyle="--", label=f"the study: 2^{study:g}")
        axes.set_ylabel("log2(distinct answer subsets)")
        axes.set_title(result["env"])


def _study_log2(env_id: str) -> float | None:
    """The study's count of a 27-card env's subsets (it counted 10 million draws)."""
    for game in reference.GAMES:
        if env_id == f"Set{game}27-v0":
            return reference.LOG2_SUBSETS[game]
    return None
