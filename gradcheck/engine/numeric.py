"""Finite-difference engines that return a derivative *and* an error estimate.

Every engine differentiates a scalar function ``f`` of an array ``x`` element by element
and returns a :class:`NumericalGradient`: the estimate, a per-element error estimate, and
— for the real-arithmetic engines — second-order one-sided derivatives from which
:mod:`gradcheck.verdict.compare` recognises kinks.

The engines
-----------
central
    ``D(h) = (f(x+h) − f(x−h)) / 2h`` with ``h = ε^(1/3)·max(|x|, 1)``, the classical optimum
    that balances truncation (∝ h²) against rounding (∝ ε/h); the textbook's fixed
    ``h = 1e-4`` is neither. The truncation error is estimated from a second step:
    ``D(2h) − D(h) ≈ 3ch²`` so ``err ≈ |D(2h) − D(h)| / 3``. Four evaluations per element.
richardson
    Extrapolates ``R(h) = (4D(h) − D(2h)) / 3`` (error ∝ h⁴, so ``h = ε^(1/5)·max(|x|, 1)``)
    and estimates its error from the next level, ``|R(h) − R(2h)| / 15``, as
    ``scipy.differentiate`` does. Six evaluations per element.
complex
    The complex step ``Im f(x + ih) / h`` with ``h = 1e-20``: no subtractive cancellation,
    so it is exact to rounding — but only for code that is analytic in its inputs (no
    ``abs``, no casts to real). One evaluation per element. :func:`supports_complex_step`
    probes a function before it is trusted.

Every perturbed element is put back from a saved copy (never ``x + h − h``) in a
``finally`` block, so the array is bit-identical afterwards even if ``f`` raises.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ENGINES",
    "STENCIL_OFFSETS",
    "DirectionalDerivative",
    "NumericalGradient",
    "complex_from_values",
    "complex_step",
    "directional_derivative",
    "numerical_gradient",
    "stencil_derivatives",
    "stencil_from_table",
    "step_sizes",
    "supports_complex_step",
]

ENGINES = ("central", "richardson", "complex")

ScalarFunction = Callable[[NDArray], Any]

# Offsets (in units of h) at which each real engine evaluates f; 0 is evaluated once
# for the whole array, not per element.
_OFFSETS = {"central": (1, -1, 2, -2), "richardson": (1, -1, 2, -2, 4, -4)}
_STEP_EXPONENT = {"central": 1 / 3, "richardson": 1 / 5}
# The offsets of each real engine, for engines that build their own tables (colouring).
STENCIL_OFFSETS = _OFFSETS
# Rounding in f is more than one ulp of its value: a layer does several operations per
# output element. This factor turns ε·|f| into a realistic noise level of f.
_NOISE_FACTOR = 16.0
COMPLEX_STEP = 1e-20


@dataclass(frozen=True)
class NumericalGradient:
    """A numerical gradient with its error estimate.

    Attributes
    ----------
    value : ndarray
        The derivative estimate for each element (float64, the shape of ``x``).
    error : ndarray
        An estimate of ``|value − true derivative|`` for each element.
    method : str
        The engine used: ``"central"``, ``"richardson"`` or ``"complex"``.
    evaluations : int
        How many times ``f`` was called.
    left, right : ndarray or None
        Second-order one-sided derivatives (real engines only); where they disagree
        beyond ``side_error`` the function has a kink at that element.
    side_error : ndarray or None
        Rounding-noise estimate of ``left`` and ``right``.
    checked : ndarray
        Boolean mask of the elements that were differentiated (all unless ``indices``).
    """

    value: NDArray[np.float64]
    error: NDArray[np.float64]
    method: str
    evaluations: int
    left: NDArray[np.float64] | None
    right: NDArray[np.float64] | None
    side_error: NDArray[np.float64] | None
    checked: NDArray[np.bool_]


def _flat_indices(x: NDArray, indices: NDArray | None) -> NDArray[np.intp]:
    if indices is None:
        return np.arange(x.size, dtype=np.intp)
    return np.asarray(indices, dtype=np.intp).ravel()


def _steps(x: NDArray, flat: NDArray[np.intp], exponent: float, noise: float) -> NDArray:
    """Per-element steps ``(ε·noise)^exponent·max(|x|, 1)``, made exactly representable.

    ``noise`` is the size of the terms ``f`` sums, relative to one element's share: when
    ``f`` adds up many terms its rounding grows with them while one element's effect does
    not, so the step that balances truncation against rounding grows as ``noise^(1/3)``.
    Taking ``(x + h) − x`` removes the rounding of ``x + h`` from the step itself.
    """
    dtype = x.real.dtype
    base = x.ravel()[flat].real.astype(dtype)
    scale = np.maximum(np.abs(base), np.ones_like(base))
    relative = float(np.finfo(dtype).eps) * max(noise, 1.0)
    h = (min(relative, 1e-2) ** exponent * scale).astype(dtype)
    with np.errstate(over="ignore"):
        return ((base + h) - base).astype(np.float64)


def stencil_derivatives(
    f: ScalarFunction,
    x: NDArray,
    *,
    method: str = "central",
    indices: NDArray | None = None,
    scale: float | None = None,
) -> NumericalGradient:
    """Differentiate ``f`` at ``x`` with a real finite-difference stencil.

    ``x`` is perturbed in place, one element at a time, and restored from a saved copy;
    ``f(x)`` must return a real number. ``scale`` is the size of the terms that ``f``
    sums (default ``|f(x)|``); it sets the rounding-noise floor of the error estimate.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x : ndarray
        Float array; perturbed in place during the call, bit-identical afterwards.
    method : {"central", "richardson"}
        The stencil.
    indices : array of int, optional
        Flat indices of the elements to differentiate (default: all).
    scale : float, optional
        Magnitude of ``f``'s terms, for the rounding-noise estimate.

    Returns
    -------
    NumericalGradient
    """
    offsets = _OFFSETS[method]
    flat = _flat_indices(x, indices)
    view = x.reshape(-1)
    if not np.shares_memory(view, x):
        raise ValueError("x must be contiguous so that it can be perturbed in place")
    f0 = float(f(x))
    h = _steps(x, flat, _STEP_EXPONENT[method], max(abs(f0), scale or 0.0))
    table = np.empty((flat.size, len(offsets)))
    for row, (i, step) in enumerate(zip(flat, h, strict=True)):
        saved = view[i].copy()
        try:
            for col, offset in enumerate(offsets):
                view[i] = saved + offset * step
                table[row, col] = float(f(x))
        finally:
            view[i] = saved
    return stencil_from_table(
        x, flat, method, 1 + flat.size * len(offsets), f0, table, h, scale=scale
    )


def stencil_from_table(
    x: NDArray,
    flat: NDArray[np.intp],
    method: str,
    evaluations: int,
    f0: float | NDArray,
    table: NDArray,
    h: NDArray,
    *,
    scale: float | None = None,
) -> NumericalGradient:
    """Turn a table of stencil evaluations into derivatives, error estimates and sides.

    ``table[row, k]`` is the value of ``f`` with element ``flat[row]`` moved by
    ``_OFFSETS[method][k] * h[row]``; ``f0`` is ``f`` at ``x`` — one number, or one per
    row when each row reads its own part of a vector output (a coloured check, where
    ``f`` for an element is the sum over the outputs only that element affects).
    """
    eps = float(np.finfo(x.real.dtype).eps)
    noise = _NOISE_FACTOR * eps * np.maximum(np.abs(f0), scale or 0.0) / h
    plus1, minus1, plus2, minus2 = (table[:, k] for k in range(4))
    d1 = (plus1 - minus1) / (2 * h)
    d2 = (plus2 - minus2) / (4 * h)
    if method == "central":
        estimate = d1
        truncation = np.abs(d2 - d1) / 3
    else:
        d4 = (table[:, 4] - table[:, 5]) / (8 * h)
        estimate = (4 * d1 - d2) / 3
        truncation = np.abs(estimate - (4 * d2 - d4) / 3) / 15
    error = truncation + noise
    # Second-order one-sided differences: for smooth f they agree to O(h³) (their h²
    # terms are equal), so a disagreement beyond rounding means a kink between x−2h and
    # x+2h. Their truncation estimate is left out on purpose: a kink inside the stencil
    # inflates |d2 − d1| and would hide itself.
    right = (-3 * f0 + 4 * plus1 - plus2) / (2 * h)
    left = (3 * f0 - 4 * minus1 + minus2) / (2 * h)
    side_error = 4 * noise
    return _assemble(x, flat, method, evaluations, estimate, error, left, right, side_error)


def complex_step(
    f: ScalarFunction, x: NDArray, *, indices: NDArray | None = None
) -> NumericalGradient:
    """Differentiate ``f`` at the complex array ``x`` by the complex step.

    ``x`` must have a complex dtype with zero imaginary part; it is perturbed in place
    and restored. ``f`` must be analytic in ``x`` — check with
    :func:`supports_complex_step` first.

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
    return complex_from_values(x, flat, values, flat.size)


def complex_from_values(
    x: NDArray, flat: NDArray[np.intp], values: NDArray, evaluations: int
) -> NumericalGradient:
    """A :class:`NumericalGradient` from complex-step derivatives of elements ``flat``."""
    eps = float(np.finfo(x.real.dtype).eps)
    # No cancellation: the error is rounding in the derivative's own terms.
    typical = float(np.mean(np.abs(values))) if values.size else 0.0
    error = _NOISE_FACTOR * eps * (np.abs(values) + typical)
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
        if part is None:
            return None
        full = np.zeros(x.size)
        full[flat] = part
        return full.reshape(x.shape)

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


def supports_complex_step(
    f: ScalarFunction, x: NDArray, rng: np.random.Generator
) -> tuple[bool, str]:
    """Probe whether the complex step gives ``f``'s true derivative at ``x``.

    ``f`` must return a complex number for complex input without a ``ComplexWarning``
    (which signals a silent cast to real), and its complex-step derivative along a random
    direction must agree with a central difference along the same direction.
    ``x`` is a real array and is not modified.

    Returns
    -------
    (bool, str)
        Whether the complex step can be used, and if not, why.
    """
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
        return complex(f(point)).real

    central = (real_part(real + t * direction) - real_part(real - t * direction)) / (2 * t)
    central2 = (real_part(real + 2 * t * direction) - real_part(real - 2 * t * direction)) / (4 * t)
    slack = 10 * abs(central2 - central) + 1e-6 * max(abs(central), abs(along), 1e-12)
    if abs(along - central) > slack:
        return False, (
            f"complex step ({along:.6g}) disagrees with central differences ({central:.6g}); "
            "the forward pass is not analytic (abs, max or a cast to real?)"
        )
    return True, ""


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
    method : {"auto", "central", "richardson", "complex"}
        ``"auto"`` uses the complex step when a probe shows ``f`` supports it and
        central differences otherwise.
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
    return stencil_derivatives(f, point, method=method, indices=indices, scale=scale)


def step_sizes(
    x: NDArray, *, method: str = "central", indices: NDArray | None = None,
    noise: float = 0.0,
) -> NDArray:
    """The per-element steps :func:`stencil_derivatives` uses (float64, flat).

    A coloured check moves many elements at once and must use the very same steps, so
    that its numbers equal those of the element-by-element stencil.
    """
    return _steps(x, _flat_indices(x, indices), _STEP_EXPONENT[method], noise)


@dataclass(frozen=True)
class DirectionalDerivative:
    """The derivative of ``f`` along one direction, with its error estimate.

    Attributes
    ----------
    value : float
        ``d/dt f(x + t·v)`` at ``t = 0``.
    error : float
        Estimate of ``|value − true directional derivative|``.
    method : str
        ``"central"``, ``"richardson"`` or ``"complex"``.
    evaluations : int
        How many times ``f`` was called.
    kink : bool
        Whether the one-sided derivatives disagree beyond rounding (real engines, when
        ``f(x)`` was given): the stencil straddles a kink somewhere along the direction.
    """

    value: float
    error: float
    method: str
    evaluations: int
    kink: bool = False


def directional_derivative(
    f: ScalarFunction,
    x: NDArray,
    direction: NDArray,
    *,
    method: str = "central",
    scale: float = 0.0,
    f0: float | None = None,
    shrink: float = 1.0,
) -> DirectionalDerivative:
    """Differentiate ``f`` at ``x`` along ``direction``: ``d/dt f(x + t·direction)``.

    The same engines as for single elements, applied to the whole array at once (so the
    cost does not depend on ``x.size``):

    central / richardson
        The stencil of :func:`stencil_derivatives` in ``t``, with ``t = (ε·scale)^(1/3)``
        (``^(1/5)`` for richardson); ``direction`` should be in units of
        ``max(|x_i|, 1)``, as the element steps are. Error from a second step size plus the
        rounding noise ``16·ε·scale/t``. Four (six) evaluations. Given ``f0 = f(x)``,
        one-sided derivatives flag a kink crossed by the stencil; ``shrink`` divides
        ``t`` (a smaller stencil crosses fewer kinks, at more rounding noise).
    complex
        ``Im f(x + i·h·direction) / h``, exact to rounding; ``x`` must be complex. One
        evaluation. ``scale`` is then the size of the terms the derivative sums.

    ``x`` is perturbed in place and restored from a saved copy, even if ``f`` raises.
    """
    saved = x.copy()
    try:
        if method == "complex":
            np.copyto(x, saved + 1j * COMPLEX_STEP * direction)
            value = complex(f(x)).imag / COMPLEX_STEP
            eps = float(np.finfo(x.real.dtype).eps)
            return DirectionalDerivative(
                value, _NOISE_FACTOR * eps * (abs(value) + scale), "complex", 1
            )
        eps = float(np.finfo(x.dtype).eps)
        t = min(eps * max(scale, 1.0), 1e-2) ** _STEP_EXPONENT[method] / shrink
        table = []
        for offset in _OFFSETS[method]:
            np.copyto(x, saved + (offset * t) * direction, casting="unsafe")
            table.append(float(f(x)))
    finally:
        np.copyto(x, saved)
    d1 = (table[0] - table[1]) / (2 * t)
    d2 = (table[2] - table[3]) / (4 * t)
    if method == "central":
        value, truncation = d1, abs(d2 - d1) / 3
    else:
        d4 = (table[4] - table[5]) / (8 * t)
        value = (4 * d1 - d2) / 3
        truncation = abs(value - (4 * d2 - d4) / 3) / 15
    noise = _NOISE_FACTOR * eps * max(scale, max(abs(v) for v in table)) / t
    kink = False
    if f0 is not None:
        # As for elements: the one-sided differences share their t² term, so beyond
        # rounding they disagree only across a kink.
        right = (-3 * f0 + 4 * table[0] - table[2]) / (2 * t)
        left = (3 * f0 - 4 * table[1] + table[3]) / (2 * t)
        kink = abs(right - left) > 16 * noise
    return DirectionalDerivative(value, truncation + noise, method, len(table), kink)
