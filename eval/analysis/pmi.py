"""``pmi``: what infoNCE learns. A free table of scores trained with NLL, pseudo-NLL or
infoNCE on small joints: infoNCE learns p(x,y)/(p(x)p(y)) (the PMI), the others p(x,y)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from eval.analysis.common import LR
from eval.figures import pyplot, save
from set_env.checks import is_int

PMI_DATASETS = ("independent", "dependent", "dice")
PMI_OBJECTIVES = ("nll", "pseudo_nll", "infonce")


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
