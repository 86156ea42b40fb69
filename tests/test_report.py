"""The report, built from tiny sweeps: one of two games, and one of a single game."""

import re

import numpy as np
import pytest

import agents
from eval import reference
from eval.figures import bottom_legend, pyplot
from eval.report import main as report_cli
from eval.report_figures import example_query, study_points
from train import train

PNG = b"\x89PNG\r\n\x1a\n"


def tiny_sweep(folder, envs, runs) -> None:
    patch = pytest.MonkeyPatch()  # a module-scoped fixture cannot take small_agents
    for name in ("contrastive", "joint", "classifier", "multivector", "mixture"):
        presets = agents.scorer_class(name).Config.presets
        patch.setitem(presets, "small", {**presets["small"], "d_model": 16, "n_heads": 2})
    for env in envs:
        for agent, dim in runs:
            train(
                env=env,
                agent=agent,
                dim=dim,
                objective="soft-ce",
                steps=2,
                batch_size=8,
                eval_every=2,
                eval_queries=32,
                logdir=str(folder),
            )
    patch.undo()


@pytest.fixture(scope="module")
def two_games(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two-games")
    runs = (("contrastive", 4), ("contrastive", 8), ("classifier", None), ("joint", None))
    runs += (("multivector", 2), ("mixture", 2))
    tiny_sweep(folder, ("SetUnion27-v0", "SetShatter27-v0"), runs)
    return folder


@pytest.fixture(scope="module")
def one_game(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one-game")
    tiny_sweep(folder, ("SetShatter27-v0",), (("contrastive", 4), ("classifier", None)))
    return folder


def test_report_writes_the_tables_and_figures(two_games, capsys):
    report_cli([str(two_games), "--queries", "64"])
    printed = capsys.readouterr().out
    text = (two_games / "report.md").read_text()
    assert "| contrastive d=4 | " in text and "| classifier | " in text and "| joint | " in text
    # The study's numbers, as published, beside ours: d=4 union KL 0.301, non-contrastive 1e-4.
    assert "(0.301; notebook 0.298)" in text and "(0.0001)" in text
    assert "### KL (nats)" in printed and "### Free-embedding bound" in printed
    # The multivector and mixture runs: their own rows, with no study number beside them.
    for label in ("multivector m=4 d=2", "mixture P=4 d=2"):
        (row, *_) = [line for line in text.splitlines() if line.startswith(f"| {label} |")]
        assert "(" not in row
    # The free-embedding bound of each family at its runs' dims, and the floats per key.
    bound_rows = text.split("### Free-embedding bound")[1].split("\n\n")[1].splitlines()[2:]
    assert [row.split(" |")[:2] for row in bound_rows] == [
        ["| single d=4", " 5"],
        ["| single d=8", " 9"],
        ["| multivector m=4 d=2", " 9"],
        ["| mixture P=4 d=2", " 13"],
    ]
    for figure in ("kl_vs_dim", "topk_vs_dim", "kl_vs_subsets", "topk_vs_subsets"):
        assert (two_games / f"{figure}.png").read_bytes()[:8] == PNG
        assert f"![{figure}.png]({figure}.png)" in text
    assert (two_games / "entropy_vs_dim.png").read_bytes()[:8] == PNG
    assert (two_games / "example.png").read_bytes()[:8] == PNG


def test_every_number_has_three_significant_figures(two_games, capsys):
    report_cli([str(two_games), "--queries", "64"])
    text = (two_games / "report.md").read_text()
    cells = re.findall(r"\| (\d[\d.e+-]*)(?: \(|\s\|)", text)
    assert cells
    for cell in cells:
        digits = cell.split("e")[0].replace(".", "").lstrip("0")
        assert len(digits) <= 3, cell


def test_a_one_game_sweep_says_which_figures_it_cannot_draw(one_game, capsys):
    report_cli([str(one_game), "--queries", "64"])
    err = capsys.readouterr().err
    text = (one_game / "report.md").read_text()
    for line in (
        "kl_vs_subsets.png: not drawn, it needs runs of two or more 27-card games",
        "entropy_vs_dim.png: not drawn, it needs contrastive runs on SetUnion27-v0",
        "example.png: not drawn, it needs runs on SetUnion27-v0",
    ):
        assert line in err and line in text
    assert (one_game / "kl_vs_dim.png").read_bytes()[:8] == PNG
    assert not (one_game / "kl_vs_subsets.png").exists()


@pytest.mark.parametrize("width, rows", [(4.2, 5), (20, 1)])
def test_the_figure_legend_fits_the_figure(width, rows):
    """One panel is too narrow for five long labels side by side: they stack in a column."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(width, 3.8))
    labels = [f"free-embedding bound: multivector m={m}" for m in range(5)]
    handles = [axes.plot([0, 1], [0, m])[0] for m in range(5)]
    height = bottom_legend(figure, handles, labels)
    (legend,) = figure.legends
    figure.canvas.draw()  # places the legend's texts
    renderer = figure.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1
    assert len({round(text.get_window_extent(renderer).y0) for text in legend.get_texts()}) == rows
    assert height == pytest.approx(box.height / figure.bbox.height + 0.01)
    plt.close(figure)


def test_report_of_an_empty_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        report_cli([str(tmp_path)])
    assert "error: no usable run" in capsys.readouterr().err


def test_the_example_is_the_first_query_with_10_to_20_answers():
    positives = np.zeros((3, 27), dtype=bool)
    positives[0, :25] = positives[1, :12] = positives[2, :15] = True
    assert example_query(positives)[0] == 1
    index, which = example_query(positives[:1])  # none has: the first query, said so
    assert index == 0 and "none has" in which


def test_reference_data_is_the_published_table():
    assert reference.study_27("contrastive d=16", "SymDiff") == (0.127, 0.936)
    assert reference.study_27("non-contrastive", "Shatter") == (0.00013, 1)
    assert reference.UNION_81["contrastive d=64"] == (0.017, 1)
    assert reference.LOG2_SUBSETS["Shatter"] == 27.0
    assert study_points("SetUnion27-v0", "kl")[:3] == [(4, 0.301), (8, 0.201), (16, 0.071)]
    assert study_points("SetUnion81-v0", "topk_overlap")[0] == (16, 0.741)
