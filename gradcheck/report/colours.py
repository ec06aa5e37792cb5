"""Which element each cell of a picture shows, and in which colour.

Shared by the SVG heatmaps (:mod:`gradcheck.report.heatmap`) and the matplotlib figure
(:mod:`gradcheck.report.plot`), so that both choose the same cells and paint them alike:

- a cell standing for many elements shows the worst of them (:func:`layout`, by
  :func:`mismatch_priority`: mismatches first, then the largest error);
- the error picture colours ``|analytic − numerical| / threshold`` (:func:`error_ratio`)
  on a log scale, greens within tolerance and reds beyond it (:func:`error_rgb`); kinks
  are yellow, unchecked elements grey;
- the analytic and numerical pictures share one diverging scale (:func:`value_rgb`).

Colours are RGB arrays in [0, 1]; :func:`legend_rgb` gives those of the legends' bars.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gradcheck.report.mosaic import MAX_CELLS, Mosaic, build_mosaic
from gradcheck.report.records import VariableReport
from gradcheck.vocabulary import Status

__all__ = [
    "KINK",
    "UNRESOLVED",
    "error_ratio",
    "error_rgb",
    "layout",
    "legend_rgb",
    "mismatch_priority",
    "shared_limit",
    "value_rgb",
]

# Error ratios are coloured on a log10 scale: within tolerance from 1e-6 (palest) to 1;
# beyond it from 1 to 1e8 (darkest) — a wrong formula is typically 1e4–1e8 × the tolerance.
_OK_DECADES = 6.0
_BAD_DECADES = 8.0
_OK_STOPS = [(0.0, "#f7fcf5"), (0.6, "#c7e9c0"), (1.0, "#41ab5d")]
_BAD_STOPS = [(0.0, "#fc9272"), (0.5, "#de2d26"), (1.0, "#67000d")]
#: The colour of a kink, and of an element the numerics could not resolve.
KINK = "#ffd54f"
UNRESOLVED = "#b39ddb"
_UNCHECKED = "#d9d9d9"
_UNDEFINED = "#9e9e9e"
_VALUE_STOPS = [
    (0.0, "#2166ac"),
    (0.25, "#92c5de"),
    (0.5, "#f7f7f7"),
    (0.75, "#dfc27d"),
    (1.0, "#8c510a"),
]
# Priority of a cell's status when a cell stands for many elements: mismatches win.
_PRIORITY = {
    Status.MISMATCH: 3.0,
    Status.UNRESOLVED: 2.5,
    Status.KINK: 2.0,
    Status.UNCHECKED: 1.0,
    Status.OK: 0.0,
}


def _hex_to_rgb(colour: str) -> NDArray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64) / 255


def _interpolate(stops: list[tuple[float, str]], t: NDArray) -> NDArray:
    """RGB in [0, 1] for positions ``t`` in [0, 1] along piecewise-linear colour stops."""
    positions = np.array([p for p, _ in stops])
    colours = np.array([_hex_to_rgb(c) for _, c in stops])
    t = np.clip(np.nan_to_num(np.asarray(t, dtype=np.float64), nan=0.0), 0.0, 1.0)
    return np.stack([np.interp(t, positions, colours[:, k]) for k in range(3)], axis=-1)


def error_ratio(var: VariableReport) -> NDArray:
    """``|analytic − numerical| / threshold`` per element (> 1 means a mismatch).

    Parameters
    ----------
    var : VariableReport
        One gradient's report: its ``analytic``, ``numerical`` and ``threshold`` arrays.

    Returns
    -------
    ndarray of float64
        The shape of the gradient; ``inf`` where the threshold is 0 but the values differ,
        NaN where either side is not finite.
    """
    diff = np.abs(np.asarray(var.analytic, np.float64) - np.asarray(var.numerical, np.float64))
    threshold = np.asarray(var.threshold, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / threshold)
    return np.asarray(ratio, dtype=np.float64)


def mismatch_priority(var: VariableReport) -> NDArray:
    """The key for choosing a cell's element: status first (mismatch highest), then error.

    Parameters
    ----------
    var : VariableReport
        One gradient's report: its error ratio and ``status`` array.

    Returns
    -------
    ndarray of float64
        ``priority(status) + r / (1 + r)`` with ``r`` the error ratio, so it always lies
        in ``[priority, priority + 1)``.
    """
    ratio = np.nan_to_num(error_ratio(var), nan=0.0, posinf=1e300)
    status = np.asarray(var.status)
    base = np.zeros(status.shape)
    for code, value in _PRIORITY.items():
        base[status == code] = value
    return np.asarray(base + ratio / (1.0 + ratio), dtype=np.float64)


def layout(var: VariableReport, *, max_cells: int = MAX_CELLS) -> Mosaic:
    """The cells of ``var``'s pictures: each shows its block's worst element.

    Parameters
    ----------
    var : VariableReport
        The report of one input or parameter.
    max_cells : int, optional
        The size budget: at most about this many cells per picture.

    Returns
    -------
    Mosaic
        Slices with a mismatch are shown first when not all fit.
    """
    return build_mosaic(
        mismatch_priority(var), urgent=_PRIORITY[Status.MISMATCH], max_cells=max_cells
    )


def error_rgb(ratio: NDArray, status: NDArray) -> NDArray:
    """Colours of the error picture, as RGB in [0, 1] (shape ``ratio.shape + (3,)``).

    Parameters
    ----------
    ratio : ndarray
        ``|analytic − numerical| / threshold`` per element.
    status : ndarray of int
        :class:`gradcheck.vocabulary.Status` codes.

    Returns
    -------
    ndarray
        Greens within tolerance, reds beyond it, yellow kinks, lavender unresolved
        elements, grey unchecked or undefined.
    """
    ratio = np.asarray(ratio, dtype=np.float64)
    status = np.asarray(status)
    with np.errstate(divide="ignore", invalid="ignore"):
        decades = np.log10(ratio)
    ok = _interpolate(_OK_STOPS, (decades + _OK_DECADES) / _OK_DECADES)
    bad = _interpolate(_BAD_STOPS, decades / _BAD_DECADES)
    rgb = np.where((status == Status.MISMATCH)[..., None], bad, ok)
    rgb[status == Status.KINK] = _hex_to_rgb(KINK)
    rgb[status == Status.UNRESOLVED] = _hex_to_rgb(UNRESOLVED)
    rgb[status == Status.UNCHECKED] = _hex_to_rgb(_UNCHECKED)
    rgb[np.isnan(ratio) & (status != Status.UNCHECKED)] = _hex_to_rgb(_UNDEFINED)
    return np.asarray(rgb)


def value_rgb(values: NDArray, limit: float) -> NDArray:
    """Colours of a gradient's values on a diverging scale from ``-limit`` to ``limit``.

    Parameters
    ----------
    values : ndarray
        Gradient values.
    limit : float
        The magnitude drawn at full colour (the largest magnitude of both gradients).

    Returns
    -------
    ndarray
        RGB in [0, 1]: blue negative, white zero, brown positive, grey for NaN/inf.
    """
    values = np.asarray(values, dtype=np.float64)
    scale = limit if limit > 0 and math.isfinite(limit) else 1.0
    rgb = _interpolate(_VALUE_STOPS, 0.5 + 0.5 * values / scale)
    rgb[~np.isfinite(values)] = _hex_to_rgb(_UNDEFINED)
    return rgb


def shared_limit(analytic: NDArray, numerical: NDArray) -> float:
    """The largest finite magnitude of both gradients: the full-colour end of the scale.

    Parameters
    ----------
    analytic, numerical : ndarray
        The two gradients.

    Returns
    -------
    float
        1.0 when there is no finite value.
    """
    both = np.abs(np.concatenate([np.ravel(analytic), np.ravel(numerical)]).astype(np.float64))
    finite = both[np.isfinite(both)]
    return float(finite.max()) if finite.size else 1.0


def legend_rgb(kind: str, steps: int) -> NDArray:
    """Colours of a legend's bar, left to right.

    Parameters
    ----------
    kind : {"error", "value"}
        The error key (within tolerance on the left half, beyond it on the right) or a
        value key (``-limit`` on the left, ``limit`` on the right).
    steps : int
        How many colours.

    Returns
    -------
    ndarray
        RGB in [0, 1], shape ``(steps, 3)``.
    """
    t = np.linspace(0, 1, steps)
    if kind != "error":
        return _interpolate(_VALUE_STOPS, t)
    ok = _interpolate(_OK_STOPS, t[: steps // 2] * 2)
    bad = _interpolate(_BAD_STOPS, (t[steps // 2 :] - 0.5) * 2)
    return np.concatenate([ok, bad])
