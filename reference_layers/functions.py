"""Plain NumPy functions used by the reference layers, plus the textbook's slow gradient.

Every function keeps the dtype of its input (float32 in, float32 out) and works on
complex input where the mathematics is analytic, so the complex-step method can check the
layers built from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "as_labels",
    "cross_entropy_error",
    "log_softmax",
    "numerical_gradient",
    "one_hot",
    "sigmoid",
    "softmax",
]


def sigmoid(x: ArrayLike) -> NDArray[Any]:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, without overflow.

    Parameters
    ----------
    x : array_like
        Input of any shape; float32 stays float32.

    Returns
    -------
    ndarray
        ``sigmoid(x)``, same shape and dtype as ``x``.

    Examples
    --------
    >>> float(sigmoid(-1000.0))
    0.0
    """
    x = np.asarray(x)
    # Textbook hazard: 1 / (1 + np.exp(-x)) overflows (RuntimeWarning) for x = -1000.
    # Exponentiate only non-positive numbers: z = exp(-|x|) lies in (0, 1].
    # (Written with np.where rather than np.abs so that complex input stays analytic.)
    non_negative = x >= 0
    z = np.exp(np.where(non_negative, -x, x))
    return np.where(non_negative, 1 / (1 + z), z / (1 + z))


def softmax(x: ArrayLike) -> NDArray[Any]:
    """Softmax over the last axis, shifted by the row maximum so ``exp`` cannot overflow.

    Parameters
    ----------
    x : array_like
        Scores; a 1-D sample ``(C,)`` or a batch ``(N, C)`` (any leading axes work).

    Returns
    -------
    ndarray
        Probabilities, same shape and dtype as ``x``; each row sums to 1.

    Examples
    --------
    >>> softmax([1000.0, 1000.0]).tolist()
    [0.5, 0.5]
    """
    x = np.asarray(x)
    # Textbook hazard: exp(1000) overflows. softmax(x) == softmax(x - c) for any constant c,
    # so subtract the row maximum (of the real part, so complex input works too).
    shifted = x - np.max(np.real(x), axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(x: ArrayLike) -> NDArray[Any]:
    """``log(softmax(x))`` over the last axis, computed stably.

    ``log_softmax(x) = (x - m) - log(sum(exp(x - m)))`` with ``m`` the row maximum: no
    overflow, and no ``log(0)`` when a probability underflows.

    Parameters
    ----------
    x : array_like
        Scores ``(C,)`` or ``(N, C)``.

    Returns
    -------
    ndarray
        Log-probabilities, same shape and dtype as ``x``.
    """
    x = np.asarray(x)
    shifted = x - np.max(np.real(x), axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def as_labels(t: ArrayLike, y: NDArray[Any]) -> NDArray[np.intp]:
    """Integer class labels from targets that are either one-hot or already labels.

    Parameters
    ----------
    t : array_like
        One-hot targets (same shape as ``y``) or integer labels (shape ``y.shape[:-1]``;
        a scalar for a single 1-D sample).
    y : ndarray
        Scores or probabilities whose last axis indexes the classes.

    Returns
    -------
    ndarray of intp
        Labels of shape ``y.shape[:-1]``.

    Raises
    ------
    ValueError
        If ``t`` has neither shape.
    """
    t = np.asarray(t)
    if t.shape == y.shape:
        return np.argmax(t, axis=-1)
    if t.shape == y.shape[:-1]:
        return t.astype(np.intp)
    raise ValueError(
        f"targets of shape {t.shape} fit neither one-hot {y.shape} nor labels "
        f"{y.shape[:-1]}; pass one-hot rows or one integer label per sample"
    )


def one_hot(labels: ArrayLike, num_classes: int, dtype: Any = np.float64) -> NDArray[Any]:
    """One-hot rows for integer ``labels``: shape ``labels.shape + (num_classes,)``."""
    return np.eye(num_classes, dtype=dtype)[np.asarray(labels)]


def cross_entropy_error(y: ArrayLike, t: ArrayLike, delta: float = 1e-7) -> Any:
    """Mean cross-entropy ``-1/N * sum(log(y[n, t_n] + delta))`` of probabilities ``y``.

    The textbook function. ``delta`` keeps ``log(0)`` finite, at the price of a small bias;
    :class:`~reference_layers.SoftmaxWithLoss` avoids both by working on scores through
    :func:`log_softmax`.

    Parameters
    ----------
    y : array_like
        Probabilities ``(C,)`` for one sample or ``(N, C)`` for a batch.
    t : array_like
        One-hot targets (same shape as ``y``) or integer labels.
    delta : float
        Added inside the log.

    Returns
    -------
    scalar
        The mean over the batch (a 1-D ``y`` is a batch of one).
    """
    y = np.asarray(y)
    labels = as_labels(t, y).reshape(-1)
    y = y.reshape(-1, y.shape[-1])
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), labels] + delta)) / batch_size


def numerical_gradient(f: Callable[[NDArray[Any]], Any], x: NDArray[Any]) -> NDArray[Any]:
    """Gradient of a scalar function by central differences, one element at a time.

    The textbook's loop, kept deliberately as **the slow baseline for teaching**: two calls
    of ``f`` per element with a fixed step ``h = 1e-4``. ``gradcheck`` exists because this
    is slow (use it on tiny models only) and because a fixed step is not the accurate one.

    ``df/dx[i] ≈ (f(x + h e_i) - f(x - h e_i)) / (2h)``

    Parameters
    ----------
    f : callable
        Called as ``f(x)``; returns a scalar. Textbook semantics: ``f`` may ignore its
        argument and read ``x`` through shared state (``lambda W: net.loss(x, t)``),
        which works because ``x`` is perturbed **in place**.
    x : ndarray
        Float array, perturbed in place and restored element by element.

    Returns
    -------
    ndarray
        The gradient, same shape and dtype as ``x``.
    """
    h = 1e-4
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        idx = it.multi_index
        saved = x[idx]  # a NumPy scalar: a copy, not a view
        try:
            x[idx] = saved + h
            f_plus = f(x)
            x[idx] = saved - h
            f_minus = f(x)
        finally:
            # Restore from the saved value (not x + h - h), even if f raises.
            x[idx] = saved
        grad[idx] = (f_plus - f_minus) / (2 * h)
        it.iternext()
    return grad
