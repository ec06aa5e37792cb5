"""Per-element verdicts: tolerances, mismatches, kinks, and what cannot be resolved.

Each element is judged by its own accuracy, never by the size of the largest element of
its variable (an unnormalised input feature of 3e6 must not hide a 5 % error in a row of
gradients of size 1):

* the analytic value may be off by ``rtol·|n|`` plus its own rounding — *measured* per
  element (:mod:`gradcheck.analytic.precision`), which covers gradients that are tiny
  next to the terms they sum (a bias right before a BatchNorm);
* the numerical value may be off by its own error estimate ``err(n)``;
* and by ``atol``, by default a tenth of ``rtol`` times the variable's *typical small*
  gradient — the lower quartile of its nonzero elements, so that even half of them huge
  (a feature of 3e6) sets no scale for the others: rounding artefacts of order 1e-13
  where the true gradient is 0 are no bug.

An element *mismatches* when ``|a − n| > atol + rtol·|n| + 2·rounding + 2·err(n)``. When
``2·err(n)`` is more than a few times that allowance — and more than a few times ``rtol``
of the variable's median gradient, so that an element that is about 0 is not
held to a relative precision nobody needs — an error several tolerances large could go
unseen: the element is *unresolved* (never reported as a match), unless both sides say
exactly 0 (an element the output does not depend on, a dead ReLU unit). A numerical value
that is not finite (a stencil that stepped outside the function's domain) is unresolved
too. The typical gradient only decides what is resolved, never what matches.

An element is a *kink* (not differentiable: ReLU at 0, a max-pool tie) when its left and
right one-sided derivatives disagree by more than their error. A kink is skipped — not
reported as a bug — unless the analytic value lies outside the interval between the two
one-sided derivatives, which no valid subgradient does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.engine.gradient import NumericalGradient
from gradcheck.vocabulary import Status

__all__ = [
    "ERROR_WEIGHT",
    "RESOLUTION",
    "Comparison",
    "Tolerance",
    "compare",
    "default_tolerance",
    "kink_mask",
    "typical_size",
]

# Default relative tolerances by the dtype the layer computes in. float64: rounding in a
# correct backward stays far below 1e-5, while a gradient off by 0.1 % (×1.001) is 100×
# above it. float32 (ε ≈ 1.2e-7): on every reference layer, and on Affine 784→50,
# Convolution 6→8 channels and BatchNorm over 100 samples, the worst correct element used
# at most 3 % of a 1e-4 tolerance (60 seeds), so 1e-4 still catches ×1.001 in float32.
_RTOL = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-4, np.dtype(np.float16): 1e-2}
_STRICT_FACTOR = 0.1
# atol by default: this fraction of rtol times the variable's typical small gradient.
_ATOL_FRACTION = 0.1
# ... and never less than for a gradient this fraction of the gradients flowing through the
# computation: a gradient that is 0 in exact arithmetic (a shift before a BatchNorm) comes
# out at ~1e-12 where BatchNorm divides by a tiny spread, on both sides.
_FLOW_FRACTION = 1e-4
# How many numerical error estimates (and measured roundings) an element may be off.
ERROR_WEIGHT = 2.0
# An element is resolved when its numerical error bar is at most this many tolerances
# wide: an error five tolerances large could not have hidden behind it.
RESOLUTION = 4.0


@dataclass(frozen=True)
class Tolerance:
    """Resolved tolerances for one variable.

    ``rounding`` is the analytic side's rounding, per element (or one number): measured by
    running the same backward in another precision (see
    :mod:`gradcheck.analytic.precision`). ``atol`` of None means "a tenth of ``rtol`` times
    the typical small gradient" (:func:`typical_size`), fixed by :meth:`sized`. ``floor`` is
    the finest error bar the numerical side can reach (its rounding of the gradients flowing through
    the computation): an element whose error bar is this small counts as resolved.
    ``flow`` is the typical size of those gradients (it bounds ``atol`` from below).
    """

    rtol: float
    atol: float | None
    rounding: NDArray[np.float64] | float = 0.0
    floor: float = 0.0
    flow: float = 0.0

    def sized(self, *gradients: NDArray) -> Tolerance:
        """This tolerance with ``atol`` fixed, if unset, by the larger typical size of the
        ``gradients`` (the analytic one and the numerical one: either may carry rounding
        artefacts of 1e-14 where the other says 0, which must not make the scale)."""
        if self.atol is not None:
            return self
        typical = max((typical_size(g) for g in gradients), default=0.0)
        typical = max(typical, _FLOW_FRACTION * self.flow)
        return replace(self, atol=_ATOL_FRACTION * self.rtol * typical)

    def allowance(self, reference: NDArray) -> NDArray[np.float64]:
        """How far the analytic value may be from ``reference``, before error estimates
        (``atol`` counts once :meth:`sized` has fixed it)."""
        atol = self.atol or 0.0
        return atol + self.rtol * np.abs(reference) + ERROR_WEIGHT * self.rounding


def typical_size(values: NDArray) -> float:
    """The typical *small* size of a gradient: the lower quartile of its nonzero finite
    elements' magnitudes (0 when there are none).

    Not the RMS or the median, which a few — or half — huge elements set: beside an
    unnormalised input feature of 3e6, the other rows of ``dW`` keep their own scale.
    """
    sizes = np.abs(values[np.isfinite(values)])
    sizes = sizes[sizes > 0]
    return float(np.percentile(sizes, 25, method="lower")) if sizes.size else 0.0


def default_rtol(dtype: np.dtype, *, strict: bool = False) -> float:
    """The relative tolerance for a gradient computed in ``dtype``."""
    rtol = _RTOL.get(np.dtype(dtype), 1e-5)
    return rtol * _STRICT_FACTOR if strict else rtol


def default_tolerance(
    dtype: np.dtype,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    strict: bool = False,
    rounding: NDArray[np.float64] | float = 0.0,
    floor: float = 0.0,
    flow: float = 0.0,
) -> Tolerance:
    """Resolve tolerances for a gradient computed in ``dtype``.

    ``rtol`` defaults by dtype (ten times tighter when ``strict``); ``atol`` of None is
    sized by the gradient later (see :meth:`Tolerance.sized`).
    """
    return Tolerance(
        rtol=default_rtol(dtype, strict=strict) if rtol is None else rtol,
        atol=atol,
        rounding=rounding,
        floor=floor,
        flow=flow,
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
    tolerance = tolerance.sized(a, np.where(numerical.checked, n, a))
    abs_error = np.abs(a - n)
    allowance = tolerance.allowance(n)
    spread = ERROR_WEIGHT * numerical.error
    threshold = allowance + spread
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_error = np.where(abs_error == 0, 0.0, abs_error / np.maximum(np.abs(n), np.abs(a)))
    finite = np.isfinite(n) & numerical.checked
    typical = float(np.median(np.abs(n[finite]))) if finite.any() else 0.0
    needed = np.maximum(allowance, max(tolerance.rtol * typical, tolerance.floor))
    resolved = (spread <= RESOLUTION * needed) | ((a == 0) & (n == 0))
    status = np.where(resolved, Status.OK, Status.UNRESOLVED).astype(np.int8)
    status[abs_error > threshold] = Status.MISMATCH
    status[~(np.isfinite(n) & np.isfinite(numerical.error))] = Status.UNRESOLVED
    mask = kink_mask(numerical, tolerance)
    if mask is not None:
        assert numerical.left is not None and numerical.right is not None
        low = np.minimum(numerical.left, numerical.right) - threshold
        high = np.maximum(numerical.left, numerical.right) + threshold
        valid_subgradient = (a >= low) & (a <= high)
        doubtful = (status == Status.MISMATCH) | (status == Status.UNRESOLVED)
        status[doubtful & mask & valid_subgradient] = Status.KINK
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
    slack = (tolerance.atol or 0.0) + tolerance.rtol * np.maximum(np.abs(left), np.abs(right))
    gap: NDArray[np.bool_] = np.abs(right - left) > slack + 2 * ERROR_WEIGHT * side_error
    return gap
