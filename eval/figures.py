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
