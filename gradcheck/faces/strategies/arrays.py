"""Well-conditioned input arrays: finite, normal, bounded, and a margin away from every kink.

Built from the allowed intervals directly, never by rejecting draws, and exact at float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp
from numpy.typing import DTypeLike, NDArray

from gradcheck.faces.strategies.validation import (
    _WIDTHS,
    Shape,
    _check_number,
    _check_shape,
    _float_dtype,
)

# Central differences step up to 2·ε^(1/3)·max(|x|, 1) from the point: about 1e-2 at
# float32 (for a layer that computes in float32 whatever its input) and 1.2e-5 at float64.
# The default margin is five times the float32 step. (Richardson extrapolation steps up to
# 4·ε^(1/5)·max(|x|, 1), 0.16 at float32; elements that close to a kink are skipped as kinks
# by the check, not failed.)
_DEFAULT_MARGIN = 0.05


def _round_inward(low: float, high: float, dtype: np.dtype[Any]) -> tuple[float, float] | None:
    """``[low, high]`` shrunk to the nearest normal (or zero) values of ``dtype``."""
    info = np.finfo(dtype)
    tiny = float(info.tiny)
    # Snap bounds in the subnormal range to zero or the smallest normal, inward.
    if 0 < low < tiny:
        low = tiny
    elif -tiny < low < 0:
        low = 0.0
    if 0 < high < tiny:
        high = 0.0
    elif -tiny < high < 0:
        high = -tiny
    lo, hi = dtype.type(low), dtype.type(high)
    if float(lo) < low:
        lo = np.nextafter(lo, dtype.type(np.inf))
    if float(hi) > high:
        hi = np.nextafter(hi, dtype.type(-np.inf))
    if lo > hi:
        return None
    return float(lo), float(hi)


def _allowed_intervals(
    min_magnitude: float,
    max_magnitude: float,
    kinks: Sequence[float],
    margin: float,
    dtype: np.dtype[Any],
) -> list[tuple[float, float]]:
    """Closed intervals of ``dtype`` values with ``min <= |x| <= max``, ``|x - k| >= margin``.

    Bounds are exact: every value of ``dtype`` inside an interval satisfies the margin when
    measured in float64, so nothing is lost when a float32 draw is widened.
    """
    if min_magnitude == 0:
        intervals = [(-max_magnitude, max_magnitude)]
    else:
        intervals = [(-max_magnitude, -min_magnitude), (min_magnitude, max_magnitude)]
    for kink in sorted(set(kinks)):
        low, high = kink - margin, kink + margin
        while kink - low < margin:  # undo rounding of kink ± margin towards the kink
            low = float(np.nextafter(low, -np.inf))
        while high - kink < margin:
            high = float(np.nextafter(high, np.inf))
        kept = []
        for a, b in intervals:  # remove the open interval (low, high)
            if a <= low:
                kept.append((a, min(b, low)))
            if b >= high:
                kept.append((max(a, high), b))
        intervals = kept
    rounded = (_round_inward(a, b, dtype) for a, b in intervals)
    return [interval for interval in rounded if interval is not None]


def well_conditioned_arrays(
    *,
    shape: int | Shape | st.SearchStrategy[Shape],
    dtype: DTypeLike = np.float64,
    min_magnitude: float = 1e-3,
    max_magnitude: float = 10.0,
    kinks: Sequence[float] = (0.0,),
    margin: float = _DEFAULT_MARGIN,
) -> st.SearchStrategy[NDArray[np.floating[Any]]]:
    """Arrays of finite, normal floats that a gradient check can trust.

    Every element ``x`` satisfies ``min_magnitude <= |x| <= max_magnitude`` and
    ``|x - k| >= margin`` for every kink ``k`` — exactly, for the value of ``dtype`` (a
    float32 element keeps the margin; nothing is rounded after drawing). Subnormal numbers
    never appear. Values are drawn from the allowed intervals directly (no ``.filter``),
    so no draw is ever rejected.

    Parameters
    ----------
    shape : int, tuple of int, or strategy of tuples
        Shape of the arrays.
    dtype : np.float64, np.float32 or np.float16
        Element type; values are drawn at this width.
    min_magnitude : float
        Smallest ``|x|``; 0 allows zero itself (unless a kink excludes it). The default
        ``1e-3`` keeps products of inputs far from underflow.
    max_magnitude : float
        Largest ``|x|``; keeps activations out of their flat, ill-conditioned tails.
    kinks : sequence of float
        Points where the layer is not differentiable: 0 for ReLU and LeakyReLU, ``±c`` for
        clipping at ``c``. Pass ``()`` for smooth layers.
    margin : float
        Smallest distance from a kink. It should exceed gradcheck's central-difference step
        near the kink, ``2·ε^(1/3)·max(|k|, 1)``: about ``1e-2·max(|k|, 1)`` for layers that
        compute in float32, ``1.2e-5·max(|k|, 1)`` in float64 (closer elements are skipped
        as kinks, not checked). The default is 0.05.

    Raises
    ------
    InvalidArgument
        For a bad argument, or when no value satisfies all the constraints.

    Examples
    --------
    >>> relu_inputs = well_conditioned_arrays(shape=(3, 4), max_magnitude=2.0)
    >>> clip_inputs = well_conditioned_arrays(shape=5, kinks=(-1.0, 1.0), margin=0.1)
    >>> float32_inputs = well_conditioned_arrays(shape=(2, 3), dtype=np.float32)
    """
    checked_shape = _check_shape(shape)
    resolved = _float_dtype(dtype)
    low = _check_number("min_magnitude", min_magnitude)
    high = _check_number("max_magnitude", max_magnitude)
    gap = _check_number("margin", margin)
    if isinstance(kinks, str) or not isinstance(kinks, Sequence):
        raise InvalidArgument(f"kinks={kinks!r} must be a sequence of numbers, e.g. (0.0,)")
    points = [_check_number(f"kinks[{i}]", k) for i, k in enumerate(kinks)]
    info = np.finfo(resolved)
    if not 0 <= low <= high:
        raise InvalidArgument(
            f"need 0 <= min_magnitude <= max_magnitude; got min_magnitude={min_magnitude!r}, "
            f"max_magnitude={max_magnitude!r}"
        )
    if high == 0 or high > float(info.max):
        raise InvalidArgument(
            f"max_magnitude={max_magnitude!r} must be > 0 and at most the largest "
            f"{resolved} ({float(info.max):.6g})"
        )
    if 0 < low < float(info.tiny):
        raise InvalidArgument(
            f"min_magnitude={min_magnitude!r} is subnormal in {resolved}; use 0 or at least "
            f"{float(info.tiny):.6g}"
        )
    if gap <= 0:
        raise InvalidArgument(
            f"margin={margin!r} must be > 0 (the distance kept from every kink); pass "
            "kinks=() for a smooth layer"
        )
    intervals = _allowed_intervals(low, high, points, gap, resolved)
    if not intervals:
        raise InvalidArgument(
            f"no {resolved} value has {low} <= |x| <= {high} and lies {gap} away from the "
            f"kinks {tuple(points)}; raise max_magnitude or reduce margin"
        )
    width = _WIDTHS[resolved]
    elements = st.one_of(
        [
            st.floats(a, b, width=width, allow_nan=False, allow_infinity=False,
                      allow_subnormal=False)
            for a, b in intervals
        ]
    )
    return hnp.arrays(resolved, checked_shape, elements=elements)
