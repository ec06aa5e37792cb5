"""Argument checks shared by the strategies: each returns the checked value or raises.

As in :mod:`hypothesis.extra.numpy`, a bad argument is refused when the strategy is made,
with an :class:`~hypothesis.errors.InvalidArgument` that says what to change. Not public:
the strategies are the API.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from numpy.typing import DTypeLike

Shape = tuple[int, ...]

#: Bit width of each supported float dtype, as :func:`hypothesis.strategies.floats` takes it.
_WIDTHS: dict[np.dtype[Any], Literal[16, 32, 64]] = {
    np.dtype(np.float16): 16,
    np.dtype(np.float32): 32,
    np.dtype(np.float64): 64,
}


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgument(f"{name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise InvalidArgument(f"{name}={value!r} must be >= {minimum}")
    return int(value)


def _check_limits(**limits: Any) -> list[int]:
    """Each keyword an integer >= 1 (an upper bound of a draw), checked in the order given."""
    return [_check_int(name, value, minimum=1) for name, value in limits.items()]


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidArgument(f"{name}={value!r} must be a real number")
    if not math.isfinite(value):
        raise InvalidArgument(f"{name}={value!r} must be finite")
    return float(value)


def _float_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise InvalidArgument(f"dtype={dtype!r} is not a NumPy dtype") from None
    if resolved not in _WIDTHS:
        raise InvalidArgument(
            f"dtype={dtype!r} is not supported; use np.float64, np.float32 or np.float16"
        )
    return resolved


def _check_shape(shape: Any) -> Shape | st.SearchStrategy[Shape]:
    if isinstance(shape, st.SearchStrategy):
        return shape
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple) or not all(
        isinstance(side, int | np.integer) and not isinstance(side, bool) and side >= 0
        for side in shape
    ):
        raise InvalidArgument(
            f"shape={shape!r} must be a tuple of sizes >= 0, an int, or a strategy of shapes "
            "(e.g. hypothesis.extra.numpy.array_shapes())"
        )
    return tuple(int(side) for side in shape)
