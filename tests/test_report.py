"""The report, built from a tiny sweep of two runs."""

import pytest

from eval import reference
from eval.report import main as report_cli
from train import train


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    for agent, dim, objective in (("contrastive", 4, "infonce"), ("classifier", None, "ce")):
        train(
            env="SetUnion27-v0",
            agent=agent,
            dim=dim,
            objective=objective,
            steps=2,
            batch_size=8,
            eval_every=2,
            eval_queries=32,
            logdir=str(folder),
        )
    return folder


def test_report_writes_the_table_and_figures(tiny_sweep, capsys):
    report_cli([str(tiny_sweep), "--queries", "64"])
    printed = capsys.readouterr().out
    text = (tiny_sweep / "report.md").read_text()
    assert "| contrastive d=4 | " in text and "| classifier | " in text
    # The study's numbers, as published, beside ours: d=4 union KL 0.301, non-contrastive 0.0001.
    assert "(0.301)" in text and "(0.0001)" in text
    assert "### KL (nats)" in printed
    for figure in ("kl_vs_subsets", "topk_vs_subsets", "entropy_vs_dim", "example"):
        path = tiny_sweep / f"{figure}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"![{figure}.png]({figure}.png)" in text


def test_report_of_an_empty_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        report_cli([str(tmp_path)])
    assert "error: no usable run" in capsys.readouterr().err


def test_reference_data_is_the_published_table():
    assert reference.study_27("contrastive d=16", "SymDiff") == (0.127, 0.936)
    assert reference.study_27("non-contrastive", "Shatter") == (0.00013, 1)
    assert reference.UNION_81["contrastive d=64"] == (0.017, 1)
    assert reference.LOG2_SUBSETS["Shatter"] == 27.0
