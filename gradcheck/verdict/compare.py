"""Per-element verdicts: match, mismatch, or unresolved — from four numbers each.

Every element's verdict follows from its analytic value ``a``, its numerical value
``n``, the numerical value's error bar ``bar`` (a promise: ``|n − true| ≤ bar``, measured
by ``benchmarks/bench_calibration.py``) and its tolerance ``tol``:

* **mismatch** where ``|a − n| − bar > tol``: the analytic value is outside the tolerance
  whatever the numerical error;
* **match** where ``|a − n| + bar ≤ tol``: it is inside whatever the numerical error (or
  both sides say exactly the same number, as a dead ReLU unit's 0 on both sides);
* **unresolved** otherwise: the bar is too wide to tell — never reported as a match. A
  numerical value that is not finite is unresolved too.

The tolerance is the user's promise about the analytic side:
``tol = rtol·|n| + atol + rounding``, where ``rtol`` follows the precision the gradient is
computed in, ``rounding`` is the analytic side's own rounding (measured per element,
:mod:`gradcheck.analytic.precision`), and ``atol`` is by default the loss's resolution:
an error that moves the loss by less than a few units in its last place when the variable
moves by its own spread (:data:`gradcheck.accuracy.LOSS_RESOLUTION`). Nothing else — not
the variable's largest element, nor a quartile of its neighbours — enters: a row of ``dW``
a million times smaller than the rest is judged by its own size.

An element is a *kink* (not differentiable: ReLU at 0, a max-pool tie) when its left and
right one-sided derivatives disagree by more than their error. A kink is skipped — not
reported as a bug — unless the analytic value lies outside the interval between the two
one-sided derivatives, which no valid subgradient does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import DEFAULT_RTOL, STRICT_FACTOR
from gradcheck.engine.gradient import NumericalGradient
from gradcheck.vocabulary import Status

__all__ = [
    "Comparison",
    "Tolerance",
    "compare",
    "default_rtol",
    "default_tolerance",
    "kink_mask",
]


@dataclass(frozen=True)
class Tolerance:
    """Resolved tolerances for one variable.

    ``atol`` is the user's absolute tolerance or, by default, the loss's resolution for
    each element of this variable. ``rounding`` is the analytic side's own rounding, per
    element (or one number): measured (see :mod:`gradcheck.analytic.precision`).
    """

    rtol: float
    atol: NDArray[np.float64] | float
    rounding: NDArray[np.float64] | float = 0.0

    def allowance(self, reference: NDArray) -> NDArray[np.float64]:
        """How far the analytic value may be from the true gradient, ``reference`` standing
        in for it: ``rtol·|reference| + atol + rounding``."""
        return self.atol + self.rtol * np.abs(reference) + self.rounding


def default_rtol(dtype: np.dtype, *, strict: bool = False) -> float:
    """The relative tolerance for a gradient computed in ``dtype``."""
    rtol = DEFAULT_RTOL.get(np.dtype(dtype), 1e-5)
    return rtol * STRICT_FACTOR if strict else rtol


def default_tolerance(
    dtype: np.dtype,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    strict: bool = False,
    rounding: NDArray[np.float64] | float = 0.0,
    resolution: NDArray[np.float64] | float = 0.0,
) -> Tolerance:
    """Resolve tolerances for a gradient computed in ``dtype``.

    ``rtol`` defaults by dtype (ten times tighter when ``strict``); ``atol`` defaults to
    ``resolution``, the loss's resolution for the variable.
    """
    return Tolerance(
        rtol=default_rtol(dtype, strict=strict) if rtol is None else rtol,
        atol=resolution if atol is None else atol,
        rounding=rounding,
    )


@dataclass(frozen=True)
class Comparison:
    """Element-wise comparison of an analytic and a numerical gradient.

    ``threshold`` is each element's whole allowance (``|a − n|`` beyond it mismatches),
    ``relative`` its relative part ``rtol·|n|``.
    """

    status: NDArray[np.int8]
    threshold: NDArray[np.float64]
    abs_error: NDArray[np.float64]
    rel_error: NDArray[np.float64]
    tolerance: Tolerance
    relative: NDArray[np.float64]

    def relative_governs(self) -> NDArray[np.bool_]:
        """Elements whose tolerance is mostly relative, so their relative error means
        something; for one that cancels to about 0, its rounding sets the tolerance and a
        relative error of 1 (1e-17 against 0) is no news."""
        governs: NDArray[np.bool_] = self.relative >= self.threshold - self.relative
        return governs

    @property
    def mismatches(self) -> int:
        """Number of elements whose analytic value is wrong."""
        return int(np.count_nonzero(self.status == Status.MISMATCH))

    @property
    def kinks(self) -> int:
        """Number of non-differentiable elements skipped."""
        return int(np.count_nonzero(self.status == Status.KINK))

    @property
    def unresolved(self) -> int:
        """Number of elements the numerical side could not resolve at the tolerance."""
        return int(np.count_nonzero(self.status == Status.UNRESOLVED))

    @property
    def checked(self) -> int:
        """Number of elements compared."""
        return int(np.count_nonzero(self.status != Status.UNCHECKED))


def compare(analytic: NDArray, numerical: NumericalGradient, tolerance: Tolerance) -> Comparison:
    """Give each element a :class:`Status`.

    Parameters
    ----------
    analytic : ndarray
        The gradient from ``backward``.
    numerical : NumericalGradient
        The numerical gradient, with error bars and (real engines) one-sided derivatives.
    tolerance : Tolerance
        From :func:`default_tolerance`.

    Returns
    -------
    Comparison
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = numerical.value
    abs_error = np.abs(a - n)
    allowance = tolerance.allowance(n)
    bar = numerical.error
    threshold = allowance + bar
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_error = np.where(abs_error == 0, 0.0, abs_error / np.maximum(np.abs(n), np.abs(a)))
        status = np.full(a.shape, Status.UNRESOLVED, dtype=np.int8)
        status[(abs_error + bar <= allowance) | (a == n)] = Status.OK
        status[abs_error - bar > allowance] = Status.MISMATCH
    status[~(np.isfinite(n) & np.isfinite(bar))] = Status.UNRESOLVED
    mask = kink_mask(numerical, tolerance)
    if mask is not None:
        assert numerical.left is not None and numerical.right is not None
        # At a kink the central value's bar says nothing (it straddles the kink): the
        # interval between the sides is as wide as the sides' own bars.
        assert numerical.side_error is not None
        margin = allowance + numerical.side_error
        low = np.minimum(numerical.left, numerical.right) - margin
        high = np.maximum(numerical.left, numerical.right) + margin
        valid_subgradient = (a >= low) & (a <= high)
        doubtful = (status == Status.MISMATCH) | (status == Status.UNRESOLVED)
        status[doubtful & mask & valid_subgradient] = Status.KINK
        # Outside both one-sided derivatives at a kink: no valid subgradient there.
        status[doubtful & mask & ~valid_subgradient] = Status.MISMATCH
    status[~numerical.checked] = Status.UNCHECKED
    relative = tolerance.rtol * np.abs(n)
    return Comparison(status, threshold, abs_error, rel_error, tolerance, relative)


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
    gap: NDArray[np.bool_] = np.abs(right - left) > slack + 2 * side_error
    return gap
