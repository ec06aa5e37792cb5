"""What a wrong gradient looks like: recognise common bug shapes and name them.

A student learns more from "×5 too large — did you forget to divide by the batch size?"
than from "max error 3.2e-2". Each recogniser looks at the analytic and the numerical
gradient of one variable (or, for swaps, of two) and returns a sentence or ``None``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["describe_factor", "describe_mismatch", "describe_swap"]

# How close a pattern must fit (relative residual) before we claim it.
_FIT = 1e-3
# A factor names the bug when what it leaves of the mismatch is at most this fraction.
_EXPLAINED = 0.1


def _fits(candidate: NDArray, numerical: NDArray) -> bool:
    scale = float(np.linalg.norm(numerical))
    if scale == 0.0:
        return False
    return float(np.linalg.norm(candidate - numerical)) <= _FIT * scale


def _factor_sentence(factor: float, name: str, batch_size: int | None) -> str:
    if abs(factor + 1) < _FIT:
        return f"{name} has the wrong sign: it is −1 × the true gradient."
    if batch_size and batch_size > 1 and abs(factor - batch_size) < _FIT * batch_size:
        return (
            f"{name} is ×{batch_size} too large — did you forget to divide by the batch size "
            f"({batch_size})?"
        )
    if batch_size and batch_size > 1 and abs(factor * batch_size - 1) < _FIT:
        return (
            f"{name} is {batch_size}× too small — did you divide by the batch size "
            f"({batch_size}) twice?"
        )
    if abs(factor - 2) < _FIT:
        return f"{name} is ×2 too large — is a term counted twice?"
    if abs(factor - 0.5) < _FIT:
        return f"{name} is half the true gradient — is a factor of 2 missing?"
    return f"{name} is off by a constant factor: ×{factor:.6g} the true gradient."


def describe_mismatch(
    name: str,
    analytic: NDArray,
    numerical: NDArray,
    wrong: NDArray[np.bool_],
    *,
    batch_size: int | None = None,
) -> str | None:
    """A sentence naming the shape of the bug in ``name``'s gradient, if recognisable.

    Parameters
    ----------
    name : str
        How to call the gradient in the sentence (``"dW"``).
    analytic, numerical : ndarray
        The two gradients (same shape).
    wrong : ndarray of bool
        The elements found wrong.
    batch_size : int, optional
        The leading dimension of the input, for the "divide by the batch size" hint.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    count = int(wrong.sum())
    if count == 0:
        return None
    if not np.any(a) and np.any(n):
        return f"{name} is all zeros, but the output does depend on it — is it ever assigned?"
    if not np.any(n) and np.any(a):
        return f"{name} should be all zeros: the output does not depend on it."
    factor = describe_factor(name, a, n, batch_size=batch_size)
    if factor:
        return factor
    if a.ndim == 2 and a.shape[0] == a.shape[1] and _fits(a.T, n):
        return f"{name} is transposed: it equals the transpose of the true gradient."
    if count == 1:
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        return f"only one element of {name} is wrong, at {index}."
    if a.ndim >= 2:
        rows = np.unique(np.nonzero(wrong)[0])
        if rows.size == 1 and a.shape[0] > 1:
            return f"all wrong elements of {name} are in row {int(rows[0])}."
        columns = np.unique(np.nonzero(wrong)[-1])
        if columns.size == 1 and a.shape[-1] > 1:
            return f"all wrong elements of {name} are in column {int(columns[0])} (last axis)."
    return None


def describe_factor(
    name: str, analytic: NDArray, numerical: NDArray, *, batch_size: int | None = None
) -> str | None:
    """A sentence when ``analytic`` is a constant factor (not 1) times ``numerical``.

    Any subset of the elements will do (a sample of a widespread mismatch): the factor
    is the same on every element.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    denominator = float(np.vdot(n, n))
    off = float(np.linalg.norm(a - n))
    if denominator > 0 and off > 0:
        factor = float(np.vdot(a, n)) / denominator
        # The factor must explain the mismatch (×1.001 leaves nothing of it), not merely
        # sit within the fit's slack of 1 (one element off by 1 % among many would).
        explained = float(np.linalg.norm(a - factor * n)) <= _EXPLAINED * off
        if explained and _fits(a, factor * n):
            return _factor_sentence(factor, name, batch_size)
    return None


def describe_swap(
    first: tuple[str, NDArray, NDArray], second: tuple[str, NDArray, NDArray]
) -> str | None:
    """A sentence when two same-shaped gradients were returned in each other's place.

    Each argument is ``(name, analytic, numerical)``.
    """
    (name_a, analytic_a, numerical_a), (name_b, analytic_b, numerical_b) = first, second
    if analytic_a.shape != analytic_b.shape:
        return None
    if _fits(analytic_a, numerical_b) and _fits(analytic_b, numerical_a):
        return (
            f"the gradients of {name_a} and {name_b} are swapped: backward returns them in the "
            f"wrong order (return them in the order forward takes its inputs)."
        )
    return None
