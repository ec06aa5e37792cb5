"""Derivatives along a direction: one stencil for the whole array, whatever its size.

Fast mode compares ``d/dt L(x + t·v)`` with ``⟨analytic gradient, v⟩`` (PyTorch's
``fast_mode`` idea); the numbers come from the same :class:`~gradcheck.engine.spec.Engine`
entries as the element-by-element derivatives, applied to ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import COMPLEX_ROUNDING, TRUNCATION_SAFETY
from gradcheck.engine.numeric import ScalarFunction
from gradcheck.engine.spec import COMPLEX_STEP, NOISE_FACTOR, engine

__all__ = ["DirectionalDerivative", "directional_derivative"]

# One-sided derivatives further apart than this many noise levels straddle a kink.
_KINK_NOISE = 16


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
        The engine's name.
    evaluations : int
        How many times ``f`` was called.
    kink : bool
        Whether the one-sided derivatives disagree beyond rounding (two-sided real
        engines, when ``f(x)`` was given): the stencil straddles a kink somewhere along
        the direction.
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
    eps: float | None = None,
) -> DirectionalDerivative:
    """Differentiate ``f`` at ``x`` along ``direction``: ``d/dt f(x + t·direction)``.

    Real engines
        The engine's stencil in ``t``, with ``t = (ε·scale)^exponent`` (the element steps'
        rule with ``|x| = 1``): ``direction`` should be in the units of
        :func:`~gradcheck.engine.steps.step_units`, as the element steps are. Error
        from the engine's truncation estimate plus the
        rounding noise ``16·ε·scale/t``. Given ``f0 = f(x)``, a two-sided engine's
        one-sided derivatives flag a kink crossed by the stencil; ``shrink`` divides
        ``t`` (a smaller stencil crosses fewer kinks, at more rounding noise). An engine
        whose estimate needs ``f(x)`` evaluates it when ``f0`` is not given.
    complex
        ``Im f(x + i·h·direction) / h``, exact to rounding; ``x`` must be complex. One
        evaluation. ``scale`` is then the size of the terms the derivative sums.

    ``eps`` is the unit roundoff of ``f``'s computation (default: that of ``x``'s dtype).
    ``x`` is perturbed in place and restored from a saved copy, even if ``f`` raises.

    Examples
    --------
    >>> x = np.array([1.0, 2.0])
    >>> d = directional_derivative(lambda v: float(np.sum(v ** 2)), x, np.array([1.0, 0.0]))
    >>> round(d.value, 8), x.tolist()
    (2.0, [1.0, 2.0])
    """
    spec = engine(method)
    if eps is None:
        eps = float(np.finfo(x.real.dtype).eps)
    if spec.arithmetic == "complex":
        return _complex(f, x, direction, scale, eps)
    t = min(eps * max(scale, 1.0), 1e-2) ** spec.step_exponent / shrink
    evaluations = len(spec.offsets)
    kink_wanted = f0 is not None and spec.two_sided
    if f0 is None and not spec.two_sided:
        f0, evaluations = float(f(x)), evaluations + 1
    saved = x.copy()
    table = np.empty(len(spec.offsets))
    try:
        for k, offset in enumerate(spec.offsets):
            np.copyto(x, saved + (offset * t) * direction, casting="unsafe")
            table[k] = float(f(x))
    finally:
        np.copyto(x, saved)
    stencil = spec.combine(0.0 if f0 is None else f0, table, t)
    noise = spec.rounding_gain * NOISE_FACTOR * eps * max(scale, float(np.max(np.abs(table)))) / t
    kink = False
    if kink_wanted and stencil.left is not None and stencil.right is not None:
        kink = bool(abs(stencil.right - stencil.left) > _KINK_NOISE * noise)
    return DirectionalDerivative(
        float(stencil.estimate),
        TRUNCATION_SAFETY * float(stencil.truncation) + 2 * noise,
        method,
        evaluations,
        kink,
    )


def _complex(
    f: ScalarFunction, x: NDArray, direction: NDArray, scale: float, eps: float
) -> DirectionalDerivative:
    saved = x.copy()
    try:
        np.copyto(x, saved + 1j * COMPLEX_STEP * direction)
        value = complex(f(x)).imag / COMPLEX_STEP
    finally:
        np.copyto(x, saved)
    return DirectionalDerivative(value, COMPLEX_ROUNDING * eps * (abs(value) + scale), "complex", 1)
