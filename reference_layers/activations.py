"""Elementwise activations (Relu, Sigmoid, Tanh, LeakyRelu, Softplus) and Softmax.

Each ``backward`` builds a new array: none edits ``dout`` or the cached input in place.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from reference_layers.functions import sigmoid, softmax
from reference_layers.sampling import away_from_zero, normal

__all__ = ["LeakyRelu", "Relu", "Sigmoid", "Softmax", "Softplus", "Tanh"]


class Relu:
    """Rectified linear unit.

    ==================================  ==========================================
    forward                             backward
    ==================================  ==========================================
    ``out = x if x > 0 else 0``         ``dx = dout if x > 0 else 0``
    ==================================  ==========================================

    Not differentiable at ``x == 0``; gradient checks must stay away from it.
    """

    def __init__(self) -> None:
        self.mask: NDArray[np.bool_] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Return ``max(x, 0)`` elementwise; remember where ``x > 0``."""
        x = np.asarray(x)
        self.mask = x > 0
        return np.where(self.mask, x, 0)

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Pass ``dout`` where the input was positive, 0 elsewhere."""
        # Textbook hazard: `dout[self.mask] = 0; return dout` edits the caller's array
        # (wrong when an AddLayer hands the same dout to two branches, and a ValueError
        # for a read-only dout). np.where builds a new array instead.
        assert self.mask is not None, "call forward before backward"
        return np.where(self.mask, dout, 0)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer and a ``(3, 4)`` input with ``|x| >= 0.1`` (away from the kink)."""
        return cls(), (away_from_zero(rng, (3, 4), dtype),)


class LeakyRelu:
    """Leaky ReLU with slope ``alpha`` for negative inputs.

    ====================================  ==============================================
    forward                               backward
    ====================================  ==============================================
    ``out = x if x > 0 else alpha * x``   ``dx = dout if x > 0 else alpha * dout``
    ====================================  ==============================================
    """

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = alpha
        self.mask: NDArray[np.bool_] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Return ``x`` where positive and ``alpha * x`` elsewhere."""
        x = np.asarray(x)
        self.mask = x > 0
        return np.where(self.mask, x, self.alpha * x)

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Scale ``dout`` by 1 where the input was positive and by ``alpha`` elsewhere."""
        assert self.mask is not None, "call forward before backward"
        return np.where(self.mask, dout, self.alpha * dout)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer (``alpha=0.1``) and a ``(3, 4)`` input away from the kink."""
        return cls(alpha=0.1), (away_from_zero(rng, (3, 4), dtype),)


class Sigmoid:
    """Logistic sigmoid.

    ==================================  ==========================================
    forward                             backward
    ==================================  ==========================================
    ``out = 1 / (1 + exp(-x))``         ``dx = dout * out * (1 - out)``
    ==================================  ==========================================

    Uses :func:`~reference_layers.functions.sigmoid`, which does not overflow for large
    negative ``x`` (the textbook's formula does).
    """

    def __init__(self) -> None:
        self.out: NDArray[Any] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Return ``sigmoid(x)`` and remember it; backward needs only the output."""
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Return ``dout * out * (1 - out)``."""
        out = self.out
        assert out is not None, "call forward before backward"
        return dout * out * (1 - out)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer and a ``(3, 4)`` standard normal input."""
        return cls(), (normal(rng, (3, 4), dtype),)


class Tanh:
    """Hyperbolic tangent.

    ==================================  ==========================================
    forward                             backward
    ==================================  ==========================================
    ``out = tanh(x)``                   ``dx = dout * (1 - out**2)``
    ==================================  ==========================================
    """

    def __init__(self) -> None:
        self.out: NDArray[Any] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Return ``tanh(x)`` and remember it."""
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Return ``dout * (1 - out**2)``."""
        out = self.out
        assert out is not None, "call forward before backward"
        return dout * (1 - out**2)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer and a ``(3, 4)`` standard normal input."""
        return cls(), (normal(rng, (3, 4), dtype),)


class Softplus:
    """Softplus, a smooth ReLU.

    ==================================  ==========================================
    forward                             backward
    ==================================  ==========================================
    ``out = log(1 + exp(x))``           ``dx = dout * sigmoid(x)``
    ==================================  ==========================================
    """

    def __init__(self) -> None:
        self.x: NDArray[Any] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Return ``log(1 + exp(x))`` without overflow; remember ``x``."""
        x = np.asarray(x)
        self.x = x
        # log(1 + exp(x)) overflows for large x; use max(x, 0) + log1p(exp(-|x|)),
        # written with np.where (not np.abs/np.maximum) so complex input stays analytic.
        positive = x > 0
        return np.where(positive, x, 0) + np.log1p(np.exp(np.where(positive, -x, x)))

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Return ``dout * sigmoid(x)``."""
        assert self.x is not None, "call forward before backward"
        return dout * sigmoid(self.x)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer and a ``(3, 4)`` standard normal input."""
        return cls(), (normal(rng, (3, 4), dtype),)


class Softmax:
    """Softmax over the last axis (standalone; for classification use SoftmaxWithLoss).

    ========================================  ============================================
    forward                                   backward
    ========================================  ============================================
    ``y = exp(x) / sum(exp(x), axis=-1)``     ``dx = y * (dout - sum(dout * y, axis=-1))``
    ========================================  ============================================

    Shifted by the row maximum (:func:`~reference_layers.functions.softmax`), so large
    scores do not overflow.
    """

    def __init__(self) -> None:
        self.out: NDArray[Any] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Return the row-wise softmax of ``x`` and remember it."""
        self.out = softmax(x)
        return self.out

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Return ``y * (dout - sum(dout * y, axis=-1, keepdims=True))``."""
        y = self.out
        assert y is not None, "call forward before backward"
        return y * (dout - np.sum(dout * y, axis=-1, keepdims=True))

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer and a batch of 3 score rows over 4 classes."""
        return cls(), (normal(rng, (3, 4), dtype),)
