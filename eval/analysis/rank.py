"""``rank``: the exact rank of the 0/1 matrix of all distinct queries x keys of a finite
game, on one deck or tabulated over several."""

from __future__ import annotations

import math
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval.analysis.common import figure_axes
from eval.markdown import markdown_table as write_markdown_table
from set_env.checks import excerpt
from set_env.deck import Deck
from set_env.games import make_game

RANK_GAMES = ("classic", "wildcard", "shared")
DEFAULT_DECKS = "2x3,3x3,2x4,2x5,3x4,4x3"


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
        raise ValueError(f"a deck is ATTRIBUTESxVALUES, e.g. 4x3 (81 cards), got {excerpt(text)}")
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
    table_rows = [
        [f"{attributes}x{values}", str(keys)]
        + [
            f"{cell['rank']} ({cell['queries']})" if cell else "–"
            for cell in (cells.get((attributes, values, game)) for game in games)
        ]
        for attributes, values, keys in decks
    ]
    header = ["deck (attributes x values)", "keys", *games]
    return write_markdown_table(header, table_rows).rstrip("\n")


def plot_rank_table(rows: list[dict], path: Path) -> None:
    """Rank against the number of keys, one line per game, beside rank = keys."""
    styles = {"classic": "o-", "wildcard": "s--", "shared": "^-"}  # classic, wildcard overlap
    with figure_axes(path) as axes:
        for game, style in styles.items():
            points = sorted((r["keys"], r["rank"]) for r in rows if r["game"] == game)
            if points:
                axes.plot(*zip(*points, strict=True), style, label=game)
        keys = sorted({r["keys"] for r in rows})
        axes.plot(keys, keys, ":", color="grey", label="rank = keys (full)")
        axes.set_xlabel("keys (cards in the deck)")
        axes.set_ylabel("rank of the query x key matrix")


def plot_rank_matrix(game: str, attributes: int, values: int, path: Path) -> None:
    """The distinct answers as a 0/1 image, one row each."""
    matrix, _ = query_key_matrix(game, attributes, values)
    with figure_axes(path, figsize=(6, 1.5 + min(8, 0.05 * len(matrix)))) as axes:
        axes.imshow(matrix, aspect="auto", cmap="Greys", interpolation="nearest")
        axes.set_xlabel("key")
        axes.set_ylabel("distinct answer")
        axes.set_title(f"{game} on {attributes}x{values}: rank {exact_rank(matrix)}")
