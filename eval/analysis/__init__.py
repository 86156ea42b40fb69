"""``python -m eval.analysis``: tools that explain the results, one subcommand each.

Each prints one JSON object on stdout (logs and progress on stderr) and draws a PNG with
``--plot FILE``; a bad argument prints one ``error:`` line and exits with status 2.

    python -m eval.analysis subsets --env ID (--draws N | --exact) [--seed 0]
    python -m eval.analysis rank --game classic|wildcard|shared --attributes A --values V
    python -m eval.analysis rank-table [--decks 2x3 3x3 2x4 2x5 3x4 4x3] [--games ...]
    python -m eval.analysis pmi [--steps 3000] [--batch 500] [--seed 0]
    python -m eval.analysis free-embedding --env ID [--dims 1 2 4 8 16 27] [--queries 5120]
        [--steps 2000] [--seed 0] [--sweep DIR]

One module per analysis, each with its figure, and the command line in ``cli``:

* ``subsets``: how many distinct answer subsets a game's queries have, the x-axis of the
  study's headline figure: a dimension-d contrastive model must give each its own region.
* ``rank``: the rank of the 0/1 matrix of all distinct queries x keys of a finite game
  (``rank-table``: over several decks).
* ``pmi``: what infoNCE learns. A free table of scores trained with NLL, pseudo-NLL or
  infoNCE on small joints: infoNCE learns p(x,y)/(p(x)p(y)) (the PMI), the others p(x,y).
* ``free_embedding``: the best KL that free query and key vectors of dimension d reach, with
  no encoder: what a dimension-d contrastive model cannot represent at all, as opposed to
  what it fails to learn.

The names below are those of the single module this package replaced, so ``analysis.rank``,
``analysis.pmi``, ``analysis.subsets`` and ``analysis.free_embedding`` are the functions,
not the modules of the same names (``import eval.analysis.rank as m`` binds the function
too): reach a module's other names with ``from eval.analysis.rank import _primes``.
"""

from eval.analysis.cli import COMMANDS, build_parser, main
from eval.analysis.common import LR, env_game
from eval.analysis.free_embedding import (
    CRITICAL_KL,
    FAMILIES,
    answers_to_fit,
    check_dims,
    family_logits,
    fit_free_embedding,
    floats_per_key,
    free_embedding,
    free_embedding_bound,
    plot_free_embedding,
    sweep_kls,
)
from eval.analysis.pmi import (
    PMI_DATASETS,
    PMI_OBJECTIVES,
    joint,
    kl,
    plot_pmi,
    pmi,
    pmi_loss,
    pmi_table,
    train_table,
)
from eval.analysis.rank import (
    DEFAULT_DECKS,
    RANK_GAMES,
    exact_rank,
    markdown_table,
    parse_deck,
    plot_rank_matrix,
    plot_rank_table,
    query_key_matrix,
    rank,
    rank_mod,
    rank_table,
)
from eval.analysis.subsets import count_exact, distinct_rows, drawn_subsets, plot_subsets, subsets

__all__ = [
    "COMMANDS",
    "CRITICAL_KL",
    "DEFAULT_DECKS",
    "LR",
    "PMI_DATASETS",
    "PMI_OBJECTIVES",
    "RANK_GAMES",
    "answers_to_fit",
    "build_parser",
    "check_dims",
    "count_exact",
    "distinct_rows",
    "drawn_subsets",
    "env_game",
    "exact_rank",
    "FAMILIES",
    "family_logits",
    "fit_free_embedding",
    "floats_per_key",
    "free_embedding",
    "free_embedding_bound",
    "joint",
    "kl",
    "main",
    "markdown_table",
    "parse_deck",
    "plot_free_embedding",
    "plot_pmi",
    "plot_rank_matrix",
    "plot_rank_table",
    "plot_subsets",
    "pmi",
    "pmi_loss",
    "pmi_table",
    "query_key_matrix",
    "rank",
    "rank_mod",
    "rank_table",
    "subsets",
    "sweep_kls",
    "train_table",
]
