"""Heatmaps of one gradient as inline SVG: where the analytic gradient is wrong, and how.

Three pictures per checked array, drawn on the same cells (see :mod:`gradcheck.report.mosaic`):

- **error**: ``|analytic − numerical| / threshold`` per element, where the threshold is
  the comparison's per-element tolerance. Greens are within tolerance (darker = closer
  to it); reds exceed it (darker = further, on a log scale). Kinks are yellow, unchecked
  elements grey;
- **analytic** and **numerical**: the two gradients on one shared diverging scale (blue
  negative, brown positive), so a transposed or shifted pattern shows as a visibly
  different picture.

Every mismatching cell is outlined in black on all three, and carries
``data-index="2,1"`` and ``data-status="mismatch"`` attributes and a hover tooltip with
its values. Colours are plain attributes (no CSS), so the SVG survives notebook
sanitisers and stays correct when copied elsewhere. No dependency beyond numpy.

Which element each cell shows, and its colour, come from :mod:`gradcheck.report.colours`,
which :mod:`gradcheck.report.plot` shares to paint the same pictures with matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

import numpy as np
from numpy.typing import NDArray

from gradcheck.report.colours import (
    KINK,
    UNRESOLVED,
    error_ratio,
    error_rgb,
    layout,
    legend_rgb,
    shared_limit,
    value_rgb,
)
from gradcheck.report.formatting import format_number
from gradcheck.report.mosaic import MAX_CELLS, Mosaic, Tile
from gradcheck.report.records import VariableReport
from gradcheck.vocabulary import Status

__all__ = ["Panel", "Pictures", "legend_svg", "pictures"]

_STATUS_NAMES = {
    Status.OK: "ok",
    Status.MISMATCH: "mismatch",
    Status.KINK: "kink",
    Status.UNCHECKED: "unchecked",
    Status.UNRESOLVED: "unresolved",
}
# Geometry, in pixels.
_WIDTH_BUDGET = 400
_HEIGHT_BUDGET = 300
_CELL_MAX = 40
_CELL_MIN = 5
_LEFT = 44
_TOP = 36
_GAP = 14
_TILE_LABEL = 14
_TEXT_MIN_CELL = 30
# Text styles as presentation attributes: no <style> element to clash or be stripped.
_TICK = 'font-size="10" fill="#555"'
_AXIS = 'font-size="10" fill="#333" font-style="italic"'
_TILE = 'font-size="10" fill="#333"'


@dataclass(frozen=True)
class Pictures:
    """The pictures of one gradient and what they leave out.

    Attributes
    ----------
    panels : list of Panel
        ``[error, analytic, numerical]``; empty for an empty array.
    note : str or None
        A sentence about downsampling or hidden slices, when there is any.
    """

    panels: list[Panel]
    note: str | None


@dataclass(frozen=True)
class Panel:
    """One picture of a gradient.

    Attributes
    ----------
    kind : str
        ``"error"``, ``"analytic"`` or ``"numerical"``.
    title : str
        What the picture shows, for a caption.
    svg : str
        The ``<svg>`` element.
    legend : str
        A small ``<svg>`` colour key.
    """

    kind: str
    title: str
    svg: str
    legend: str


def _hex(rgb: NDArray) -> list[str]:
    codes = np.rint(np.asarray(rgb).reshape(-1, 3) * 255).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in codes]


def _ink(rgb: NDArray) -> list[str]:
    """Black text on light cells, white on dark ones."""
    luminance = np.asarray(rgb).reshape(-1, 3) @ np.array([0.299, 0.587, 0.114])
    return ["#000" if y > 0.55 else "#fff" for y in luminance]


@dataclass(frozen=True)
class _Geometry:
    cell: int
    tile_rows: int
    tile_cols: int
    tile_width: int
    tile_height: int
    width: int
    height: int

    def origin(self, position: int, columns: int, labelled: bool) -> tuple[int, int]:
        row, col = divmod(position, columns)
        x = _LEFT + col * (self.tile_width + _GAP)
        y = _TOP + row * (self.tile_height + _GAP + (_TILE_LABEL if labelled else 0))
        return x, y + (_TILE_LABEL if labelled else 0)


def _geometry(mosaic: Mosaic) -> _Geometry:
    rows, cols = mosaic.tiles[0].cells.shape
    tile_rows = math.ceil(len(mosaic.tiles) / mosaic.columns)
    wide = mosaic.columns * cols
    tall = tile_rows * rows
    cell = min(_WIDTH_BUDGET // wide, _HEIGHT_BUDGET // tall, _CELL_MAX)
    cell = max(cell, _CELL_MIN)
    labelled = bool(mosaic.tiles[0].lead)
    width = _LEFT + mosaic.columns * (cols * cell + _GAP) + 4
    height = _TOP + tile_rows * (rows * cell + _GAP + (_TILE_LABEL if labelled else 0)) + 4
    return _Geometry(cell, rows, cols, cols * cell, rows * cell, width, height)


def _every(cell: int, biggest: int) -> int:
    """Label every n-th row/column so that labels do not overlap."""
    needed = 6 * len(str(biggest)) + 4
    return max(1, math.ceil(needed / cell))


def _axis_titles(mosaic: Mosaic, geo: _Geometry) -> list[str]:
    ndim = len(mosaic.shape)
    if ndim == 0:
        return []
    if ndim == 1:
        return [f'<text x="{_LEFT}" y="11" {_AXIS}>index →</text>']
    return [
        f'<text x="{_LEFT}" y="11" {_AXIS}>axis {ndim - 1} (column) →</text>',
        f'<text transform="translate(11,{_TOP}) rotate(90)" {_AXIS}>axis {ndim - 2} (row) →</text>',
    ]


def _ticks(tile: Tile, x: int, y: int, geo: _Geometry, one_dim: bool) -> list[str]:
    parts = []
    step = _every(geo.cell, tile.column_starts[-1])
    for j, start in enumerate(tile.column_starts):
        if j % step == 0:
            cx = x + j * geo.cell + geo.cell / 2
            parts.append(
                f'<text x="{cx:g}" y="{y - 4}" {_TICK} text-anchor="middle">{start}</text>'
            )
    if one_dim:
        return parts
    step = _every(geo.cell, 10)
    for i, start in enumerate(tile.row_starts):
        if i % step == 0:
            cy = y + i * geo.cell + geo.cell / 2 + 3.5
            parts.append(f'<text x="{x - 4}" y="{cy:g}" {_TICK} text-anchor="end">{start}</text>')
    return parts


@dataclass(frozen=True)
class _Painter:
    """What to paint in each cell of a tile (functions of the tile, one entry per cell)."""

    colours: Callable[[Tile], NDArray]
    texts: Callable[[Tile], list[str]]
    tooltips: Callable[[Tile], list[str]]
    status: NDArray


def _tile_svg(
    mosaic: Mosaic, tile: Tile, origin: tuple[int, int], geo: _Geometry, painter: _Painter
) -> tuple[list[str], list[str]]:
    """The cells (with their texts) of one tile, and the outlines of its mismatches."""
    x, y = origin
    fills = painter.colours(tile)
    fill_hex, ink = _hex(fills), _ink(fills)
    tips = painter.tooltips(tile)
    words = painter.texts(tile) if geo.cell >= _TEXT_MIN_CELL else []
    codes = mosaic.take(tile, painter.status).ravel()
    cells, texts, outlines = ['<g stroke="#fff" stroke-width="0.5">'], [], []
    for k, flat in enumerate(tile.cells.ravel()):
        i, j = divmod(k, tile.cells.shape[1])
        cx, cy = x + j * geo.cell, y + i * geo.cell
        index = ",".join(map(str, mosaic.index(int(flat))))
        name = _STATUS_NAMES.get(Status(int(codes[k])), "ok")
        cells.append(
            f'<rect x="{cx}" y="{cy}" width="{geo.cell}" height="{geo.cell}" '
            f'fill="{fill_hex[k]}" data-index="{index}" data-status="{name}">'
            f"<title>{escape(tips[k])}</title></rect>"
        )
        if words and words[k]:
            texts.append(
                f'<text x="{cx + geo.cell / 2:g}" y="{cy + geo.cell / 2 + 3:g}" '
                f'font-size="9" text-anchor="middle" fill="{ink[k]}" '
                f'pointer-events="none">{escape(words[k])}</text>'
            )
        if name == "mismatch":
            outlines.append(
                f'<rect x="{cx + 1.5:g}" y="{cy + 1.5:g}" width="{geo.cell - 3}" '
                f'height="{geo.cell - 3}" fill="none" stroke="#000" '
                f'stroke-width="{3 if geo.cell >= 12 else 2}" class="outline" '
                f'data-index="{index}" pointer-events="none"/>'
            )
    return [*cells, "</g>", *texts], outlines


def _grid_svg(mosaic: Mosaic, painter: _Painter, kind: str) -> str:
    """One SVG of every tile's cells, with index labels; mismatches outlined on top."""
    geo = _geometry(mosaic)
    labelled = bool(mosaic.tiles[0].lead)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{geo.width}" height="{geo.height}" '
        f'viewBox="0 0 {geo.width} {geo.height}" class="gc-heatmap" data-kind="{kind}" '
        'font-family="sans-serif">',
        *_axis_titles(mosaic, geo),
    ]
    outlines = []
    for position, tile in enumerate(mosaic.tiles):
        x, y = geo.origin(position, mosaic.columns, labelled)
        if labelled:
            parts.append(f'<text x="{x}" y="{y - 16}" {_TILE}>{escape(tile.label)}</text>')
        parts += _ticks(tile, x, y, geo, one_dim=len(mosaic.shape) <= 1)
        rows, cols = tile.cells.shape
        parts.append(
            f'<rect x="{x - 0.5}" y="{y - 0.5}" width="{cols * geo.cell + 1}" '
            f'height="{rows * geo.cell + 1}" fill="none" stroke="#bbb"/>'
        )
        cells, marks = _tile_svg(mosaic, tile, (x, y), geo, painter)
        parts += cells
        outlines += marks
    parts += outlines
    parts.append("</svg>")
    return "".join(parts)


def legend_svg(kind: str, limit: float = 1.0) -> str:
    """A small colour key for the ``"error"`` picture or a value picture.

    Parameters
    ----------
    kind : {"error", "value"}
        Which picture the key belongs to.
    limit : float, optional
        For ``"value"``: the magnitude at full colour.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    left, bar, steps = 22, 180, 36
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + bar + 130}" height="30" '
        'font-family="sans-serif" font-size="10" class="gc-legend">'
    ]
    if kind == "error":
        labels = [(0, "1e-6"), (bar / 2, "1 = tolerance"), (bar, "1e8")]
    else:
        labels = [(0, format_number(-limit, 3)), (bar / 2, "0"), (bar, format_number(limit, 3))]
    for k, colour in enumerate(_hex(legend_rgb(kind, steps))):
        parts.append(
            f'<rect x="{left + k * bar / steps:g}" y="2" '
            f'width="{bar / steps + 0.5:g}" height="10" fill="{colour}"/>'
        )
    for x, text in labels:
        parts.append(f'<text x="{left + x:g}" y="24" text-anchor="middle">{escape(text)}</text>')
    key_x = left + bar + 14
    parts.append(
        f'<rect x="{key_x + 1}" y="3" width="8" height="8" fill="none" stroke="#000" '
        f'stroke-width="2"/><text x="{key_x + 13}" y="11">mismatch</text>'
    )
    if kind == "error":
        parts.append(
            f'<rect x="{key_x}" y="16" width="10" height="10" fill="{KINK}"/>'
            f'<text x="{key_x + 13}" y="25">kink</text>'
            f'<rect x="{key_x + 44}" y="16" width="10" height="10" fill="{UNRESOLVED}"/>'
            f'<text x="{key_x + 57}" y="25">unresolved</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _tooltips(var: VariableReport, mosaic: Mosaic, ratio: NDArray) -> Callable[[Tile], list[str]]:
    def tips(tile: Tile) -> list[str]:
        out = []
        for flat in tile.cells.ravel():
            k = int(flat)
            a, n = var.analytic.reshape(-1)[k], var.numerical.reshape(-1)[k]
            code = Status(int(var.status.reshape(-1)[k]))
            out.append(
                f"{var.name}{list(mosaic.index(k))}: analytic {format_number(a)}, "
                f"numerical {format_number(n)}, |diff| {format_number(abs(a - n), 3)} "
                f"= {format_number(ratio.reshape(-1)[k], 2)} × tolerance "
                f"({_STATUS_NAMES[code]})"
            )
        return out

    return tips


def pictures(var: VariableReport, *, max_cells: int = MAX_CELLS) -> Pictures:
    """The error, analytic and numerical pictures of one gradient.

    Parameters
    ----------
    var : VariableReport
        The report of one input or parameter (any shape; empty arrays give no panels).
    max_cells : int, optional
        The size budget: at most about this many cells per picture (larger gradients are
        downsampled, keeping each block's worst element).

    Returns
    -------
    Pictures
        ``[error, analytic, numerical]`` panels and a note on what was aggregated.
    """
    ratio = error_ratio(var)
    mosaic = layout(var, max_cells=max_cells)
    if not mosaic.tiles:
        return Pictures([], None)
    status = np.asarray(var.status)
    analytic = np.asarray(var.analytic, dtype=np.float64)
    numerical = np.asarray(var.numerical, dtype=np.float64)
    limit = shared_limit(analytic, numerical)

    def error_texts(tile: Tile) -> list[str]:
        codes = mosaic.take(tile, status).ravel()
        values = mosaic.take(tile, ratio).ravel()
        return [
            f"{format_number(v, 1)}×" if c == Status.MISMATCH else ("k" if c == Status.KINK else "")
            for v, c in zip(values, codes, strict=True)
        ]

    def value_panel(kind: str, values: NDArray) -> Panel:
        def value_tips(tile: Tile) -> list[str]:
            shown = mosaic.take(tile, values).ravel()
            return [
                f"{var.name}{list(mosaic.index(int(k)))} = {format_number(v)}"
                for k, v in zip(tile.cells.ravel(), shown, strict=True)
            ]

        painter = _Painter(
            lambda tile: value_rgb(mosaic.take(tile, values), limit),
            lambda tile: [format_number(v, 3) for v in mosaic.take(tile, values).ravel()],
            value_tips,
            status,
        )
        svg = _grid_svg(mosaic, painter, kind)
        return Panel(kind, f"{kind} d{var.name}", svg, legend_svg("value", limit))

    error_painter = _Painter(
        lambda tile: error_rgb(mosaic.take(tile, ratio), mosaic.take(tile, status)),
        error_texts,
        _tooltips(var, mosaic, ratio),
        status,
    )
    error = _grid_svg(mosaic, error_painter, "error")
    return Pictures(
        [
            Panel("error", "|analytic − numerical| / tolerance", error, legend_svg("error")),
            value_panel("analytic", analytic),
            value_panel("numerical", numerical),
        ],
        mosaic.note(),
    )
