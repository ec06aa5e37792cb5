"""Where the steps go: each element's scale, and steps that land on exact points.

A finite difference needs a step that suits the function, not the number it is taken at:
an input of 1e6 around a spread of 1 moves by the spread (:func:`step_units`), measured
row by row or column by column where the variable has axes; the step itself is
``ε^exponent`` of that, times what a measurement of the function says on top
(:mod:`gradcheck.modes.ladder`), rounded so that every point of the stencil is exact.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradcheck.engine.spec import Engine, engine

__all__ = ["element_steps", "spread", "step_sizes", "step_units", "unit_roundoff"]


def spread(x: NDArray) -> float:
    """A robust scale of the values of ``x``: how far its elements typically are from each
    other, not from 0 (inputs of 1e6 around a spread of 1 have a spread of 1).

    ``1.4826·MAD`` (the standard deviation for normal data, blind to a few outliers); where
    most elements are equal (a sparse array), the root-mean-square deviation from their
    median; for a constant array its size; 1 for an array of zeros, which says nothing.

    >>> spread(np.array([1e6 + 1, 1e6 - 1, 1e6 + 2, 1e6 - 2]))
    2.2239
    """
    values = np.abs(x.real.astype(np.float64).ravel()) if x.size else np.zeros(1)
    centred = x.real.astype(np.float64).ravel() - float(np.median(x.real)) if x.size else values
    deviations = np.abs(centred)
    for candidate in (
        1.4826 * float(np.median(deviations)),
        float(np.sqrt(np.mean(np.square(centred)))),
        float(np.median(values)),
        float(np.max(values)),
    ):
        if candidate > 0 and np.isfinite(candidate):
            return candidate
    return 1.0


def step_units(x: NDArray, method: str, *, pairs: bool = False) -> NDArray:
    """The size of each element's step for an optimal relative step of 1, from the
    variable's own scale: ``max(|x − median|, spread)`` — an offset of 1e6 around a spread
    of 1 moves by the spread, an outlier by its own size, and nothing depends on the units
    the values are written in. For an array of several axes the median and spread are
    those of the element's own row, column… whichever is tightest (samples offset each by
    its own 1e5 are normalised row by row). An engine with a step floor below 1 (one-sided
    differences at a domain's edge) steps relative to ``|x|`` instead, down to that floor
    times the spread. Directions of fast mode use the same units.

    ``pairs``: slices of two have a spread of their own too (``x / std(x)`` over pairs
    offset each by its own 3e4). A stencil's steps take it: a step too fine for the
    function only costs a second look. What is *sized* by the units (the default ``atol``,
    the noise probe's moves) does not: two values close by chance would inflate it."""
    real = x.real.astype(np.float64)
    floor = engine(method).step_floor
    if floor < 1.0:
        return np.maximum(np.abs(real), floor * spread(real))
    axes = [a for a in range(real.ndim) if real.shape[a] >= (2 if pairs else _LOCAL)]
    if not axes:
        median = float(np.median(real)) if real.size else 0.0
        return np.maximum(np.abs(real - median), spread(real))
    return np.min([_along(real, axis) for axis in axes], axis=0)


# Slices at least this long have a spread of their own, and this long a robust one.
_LOCAL, _ROBUST = 3, 8


def _along(x: NDArray, axis: int) -> NDArray:
    """:func:`step_units` of every 1-D slice of ``x`` along ``axis``."""
    moved = np.moveaxis(x, axis, -1)
    median = np.median(moved, axis=-1, keepdims=True)
    deviation = np.abs(moved - median)
    rms = np.sqrt(np.mean(np.square(deviation), axis=-1, keepdims=True))
    # A median absolute deviation of a few values is one of them, 0 by chance: short
    # slices use their root-mean-square deviation. Where most of a slice is equal, that
    # too; where it is constant, the whole array's spread.
    mad = 1.4826 * np.median(deviation, axis=-1, keepdims=True)
    scale = mad if moved.shape[-1] >= _ROBUST else rms
    scale = np.where(scale > 0, scale, np.where(rms > 0, rms, spread(x)))
    return np.moveaxis(np.maximum(deviation, scale), -1, axis)


def unit_roundoff(x: NDArray, eps: float | None) -> float:
    """The unit roundoff of ``f``'s computation: given, or that of ``x``'s dtype."""
    return float(np.finfo(x.real.dtype).eps) if eps is None else eps


def element_steps(
    x: NDArray,
    flat: NDArray[np.intp],
    spec: Engine,
    eps: float | None = None,
    multiplier: NDArray | float = 1.0,
    lands_on: np.dtype | None = None,
) -> NDArray:
    """Per-element steps ``ε^exponent · units · multiplier``, exactly representable.

    ``ε^exponent`` (``ε^(1/3)`` for central differences) balances truncation against
    rounding for a function whose scale is the element's units (:func:`step_units`); the
    ``multiplier`` is what a measurement of the function says on top (a forward pass that
    rounds more than its dtype, a function that varies faster or slower than its inputs'
    spread). Each step is a whole number of twice the element's unit in the last place,
    so that every point ``x + k·h`` of the stencil is exact: at an input of 1e6, a step
    of 1e-3 rounded on one side and not the other shifted the derivative by 1e-7 — an
    error no noise sample sees, as it is the same at every step's pair. ``lands_on``: a
    narrower dtype the function rounds its inputs to (a cast to float32 inside), whose
    points the steps land on instead.
    """
    dtype = x.real.dtype
    base = x.ravel()[flat].real.astype(dtype)
    units = step_units(x, spec.name, pairs=True).ravel()[flat]
    h = (unit_roundoff(x, eps) ** spec.step_exponent * units * multiplier).astype(dtype)
    spacing = np.spacing(np.abs(base).astype(lands_on or dtype)).astype(dtype)
    grain = 2 * np.maximum(spacing, np.spacing(np.abs(base)))
    # At 0 (or a subnormal) the grain is subnormal and every step already exact; a step
    # below the grain is one grain (never none).
    whole = grain >= np.finfo(dtype).tiny
    with np.errstate(over="ignore", invalid="ignore"):
        h = np.where(whole, np.maximum(np.round(h / grain), 1) * grain, h).astype(dtype)
        return ((base + h) - base).astype(np.float64)


def step_sizes(
    x: NDArray,
    *,
    method: str = "central",
    indices: NDArray | None = None,
    eps: float | None = None,
    multiplier: NDArray | float = 1.0,
    lands_on: np.dtype | None = None,
) -> NDArray:
    """The per-element steps :func:`stencil_derivatives` uses (float64, flat).

    A coloured check moves many elements at once and must use the very same steps, so
    that its numbers equal those of the element-by-element stencil.
    """
    flat = (
        np.arange(x.size, dtype=np.intp)
        if indices is None
        else np.asarray(indices, dtype=np.intp).ravel()
    )
    return element_steps(x, flat, engine(method), eps, multiplier, lands_on)
