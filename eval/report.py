"""``python -m eval.report DIR``: the study's table and figures from a sweep's run folders.

Writes ``DIR/report.md`` and PNG figures into DIR:

* the tables: models x games, KL and top-K overlap, ours beside the study's published
  numbers, and the free-embedding bound of each contrastive dim (``eval.analysis``, cached);
* ``kl_vs_dim.png`` / ``topk_vs_dim.png``: one panel per game, the metric against the
  contrastive dim d: ours, the study's, the free-embedding bound (KL), and our joint scorer
  and classifier as horizontal lines;
* ``kl_vs_subsets.png`` / ``topk_vs_subsets.png`` (two or more games): the metric against
  log2 of the number of distinct answer subsets of each game, one line per model;
* ``entropy_vs_dim.png``: mean prediction entropy against dim on SetUnion27, with the ideal,
  on all queries (beside the study's published entropies) and on 10 < |answer| < 20 (beside
  its notebooks');
* ``example.png``: one SetUnion27 query drawn as cards, each model's predicted distribution
  over the keys, and the truth.

A figure these runs cannot give is named with the reason, in one line. Every checkpoint is
evaluated through the harness on the same fixed test set of its env.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from agents.checkpoint import CHECKPOINT, iter_runs, load_scorer
from eval import reference
from eval.analysis.free_embedding import (
    family_label,
    family_order,
    floats_per_key,
    free_embedding_bound,
    scorer_family,
)
from eval.harness import metrics_with_buckets, score_eval_set
from eval.markdown import markdown_table
from eval.report_figures import (
    env_game_and_keys,
    env_order,
    figure_entropy,
    figure_example,
    figure_vs_dim,
    figure_vs_subsets,
    model_order,
)
from eval.sets import check_queries, make_eval_set
from set_env.cli import make_parser
from set_env.files import write_atomic
from set_env.registry import canonical_env_id


@dataclass
class Result:
    env: str
    agent: str
    dim: int | None
    env_kwargs: dict
    metrics: dict
    run_dir: Path
    scorer: torch.nn.Module = field(repr=False)
    eval_distribution: str = "size_weighted"
    """The distribution of the run's own evaluation set."""
    eval_split: str = "test"
    """The split of the run's own evaluation set."""
    held_out: dict | None = None
    """Metrics on the size-weighted test split, for a run evaluated on all queries."""
    agent_config: dict = field(default_factory=dict)
    """The scorer's config, as its checkpoint records it."""

    @property
    def family(self) -> tuple[str, int] | None:
        """The free-embedding family of the scorer and its size (``scorer_family``)."""
        return scorer_family(self.agent, self.agent_config)

    @property
    def evaluated_on(self) -> str:
        """The run's evaluation set, e.g. "size_weighted test"."""
        return f"{self.eval_distribution} {self.eval_split}"

    @property
    def game(self) -> str:
        """The game's name in the study's table (``Union``)."""
        return env_game_and_keys(self.env)[0]

    @property
    def n_keys(self) -> int:
        """The number of keys of the run's deck (27 or 81)."""
        return env_game_and_keys(self.env)[1]

    @property
    def label(self) -> str:
        """The model's row name, e.g. ``contrastive d=8``, ``mixture P=4 d=8`` or ``joint``."""
        family = self.family
        name = self.agent if family is None or family[0] == "single" else family_label(*family)
        return f"{name} d={self.dim}" if self.dim is not None else name


def collect(folder: Path, queries: int = 5120) -> tuple[list[Result], list[tuple[Path, str]]]:
    """Every run under ``folder`` with a checkpoint, evaluated on its env's test set; and the
    runs skipped as damaged or unreadable, (folder, why), each warned of in one line."""
    results, skipped = [], []
    for run in iter_runs(folder):
        if not run.has_checkpoint:
            continue
        try:
            results.append(evaluate_run(run.path / CHECKPOINT, queries))
        except ValueError as error:
            print(f"warning: skipped {run.path}: {error}", file=sys.stderr)
            skipped.append((run.path, str(error)))
            continue
        kl = results[-1].metrics["kl"]
        print(f"evaluated {run.path.name}: kl {kl:.3g}", file=sys.stderr)
    return results, skipped


def evaluate_run(checkpoint: Path, queries: int) -> Result:
    """One run's checkpoint through the harness, on the evaluation set its training used
    (distribution and split; by default the size-weighted test split), and on the held-out
    test split too when that was all queries."""
    scorer, state = load_scorer(checkpoint)
    env = canonical_env_id(state["env_id"])
    config = state.get("train_config") or {}
    distribution = config.get("eval_distribution", "size_weighted")
    split = config.get("eval_split", "test")

    def metrics_on(distribution: str, split: str) -> dict:
        eval_set = make_eval_set(env, queries, 0, distribution, state["env_kwargs"], split=split)
        return metrics_with_buckets(score_eval_set(scorer, eval_set), eval_set)

    metrics = metrics_on(distribution, split)
    held_out = metrics_on("size_weighted", "test") if split != "test" else None
    dim = state["agent_config"].get("dim")
    return Result(
        env,
        state["agent"],
        dim,
        state["env_kwargs"],
        metrics,
        checkpoint.parent,
        scorer,
        distribution,
        split,
        held_out,
        state["agent_config"],
    )


def _study_model(result: Result) -> str | None:
    """The study's row of ``result``'s scorer: its contrastive model of the same dim, its
    non-contrastive one for our joint scorer and classifier; None for the other families."""
    if result.agent == "contrastive":
        return result.label
    return "non-contrastive" if result.agent in ("joint", "classifier") else None


def fmt(value: float) -> str:
    """Every number of the tables: 3 significant figures."""
    return f"{value:.3g}"


def table(results: list[Result]) -> str:
    """Markdown: KL and top-K overlap per model x 27-card game, and SetUnion81-v0's; the
    study's in brackets."""
    return "\n".join([*_tables_27(results), *_table_union81(results)])


def _tables_27(results: list[Result]) -> list[str]:
    """The KL and the top-K table of the 27-card games: a row per model, a column per game."""
    cells = {(r.label, r.game): r for r in results if r.n_keys == 27}
    labels = sorted({label for label, _ in cells}, key=model_order)
    games = [g for g in reference.GAMES if any(game == g for _, game in cells)]
    tables = []
    for title, index, name in (("KL (nats)", 0, "kl"), ("top-K overlap", 1, "topk_overlap")):
        rows = [
            [label, *(_cell(cells.get((label, g)), g, name, index) for g in games)]
            for label in labels
        ]
        tables.append(markdown_table(["model", *games], rows, f"{title}: ours (the study's)"))
    return tables


def _table_union81(results: list[Result]) -> list[str]:
    """The table of SetUnion81-v0's runs (none without them)."""
    runs = sorted(
        (r for r in results if r.env == "SetUnion81-v0"), key=lambda r: model_order(r.label)
    )
    if not runs:
        return []
    rows = []
    for r in runs:
        study = reference.UNION_81.get(_study_model(r))
        rows.append(
            [r.label]
            + [
                fmt(r.metrics[name]) + (f" ({fmt(study[index])})" if study else "")
                for index, name in enumerate(("kl", "topk_overlap"))
            ]
        )
    return [markdown_table(["model", "KL", "top-K"], rows, "SetUnion81-v0: ours (the study's)")]


def _cell(result: Result | None, game: str, name: str, index: int) -> str:
    """Ours, then in brackets the study's published number (and on union its notebooks'),
    then, for a run evaluated on all queries, ours on the held-out ones ("–": no run)."""
    if result is None:
        return "–"
    text = fmt(result.metrics[name])
    study = reference.study_27(_study_model(result), game)
    notebook = reference.UNION_27_NOTEBOOK.get(result.dim) if game == "Union" else None
    if study and notebook and result.agent == "contrastive":
        text += f" ({fmt(study[index])}; notebook {fmt(notebook[index])})"
    elif study:
        text += f" ({fmt(study[index])})"
    if result.held_out is not None:
        text += f" [held-out {fmt(result.held_out[name])}]"
    return text


Bounds = dict[str, dict[tuple[str, int], dict[int, float]]]
"""{env: {(family, size): {dim: the free-embedding bound}}}."""


def free_embedding_bounds(results: list[Result], queries: int) -> Bounds:
    """The free-embedding bound of each env's dot-product runs (contrastive, multivector,
    mixture: ``Result.family``) at their dims, on the queries those runs are evaluated on
    (their distribution and split; cached, so computed once per machine)."""
    dims: dict[tuple, set[int]] = {}
    for r in results:
        if r.family is not None:
            key = (r.env, r.family, r.eval_distribution, r.eval_split)
            dims.setdefault(key, set()).add(r.dim)
    bounds: Bounds = {}
    for (env, (family, size), distribution, split), d in dims.items():
        sizes = {"vectors": size, "components": size}
        bound = free_embedding_bound(
            env, sorted(d), queries, distribution=distribution, split=split, family=family, **sizes
        )
        bounds.setdefault(env, {}).setdefault((family, size), {}).update(bound)
    return bounds


def bound_table(bounds: Bounds) -> str:
    """Markdown: the free-embedding bound (KL) per family and dim x env, with the floats
    each key stores."""
    if not bounds:
        return ""
    envs = sorted(bounds, key=env_order)
    families = sorted({f for bound in bounds.values() for f in bound}, key=family_order)
    rows = []
    for family in families:
        name, size = family
        dims = sorted({d for bound in bounds.values() for d in bound.get(family, {})})
        for dim in dims:
            kls = [bounds[env].get(family, {}).get(dim) for env in envs]
            rows.append(
                [
                    f"{family_label(name, size)} d={dim}",
                    str(floats_per_key(name, dim, size)),
                ]
                + [fmt(kl) if kl is not None else "–" for kl in kls]
            )
    title = (
        "Free-embedding bound (KL): the best free vectors of each scorer family reach, "
        "with the floats each key stores"
    )
    return markdown_table(["family", "floats per key", *envs], rows, title)


def draw_figures(results: list[Result], bounds: dict, folder: Path, queries: int) -> list[str]:
    """Every figure these runs can give; the one-line reasons of those they cannot."""
    notes = [
        figure_vs_dim(results, "kl", bounds, folder / "kl_vs_dim.png"),
        figure_vs_dim(results, "topk_overlap", bounds, folder / "topk_vs_dim.png"),
        figure_vs_subsets(results, "kl", folder / "kl_vs_subsets.png"),
        figure_vs_subsets(results, "topk_overlap", folder / "topk_vs_subsets.png"),
        figure_entropy(results, queries, folder / "entropy_vs_dim.png"),
        figure_example(results, queries, folder / "example.png"),
    ]
    return [note for note in notes if note is not None]


def write_report(folder: Path, queries: int = 5120) -> Path:
    """The path of ``folder/report.md``, written with the figures beside it; the tables are
    also printed. ValueError when no run under ``folder`` can be read."""
    results, skipped = collect(folder, queries)
    if not results:
        raise ValueError(f"no usable run with a {CHECKPOINT} under {folder}")
    bounds = free_embedding_bounds(results, queries)
    notes = draw_figures(results, bounds, folder, queries)
    for note in notes:
        print(note, file=sys.stderr)
    figures = [p.name for p in sorted(folder.glob("*.png"))]
    text = "\n".join(
        [
            f"# Results in {folder}",
            "",
            f"{len(results)} runs, each evaluated on {queries} queries drawn as its training "
            f"evaluated ({evaluated_on(results)}). In brackets: {reference.SOURCE}, as "
            "published (its non-contrastive row beside our joint and classifier rows); on "
            f"union also {reference.NOTEBOOK_SOURCE}. In square brackets, for a run evaluated "
            "on all queries (training ones included, as the study did for classic and "
            "wildcard), ours on the held-out test split.",
            "",
            table(results),
            bound_table(bounds),
            *skipped_section(skipped),
            *[f"* {note}" for note in notes],
            "",
            *[f"![{name}]({name})" for name in figures],
            "",
        ]
    )
    path = folder / "report.md"
    write_atomic(path, lambda file: file.write(text.encode()))
    return path


def evaluated_on(results: list[Result]) -> str:
    """The evaluation sets of the runs, e.g. "size_weighted test; SetShatter27-v0: uniform
    test": the most common one, then each env whose runs differ."""
    common = max({r.evaluated_on for r in results}, key=[r.evaluated_on for r in results].count)
    others = sorted({(r.env, r.evaluated_on) for r in results if r.evaluated_on != common})
    return "; ".join([common, *(f"{env}: {sets}" for env, sets in others)])


def skipped_section(skipped: list[tuple[Path, str]]) -> list[str]:
    """Markdown lines listing the runs left out of the report, and why."""
    if not skipped:
        return []
    lines = [f"### Skipped: {len(skipped)} run(s) that could not be read", ""]
    lines += [f"* `{folder.name}`: {why}" for folder, why in skipped]
    return [*lines, ""]


def main(argv=None) -> None:
    """``python -m eval.report DIR``; a bad argument is one error line."""
    parser = make_parser(
        "eval.report",
        "The study's tables and figures from a sweep's run folders, into DIR/report.md and PNGs.",
        ["python -m eval.report runs/quick", "python -m eval.report runs/paper --queries 20000"],
    )
    parser.add_argument(
        "folder", type=Path, metavar="DIR", help="a sweep's output folder (run directories)"
    )
    parser.add_argument("--queries", type=int, default=5120, help="test queries per env")
    args = parser.parse_args(argv)
    try:
        check_queries(args.queries)
        if not args.folder.is_dir():
            raise ValueError(f"{args.folder} is not a folder")
        path = write_report(args.folder, args.queries)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(path.read_text().split("\n![")[0])
    print(f"report: {path}\nfigures: {args.folder}/*.png", file=sys.stderr)


if __name__ == "__main__":
    main()
