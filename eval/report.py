"""``python -m eval.report DIR``: the study's table and figures from a sweep's run folders.

Writes ``DIR/report.md`` and PNG figures into DIR:

* the table: models x games, KL and top-K overlap, ours beside the study's published numbers;
* ``kl_vs_subsets.png`` / ``topk_vs_subsets.png``: the metric against log2 of the number of
  distinct answer subsets of each game, one line per model (the study's headline figure);
* ``entropy_vs_dim.png``: mean prediction entropy against dim on SetUnion27, with the ideal;
* ``example.png``: one SetUnion27 query drawn as cards, each model's predicted distribution
  over the keys, and the truth.

Every checkpoint is evaluated through the harness on the same fixed test set of its env.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from agents.base import canonical_env_id
from agents.checkpoint import CHECKPOINT, load_scorer, write_atomic
from eval import reference
from eval.figures import pyplot, save
from eval.harness import report, score_eval_set
from eval.sets import check_queries, make_eval_set
from set_env import GAME_IDS


@dataclass
class Result:
    env: str
    agent: str
    dim: int | None
    env_kwargs: dict
    metrics: dict
    run_dir: Path
    scorer: torch.nn.Module = field(repr=False)

    @property
    def game(self) -> str:
        """The game's name in the study's table (``Union``), from the env's registration."""
        return GAME_IDS[gym.spec(self.env).kwargs["game"]]

    @property
    def n_keys(self) -> int:
        kwargs = gym.spec(self.env).kwargs
        return kwargs["n_values"] ** kwargs["n_attributes"]

    @property
    def label(self) -> str:
        return f"{self.agent} d={self.dim}" if self.dim is not None else self.agent


def collect(folder: Path, queries: int = 5120) -> tuple[list[Result], list[tuple[Path, str]]]:
    """Every run under ``folder`` with a checkpoint, evaluated on its env's test set; and the
    runs skipped as damaged or unreadable, (folder, why), each warned of in one line."""
    results, skipped = [], []
    for checkpoint in sorted(folder.glob(f"*/{CHECKPOINT}")):
        try:
            results.append(evaluate_run(checkpoint, queries))
        except ValueError as error:
            print(f"warning: skipped {checkpoint.parent}: {error}", file=sys.stderr)
            skipped.append((checkpoint.parent, str(error)))
            continue
        kl = results[-1].metrics["kl"]
        print(f"evaluated {checkpoint.parent.name}: kl {kl:.4f}", file=sys.stderr)
    return results, skipped


def evaluate_run(checkpoint: Path, queries: int) -> Result:
    """One run's checkpoint through the harness, on its env's fixed test set."""
    scorer, state = load_scorer(checkpoint)
    env = canonical_env_id(state["env_id"])
    eval_set = make_eval_set(env, queries, env_kwargs=state["env_kwargs"])
    metrics = report(score_eval_set(scorer, eval_set), eval_set)
    dim = state["agent_config"].get("dim")
    return Result(env, state["agent"], dim, state["env_kwargs"], metrics, checkpoint.parent, scorer)


def _model_order(label: str) -> tuple:
    agent, _, dim = label.partition(" d=")
    return (agent != "contrastive", int(dim) if dim else 0, agent)


def _study_model(result: Result) -> str:
    return result.label if result.agent == "contrastive" else "non-contrastive"


def table(results: list[Result]) -> str:
    """Markdown: KL and top-K overlap per model x 27-card game; the study's in brackets."""
    cells = {(r.label, r.game): r for r in results if r.n_keys == 27}
    labels = sorted({label for label, _ in cells}, key=_model_order)
    games = [g for g in reference.GAMES if any(game == g for _, game in cells)]
    lines = []
    for title, index, name in (("KL (nats)", 0, "kl"), ("top-K overlap", 1, "topk_overlap")):
        lines += [f"### {title}: ours (the study's)", "", "| model | " + " | ".join(games) + " |"]
        lines.append("|---|" + "---:|" * len(games))
        for label in labels:
            row = []
            for game in games:
                result = cells.get((label, game))
                study = reference.study_27(_study_model(result), game) if result else None
                ours = f"{result.metrics[name]:.4g}" if result else "–"
                row.append(ours + (f" ({study[index]:g})" if study else ""))
            lines.append(f"| {label} | " + " | ".join(row) + " |")
        lines.append("")
    union81 = sorted(
        (r for r in results if r.env == "SetUnion81-v0"), key=lambda r: _model_order(r.label)
    )
    if union81:
        lines += [
            "### SetUnion81-v0: ours (the study's)",
            "",
            "| model | KL | top-K |",
            "|---|---:|---:|",
        ]
        for r in union81:
            key = r.label if r.agent == "contrastive" else "non-contrastive"
            study = reference.UNION_81.get(key)
            kl = f"{r.metrics['kl']:.4g}" + (f" ({study[0]:g})" if study else "")
            topk = f"{r.metrics['topk_overlap']:.4g}" + (f" ({study[1]:g})" if study else "")
            lines.append(f"| {r.label} | {kl} | {topk} |")
        lines.append("")
    return "\n".join(lines)


def _sorted_runs(results: list[Result], env: str) -> list[Result]:
    return sorted((r for r in results if r.env == env), key=lambda r: _model_order(r.label))


def figure_vs_subsets(results: list[Result], metric: str, path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    by_model: dict[str, list] = {}
    for r in results:
        if r.n_keys == 27 and r.game in reference.LOG2_SUBSETS:
            by_model.setdefault(r.label, []).append(
                (reference.LOG2_SUBSETS[r.game], r.metrics[metric])
            )
    for label in sorted(by_model, key=_model_order):
        points = sorted(by_model[label])
        axes.plot(*zip(*points, strict=True), marker="o", label=label)
    axes.set_xlabel("log2(distinct answer subsets of the game)")
    name = {"kl": "KL (nats)", "topk_overlap": "top-K overlap"}[metric]
    axes.set_ylabel(name)
    axes.set_title(f"{name} against the number of answer subsets a game needs")
    axes.legend(fontsize=8)
    save(figure, path)


def figure_entropy(results: list[Result], queries: int, path: Path) -> None:
    union = sorted(
        (r for r in results if r.env == "SetUnion27-v0" and r.dim is not None), key=lambda r: r.dim
    )
    if not union:
        return
    plt = pyplot()
    eval_set = make_eval_set("SetUnion27-v0", queries)
    ideal = float(np.log2(eval_set.positives.sum(axis=1)).mean())
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(
        [r.dim for r in union], [r.metrics["entropy_bits"] for r in union], "o-", label="ours"
    )
    study = reference.UNION_27_ENTROPY
    axes.plot(list(study), list(study.values()), "s--", label="the study")
    axes.axhline(
        ideal, color="grey", linestyle=":", label=f"ideal (uniform over positives): {ideal:.3f}"
    )
    axes.set_xscale("log", base=2)
    axes.set_xlabel("contrastive dim")
    axes.set_ylabel("mean prediction entropy (bits)")
    axes.set_title("SetUnion27-v0")
    axes.legend(fontsize=8)
    save(figure, path)


def figure_example(results: list[Result], queries: int, path: Path) -> None:
    union = _sorted_runs(results, "SetUnion27-v0")
    if not union:
        return
    from set_env import Deck, parse_query
    from set_env.render import render_rgb

    plt = pyplot()
    eval_set = make_eval_set("SetUnion27-v0", queries)
    query = parse_query(eval_set.texts[0], Deck(3, 3))
    rows = 1 + len(union) + 1
    figure = plt.figure(figsize=(9, 2.2 + 1.1 * rows))
    grid = figure.add_gridspec(rows, 1, height_ratios=[3] + [1] * (rows - 1))
    picture = figure.add_subplot(grid[0])
    picture.imshow(render_rgb(query))
    picture.set_title(query.text, fontsize=8)
    picture.axis("off")
    truth = query.positives / query.positives.sum()
    panels = [(r.label, _distribution(r, eval_set)) for r in union] + [("truth", truth)]
    for i, (label, probabilities) in enumerate(panels, start=1):
        axes = figure.add_subplot(grid[i])
        axes.bar(
            range(len(probabilities)),
            probabilities,
            color="tab:green" if label == "truth" else "tab:blue",
        )
        axes.set_ylabel(label, rotation=0, ha="right", fontsize=8)
        axes.set_xticks([])
        axes.set_ylim(0, max(0.2, float(max(probabilities)) * 1.1))
    save(figure, path, dpi=110)


@torch.no_grad()
def _distribution(result: Result, eval_set) -> np.ndarray:
    tokens = make_eval_set(result.env, len(eval_set), env_kwargs=result.env_kwargs).tokens[:1]
    return torch.softmax(result.scorer(torch.as_tensor(tokens)).float(), dim=-1)[0].numpy()


def write_report(folder: Path, queries: int = 5120) -> Path:
    results, skipped = collect(folder, queries)
    if not results:
        raise ValueError(f"no usable run with a {CHECKPOINT} under {folder}")
    figure_vs_subsets(results, "kl", folder / "kl_vs_subsets.png")
    figure_vs_subsets(results, "topk_overlap", folder / "topk_vs_subsets.png")
    figure_entropy(results, queries, folder / "entropy_vs_dim.png")
    figure_example(results, queries, folder / "example.png")
    figures = [p.name for p in sorted(folder.glob("*.png"))]
    text = "\n".join(
        [
            f"# Results in {folder}",
            "",
            f"{len(results)} runs, each evaluated on {queries} size-weighted test-split "
            f"queries. In brackets: {reference.SOURCE}, as published (its non-contrastive row "
            "beside our joint and classifier rows).",
            "",
            table(results),
            *skipped_section(skipped),
            *[f"![{name}]({name})" for name in figures],
            "",
        ]
    )
    path = folder / "report.md"
    write_atomic(path, lambda file: file.write(text.encode()))
    return path


def skipped_section(skipped: list[tuple[Path, str]]) -> list[str]:
    """Markdown lines listing the runs left out of the report, and why."""
    if not skipped:
        return []
    lines = [f"### Skipped: {len(skipped)} run(s) that could not be read", ""]
    lines += [f"* `{folder.name}`: {why}" for folder, why in skipped]
    return [*lines, ""]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m eval.report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("folder", type=Path, help="a sweep's output folder (run directories)")
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
