"""The fully connected layer."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from reference_layers.sampling import normal

__all__ = ["Affine"]


class Affine:
    """Fully connected layer ``x @ W + b``.

    ==================================  ==========================================
    forward                             backward
    ==================================  ==========================================
    ``out = x @ W + b``                 ``dx = dout @ W.T``
                                        ``dW = x.T @ dout``
                                        ``db = sum(dout, axis=0)``
    ==================================  ==========================================

    ``x`` is a batch ``(N, D)``; an input of higher rank, such as images ``(N, C, H, W)``,
    is flattened per sample to ``(N, C*H*W)`` and ``dx`` gets the original shape back.

    Parameters
    ----------
    W : ndarray
        Weights ``(D, M)``. Stored as given (not copied), so a network's ``params`` dict
        and the layer share the array.
    b : ndarray
        Bias ``(M,)``, shared likewise.
    """

    def __init__(self, W: NDArray[Any], b: NDArray[Any]) -> None:
        self.W = W
        self.b = b
        self.x: NDArray[Any] | None = None
        self.original_x_shape: tuple[int, ...] | None = None
        self.dW: NDArray[Any] | None = None
        self.db: NDArray[Any] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Return ``x @ W + b`` for a batch ``x`` of rank >= 2."""
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(
                f"Affine expects a batch of shape (N, ...), got shape {x.shape}; "
                "for a single sample pass x[np.newaxis]"
            )
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Store ``dW`` and ``db``; return ``dx`` in the shape of the input."""
        assert self.x is not None and self.original_x_shape is not None, (
            "call forward before backward"
        )
        dx = dout @ self.W.T
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        return dx.reshape(self.original_x_shape)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A ``4 -> 3`` layer and a batch of 5 samples."""
        layer = cls(normal(rng, (4, 3), dtype), normal(rng, (3,), dtype))
        return layer, (normal(rng, (5, 4), dtype),)
