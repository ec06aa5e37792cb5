"""A report as a matplotlib figure, for scripts: ``report.plot()``.

A network's figure is its guilty layer's (or, for a wiring bug, the end-to-end check's).

The same three pictures per gradient as the HTML report (:mod:`gradcheck.report.heatmap`;
both take their cells and colours from :mod:`gradcheck.report.colours`): the error
relative to the tolerance, the analytic and the numerical gradient, mismatches outlined
in black. matplotlib is an optional dependency (``pip install 'gradcheck[plot]'``),
imported only when a figure is asked for.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.report.colours import error_ratio, error_rgb, layout, shared_limit, value_rgb
from gradcheck.report.mosaic import Mosaic
from gradcheck.report.records import NetworkRecord, Record
from gradcheck.vocabulary import Status

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from gradcheck.report.records import VariableReport

__all__ = ["plot_report"]

_GAP = 1  # cells of white between tiles
_PANEL_INCHES = 3.2


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "report.plot() needs matplotlib: pip install 'gradcheck[plot]' "
            "(or pip install matplotlib). report.to_html() draws the same pictures "
            "without it."
        ) from exc
    return plt


def _canvas(mosaic: Mosaic, rgb: NDArray) -> tuple[NDArray, list[tuple[int, int]]]:
    """One RGB image of every tile (white gaps between), and each tile's top-left corner."""
    rows, cols = mosaic.tiles[0].cells.shape
    tile_rows = math.ceil(len(mosaic.tiles) / mosaic.columns)
    height = tile_rows * (rows + _GAP) - _GAP
    width = mosaic.columns * (cols + _GAP) - _GAP
    image = np.ones((height, width, 3))
    corners = []
    for position, tile in enumerate(mosaic.tiles):
        r, c = divmod(position, mosaic.columns)
        top, left = r * (rows + _GAP), c * (cols + _GAP)
        image[top : top + rows, left : left + cols] = rgb.reshape(-1, 3)[tile.cells]
        corners.append((top, left))
    return image, corners


def _draw(ax: Axes, mosaic: Mosaic, rgb: NDArray, status: NDArray, title: str) -> None:
    from matplotlib.patches import Rectangle

    image, corners = _canvas(mosaic, rgb)
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=10, pad=16 if len(mosaic.tiles) == 1 else 6)
    for tile, (top, left) in zip(mosaic.tiles, corners, strict=True):
        codes = mosaic.take(tile, status)
        for i, j in zip(*np.nonzero(codes == Status.MISMATCH), strict=True):
            ax.add_patch(
                Rectangle(
                    (left + j - 0.5, top + i - 0.5),
                    1,
                    1,
                    fill=False,
                    edgecolor="black",
                    linewidth=2,
                )
            )
        if tile.lead:
            ax.text(left - 0.5, top - 0.7, tile.label, fontsize=7, va="bottom")
    if len(mosaic.tiles) == 1:
        tile = mosaic.tiles[0]
        step_x = max(1, len(tile.column_starts) // 10)
        step_y = max(1, len(tile.row_starts) // 10)
        ax.set_xticks(
            range(0, len(tile.column_starts), step_x),
            [str(s) for s in tile.column_starts[::step_x]],
            fontsize=8,
        )
        ax.set_yticks(
            range(0, len(tile.row_starts), step_y),
            [str(s) for s in tile.row_starts[::step_y]],
            fontsize=8,
        )
        ax.xaxis.tick_top()
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def _row(axes: Any, var: VariableReport) -> None:
    mosaic = layout(var)
    status = np.asarray(var.status)
    limit = shared_limit(var.analytic, var.numerical)
    verdict = var.verdict.mark if var.passed else f"{var.verdict.mark} {var.headline()}"
    _draw(
        axes[0],
        mosaic,
        error_rgb(error_ratio(var), status),
        status,
        f"{var.name} {verdict}: |a − n| / tolerance",
    )
    _draw(axes[1], mosaic, value_rgb(var.analytic, limit), status, f"analytic d{var.name}")
    _draw(axes[2], mosaic, value_rgb(var.numerical, limit), status, f"numerical d{var.name}")
    note = mosaic.note()
    if note:
        axes[0].set_xlabel(note, fontsize=7)


def plot_report(report: Record, *, which: str = "auto") -> Figure:
    """Draw a report's gradients as a matplotlib figure.

    Parameters
    ----------
    report : Report or NetworkReport
        The result of :func:`gradcheck.check`, or of :func:`gradcheck.check_network`
        (whose guilty layer is drawn: see :meth:`~gradcheck.NetworkReport.detail`).
    which : {"auto", "failing", "all"}, optional
        The gradients to draw: ``"auto"`` (default) draws the failing ones when any fails,
        else all.

    Returns
    -------
    matplotlib.figure.Figure
        One row per gradient: error relative to the tolerance (green within, red beyond),
        analytic and numerical values (shared blue–brown scale); mismatches outlined.

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    ValueError
        For an unknown ``which``, a report with nothing to draw, or a network with no
        guilty layer.
    """
    if which not in ("auto", "failing", "all"):
        raise ValueError(f"which must be 'auto', 'failing' or 'all', got {which!r}")
    shown = report.detail() if isinstance(report, NetworkRecord) else report
    if shown is None:
        raise ValueError(
            f"the report of {report.target} has no failing check to draw; "
            "draw one layer's gradients with report.layer(name).plot()"
        )
    chosen = [v for v in shown.variables if v.analytic.size]
    failing = [v for v in chosen if not v.passed]
    if which == "failing" or (which == "auto" and failing):
        chosen = failing
    if not chosen:
        raise ValueError(f"the report of {shown.target} has no gradient to draw")
    plt = _pyplot()
    figure, axes = plt.subplots(
        len(chosen),
        3,
        squeeze=False,
        figsize=(3 * _PANEL_INCHES, _PANEL_INCHES * len(chosen) + 0.6),
        layout="constrained",
    )
    for row, var in zip(axes, chosen, strict=True):
        _row(row, var)
    verdict = str(shown.verdict)
    figure.suptitle(
        f"gradcheck {shown.target}: {verdict}"
        + (f"\n{shown.conclusion}" if shown.conclusion else ""),
        fontsize=11,
    )
    return figure
