"""Per-element verdicts: tolerances, mismatches and kinks.

An element *mismatches* when ``|a − n| > atol + rtol·|n| + 2·err(n)``: the tolerance
covers rounding in the analytic side (it follows the dtype the layer computes in), and
the error estimate of the numerical side is added on top, so a noisy numerical
derivative never produces a false alarm by itself.

An element is a *kink* (not differentiable: ReLU at 0, a max-pool tie) when its left and
right one-sided derivatives disagree by more than their error. A kink is skipped — not
reported as a bug — unless the analytic value lies outside the interval between the two
one-sided derivatives, which no valid subgradient does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradcheck.engine.numeric import NumericalGradient
from gradcheck.vocabulary import Status

__all__ = [
    "ERROR_WEIGHT",
    "Comparison",
    "Tolerance",
    "compare",
    "default_tolerance",
    "kink_mask",
]

# Default relative tolerances by the dtype the layer computes in. float64: rounding in a
# correct backward stays far below 1e-5, while a gradient off by 0.1 % (×1.001) is 100×
# above it. float32 (ε ≈ 1.2e-7): on every reference layer, and on Affine 784→50,
# Convolution 6→8 channels and BatchNorm over 100 samples, the worst correct element used
# at most 3 % of a 1e-4 tolerance (60 seeds), so 1e-4 still catches ×1.001 in float32.
_RTOL = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-4, np.dtype(np.float16): 1e-2}
# How much of the gradient's typical size an element may be off in absolute terms:
# elements that cancel to ~0 keep the rounding of their large terms.
_ATOL_FRACTION = 0.1
_STRICT_FACTOR = 0.1
# How many numerical error estimates an element may be off before it mismatches.
ERROR_WEIGHT = 2.0


@dataclass(frozen=True)
class Tolerance:
    """Resolved tolerances for one variable.

    ``rounding`` is the measured rounding of the analytic side, per element (or 0): for a
    float32 layer, ``|backward in float32 − backward in float64|``. It matters where a
    gradient is small next to the terms it is computed from (a bias right before a
    BatchNorm has a true gradient of exactly 0, computed as a sum of rounded float32
    terms), where no tolerance relative to the gradient itself can cover float32 rounding.
    """

    rtol: float
    atol: float
    rounding: NDArray[np.float64] | float = 0.0

    def allowance(self, reference: NDArray) -> NDArray[np.float64]:
        """How far the analytic value may be from ``reference``, before error estimates."""
        return self.atol + self.rtol * np.abs(reference) + ERROR_WEIGHT * self.rounding


def default_tolerance(
    dtype: np.dtype,
    numerical: NDArray,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    strict: bool = False,
    rounding: NDArray[np.float64] | float = 0.0,
) -> Tolerance:
    """Resolve tolerances for a gradient computed in ``dtype``.

    ``rtol`` defaults by dtype; ``atol`` defaults to ``rtol`` times a fraction of the
    root-mean-square size of the numerical gradient, so the check is scale-free.
    ``rounding`` is the analytic side's measured rounding (see :class:`Tolerance`).
    """
    if rtol is None:
        rtol = _RTOL.get(np.dtype(dtype), 1e-5)
        if strict:
            rtol *= _STRICT_FACTOR
    if atol is None:
        size = float(np.sqrt(np.mean(np.square(numerical)))) if numerical.size else 0.0
        atol = rtol * _ATOL_FRACTION * size
        if size == 0.0:
            atol = rtol * float(np.finfo(np.dtype(dtype)).eps)
    return Tolerance(rtol=rtol, atol=atol, rounding=rounding)


@dataclass(frozen=True)
class Comparison:
    """Element-wise comparison of an analytic and a numerical gradient."""

    status: NDArray[np.int8]
    threshold: NDArray[np.float64]
    abs_error: NDArray[np.float64]
    rel_error: NDArray[np.float64]
    tolerance: Tolerance

    @property
    def mismatches(self) -> int:
        """Number of elements whose analytic value is wrong."""
        return int(np.count_nonzero(self.status == Status.MISMATCH))

    @property
    def kinks(self) -> int:
        """Number of non-differentiable elements skipped."""
        return int(np.count_nonzero(self.status == Status.KINK))

    @property
    def checked(self) -> int:
        """Number of elements compared."""
        return int(np.count_nonzero(self.status != Status.UNCHECKED))


def compare(
    analytic: NDArray, numerical: NumericalGradient, tolerance: Tolerance
) -> Comparison:
    """Give each element a :class:`Status`.

    Parameters
    ----------
    analytic : ndarray
        The gradient from ``backward``.
    numerical : NumericalGradient
        The numerical gradient, with error estimates and (real engines) one-sided
        derivatives.
    tolerance : Tolerance
        From :func:`default_tolerance`.

    Returns
    -------
    Comparison
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = numerical.value
    abs_error = np.abs(a - n)
    threshold = tolerance.allowance(n) + ERROR_WEIGHT * numerical.error
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_error = np.where(abs_error == 0, 0.0, abs_error / np.maximum(np.abs(n), np.abs(a)))
    status = np.where(abs_error > threshold, Status.MISMATCH, Status.OK).astype(np.int8)
    mask = kink_mask(numerical, tolerance)
    if mask is not None:
        assert numerical.left is not None and numerical.right is not None
        low = np.minimum(numerical.left, numerical.right) - threshold
        high = np.maximum(numerical.left, numerical.right) + threshold
        valid_subgradient = (a >= low) & (a <= high)
        status[(status == Status.MISMATCH) & mask & valid_subgradient] = Status.KINK
    status[~numerical.checked] = Status.UNCHECKED
    return Comparison(status, threshold, abs_error, rel_error, tolerance)


def kink_mask(numerical: NumericalGradient, tolerance: Tolerance) -> NDArray[np.bool_] | None:
    """Elements whose one-sided derivatives disagree beyond rounding (kinks).

    Calling a smooth element a kink is harmless: it is skipped only if its analytic value
    lies between its one-sided derivatives, which for a smooth function agree to O(h³).

    Returns ``None`` when the engine gave no one-sided derivatives (complex step).
    """
    left, right, side_error = numerical.left, numerical.right, numerical.side_error
    if left is None or right is None or side_error is None:
        return None
    slack = tolerance.atol + tolerance.rtol * np.maximum(np.abs(left), np.abs(right))
    gap: NDArray[np.bool_] = np.abs(right - left) > slack + 2 * ERROR_WEIGHT * side_error
    return gap
