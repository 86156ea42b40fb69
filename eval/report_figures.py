"""The report's figures. Each ``figure_*`` draws one PNG from a sweep's evaluated runs and
returns None, or returns the one-line reason it cannot be drawn for these runs."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from eval import reference
from eval.analysis.free_embedding import FAMILY_SIZES, family_label, family_order
from eval.figures import bottom_legend, pyplot, save
from eval.harness import score_eval_set
from eval.sets import make_eval_set
from set_env import GAME_IDS

METRIC_NAMES = {"kl": "KL (nats)", "topk_overlap": "top-K overlap"}
KL_FLOOR = 1e-6  # a KL of 0 still shows on a log axis
# Our non-contrastive scorers as horizontal lines, each its own colour and dash pattern.
LEVEL_STYLES = (
    {"color": "tab:red", "linestyle": "--"},
    {"color": "tab:purple", "linestyle": "-."},
    {"color": "tab:brown", "linestyle": (0, (1, 1))},
    {"color": "tab:olive", "linestyle": (0, (5, 1, 1, 1))},
)


# The dot-product families first, in this order, then the other scorers by name.
DOT_AGENTS = ("contrastive", *FAMILY_SIZES)
# Each dot-product family's colour: its runs in solid lines, its free-embedding bound dotted.
FAMILY_COLOURS = {"single": "tab:blue", "multivector": "tab:orange", "mixture": "tab:cyan"}


def model_order(label: str) -> tuple:
    """Contrastive runs by dim first, then multivector and mixture ones (by size and dim),
    then the other scorers by name."""
    name, _, dim = label.partition(" d=")
    agent = name.split()[0]
    rank = DOT_AGENTS.index(agent) if agent in DOT_AGENTS else len(DOT_AGENTS)
    return (rank, name, int(dim) if dim else 0)


def env_order(env: str) -> tuple:
    """27-card games in the study's order, then the 81-card ones."""
    game, keys = env_game_and_keys(env)
    return (keys, reference.GAMES.index(game) if game in reference.GAMES else 99, env)


def env_game_and_keys(env: str) -> tuple[str, int]:
    """The study's name of an env's game (``Union``) and its number of keys, read from the
    env's registration."""
    kwargs = gym.spec(env).kwargs
    return GAME_IDS[kwargs["game"]], kwargs["n_values"] ** kwargs["n_attributes"]


def study_points(env: str, metric: str) -> list[tuple[int, float]]:
    """The study's (dim, value) of its contrastive models on ``env``, as published."""
    index = 0 if metric == "kl" else 1
    game, keys = env_game_and_keys(env)
    if keys == 81 and game == "Union":
        table = {name: values[index] for name, values in reference.UNION_81.items()}
    elif keys == 27 and game in reference.GAMES:
        position = reference.GAMES.index(game)
        table = {name: values[index][position] for name, values in reference.TABLE_27.items()}
    else:
        return []
    return sorted(
        (int(name.split("=")[1]), value)
        for name, value in table.items()
        if name.startswith("contrastive")
    )


def figure_vs_dim(results, metric: str, bounds: dict, path: Path) -> str | None:
    """One panel per env: the metric of our runs of each dot-product family (contrastive,
    multivector, mixture) against d, the study's contrastive ones, each family's
    free-embedding bound (KL only), and our other scorers as horizontal lines."""
    envs = sorted({r.env for r in results}, key=env_order)
    if not any(r.family is not None for r in results):
        return (
            f"{path.name}: not drawn, it needs runs of a dot-product scorer "
            "(contrastive, multivector, mixture; the sweep has none)"
        )
    plt = pyplot()
    figure, panels = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.8), squeeze=False)
    for axes, env in zip(panels[0], envs, strict=True):
        _panel_vs_dim(axes, [r for r in results if r.env == env], metric, bounds.get(env, {}))
        axes.set_title(env)
    handles = {}
    for axes in panels[0]:
        handles.update(zip(*reversed(axes.get_legend_handles_labels()), strict=True))
    legend_height = bottom_legend(figure, list(handles.values()), list(handles))
    save(figure, path, rect=(0, legend_height, 1, 1))
    return None


def _panel_vs_dim(axes, runs, metric: str, bound: dict) -> None:
    def shown(value: float) -> float:
        return max(value, KL_FLOOR) if metric == "kl" else value

    families = sorted({r.family for r in runs if r.family is not None}, key=family_order)
    for family in families:
        ours = sorted((r.dim, shown(r.metrics[metric])) for r in runs if r.family == family)
        name = "contrastive" if family[0] == "single" else family_label(*family)
        colour = FAMILY_COLOURS[family[0]]
        axes.plot(*zip(*ours, strict=True), "o-", color=colour, label=f"ours: {name}")
    study = study_points(runs[0].env, metric)
    if study:
        dims, values = zip(*study, strict=True)
        study_values = [shown(v) for v in values]
        axes.plot(
            dims, study_values, "s--", color="grey", mfc="none", label="the study: contrastive"
        )
    for family in sorted(bound if metric == "kl" else {}, key=family_order):
        values = sorted(bound[family].items())
        bound_values = [shown(v) for _, v in values]
        colour = "tab:green" if family[0] == "single" else FAMILY_COLOURS[family[0]]
        label = "free-embedding bound" + (
            "" if family[0] == "single" else f": {family_label(*family)}"
        )
        axes.plot([d for d, _ in values], bound_values, "^:", color=colour, label=label)
    others = sorted({r.label for r in runs if r.family is None}, key=model_order)
    for label, style in zip(others, LEVEL_STYLES * len(others), strict=False):
        for run in (r for r in runs if r.label == label):
            axes.axhline(shown(run.metrics[metric]), label=f"ours: {label}", lw=1.5, **style)
    axes.set_xscale("log", base=2)
    ticks = dim_ticks({r.dim for r in runs if r.family is not None}, {d for d, _ in study})
    axes.set_xticks(ticks, [str(d) for d in ticks], fontsize=8)
    axes.minorticks_off()
    if metric == "kl":
        axes.set_yscale("log")
    axes.set_xlabel("vector width d")
    axes.set_ylabel(METRIC_NAMES[metric])


def dim_ticks(ours: set[int], others: set[int]) -> list[int]:
    """Our dims, and the others' where they do not crowd them (at least 2**0.45 apart)."""
    ticks = set(ours)
    for dim in sorted(others - ours):
        if all(abs(np.log2(dim / tick)) >= 0.45 for tick in ticks):
            ticks.add(dim)
    return sorted(ticks)


def figure_vs_subsets(results, metric: str, path: Path) -> str | None:
    """The metric against log2 of each game's distinct answer subsets, one line per model."""
    runs = [r for r in results if r.n_keys == 27 and r.game in reference.LOG2_SUBSETS]
    games = {r.game for r in runs}
    if len(games) < 2:
        return (
            f"{path.name}: not drawn, it needs runs of two or more 27-card games "
            f"(the sweep has {len(games)})"
        )
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    by_model: dict[str, list] = {}
    for r in runs:
        by_model.setdefault(r.label, []).append((reference.LOG2_SUBSETS[r.game], r.metrics[metric]))
    for label in sorted(by_model, key=model_order):
        axes.plot(*zip(*sorted(by_model[label]), strict=True), marker="o", label=label)
    if metric == "kl":
        axes.set_yscale("log")
    axes.set_xlabel("log2(distinct answer subsets of the game)")
    axes.set_ylabel(METRIC_NAMES[metric])
    axes.set_title(f"{METRIC_NAMES[metric]} against the number of answer subsets a game needs")
    axes.legend(fontsize=8)
    save(figure, path)
    return None


def figure_entropy(results, queries: int, path: Path) -> str | None:
    """Mean prediction entropy against dim on SetUnion27-v0, with the ideal: on all queries
    beside the study's published entropies, and on those with 10 < |answer| < 20 beside its
    notebooks' (the subset they were measured on)."""
    union = sorted(
        (r for r in results if r.env == "SetUnion27-v0" and r.agent == "contrastive"),
        key=lambda r: r.dim,
    )
    if not union:
        return f"{path.name}: not drawn, it needs contrastive runs on SetUnion27-v0"
    plt = pyplot()
    eval_set = make_eval_set("SetUnion27-v0", queries)
    sizes = eval_set.positives.sum(axis=1)
    between = (sizes > 10) & (sizes < 20)
    panels = (
        ("all test queries", np.ones_like(between), reference.UNION_27_ENTROPY, "the study"),
        (
            "10 < |answer| < 20",
            between,
            reference.UNION_27_NOTEBOOK_ENTROPY,
            "the study's notebooks",
        ),
    )
    entropies = [_per_query(r, queries)["entropy_bits"] for r in union]  # (queries,) each
    figure, axes_row = plt.subplots(1, 2, figsize=(11, 4))
    for axes, (title, chosen, study, study_label) in zip(axes_row, panels, strict=True):
        ours = [float(entropy[chosen].mean()) for entropy in entropies]
        axes.plot([r.dim for r in union], ours, "o-", label="ours")
        axes.plot(list(study), list(study.values()), "s--", label=study_label)
        ideal = float(np.log2(sizes[chosen]).mean())
        ideal_label = f"ideal (uniform over positives): {ideal:.3f}"
        axes.axhline(ideal, color="grey", linestyle=":", label=ideal_label)
        axes.set_xscale("log", base=2)
        axes.set_xlabel("contrastive dim")
        axes.set_ylabel("mean prediction entropy (bits)")
        axes.set_title(f"SetUnion27-v0, {title}")
        axes.legend(fontsize=8)
    save(figure, path)
    return None


def figure_example(results, queries: int, path: Path) -> str | None:
    """One SetUnion27 query drawn as cards (the first test query with several answers, see
    ``example_query``), each model's predicted distribution on it, the truth."""
    union = sorted(
        (r for r in results if r.env == "SetUnion27-v0"), key=lambda r: model_order(r.label)
    )
    if not union:
        return f"{path.name}: not drawn, it needs runs on SetUnion27-v0"
    from set_env import Deck, parse_query
    from set_env.render import render_rgb

    plt = pyplot()
    eval_set = make_eval_set("SetUnion27-v0", queries)
    index, which = example_query(eval_set.positives)
    query = parse_query(eval_set.texts[index], Deck(3, 3))
    image = render_rgb(query, env_id="SetUnion27-v0")
    # The picture drawn pixel for pixel (figimage, at the figure's own dpi) across the top,
    # so that its text stays crisp; the bars share the figure's width below it.
    dpi, bar_height, caption = 110, 1.1, 0.35
    bars = bar_height * (len(union) + 1) + 0.3
    picture_height = image.shape[0] / dpi
    height = bars + picture_height + caption
    figure = plt.figure(figsize=(image.shape[1] / dpi, height), dpi=dpi)
    figure.figimage(image, 0, round(bars * dpi), origin="upper")
    figure.text(0.5, 1 - caption / 2 / height, which, ha="center", va="center", fontsize=9)
    grid = figure.add_gridspec(len(union) + 1, 1)
    truth = query.positives / query.positives.sum()
    panels = [(r.label, _distribution(r, len(eval_set), index)) for r in union]
    for i, (label, probabilities) in enumerate([*panels, ("truth", truth)]):
        axes = figure.add_subplot(grid[i])
        color = "tab:green" if label == "truth" else "tab:blue"
        axes.bar(range(len(probabilities)), probabilities, color=color)
        axes.set_ylabel(label, rotation=0, ha="right", fontsize=8)
        axes.set_xticks([])
        axes.set_ylim(0, max(0.2, float(max(probabilities)) * 1.1))
    save(figure, path, dpi=dpi, rect=(0, 0, 1, bars / height))
    return None


def example_query(positives: np.ndarray) -> tuple[int, str]:
    """The example's index in the evaluation set, and how it was chosen: the first query with
    10 < |answer| < 20 (the entropy figure's subset: several answers, far from the whole
    deck, so the distributions differ), or the first query if none has."""
    sizes = positives.sum(axis=1)
    between = np.flatnonzero((sizes > 10) & (sizes < 20))
    if len(between):
        return int(between[0]), "the first test query with 10 < |answer| < 20"
    return 0, "the first test query (none has 10 < |answer| < 20)"


def _per_query(result, queries: int) -> dict[str, np.ndarray]:
    """The run's per-query metrics on its env's evaluation set, in its own token mode (the
    same queries in every mode)."""
    eval_set = make_eval_set(result.env, queries, env_kwargs=result.env_kwargs)
    return score_eval_set(result.scorer, eval_set)


@torch.no_grad()
def _distribution(result, queries: int, index: int) -> np.ndarray:
    """The run's predicted distribution over the keys for test query ``index``."""
    eval_set = make_eval_set(result.env, queries, env_kwargs=result.env_kwargs)
    tokens = eval_set.tokens[index : index + 1]
    return torch.softmax(result.scorer(torch.as_tensor(tokens)).float(), dim=-1)[0].numpy()
