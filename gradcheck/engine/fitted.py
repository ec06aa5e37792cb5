"""Many stencils at several steps, fitted to the step: an estimate with a measured error.

Where one stencil's error bar is too wide — a forward pass that rounds like float32, whose
noise only large steps tame, and large steps truncate — the same elements are
differentiated again at ``k`` steps spread over a factor of four (and, where that does
not settle them, over the next factor of four down: a steep function wants smaller
steps). Each estimate is the
derivative plus ``c·h⁴`` (Richardson's truncation) plus rounding noise that differs from
step to step, so a least-squares fit of ``D + c·h⁴`` gives ``D`` with an error bar from
the residuals themselves: Student's ``t`` at a one-in-ten-thousand level times the
standard error — and no smaller a variance than each stencil's own measured noise stands
for, since neighbouring steps can read the same stairs of a coarsely rounding forward
pass alike (no two stencils share a point: the steps' ratios are irrational). Estimates that
repeat (a function that did not move by one unit in its last place) are quantised, not
noisy: their scatter says nothing, and the element is not fitted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import NOISE_SIGMAS
from gradcheck.engine.gradient import NumericalGradient

__all__ = ["FIT_STEPS", "fitted", "fitting_shrinks"]

#: Stencils per element in a fit.
FIT_STEPS = 16
# Two-sided probability that an error bar is exceeded by chance.
_MISS = 1e-4
_GOLDEN = (np.sqrt(5.0) - 1) / 2
# Residuals more than this many times the rounding the stencils' noise stands for are the
# function's shape, not rounding to average.
_MISFIT = 4.0


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


def _rounding_variance(
    runs: Sequence[NumericalGradient], checked: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Per checked element, the variance of one run's value that its own measured noise
    stands for (its noise bound over :data:`~gradcheck.accuracy.NOISE_SIGMAS`), averaged
    over the runs."""
    variances = []
    for run in runs:
        if run.noise is None:
            variances.append(np.zeros(int(checked.sum())))
            continue
        # The pooled noise, not each element's own fourth difference: at the large steps
        # a fit climbs to, that measures the function's curvature, which the fit models.
        level = run.noise.levels()[1]
        variances.append(np.square(level[checked] / NOISE_SIGMAS))
    mean: NDArray[np.float64] = np.mean(variances, axis=0)
    return mean


def fitted(runs: Sequence[NumericalGradient], *, larger: bool = False) -> NumericalGradient:
    """The elements every run checked, each fitted as ``D + c·h⁴`` over the runs' steps.

    Each run is a pooled stencil result whose noise records the step ``h`` per element.
    ``larger``: the steps are larger than the ones the element's stencil chose, where the
    terms after ``c·h⁴`` may show; an element whose residuals scatter far beyond the
    rounding its noise stands for is then not fitted (its steps see the function's shape).
    The result carries ``D`` and its error bar and no noise samples (its error is final:
    pooling again must not replace it).
    """
    first = runs[0]
    checked = np.logical_and.reduce([r.checked for r in runs])
    values = np.stack([r.value for r in runs])[:, checked]
    steps = np.stack(
        [r.noise.step if r.noise is not None else np.ones_like(r.value) for r in runs]
    )[:, checked]
    estimate = np.zeros(values.shape[1])
    error = np.full(values.shape[1], np.inf)
    from scipy.special import stdtrit  # a quarter second to import, and rarely needed

    k = len(runs)
    quantile = float(stdtrit(k - 2, 1 - _MISS / 2))
    predicted = _rounding_variance(runs, checked)
    for column in range(values.shape[1]):
        if np.unique(values[:, column]).size < k // 2:
            continue  # quantised, not noisy (f did not move at these steps): no error bar
        design = np.column_stack([np.ones(k), steps[:, column] ** 4])
        coefficients, _, rank, _ = np.linalg.lstsq(design, values[:, column], rcond=None)
        if rank < 2:
            continue
        residual = values[:, column] - design @ coefficients
        scatter = float(residual @ residual) / (k - 2)
        if larger and scatter > _MISFIT**2 * predicted[column]:
            continue
        # Steps that share their rounding (a float32 buffer's stairs, read by neighbouring
        # steps alike) scatter less than independent rounding would: the fit knows no more
        # than that rounding allows, whatever its residuals say.
        variance = max(scatter, float(predicted[column]))
        leverage = float(np.linalg.inv(design.T @ design)[0, 0])
        estimate[column] = coefficients[0]
        error[column] = quantile * np.sqrt(variance * leverage)
    value = first.value.copy()
    value[checked] = estimate
    errors = np.full(first.value.shape, np.inf)
    errors[checked] = error
    return NumericalGradient(
        value=value,
        error=errors,
        method=first.method,
        evaluations=sum(r.evaluations for r in runs),
        left=None,
        right=None,
        side_error=None,
        checked=checked & np.isfinite(errors),
        noise=None,
    )
