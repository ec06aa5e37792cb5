"""Many stencils at several steps, fitted to the step: an estimate with a measured error.

Where one stencil's error bar is too wide — a forward pass that rounds like float32, whose
noise only large steps tame, and large steps truncate — the same elements are
differentiated again at ``k`` steps spread over a factor of four (and, where that does
not settle them, over the next factor of four down: a steep function wants smaller
steps). Each estimate is the
derivative plus ``c·h⁴`` (Richardson's truncation) plus rounding noise that differs from
step to step, so a least-squares fit of ``D + c·h⁴`` gives ``D`` with an error bar from
the residuals themselves: Student's ``t`` at a one-in-ten-thousand level times the
standard error. Nothing is assumed about the noise but its independence between steps,
which the steps' irrational ratios give (no two stencils share a point). Estimates that
repeat (a function that did not move by one unit in its last place) are quantised, not
noisy: their scatter says nothing, and the element is not fitted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gradcheck.engine.gradient import NumericalGradient

__all__ = ["FIT_STEPS", "fitted", "fitting_shrinks"]

#: Stencils per element in a fit.
FIT_STEPS = 16
# Two-sided probability that an error bar is exceeded by chance.
_MISS = 1e-4
_GOLDEN = (np.sqrt(5.0) - 1) / 2


def fitting_shrinks(k: int = FIT_STEPS, low: float = 1.0) -> NDArray[np.float64]:
    """``k`` factors in [low, 4·low) to divide the steps by: spread evenly (a golden-ratio
    sequence), no two in a rational ratio, so no two stencils share an evaluation point.

    >>> shrinks = fitting_shrinks(4)
    >>> bool(np.all((shrinks >= 1) & (shrinks < 4)))
    True
    """
    fractions = (np.arange(k) * _GOLDEN) % 1.0
    shrinks: NDArray[np.float64] = low * 4.0**fractions
    return shrinks


def fitted(runs: Sequence[NumericalGradient]) -> NumericalGradient:
    """The elements every run checked, each fitted as ``D + c·h⁴`` over the runs' steps.

    Each run is a pooled stencil result whose noise records the step ``h`` per element.
    The result carries ``D`` and its error bar and no noise samples (its error is final:
    pooling again must not replace it).
    """
    first = runs[0]
    checked = np.logical_and.reduce([r.checked for r in runs])
    values = np.stack([r.value for r in runs])[:, checked]
    steps = np.stack([r.noise.step if r.noise is not None else np.ones_like(r.value)
                      for r in runs])[:, checked]
    estimate = np.zeros(values.shape[1])
    error = np.full(values.shape[1], np.inf)
    from scipy.special import stdtrit  # a quarter second to import, and rarely needed

    k = len(runs)
    quantile = float(stdtrit(k - 2, 1 - _MISS / 2))
    for column in range(values.shape[1]):
        if np.unique(values[:, column]).size < k // 2:
            continue  # quantised, not noisy (f did not move at these steps): no error bar
        design = np.column_stack([np.ones(k), steps[:, column] ** 4])
        coefficients, _, rank, _ = np.linalg.lstsq(design, values[:, column], rcond=None)
        if rank < 2:
            continue
        residual = values[:, column] - design @ coefficients
        variance = float(residual @ residual) / (k - 2)
        leverage = float(np.linalg.inv(design.T @ design)[0, 0])
        estimate[column] = coefficients[0]
        error[column] = quantile * np.sqrt(variance * leverage)
    value = first.value.copy()
    value[checked] = estimate
    errors = np.full(first.value.shape, np.inf)
    errors[checked] = error
    return NumericalGradient(
        value=value, error=errors, method=first.method,
        evaluations=sum(r.evaluations for r in runs), left=None, right=None,
        side_error=None, checked=checked & np.isfinite(errors), noise=None,
    )
