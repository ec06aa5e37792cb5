"""Lay out a gradient of any shape as 2-D tiles of cells, for pictures.

A 2-D gradient (``dW``) is one tile, row by row; a 1-D one (``db``) is a single row; a
0-D one a single cell. Higher dimensions (``(C, H, W)``, ``(N, C, H, W)``) become one
``H × W`` tile per leading index — per sample and channel — so spatial patterns stay
visible. Pictures must stay small, so:

- at most :data:`MAX_TILES` tiles are shown; slices holding a mismatch are chosen first;
- a tile wider or taller than :data:`MAX_SIDE` cells, or tiles holding more than
  ``max_cells`` cells together, are downsampled: each cell stands for a block of elements
  and shows the block's *worst* element (the one with the highest ``priority`` —
  mismatches first — then the largest error), so a bug never averages away.

Every cell remembers the flat index of the element it shows, so a picture can label it
with its true index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["MAX_CELLS", "MAX_SIDE", "MAX_TILES", "Mosaic", "Tile", "build_mosaic"]

MAX_SIDE = 32
MAX_TILES = 16
MAX_CELLS = 1600
# Downsampling never makes a tile smaller than this many cells a side (unless it is).
_MIN_SIDE = 8
# Tiles per picture row when slices are laid out as a list (3-D, or a selection).
_COLUMNS = 4


@dataclass(frozen=True)
class Tile:
    """One 2-D slice of the array, possibly downsampled.

    Attributes
    ----------
    lead : tuple of int
        The index of the leading axes that selects this slice (empty for ≤ 2-D arrays).
    cells : ndarray of intp, shape (rows, columns)
        The flat index (into the original array) of the element each cell shows.
    row_starts, column_starts : list of int
        The first original row and column each cell row and cell column covers.
    """

    lead: tuple[int, ...]
    cells: NDArray[np.intp]
    row_starts: list[int]
    column_starts: list[int]

    @property
    def label(self) -> str:
        """``"[0, 2, :, :]"`` for a slice of a 4-D array, ``""`` for a ≤ 2-D one."""
        if not self.lead:
            return ""
        return "[" + ", ".join([*map(str, self.lead), ":", ":"]) + "]"


@dataclass(frozen=True)
class Mosaic:
    """The tiles of one array and how they are arranged.

    Attributes
    ----------
    shape : tuple of int
        The shape of the original array.
    tiles : list of Tile
        The slices shown, in index order.
    columns : int
        Tiles per row of the picture.
    block : tuple of int
        ``(rows, columns)`` of elements per cell; ``(1, 1)`` when nothing was downsampled.
    total_tiles : int
        How many slices the array has (more than ``len(tiles)`` when some are hidden).
    """

    shape: tuple[int, ...]
    tiles: list[Tile]
    columns: int
    block: tuple[int, int]
    total_tiles: int

    @property
    def downsampled(self) -> bool:
        """True when a cell stands for more than one element."""
        return self.block != (1, 1)

    def index(self, flat: int) -> tuple[int, ...]:
        """The original index of flat index ``flat``."""
        return tuple(int(i) for i in np.unravel_index(flat, self.shape))

    def take(self, tile: Tile, values: NDArray) -> NDArray:
        """The values of ``tile``'s cells, from an array of the original shape."""
        return np.asarray(values).reshape(-1)[tile.cells]

    def note(self) -> str | None:
        """A sentence saying what was downsampled or left out, or ``None``."""
        parts = []
        if self.downsampled:
            rows, cols = self.block
            parts.append(f"downsampled: each cell shows the worst element of a {rows}×{cols} block")
        if len(self.tiles) < self.total_tiles:
            parts.append(
                f"showing {len(self.tiles)} of {self.total_tiles} slices "
                "(slices with a mismatch first)"
            )
        return "; ".join(parts) + "." if parts else None


def _plane_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, shape[0]
    return shape[-2], shape[-1]


def _representatives(priority: NDArray, block: tuple[int, int]) -> NDArray[np.intp]:
    """For each block of a 2-D ``priority`` plane, the plane index of its highest entry."""
    height, width = priority.shape
    rows, cols = math.ceil(height / block[0]), math.ceil(width / block[1])
    padded = np.full((rows * block[0], cols * block[1]), -np.inf)
    padded[:height, :width] = priority
    blocks = padded.reshape(rows, block[0], cols, block[1]).transpose(0, 2, 1, 3)
    best = np.argmax(blocks.reshape(rows, cols, -1), axis=2)
    within_row, within_col = np.divmod(best, block[1])
    plane_rows = np.arange(rows)[:, None] * block[0] + within_row
    plane_cols = np.arange(cols)[None, :] * block[1] + within_col
    return (plane_rows * width + plane_cols).astype(np.intp)


def _chosen_slices(worst: NDArray, urgent: float) -> list[int]:
    """Slices to show: all when few, else those whose worst key is ``urgent`` first."""
    count = worst.shape[0]
    if count <= MAX_TILES:
        return list(range(count))
    order = np.argsort(-(worst >= urgent).astype(np.int8), kind="stable")
    return sorted(int(i) for i in order[:MAX_TILES])


def build_mosaic(
    priority: ArrayLike, *, urgent: float = np.inf, max_cells: int = MAX_CELLS
) -> Mosaic:
    """Lay out an array as tiles, choosing for each cell its highest-priority element.

    Parameters
    ----------
    priority : array_like
        One number per element, the shape of the gradient; when a cell stands for several
        elements it shows the one with the highest priority. NaN counts as lowest.
    urgent : float, optional
        Slices whose highest priority reaches this value are shown first when not all
        slices fit (default: none is urgent).
    max_cells : int, optional
        How many cells all tiles together may have (a size budget for the picture).

    Returns
    -------
    Mosaic
        The arrangement; use :meth:`Mosaic.take` to read any same-shaped array per cell.

    Examples
    --------
    >>> mosaic = build_mosaic(np.zeros((2, 3, 4, 5)))
    >>> len(mosaic.tiles), mosaic.columns, mosaic.tiles[0].cells.shape
    (6, 3, (4, 5))
    """
    keys = np.nan_to_num(np.asarray(priority, dtype=np.float64), nan=-np.inf)
    shape = keys.shape
    if keys.size == 0:
        return Mosaic(shape=shape, tiles=[], columns=1, block=(1, 1), total_tiles=0)
    height, width = _plane_shape(shape)
    planes = keys.reshape(-1, height, width)
    lead_shape = shape[:-2] if len(shape) > 2 else ()
    worst = planes.reshape(planes.shape[0], -1).max(axis=1)
    chosen = _chosen_slices(worst, urgent)
    side = min(MAX_SIDE, max(_MIN_SIDE, math.isqrt(max(1, max_cells // len(chosen)))))
    block = (math.ceil(height / side), math.ceil(width / side))
    tiles = []
    for k in chosen:
        plane_index = _representatives(planes[k], block)
        tiles.append(
            Tile(
                lead=tuple(int(i) for i in np.unravel_index(k, lead_shape)) if lead_shape else (),
                cells=plane_index + k * height * width,
                row_starts=list(range(0, height, block[0])),
                column_starts=list(range(0, width, block[1])),
            )
        )
    if len(shape) == 4 and len(chosen) == planes.shape[0] and shape[1] <= 2 * _COLUMNS:
        columns = shape[1]  # one row of tiles per sample, one column per channel
    else:
        columns = max(1, min(len(tiles), _COLUMNS))
    return Mosaic(
        shape=shape, tiles=tiles, columns=columns, block=block, total_tiles=planes.shape[0]
    )
