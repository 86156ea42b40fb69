"""The command line ``python -m eval.analysis SUBCOMMAND``: one subcommand per analysis, each
printing one JSON object on stdout and drawing its figure with ``--plot FILE``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval.analysis.arguments import JoinedLists, integer, list_of
from eval.analysis.free_embedding import (
    FAMILIES,
    free_embedding,
    plot_free_embedding,
    sweep_kls,
)
from eval.analysis.pmi import plot_pmi, pmi
from eval.analysis.rank import (
    DEFAULT_DECKS,
    RANK_GAMES,
    markdown_table,
    parse_deck,
    plot_rank_matrix,
    plot_rank_table,
    rank,
    rank_table,
)
from eval.analysis.subsets import plot_subsets, subsets
from eval.sets import DISTRIBUTIONS, SPLITS
from set_env.checks import check_seed
from set_env.cli import HelpFormatter, make_parser


def run_subsets(args) -> dict:
    """``subsets``' JSON result (and its figure)."""
    result = subsets(args.env, args.draws, args.exact, args.seed)
    if args.plot:
        plot_subsets(result, args.plot)
    return result


def run_rank(args) -> dict:
    """``rank``'s JSON result (and its figure)."""
    result = rank(args.game, args.attributes, args.values)
    if args.plot:
        plot_rank_matrix(args.game, args.attributes, args.values, args.plot)
    return result


def run_rank_table(args) -> dict:
    """``rank-table``'s JSON result (and its figure); the markdown table on stderr."""
    rows = rank_table(args.decks, args.games)
    print(markdown_table(rows), file=sys.stderr)
    if args.plot:
        plot_rank_table(rows, args.plot)
    return {"table": rows}


def run_pmi(args) -> dict:
    """``pmi``'s JSON result (and its figure)."""
    result, tables = pmi(args.steps, args.batch, args.seed)
    if args.plot:
        plot_pmi(tables, args.plot)
    return result


def run_free_embedding(args) -> dict:
    """``free-embedding``'s JSON result (and its figure), with the sweep's KLs if given."""
    sweep = sweep_kls(args.sweep, args.env) if args.sweep else None
    setting = {"distribution": args.distribution, "split": args.split, "family": args.family}
    setting.update(vectors=args.vectors, components=args.components)
    result = free_embedding(args.env, args.dims, args.queries, args.steps, args.seed, **setting)
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
        "The rank of a finite game's query x key matrix on one deck.",
        [
            "python -m eval.analysis rank --game classic --attributes 3 --values 3",
            "python -m eval.analysis rank --game shared --attributes 2 --values 3 --plot m.png",
        ],
    ),
    "rank-table": (
        "A table of the finite games' query x key matrix ranks over decks.",
        [
            "python -m eval.analysis rank-table --decks 2x3 3x3 --plot rank.png",
            "python -m eval.analysis rank-table --games classic shared",
        ],
    ),
    "pmi": (
        "What NLL, pseudo-NLL and infoNCE learn on small joint distributions.",
        ["python -m eval.analysis pmi", "python -m eval.analysis pmi --steps 1000 --plot pmi.png"],
    ),
    "free-embedding": (
        "The best KL that free d-dimensional query and key vectors reach on an env.",
        [
            "python -m eval.analysis free-embedding --env SetUnion27-v0 --dims 4 8 16 27",
            "python -m eval.analysis free-embedding --env SetShatter27-v0 --sweep runs/quick "
            "--distribution uniform --plot bound.png",
            "python -m eval.analysis free-embedding --env SetShatter27-v0 --family mixture "
            "--components 4 --dims 2 4 8",
        ],
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m eval.analysis`` and its subcommands."""
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

    def list_flag(sub: argparse.ArgumentParser, flag: str, item, metavar: str, **kwargs):
        sub.add_argument(flag, nargs="+", type=item, action=JoinedLists, metavar=metavar, **kwargs)

    sub = command("subsets", run_subsets)
    sub.add_argument("--env", required=True, help="an env id, e.g. SetUnion27-v0")
    how = sub.add_mutually_exclusive_group(required=True)
    how.add_argument("--draws", type=int, help="count among this many draws (the study: 1e7)")
    how.add_argument("--exact", action="store_true", help="count over every query")
    sub.add_argument("--seed", type=int, default=0, help="seed of the draws")

    sub = command("rank", run_rank)
    sub.add_argument("--game", required=True, help=f"one of {', '.join(RANK_GAMES)}")
    sub.add_argument("--attributes", type=int, required=True, help="attributes of the deck")
    sub.add_argument("--values", type=int, required=True, help="values per attribute")

    sub = command("rank-table", run_rank_table)
    list_flag(
        sub,
        "--decks",
        list_of(parse_deck),
        "DECK",
        default=DEFAULT_DECKS,
        help="decks ATTRIBUTESxVALUES, space- or comma-separated",
    )
    list_flag(
        sub,
        "--games",
        list_of(str, RANK_GAMES),
        "GAME",
        default=",".join(RANK_GAMES),
        help=f"games of the table, of {', '.join(RANK_GAMES)}",
    )

    sub = command("pmi", run_pmi)
    sub.add_argument("--steps", type=int, default=3000, help="Adam steps per table")
    sub.add_argument("--batch", type=int, default=500, help="infoNCE minibatch of pairs")
    sub.add_argument(
        "--seed", type=int, default=0, help="seed of the tables' initialisation and minibatches"
    )

    sub = command("free-embedding", run_free_embedding)
    sub.add_argument("--env", required=True, help="an env id, e.g. SetUnion27-v0")
    list_flag(
        sub,
        "--dims",
        list_of(integer),
        "D",
        default="1,2,4,8,16,27",
        help="dimensions, space- or comma-separated",
    )
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
    sub.add_argument(
        "--family", choices=FAMILIES, default="single", help="the scorer family of the vectors"
    )
    sub.add_argument(
        "--vectors", type=int, default=4, help="multivector: vectors per query and per key"
    )
    sub.add_argument("--components", type=int, default=4, help="mixture: gated vector pairs")
    return parser


def with_new_names(argv: list[str]) -> list[str]:
    """``argv`` with ``rank --table ...``, the old spelling in users' scripts, as the new
    ``rank-table ...`` (and a note on stderr)."""
    if argv[:1] == ["rank"] and "--table" in argv[1:]:
        print("note: 'rank --table' is now 'rank-table'", file=sys.stderr)
        return ["rank-table", *(word for word in argv[1:] if word != "--table")]
    return argv


def main(argv=None) -> None:
    """Run ``python -m eval.analysis`` on ``argv`` (the command line's by default)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(with_new_names(argv))
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
