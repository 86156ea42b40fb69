"""``python -m eval.analysis``: tools that explain the results, one subcommand each.

Each prints one JSON object on stdout (logs and progress on stderr) and draws a PNG with
``--plot FILE``; a bad argument prints one ``error:`` line and exits with status 2.

    python -m eval.analysis subsets --env ID (--draws N | --exact) [--seed 0]
    python -m eval.analysis rank --game classic|wildcard|shared --attributes A --values V
    python -m eval.analysis rank --table [--decks 2x3,3x3,2x4,2x5,3x4,4x3] [--games ...]
    python -m eval.analysis pmi [--steps 3000] [--batch 500] [--seed 0]
    python -m eval.analysis free-embedding --env ID [--dims 1,2,4,8,16,27] [--queries 5120]
        [--steps 2000] [--seed 0] [--sweep DIR]

* ``subsets``: how many distinct answer subsets a game's queries have, the x-axis of the
  study's headline figure: a dimension-d contrastive model must give each its own region.
* ``rank``: the rank of the 0/1 matrix of all distinct queries x keys of a finite game.
* ``pmi``: what infoNCE learns. A free table of scores trained with NLL, pseudo-NLL or
  infoNCE on small joints: infoNCE learns p(x,y)/(p(x)p(y)) (the PMI), the others p(x,y).
* ``free-embedding``: the best KL that free query and key vectors of dimension d reach, with
  no encoder: what a dimension-d contrastive model cannot represent at all, as opposed to
  what it fails to learn.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agents.base import canonical_env_id, make_env
from agents.checkpoint import METADATA, read_metadata, write_json_atomic
from eval import reference
from eval.figures import pyplot, save
from eval.metrics import kl_to_uniform_positives
from eval.sets import DISTRIBUTIONS, SPLITS, cache_dir, check_queries, draw_eval_set
from set_env import GENERATOR_VERSION, rules
from set_env.checks import check_seed, excerpt
from set_env.cli import HelpFormatter, make_parser
from set_env.deck import Deck, is_int
from set_env.games import Game, make_game

RANK_GAMES = ("classic", "wildcard", "shared")
DEFAULT_DECKS = "2x3,3x3,2x4,2x5,3x4,4x3"
PMI_DATASETS = ("independent", "dependent", "dice")
PMI_OBJECTIVES = ("nll", "pseudo_nll", "infonce")
LR = 0.05  # Adam's learning rate, for the pmi tables and the free embeddings
CRITICAL_KL = 0.01  # the KL (nats) a dimension must reach to count as representing a game


def env_game(env_id: str, env_kwargs: dict | None = None) -> Game:
    """The game behind an env id (ValueError for an unknown id or bad kwargs)."""
    return make_env(env_id, **(env_kwargs or {})).unwrapped.game


# --- subsets -------------------------------------------------------------------------------


def distinct_rows(packed: np.ndarray) -> np.ndarray:
    """(n, n_words) uint64 -> its distinct rows, sorted: (m, n_words)."""
    if packed.shape[1] == 1:
        return np.unique(packed[:, 0])[:, None]  # one word: a flat sort, far faster
    return np.unique(packed, axis=0)


def drawn_subsets(game: Game, draws: int, seed: int = 0) -> tuple[np.ndarray, list]:
    """The distinct answers among ``draws`` queries of the game's query distribution (all
    splits, not size-weighted, empty answers redrawn: ``game.sample(split=None)``'s), packed
    (m, n_words); and the growth ``[(draws so far, distinct so far), ...]`` at doublings.

    It reads the game's packed candidates (``_draw``) rather than ``sample``'s unpacked
    batches: one uint64 per query on 27 keys, deduplicated at each doubling of the draws, so
    10 million draws of a 27-card game take seconds.
    """
    if not is_int(draws) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    rng = np.random.default_rng(seed)
    chunk = game._chunk_size
    seen = np.empty((0, rules.n_words(game.deck)), dtype=np.uint64)
    pending, growth, have, mark = [], [], 0, chunk
    with tqdm(total=draws, desc=f"{game.name} draws", file=sys.stderr, unit_scale=True) as bar:
        while have < draws:
            # (~chunk, n_words); a few spare candidates make up for the empty answers
            answers = game._draw(min(chunk, draws - have + 64), rng).answers
            answers = answers[answers.any(axis=1)][: draws - have]  # sample() redraws empties
            pending.append(answers)
            have += len(answers)
            bar.update(len(answers))
            if have >= mark or have == draws:
                seen = distinct_rows(np.concatenate([seen, *pending]))
                pending, mark = [], 2 * mark
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
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
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
    axes.legend(fontsize=8)
    save(figure, path)


def _study_log2(env_id: str) -> float | None:
    """The study's count of a 27-card env's subsets (it counted 10 million draws)."""
    for game in reference.GAMES:
        if env_id == f"Set{game}27-v0":
            return reference.LOG2_SUBSETS[game]
    return None


# --- rank ----------------------------------------------------------------------------------


def query_key_matrix(game: str, attributes: int, values: int) -> tuple[np.ndarray, int]:
    """The 0/1 matrix of every distinct query of a finite game x the deck's keys, with one
    row per distinct answer ((m, n_keys) bool: queries with equal answers would repeat a row,
    which leaves the rank alone); and the number of distinct queries."""
    if game not in RANK_GAMES:
        raise ValueError(
            f"game must be one of {RANK_GAMES}, the games whose queries can all be listed; "
            f"got {game!r}"
        )
    positives = make_game(game, Deck(attributes, values)).enumerate(split=None).positives
    return np.unique(positives, axis=0), len(positives)


def rank_mod(matrix: np.ndarray, prime: int) -> int:
    """The rank of an integer matrix over the field of ``prime`` (< 2**31, so that products
    of residues fit in int64), by row reduction vectorised over the rows."""
    a = matrix.astype(np.int64) % prime  # (m, n)
    rank = 0
    for column in range(a.shape[1]):
        nonzero = np.flatnonzero(a[rank:, column])
        if len(nonzero) == 0:
            continue
        pivot = rank + nonzero[0]
        a[[rank, pivot]] = a[[pivot, rank]]
        row = a[rank, column:] * pow(int(a[rank, column]), prime - 2, prime) % prime
        below = a[rank + 1 :, column:]  # (m - rank - 1, n - column)
        a[rank + 1 :, column:] = (below - below[:, :1] * row % prime) % prime
        rank += 1
        if rank == a.shape[0]:
            break
    return rank


@lru_cache(maxsize=1)
def _primes() -> tuple[int, ...]:
    """The 64 largest primes below 2**31 (Miller-Rabin with bases 2, 3, 5, 7 is exact there)."""
    primes, n = [], 2**31 - 1
    while len(primes) < 64:
        if _is_prime(n):
            primes.append(n)
        n -= 2
    return tuple(primes)


def _is_prime(n: int) -> bool:
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for base in (2, 3, 5, 7):
        x = pow(base, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def exact_rank(matrix: np.ndarray) -> int:
    """The rank of a 0/1 matrix over the rationals, exactly (no floating point).

    A rank mod p never exceeds the rank r over Q, and equals it unless p divides the
    determinant of every non-singular r x r minor. Such a determinant is at most
    (r+1)^((r+1)/2) / 2^r (Hadamard's bound for 0/1 matrices), which grows with r <= min(m, n),
    so primes whose product exceeds the bound at min(m, n) cannot all divide it: the largest
    rank mod those primes is r. Most matrices stop after one prime, already at full rank.
    """
    matrix = np.unique(matrix, axis=0)
    full = min(matrix.shape)
    if full == 0:
        return 0
    bound_bits = (full + 1) / 2 * math.log2(full + 1) - full
    best, bits = 0, 0.0
    for prime in _primes():
        best = max(best, rank_mod(matrix, prime))
        bits += math.log2(prime)
        if best == full or bits > bound_bits:
            return best
    raise ValueError(f"a {matrix.shape} matrix is too large for exact_rank")


def rank(game: str, attributes: int, values: int) -> dict:
    """The exact rank of a finite game's query x key matrix on the attributes x values deck:
    {"game", "attributes", "values", "queries", "keys", "rank"}."""
    matrix, queries = query_key_matrix(game, attributes, values)
    return {
        "game": game,
        "attributes": attributes,
        "values": values,
        "queries": queries,
        "keys": matrix.shape[1],
        "rank": exact_rank(matrix),
    }


def parse_deck(text: str) -> tuple[int, int]:
    """``"4x3"`` -> (4 attributes, 3 values): the 81-card deck."""
    parts = text.strip().lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(
            f"--decks: a deck is ATTRIBUTESxVALUES, e.g. 4x3 (81 cards), got {excerpt(text)}"
        )
    attributes, values = map(int, parts)
    Deck(attributes, values)  # validates the sizes
    return attributes, values


def rank_table(decks: list[tuple[int, int]], games=RANK_GAMES) -> list[dict]:
    """``rank`` of every game on every deck (the shared game needs two attributes or more)."""
    rows = []
    for attributes, values in tqdm(decks, desc="rank", file=sys.stderr):
        for game in games:
            if game == "shared" and attributes < 2:
                continue
            rows.append(rank(game, attributes, values))
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Decks down, games across; each cell ``rank (distinct queries)``."""
    games = [g for g in RANK_GAMES if any(r["game"] == g for r in rows)]
    decks = sorted({(r["attributes"], r["values"], r["keys"]) for r in rows}, key=lambda d: d[2])
    cells = {(r["attributes"], r["values"], r["game"]): r for r in rows}
    lines = [
        "| deck (attributes x values) | keys | " + " | ".join(games) + " |",
        "|---|---:|" + "---:|" * len(games),
    ]
    for attributes, values, keys in decks:
        row = []
        for game in games:
            cell = cells.get((attributes, values, game))
            row.append(f"{cell['rank']} ({cell['queries']})" if cell else "–")
        lines.append(f"| {attributes}x{values} | {keys} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_rank_table(rows: list[dict], path: Path) -> None:
    """Rank against the number of keys, one line per game, beside rank = keys."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    styles = {"classic": "o-", "wildcard": "s--", "shared": "^-"}  # classic, wildcard overlap
    for game, style in styles.items():
        points = sorted((r["keys"], r["rank"]) for r in rows if r["game"] == game)
        if points:
            axes.plot(*zip(*points, strict=True), style, label=game)
    keys = sorted({r["keys"] for r in rows})
    axes.plot(keys, keys, ":", color="grey", label="rank = keys (full)")
    axes.set_xlabel("keys (cards in the deck)")
    axes.set_ylabel("rank of the query x key matrix")
    axes.legend(fontsize=8)
    save(figure, path)


def plot_rank_matrix(game: str, attributes: int, values: int, path: Path) -> None:
    """The distinct answers as a 0/1 image, one row each."""
    matrix, _ = query_key_matrix(game, attributes, values)
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 1.5 + min(8, 0.05 * len(matrix))))
    axes.imshow(matrix, aspect="auto", cmap="Greys", interpolation="nearest")
    axes.set_xlabel("key")
    axes.set_ylabel("distinct answer")
    axes.set_title(f"{game} on {attributes}x{values}: rank {exact_rank(matrix)}")
    save(figure, path)


# --- pmi -----------------------------------------------------------------------------------


def joint(name: str) -> np.ndarray:
    """A small joint distribution p(x, y) as an (n_x, n_y) table summing to 1.

    * ``independent``: p(x) p(y) with p(x) proportional to 1..6 and p(y) to 6..1;
    * ``dependent``: the same p(x), and Y a noisy copy of X: Y = X with probability 0.6,
      otherwise uniform over the six values;
    * ``dice``: X the sum of two fair dice (2..12), Y the larger of them (1..6). Its support
      has a cell alone in its row and column, the throw (1, 1): sum 2 and max 1 occur only
      there, so objectives normalised by rows or columns (pseudo-NLL, infoNCE) never weigh
      its score against another, and leave it wherever the optimiser happens to.
    """
    ramp = np.arange(1.0, 7.0) / 21.0
    if name == "independent":
        return np.outer(ramp, ramp[::-1])
    if name == "dependent":
        return ramp[:, None] * (0.6 * np.eye(6) + 0.4 / 6)
    if name == "dice":
        a, b = np.divmod(np.arange(36), 6)  # the 36 equally likely throws, faces 0..5
        table = np.zeros((11, 6))
        np.add.at(table, (a + b, np.maximum(a, b)), 1 / 36)
        return table
    raise ValueError(f"dataset must be one of {PMI_DATASETS}, got {name!r}")


def pmi_table(p: np.ndarray) -> np.ndarray:
    """p(x, y) / (p(x) p(y)), normalised to sum to 1: what infoNCE's exp(score) learns."""
    ratio = p / np.outer(p.sum(axis=1), p.sum(axis=0))
    return ratio / ratio.sum()


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats for tables summing to 1 (cells where p is 0 add nothing); clipped
    at 0, which rounding can undershoot."""
    support = p > 0
    return max(0.0, float(np.sum(p[support] * np.log(p[support] / q[support]))))


def pmi_loss(objective: str, scores: torch.Tensor, p: torch.Tensor, counts=None) -> torch.Tensor:
    """The loss of a score table m (n_x, n_y), f = exp(m).

    * ``nll``: -E_p log f(x,y) / sum over the whole support of f;
    * ``pseudo_nll``: -E_p [log f normalised over y (row) + log f normalised over x (column)];
    * ``infonce``: the symmetric loss over a minibatch of B pairs (x_i, y_i) drawn from p,
      given as ``counts`` (n_x, n_y), how often each cell was drawn: each x_i against every
      y_j of the batch and each y_j against every x_i, as the study's training does.
      Symmetric, it pins f down to a constant times the PMI ratio (one constant per
      connected part of the support, as pseudo-NLL pins it to p).

    The infoNCE loss is computed from the counts, exactly: row i's cross-entropy,
    -m(x_i, y_i) + log sum_j exp m(x_i, y_j), groups the y_j by value, so the B x B matrix
    of scores becomes a table of n_x x n_y cells.
    """
    if objective == "nll":
        return -(p * torch.log_softmax(scores.flatten(), dim=0).view_as(scores)).sum()
    if objective == "pseudo_nll":
        rows, columns = torch.log_softmax(scores, dim=1), torch.log_softmax(scores, dim=0)
        return -(p * (rows + columns)).sum()
    if objective == "infonce":
        batch = counts.sum()
        log_y, log_x = counts.sum(dim=0).log(), counts.sum(dim=1).log()  # -inf where absent
        by_x = torch.logsumexp(scores + log_y, dim=1)  # (n_x,): x against the batch's y's
        by_y = torch.logsumexp(scores + log_x[:, None], dim=0)  # (n_y,)
        positives = (counts * scores).sum()
        rows = counts.sum(dim=1) @ by_x - positives
        columns = counts.sum(dim=0) @ by_y - positives
        return (rows + columns) / (2 * batch)
    raise ValueError(f"objective must be one of {PMI_OBJECTIVES}, got {objective!r}")


def train_table(
    p: np.ndarray, objective: str, steps: int = 3000, batch: int = 500, seed: int = 0, bar=None
) -> np.ndarray:
    """Fit a free table of scores m(x, y) with Adam; returns f = exp(m) normalised."""
    target = torch.as_tensor(p)
    scores = torch.zeros(p.shape, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([scores], lr=LR)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / steps)
    counts = None
    if objective == "infonce":  # every step's minibatch, drawn up front: (steps, n_x, n_y)
        cells = np.random.default_rng(seed).choice(p.size, size=(steps, batch), p=p.ravel())
        cells += np.arange(steps)[:, None] * p.size
        counts = np.bincount(cells.ravel(), minlength=steps * p.size)
        counts = torch.as_tensor(counts.reshape(steps, *p.shape), dtype=torch.float64)
    for step in range(steps):
        loss = pmi_loss(objective, scores, target, None if counts is None else counts[step])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if bar is not None:
            bar.update(1)
    return torch.softmax(scores.detach().flatten(), dim=0).view(p.shape).numpy()


def pmi(
    steps: int = 3000, batch: int = 500, seed: int = 0, datasets=PMI_DATASETS
) -> tuple[dict, dict]:
    """The infoNCE experiment: {dataset: {objective: {"kl_joint", "kl_pmi"}}}, and the
    tables for the figure: {dataset: {"p", "pmi", objective: the learned f normalised}}."""
    if not is_int(steps) or steps < 1 or not is_int(batch) or batch < 2:
        raise ValueError(f"steps must be >= 1 and batch >= 2, got {steps!r} and {batch!r}")
    result, tables = {}, {}
    total = steps * len(datasets) * len(PMI_OBJECTIVES)
    with tqdm(total=total, desc="pmi", file=sys.stderr, unit_scale=True) as bar:
        for name in datasets:
            p = joint(name)
            tables[name] = {"p": p, "pmi": pmi_table(p)}
            result[name] = {}
            for objective in PMI_OBJECTIVES:
                learned = train_table(p, objective, steps, batch, seed, bar)
                tables[name][objective] = learned
                result[name][objective] = {
                    "kl_joint": round(kl(p, learned), 5),
                    "kl_pmi": round(kl(tables[name]["pmi"], learned), 5),
                }
    return result, tables


def plot_pmi(tables: dict, path: Path) -> None:
    """Heat maps: each dataset's p, its normalised PMI ratio and the three learned tables."""
    plt = pyplot()
    columns = ("p", "pmi", *PMI_OBJECTIVES)
    figure, grid = plt.subplots(
        len(tables), len(columns), figsize=(2.4 * len(columns), 2.6 * len(tables)), squeeze=False
    )
    for row, (name, panels) in zip(grid, tables.items(), strict=True):
        for axes, column in zip(row, columns, strict=True):
            table = panels[column]  # from 0, so that a constant table shows flat
            axes.imshow(table, cmap="viridis", vmin=0, vmax=table.max())
            axes.set_title(f"{name}: {column}", fontsize=8)
            axes.set_xticks([])
            axes.set_yticks([])
        row[0].set_ylabel("x")
    for axes in grid[-1]:
        axes.set_xlabel("y")
    save(figure, path, dpi=110)


# --- free embedding ------------------------------------------------------------------------


def answers_to_fit(
    env_id: str,
    queries: int = 5120,
    seed: int = 0,
    env_kwargs: dict | None = None,
    distribution: str = "size_weighted",
    split: str = "test",
) -> tuple[np.ndarray, np.ndarray, int]:
    """The answers a free embedding must represent, weighted like an evaluation set (by
    default the study's: size-weighted test queries): (m, n_keys) bool distinct answers,
    (m,) weights, the number of queries behind them.

    Finite games use every distinct query of the split, weighted by its answer size when
    size-weighted; the others the evaluation set (``draw_eval_set``: ``queries`` of them,
    seeded), already drawn so. Queries with equal answers share one row: they want the same
    vector.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    game = env_game(env_id, env_kwargs)
    if game.finite:
        positives = game.enumerate(split="test" if split == "test" else None).positives
        sizes = (
            positives.sum(axis=1) if distribution == "size_weighted" else np.ones(len(positives))
        )
    else:
        check_queries(queries)
        eval_set = draw_eval_set(env_id, queries, seed, distribution, env_kwargs, split)
        positives, sizes = eval_set.positives, np.ones(len(eval_set))
    answers, inverse = np.unique(positives, axis=0, return_inverse=True)
    return answers, np.bincount(inverse.ravel(), weights=sizes), len(positives)


def fit_free_embedding(
    answers: np.ndarray,
    weights: np.ndarray,
    dim: int,
    steps: int = 2000,
    seed: int = 0,
    bar=None,
) -> float:
    """The best weighted mean KL (nats) that free query vectors (m, dim), key vectors
    (n_keys, dim) and key biases (n_keys,) reach, logits = q . k + b, full-batch Adam."""
    generator = torch.Generator().manual_seed(seed)
    m, n_keys = answers.shape
    queries = torch.randn(m, dim, generator=generator).requires_grad_()
    keys = (torch.randn(n_keys, dim, generator=generator) / math.sqrt(dim)).requires_grad_()
    bias = torch.zeros(n_keys, requires_grad=True)
    positives = torch.as_tensor(answers)
    weights = torch.as_tensor(weights / weights.sum(), dtype=torch.float32)  # (m,)
    optimizer = torch.optim.Adam([queries, keys, bias], lr=LR)
    best = math.inf
    for _ in range(steps):
        logits = queries @ keys.T + bias  # (m, n_keys)
        loss = (kl_to_uniform_positives(logits, positives) * weights).sum()
        best = min(best, loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if bar is not None:
            bar.update(1)
    return best


def free_embedding(
    env_id: str,
    dims=(1, 2, 4, 8, 16, 27),
    queries: int = 5120,
    steps: int = 2000,
    seed: int = 0,
    env_kwargs: dict | None = None,
    distribution: str = "size_weighted",
    split: str = "test",
) -> dict:
    """The representational limit with no encoder: the best KL per dimension, and the
    smallest dimension reaching KL < 0.01 (None if none does).

    The optimiser's best is an upper bound on what dimension d can represent: it can stop in
    a local minimum (classic's 27 singletons fit d = 1, keys on a parabola, yet Adam stops
    near 0.36 on all of them). ``queries`` and ``seed`` choose the sample of an infinite
    game's queries; ``distribution`` and ``split`` the evaluation set they come from
    (``answers_to_fit``).

    Returns {"env", "queries", "subsets", "dims": {d: best KL}, "critical_dim"}.
    """
    dims = check_dims(dims)
    if not is_int(steps) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    answers, weights, n_queries = answers_to_fit(
        env_id, queries, seed, env_kwargs, distribution, split
    )
    best = {}
    with tqdm(total=steps * len(dims), desc="free embedding", file=sys.stderr) as bar:
        for dim in dims:
            bar.set_postfix(dim=dim)
            best[dim] = round(fit_free_embedding(answers, weights, dim, steps, seed, bar), 6)
    critical = next((d for d in sorted(best) if best[d] < CRITICAL_KL), None)
    return {
        "env": env_id,
        "queries": n_queries,
        "subsets": len(answers),
        "dims": best,
        "critical_dim": critical,
    }


def free_embedding_bound(
    env_id: str,
    dims,
    queries: int = 5120,
    steps: int = 2000,
    seed: int = 0,
    distribution: str = "size_weighted",
    split: str = "test",
) -> dict[int, float]:
    """``free_embedding``'s best KL per dim on an evaluation set's queries, each cached on
    disk beside the evaluation sets (keyed by env, dim, queries, steps, seed, distribution,
    split and the generator's version): the curve the report draws under the trained models,
    computed once per machine."""
    env_id = canonical_env_id(env_id)
    setting = [queries, steps, seed, GENERATOR_VERSION, distribution, split]
    keys = {d: json.dumps([env_id, d, *setting]) for d in check_dims(dims)}
    best = {d: _cached_bound(key) for d, key in keys.items()}
    missing = [d for d, kl in best.items() if kl is None]
    if missing:
        answers, weights, _ = answers_to_fit(env_id, queries, seed, None, distribution, split)
        desc = f"free-embedding bound {env_id}"
        with tqdm(total=steps * len(missing), desc=desc, file=sys.stderr) as bar:
            for dim in missing:
                best[dim] = round(fit_free_embedding(answers, weights, dim, steps, seed, bar), 6)
                path = _bound_path(keys[dim])
                if path is not None:
                    write_json_atomic(path, {"key": keys[dim], "kl": best[dim]})
    return best


def _bound_path(key: str) -> Path | None:
    folder = cache_dir()
    return (
        None
        if folder is None
        else folder / f"free-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    )


def _cached_bound(key: str) -> float | None:
    """The cached KL of ``key``, or None if there is none (or it is damaged or foreign)."""
    path = _bound_path(key)
    try:
        cached = json.loads(path.read_text())
        return float(cached["kl"]) if cached["key"] == key else None
    except (AttributeError, OSError, ValueError, KeyError, TypeError):
        return None


def check_dims(dims) -> list[int]:
    dims = list(dims)
    if not dims or not all(is_int(d) and d >= 1 for d in dims):
        raise ValueError(f"--dims must be positive integers, e.g. 2,4,8, got {dims!r}")
    return sorted(set(int(d) for d in dims))


def sweep_kls(folder: Path, env_id: str) -> dict[int, float]:
    """{dim: KL} of a sweep's trained contrastive runs of ``env_id``: the KL each checkpoint
    recorded at its last evaluation (the size-weighted test set). A later run of a dim wins."""
    kls = {}
    env_id = canonical_env_id(env_id)
    for metadata in sorted(Path(folder).glob(f"*/{METADATA}")):
        try:  # the metadata beside the checkpoint: no weights are loaded
            state = read_metadata(metadata.parent)
            env, agent, metrics = state["env_id"], state["agent"], state.get("metrics") or {}
            dim = state["agent_config"]["dim"] if agent == "contrastive" else None
        except (ValueError, KeyError, TypeError) as error:
            print(f"warning: skipped {metadata.parent}: {error}", file=sys.stderr)
            continue
        if canonical_env_id(env) == env_id and agent == "contrastive" and "kl" in metrics:
            kls[dim] = float(metrics["kl"])
    if not kls:
        raise ValueError(f"--sweep: no contrastive run of {env_id} with metrics under {folder}")
    return dict(sorted(kls.items()))


def plot_free_embedding(result: dict, path: Path, sweep: dict | None = None) -> None:
    """Best KL against d, the 0.01 threshold, and (with a sweep) the trained models' KL."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    dims = sorted(result["dims"])
    floor = 1e-6  # a KL of 0 still shows on the log axis
    axes.plot(dims, [max(result["dims"][d], floor) for d in dims], "o-", label="free embedding")
    if sweep:
        axes.plot(
            list(sweep), [max(v, floor) for v in sweep.values()], "s--", label="trained contrastive"
        )
    axes.axhline(CRITICAL_KL, color="grey", linestyle=":", label=f"KL = {CRITICAL_KL}")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("dimension d")
    axes.set_ylabel("KL (nats)")
    axes.set_title(f"{result['env']}: critical dim {result['critical_dim']}")
    axes.legend(fontsize=8)
    save(figure, path)


# --- figures and the command line ----------------------------------------------------------


def parse_ints(text: str, name: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"--{name} must be comma-separated integers, got {excerpt(text)}"
        ) from None


def run_subsets(args) -> dict:
    result = subsets(args.env, args.draws, args.exact, args.seed)
    if args.plot:
        plot_subsets(result, args.plot)
    return result


def run_rank(args) -> dict:
    if args.table:
        decks = [parse_deck(d) for d in args.decks.split(",") if d.strip()]
        games = [g.strip() for g in args.games.split(",") if g.strip()]
        unknown = [g for g in games if g not in RANK_GAMES]
        if unknown or not games:
            raise ValueError(f"--games: unknown {unknown}; allowed: {','.join(RANK_GAMES)}")
        rows = rank_table(decks, games)
        print(markdown_table(rows), file=sys.stderr)
        if args.plot:
            plot_rank_table(rows, args.plot)
        return {"table": rows}
    if args.game is None or args.attributes is None or args.values is None:
        raise ValueError("rank needs --game, --attributes and --values (or --table)")
    result = rank(args.game, args.attributes, args.values)
    if args.plot:
        plot_rank_matrix(args.game, args.attributes, args.values, args.plot)
    return result


def run_pmi(args) -> dict:
    result, tables = pmi(args.steps, args.batch, args.seed)
    if args.plot:
        plot_pmi(tables, args.plot)
    return result


def run_free_embedding(args) -> dict:
    dims = parse_ints(args.dims, "dims")
    sweep = sweep_kls(args.sweep, args.env) if args.sweep else None
    result = free_embedding(
        args.env, dims, args.queries, args.steps, args.seed, None, args.distribution, args.split
    )
    if sweep:
        result["sweep"] = sweep
    if args.plot:
        plot_free_embedding(result, args.plot, sweep)
    return result


# Each subcommand's description, and the examples of its --help.
COMMANDS = {
    "subsets": (
        "Count the distinct answer subsets of an env's queries (the study's x-axis).",
        [
            "python -m eval.analysis subsets --env SetUnion27-v0 --draws 1000000",
            "python -m eval.analysis subsets --env SetClassic27-v0 --exact --plot subsets.png",
        ],
    ),
    "rank": (
        "The rank of a finite game's query x key matrix, or a table of it over decks.",
        [
            "python -m eval.analysis rank --game classic --attributes 3 --values 3",
            "python -m eval.analysis rank --table --decks 2x3,3x3 --plot rank.png",
        ],
    ),
    "pmi": (
        "What NLL, pseudo-NLL and infoNCE learn on small joint distributions.",
        ["python -m eval.analysis pmi", "python -m eval.analysis pmi --steps 1000 --plot pmi.png"],
    ),
    "free-embedding": (
        "The best KL that free d-dimensional query and key vectors reach on an env.",
        [
            "python -m eval.analysis free-embedding --env SetUnion27-v0 --dims 4,8,16,27",
            "python -m eval.analysis free-embedding --env SetShatter27-v0 --sweep runs/quick "
            "--distribution uniform --plot bound.png",
        ],
    ),
}


def build_parser() -> argparse.ArgumentParser:
    examples = [examples[0] for _, examples in COMMANDS.values()]
    parser = make_parser(
        "eval.analysis", "Tools that explain the results, one subcommand each.", examples
    )
    commands = parser.add_subparsers(
        dest="command", required=True, help="the analysis to run (each has its own --help)"
    )

    def command(name: str, run) -> argparse.ArgumentParser:
        description, examples = COMMANDS[name]
        sub = commands.add_parser(
            name,
            help=description,
            description=description,
            epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
            formatter_class=HelpFormatter,
        )
        sub.add_argument("--plot", type=Path, help="also draw the figure into this PNG file")
        sub.set_defaults(run=run)
        return sub

    sub = command("subsets", run_subsets)
    sub.add_argument("--env", required=True, help="an env id, e.g. SetUnion27-v0")
    how = sub.add_mutually_exclusive_group(required=True)
    how.add_argument("--draws", type=int, help="count among this many draws (the study: 1e7)")
    how.add_argument("--exact", action="store_true", help="count over every query")
    sub.add_argument("--seed", type=int, default=0, help="seed of the draws")

    sub = command("rank", run_rank)
    sub.add_argument("--game", help=f"one of {', '.join(RANK_GAMES)}")
    sub.add_argument("--attributes", type=int, help="attributes of the deck")
    sub.add_argument("--values", type=int, help="values per attribute")
    sub.add_argument("--table", action="store_true", help="tabulate the rank over --decks")
    sub.add_argument("--decks", default=DEFAULT_DECKS, help="ATTRIBUTESxVALUES, comma-separated")
    sub.add_argument("--games", default=",".join(RANK_GAMES), help="games of the table")

    sub = command("pmi", run_pmi)
    sub.add_argument("--steps", type=int, default=3000, help="Adam steps per table")
    sub.add_argument("--batch", type=int, default=500, help="infoNCE minibatch of pairs")
    sub.add_argument(
        "--seed", type=int, default=0, help="seed of the tables' initialisation and minibatches"
    )

    sub = command("free-embedding", run_free_embedding)
    sub.add_argument("--env", required=True, help="an env id, e.g. SetUnion27-v0")
    sub.add_argument("--dims", default="1,2,4,8,16,27", help="comma-separated dimensions")
    sub.add_argument("--queries", type=int, default=5120, help="test queries (infinite games)")
    sub.add_argument("--steps", type=int, default=2000, help="full-batch Adam steps per dim")
    sub.add_argument(
        "--seed", type=int, default=0, help="seed of the test queries and the initialisation"
    )
    sub.add_argument("--sweep", type=Path, help="a sweep folder: overlay its contrastive KLs")
    sub.add_argument(
        "--distribution", choices=DISTRIBUTIONS, default="size_weighted", help="query weights"
    )
    sub.add_argument("--split", choices=SPLITS, default="test", help="test or all queries")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.plot is not None and not args.plot.parent.is_dir():
            raise ValueError(f"--plot: folder {args.plot.parent} does not exist")
        if hasattr(args, "seed"):
            check_seed(args.seed, "--seed")
        result = args.run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.plot is not None:
        print(f"figure: {args.plot}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
