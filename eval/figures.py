"""Matplotlib for the report and the analysis tools: headless, one way to save a figure."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported on first use so
    that the harness and the CLIs that draw nothing never pay for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, path: str | Path, dpi: int = 120, rect=(0, 0, 1, 1)) -> None:
    """Lay out (within ``rect`` of the figure, leaving the rest to a figure legend), write
    the PNG and free the figure; ValueError if ``path`` cannot be written."""
    figure.tight_layout(rect=rect)
    try:
        figure.savefig(path, dpi=dpi)
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        pyplot().close(figure)


def bottom_legend(figure, handles: list, labels: list[str], max_columns: int = 5) -> float:
    """A legend centred under the panels, in as many columns (up to ``max_columns``) as fit
    the figure's width, so that no label is cut off on a narrow figure; returns the share of
    the figure's height it takes, the bottom of the ``rect`` to hand to :func:`save`."""
    renderer = figure.canvas.get_renderer()
    for columns in range(min(max_columns, len(labels)), 0, -1):
        legend = figure.legend(handles, labels, loc="lower center", ncol=columns, fontsize=8)
        box = legend.get_window_extent(renderer)
        if box.width <= figure.bbox.width or columns == 1:
            return box.height / figure.bbox.height + 0.01
        legend.remove()
