"""Integer index arrays (an Embedding's input) in which an index always repeats.

A gradient through ``W[idx]`` must add up the contributions of a repeated index
(``np.add.at(dW, idx, dout)``); the classic bug ``dW[idx] += dout`` counts it once, and
only inputs with repeats can show it. So every drawn array of two or more elements
repeats at least one index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp
from numpy.typing import DTypeLike, NDArray

from gradcheck.faces.strategies.validation import Shape, _check_int, _check_shape

__all__ = ["indices"]


def indices(
    shape: Shape | int | st.SearchStrategy[Shape], high: int, *, dtype: DTypeLike = np.int64
) -> st.SearchStrategy[NDArray[np.integer[Any]]]:
    """Indices in ``[0, high)`` of ``shape``, with at least one repeated index.

    Parameters
    ----------
    shape : tuple of int, int, or a strategy of shapes
        The shape of the index array (``(batch, time)`` for a sequence of word ids).
    high : int
        The number of rows indexed (>= 1): an Embedding's vocabulary size.
    dtype : integer dtype
        Element type of the indices.

    Examples
    --------
    >>> word_ids = indices((2, 5), high=7)
    >>> pairs = indices(st.just((4,)), high=3)
    """
    checked = _check_shape(shape)
    rows = _check_int("high", high, minimum=1)
    resolved = np.dtype(dtype)
    if resolved.kind not in "iu":
        raise InvalidArgument(f"dtype={dtype!r} must be an integer dtype, e.g. np.int64")
    shapes = checked if isinstance(checked, st.SearchStrategy) else st.just(checked)

    @st.composite
    def draw(draw: st.DrawFn) -> NDArray[np.integer[Any]]:
        drawn = draw(shapes)
        idx = draw(hnp.arrays(resolved, drawn, elements=st.integers(0, rows - 1)))
        if idx.size >= 2:
            source = draw(st.integers(0, idx.size - 1))
            target = draw(st.integers(0, idx.size - 2))
            idx.flat[target + (target >= source)] = idx.flat[source]
        return idx

    return draw()
