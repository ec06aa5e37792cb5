"""Well-conditioned input arrays: finite, normal, bounded, and a margin away from every kink.

:func:`well_conditioned_arrays` works in three steps, one named helper each: check the
arguments (:func:`_checked_limits`), turn them into the closed intervals of allowed values
(:func:`_allowed_intervals`), and draw elements from those intervals (:func:`_floats_in`).
Drawing from the intervals directly means no draw is ever rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

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

Interval = tuple[float, float]


class _Limits(NamedTuple):
    """What every element must satisfy: ``low <= |x| <= high``, ``|x - k| >= margin``."""

    low: float
    high: float
    kinks: tuple[float, ...]
    margin: float


# --------------------------------------------------------------------------- validation


def _checked_limits(
    min_magnitude: Any, max_magnitude: Any, kinks: Any, margin: Any, dtype: np.dtype[Any]
) -> _Limits:
    """The value constraints, each checked (types first, then ranges)."""
    low = _check_number("min_magnitude", min_magnitude)
    high = _check_number("max_magnitude", max_magnitude)
    gap = _check_number("margin", margin)
    points = _checked_kinks(kinks)
    _check_magnitudes(min_magnitude, max_magnitude, dtype)
    if gap <= 0:
        raise InvalidArgument(
            f"margin={margin!r} must be > 0 (the distance kept from every kink); pass "
            "kinks=() for a smooth layer"
        )
    return _Limits(low, high, points, gap)


def _checked_kinks(kinks: Any) -> tuple[float, ...]:
    if isinstance(kinks, str) or not isinstance(kinks, Sequence):
        raise InvalidArgument(f"kinks={kinks!r} must be a sequence of numbers, e.g. (0.0,)")
    return tuple(_check_number(f"kinks[{i}]", k) for i, k in enumerate(kinks))


def _check_magnitudes(min_magnitude: Any, max_magnitude: Any, dtype: np.dtype[Any]) -> None:
    """``0 <= min <= max``, ``max`` positive and finite in ``dtype``, ``min`` not subnormal."""
    low, high = float(min_magnitude), float(max_magnitude)
    info = np.finfo(dtype)
    if not 0 <= low <= high:
        raise InvalidArgument(
            f"need 0 <= min_magnitude <= max_magnitude; got min_magnitude={min_magnitude!r}, "
            f"max_magnitude={max_magnitude!r}"
        )
    if high == 0 or high > float(info.max):
        raise InvalidArgument(
            f"max_magnitude={max_magnitude!r} must be > 0 and at most the largest "
            f"{dtype} ({float(info.max):.6g})"
        )
    if 0 < low < float(info.tiny):
        raise InvalidArgument(
            f"min_magnitude={min_magnitude!r} is subnormal in {dtype}; use 0 or at least "
            f"{float(info.tiny):.6g}"
        )


# --------------------------------------------------------------------------- intervals


def _allowed_intervals(limits: _Limits, dtype: np.dtype[Any]) -> list[Interval]:
    """Closed intervals of ``dtype`` values that satisfy ``limits`` (empty when none does).

    Bounds are exact: every value of ``dtype`` inside an interval satisfies the margin when
    measured in float64, so nothing is lost when a float32 draw is widened.
    """
    if limits.low == 0:
        intervals = [(-limits.high, limits.high)]
    else:
        intervals = [(-limits.high, -limits.low), (limits.low, limits.high)]
    for kink in sorted(set(limits.kinks)):
        intervals = _without(intervals, _around(kink, limits.margin))
    rounded = (_round_inward(a, b, dtype) for a, b in intervals)
    return [interval for interval in rounded if interval is not None]


def _around(kink: float, margin: float) -> Interval:
    """``(kink - margin, kink + margin)``, widened until both ends really are ``margin`` away."""
    low, high = kink - margin, kink + margin
    while kink - low < margin:  # undo rounding of kink ± margin towards the kink
        low = float(np.nextafter(low, -np.inf))
    while high - kink < margin:
        high = float(np.nextafter(high, np.inf))
    return low, high


def _without(intervals: list[Interval], hole: Interval) -> list[Interval]:
    """``intervals`` with the open interval ``hole`` removed (its ends are kept)."""
    low, high = hole
    kept = []
    for a, b in intervals:
        if a <= low:
            kept.append((a, min(b, low)))
        if b >= high:
            kept.append((max(a, high), b))
    return kept


def _round_inward(low: float, high: float, dtype: np.dtype[Any]) -> Interval | None:
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


# --------------------------------------------------------------------------- drawing


def _floats_in(intervals: list[Interval], dtype: np.dtype[Any]) -> st.SearchStrategy[float]:
    """Finite, normal floats of ``dtype``'s width, each from one of ``intervals``."""
    width = _WIDTHS[dtype]
    return st.one_of(
        [
            st.floats(
                a, b, width=width, allow_nan=False, allow_infinity=False, allow_subnormal=False
            )
            for a, b in intervals
        ]
    )


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
    limits = _checked_limits(min_magnitude, max_magnitude, kinks, margin, resolved)
    intervals = _allowed_intervals(limits, resolved)
    if not intervals:
        raise InvalidArgument(
            f"no {resolved} value has {limits.low} <= |x| <= {limits.high} and lies "
            f"{limits.margin} away from the kinks {limits.kinks}; raise max_magnitude or "
            "reduce margin"
        )
    return hnp.arrays(resolved, checked_shape, elements=_floats_in(intervals, resolved))
