"""Finite-difference engines that return a derivative *and* an error estimate.

Every engine differentiates a scalar function ``f`` of an array ``x`` element by element
and returns a :class:`NumericalGradient`: the estimate, a per-element error estimate, and
— for the real-arithmetic engines — second-order one-sided derivatives from which
:mod:`gradcheck.verdict.compare` recognises kinks.

The engines and their formulas are entries of :data:`gradcheck.engine.spec.ENGINES`.

Every perturbed element is put back from a saved copy (never ``x + h − h``) in a
``finally`` block, so the array is bit-identical afterwards even if ``f`` raises.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import COMPLEX_ROUNDING, NOISE_SIGMAS, TRUNCATION_SAFETY
from gradcheck.engine.gradient import NoiseSamples, NumericalGradient
from gradcheck.engine.spec import COMPLEX_STEP, ENGINES, Engine, engine
from gradcheck.engine.steps import element_steps, unit_roundoff

__all__ = [
    "NumericalGradient",
    "ScalarFunction",
    "complex_from_values",
    "complex_step",
    "numerical_gradient",
    "random_direction",
    "stencil_derivatives",
    "stencil_from_table",
    "supports_complex_step",
]

ScalarFunction = Callable[[NDArray], Any]


def _flat_indices(x: NDArray, indices: NDArray | None) -> NDArray[np.intp]:
    if indices is None:
        return np.arange(x.size, dtype=np.intp)
    return np.asarray(indices, dtype=np.intp).ravel()


def stencil_derivatives(
    f: ScalarFunction,
    x: NDArray,
    *,
    method: str = "central",
    indices: NDArray | None = None,
    scale: float | None = None,
    eps: float | None = None,
    multiplier: NDArray | float = 1.0,
    lands_on: np.dtype | None = None,
) -> NumericalGradient:
    """Differentiate ``f`` at ``x`` with a real finite-difference engine.

    ``x`` is perturbed in place, one element at a time, and restored from a saved copy;
    ``f(x)`` must return a real number. The rounding of ``f`` is measured in units of the
    size of what it adds up: ``f.magnitude`` after each call when ``f`` says (a
    :class:`~gradcheck.engine.passes.Loss` does: the outputs the perturbation moved), else
    ``scale`` (default: ``|f|`` itself).

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x : ndarray
        Float array; perturbed in place during the call, bit-identical afterwards.
    method : str
        A real engine of :data:`gradcheck.engine.spec.ENGINES` (``"central"``,
        ``"richardson"``, ``"forward"``).
    indices : array of int, optional
        Flat indices of the elements to differentiate (default: all).
    scale : float, optional
        Magnitude of ``f``'s terms, for the rounding-noise estimate.
    eps : float, optional
        Unit roundoff of ``f``'s computation (default: that of ``x``'s dtype; a layer that
        computes in float32 from float64 input rounds like float32).
    multiplier : float or ndarray, optional
        Multiply the steps by this (one number, or one per differentiated element): what
        a measurement of the function says about its scale (:mod:`gradcheck.modes.ladder`).
    lands_on : dtype, optional
        A narrower dtype the function rounds its inputs to, whose points the steps land on.

    Returns
    -------
    NumericalGradient
    """
    spec = _real_engine(method)
    offsets = spec.offsets
    flat = _flat_indices(x, indices)
    view = x.reshape(-1)
    if not np.shares_memory(view, x):
        raise ValueError("x must be contiguous so that it can be perturbed in place")
    f0 = float(f(x))
    h = element_steps(x, flat, spec, eps, multiplier, lands_on)
    table = np.empty((flat.size, len(offsets)))
    moved = np.zeros(flat.size)
    for row, (i, step) in enumerate(zip(flat, h, strict=True)):
        saved = view[i].copy()
        try:
            for col, offset in enumerate(offsets):
                view[i] = saved + offset * step
                table[row, col] = float(f(x))
                moved[row] = max(moved[row], _magnitude(f, table[row, col], scale))
        finally:
            view[i] = saved
    return stencil_from_table(
        x,
        flat,
        method,
        1 + flat.size * len(offsets),
        f0,
        table,
        h,
        eps=eps,
        magnitude=moved,
    )


def _magnitude(f: ScalarFunction, value: float, scale: float | None) -> float:
    """The size of what ``f``'s last call added up (see :func:`stencil_derivatives`)."""
    measured = getattr(f, "magnitude", None)
    if measured is not None:
        return float(measured)
    return max(abs(value), scale or 0.0)


def stencil_from_table(
    x: NDArray,
    flat: NDArray[np.intp],
    method: str,
    evaluations: int,
    f0: float | NDArray,
    table: NDArray,
    h: NDArray,
    *,
    eps: float | None = None,
    magnitude: NDArray | None = None,
) -> NumericalGradient:
    """Turn a table of engine evaluations into derivatives, error bars and sides.

    ``table[row, k]`` is the value of ``f`` with element ``flat[row]`` moved by
    ``offsets[k] * h[row]`` (the offsets of engine ``method``); ``f0`` is ``f`` at ``x`` —
    one number, or one per row when each row reads its own part of a vector output (a
    coloured check, where ``f`` for an element is the sum over the outputs only that
    element affects). ``magnitude`` (per row) is the size of what those values add up,
    the unit their rounding is measured in (default: their own size).
    """
    spec = _real_engine(method)
    if magnitude is None:
        magnitude = np.maximum(np.abs(np.broadcast_to(f0, h.shape)), np.max(np.abs(table), axis=1))
    unit = unit_roundoff(x, eps) * magnitude
    noise = 2 * spec.rounding_gain * NOISE_SIGMAS * unit / h
    stencil = spec.combine(f0, table, h)
    sides = 0.0 if stencil.side_truncation is None else TRUNCATION_SAFETY * stencil.side_truncation
    side_error = None if stencil.left is None else 4 * noise + sides
    result = _assemble(
        x,
        flat,
        method,
        evaluations,
        stencil.estimate,
        TRUNCATION_SAFETY * stencil.truncation + noise,
        stencil.left,
        stencil.right,
        side_error,
    )
    sample = spec.noise_sample(f0, table)
    if sample is None:
        return result
    samples = NoiseSamples(
        sample=_spread(x, flat, sample),
        unit=_spread(x, flat, unit),
        step=_spread(x, flat, h),
        truncation=_spread(x, flat, stencil.truncation),
        gain=spec.rounding_gain,
        measured=result.checked,
        side_truncation=None
        if stencil.side_truncation is None
        else _spread(x, flat, stencil.side_truncation),
        unbounded=None if stencil.unbounded is None else _spread(x, flat, stencil.unbounded),
    )
    return replace(result, noise=samples)


def _spread(x: NDArray, flat: NDArray[np.intp], part: NDArray) -> NDArray[np.float64]:
    """Per-element values of ``flat`` as an array shaped like ``x`` (zeros elsewhere)."""
    full = np.zeros(x.size)
    full[flat] = part
    return full.reshape(x.shape)


def _real_engine(method: str) -> Engine:
    spec = engine(method)
    if spec.arithmetic != "real":
        raise ValueError(f"{method!r} is not a real finite-difference engine")
    return spec


def complex_step(
    f: ScalarFunction,
    x: NDArray,
    *,
    indices: NDArray | None = None,
    terms: NDArray | None = None,
    eps: float | None = None,
) -> NumericalGradient:
    """Differentiate ``f`` at the complex array ``x`` by the complex step.

    ``x`` must have a complex dtype with zero imaginary part; it is perturbed in place
    and restored. ``f`` must be analytic in ``x`` — check with
    :func:`supports_complex_step` first. ``terms`` (shaped like ``x``) is the size of the
    terms each element's derivative sums, for its rounding estimate (see
    :func:`complex_from_values`).

    Returns
    -------
    NumericalGradient
    """
    flat = _flat_indices(x, indices)
    view = x.reshape(-1)
    values = np.empty(flat.size)
    for row, i in enumerate(flat):
        saved = view[i].copy()
        try:
            view[i] = saved + 1j * COMPLEX_STEP
            values[row] = complex(f(x)).imag / COMPLEX_STEP
        finally:
            view[i] = saved
    return complex_from_values(x, flat, values, flat.size, terms=terms, eps=eps)


def complex_from_values(
    x: NDArray,
    flat: NDArray[np.intp],
    values: NDArray,
    evaluations: int,
    *,
    terms: NDArray | None = None,
    eps: float | None = None,
) -> NumericalGradient:
    """A :class:`NumericalGradient` from complex-step derivatives of elements ``flat``.

    There is no cancellation: the error is rounding in the derivative's own terms, each
    element's ``terms`` (shaped like ``x``) when they are known, else the variable's
    typical derivative.
    """
    if terms is None:
        size = np.full(flat.size, float(np.mean(np.abs(values))) if values.size else 0.0)
    else:
        size = np.asarray(terms, dtype=np.float64).reshape(-1)[flat]
    error = COMPLEX_ROUNDING * unit_roundoff(x, eps) * (np.abs(values) + size)
    return _assemble(x, flat, "complex", evaluations, values, error, None, None, None)


def _assemble(
    x: NDArray,
    flat: NDArray[np.intp],
    method: str,
    evaluations: int,
    estimate: NDArray,
    error: NDArray,
    left: NDArray | None,
    right: NDArray | None,
    side_error: NDArray | None,
) -> NumericalGradient:
    def spread(part: NDArray | None) -> NDArray[np.float64] | None:
        return None if part is None else _spread(x, flat, part)

    checked = np.zeros(x.size, dtype=bool)
    checked[flat] = True
    value, err = spread(estimate), spread(error)
    assert value is not None and err is not None
    return NumericalGradient(
        value=value,
        error=err,
        method=method,
        evaluations=evaluations,
        left=spread(left),
        right=spread(right),
        side_error=spread(side_error),
        checked=checked.reshape(x.shape),
    )


# Random directions are drawn a byte per element: the low bit the sign, the other seven
# one of 128 sizes in [0.5, 1). A float per element (signs and sizes drawn apart) cost a
# third of a fast check of a (100, 3136) input; 128 sizes are as good against cancellation.
_DIRECTION_BYTES = np.array(
    [(0.5 + (k >> 1) / 256) * (1 - 2 * (k & 1)) for k in range(256)], dtype=np.float64
)


def random_direction(rng: np.random.Generator, shape: int | tuple[int, ...]) -> NDArray:
    """Random signs times sizes in [0.5, 1): no entry near 0, so every element weighs in."""
    count = int(np.prod(shape))
    drawn = np.frombuffer(rng.bytes(count), dtype=np.uint8)
    direction: NDArray = _DIRECTION_BYTES[drawn].reshape(shape)
    return direction


_PROBE_SHRINK = 1e-3


def supports_complex_step(
    f: ScalarFunction,
    x: NDArray,
    rng: np.random.Generator,
    real_pass: ScalarFunction | None = None,
) -> tuple[bool, str]:
    """Probe whether the complex step gives ``f``'s true derivative at ``x``.

    ``f`` must return a complex number for complex input without a ``ComplexWarning``
    (which signals a silent cast to real), and its complex-step derivative along a random
    direction must agree with a central difference along the same direction.
    ``x`` is a real array and is not modified. ``real_pass`` evaluates ``f`` at real points
    in real arithmetic (default: ``f`` itself), where a pass costs less.

    Returns
    -------
    (bool, str)
        Whether the complex step can be used, and if not, why.
    """
    # Drawn as it always was: the probe's verdicts on kinked layers depend on its direction.
    direction = rng.choice([-1.0, 1.0], size=x.shape) * rng.uniform(0.5, 1.0, size=x.shape)
    work = x.astype(np.complex128)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            work += 1j * COMPLEX_STEP * direction
            value = f(work)
    except Exception as error:  # any failure in complex arithmetic means "not supported"
        return False, f"forward failed on complex input ({type(error).__name__}: {error})"
    if not np.iscomplexobj(value):
        return False, "forward returned a real value for complex input"
    along = complex(value).imag / COMPLEX_STEP
    real = np.asarray(x, dtype=np.float64)
    t = float(np.finfo(np.float64).eps ** (1 / 3) * max(1.0, float(np.max(np.abs(real)))))

    def real_part(point: NDArray) -> float:
        return complex((real_pass or f)(point)).real

    def centrals(step: float) -> tuple[float, float]:
        """Central differences along the direction at ``step`` and ``2·step``."""
        plus, minus = real + step * direction, real - step * direction
        wide_plus, wide_minus = real + 2 * step * direction, real - 2 * step * direction
        return (
            (real_part(plus) - real_part(minus)) / (2 * step),
            (real_part(wide_plus) - real_part(wide_minus)) / (4 * step),
        )

    # Steps scaled by |x| can be far wider than the function's structure (inputs of 1e5
    # around a spread of 1): before the complex step is refused, a step a thousand times
    # smaller has its say.
    for step in (t, t * _PROBE_SHRINK):
        central, central2 = centrals(step)
        if along == 0.0 and central != 0.0:  # no imaginary part reached the output
            return False, (
                f"the complex step's imaginary part vanished (0 against central "
                f"differences' {central:.6g}); the forward pass is not analytic (abs, max or "
                "a cast to real?)"
            )
        slack = 10 * abs(central2 - central) + 1e-6 * max(abs(central), abs(along), 1e-12)
        if abs(along - central) <= slack:
            return True, ""
    return False, (
        f"complex step ({along:.6g}) disagrees with central differences ({central:.6g}); "
        "the forward pass is not analytic (abs, max or a cast to real?)"
    )


def numerical_gradient(
    f: ScalarFunction,
    x: NDArray | float,
    *,
    method: str = "auto",
    indices: NDArray | None = None,
    scale: float | None = None,
) -> NumericalGradient:
    """The gradient of a scalar function, with a per-element error estimate.

    ``f`` is called with an array of ``x``'s shape; ``x`` itself is never modified.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x : array_like
        The point; a float array (integers are converted to float64).
    method : str
        ``"auto"`` uses the complex step when a probe shows ``f`` supports it and
        central differences otherwise; or a name in :data:`gradcheck.engine.spec.ENGINES`.
    indices : array of int, optional
        Flat indices of the elements to differentiate (default: all).
    scale : float, optional
        Size of the terms ``f`` adds up (e.g. ``Σ|dout·y|`` for ``f = Σ dout·y``); it sets
        the step and the rounding-noise estimate of the real engines. Default ``|f(x)|``.

    Returns
    -------
    NumericalGradient
        ``.value`` is the gradient, ``.error`` its error estimate.

    Examples
    --------
    >>> import numpy as np
    >>> g = numerical_gradient(lambda v: np.sum(v ** 3), np.array([1.0, 2.0]))
    >>> np.round(g.value, 10)
    array([ 3., 12.])
    """
    point = np.array(x, dtype=np.result_type(np.asarray(x).dtype, np.float64))
    if method not in ("auto", *ENGINES):
        raise ValueError(f"method must be one of auto, {', '.join(ENGINES)}; got {method!r}")
    if method == "auto":
        usable, _ = supports_complex_step(f, point, np.random.default_rng(0))
        method = "complex" if usable else "central"
    if method == "complex":
        return complex_step(f, point.astype(np.complex128), indices=indices)
    return stencil_derivatives(f, point, method=method, indices=indices, scale=scale).pooled()
