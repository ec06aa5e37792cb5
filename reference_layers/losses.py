"""Loss layers: softmax with cross-entropy, and mean squared error.

Both return the mean over the batch and treat a 1-D input as a batch of one sample.
``backward`` returns only the gradient of the prediction: the targets are constants.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference_layers.functions import as_labels, log_softmax, one_hot, softmax
from reference_layers.sampling import normal

__all__ = ["MeanSquaredError", "SoftmaxWithLoss"]


class SoftmaxWithLoss:
    """Softmax followed by the cross-entropy loss, as one layer.

    ================================================  ====================================
    forward                                           backward
    ================================================  ====================================
    ``L = -1/N * sum(t * log_softmax(x))``            ``dx = dout * (softmax(x) - t) / N``
    ================================================  ====================================

    ``t`` holds one-hot rows (same shape as ``x``; rows summing to 1, so soft targets work
    too) or integer labels (one per sample). ``N`` is the number of samples: ``x.shape[0]``
    for a batch ``(N, C)`` and 1 for a single sample ``(C,)``.

    Two textbook hazards are fixed:

    * the loss comes from a stable log-softmax, not ``log(softmax(x) + 1e-7)``; the
      textbook's ``1e-7`` makes ``backward`` slightly different from the true gradient
      of ``forward``;
    * for a 1-D sample the textbook divides by ``t.shape[0]``, the class count; we divide
      by the sample count.
    """

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: NDArray[Any] | None = None
        self.t: NDArray[Any] | None = None
        self.x_shape: tuple[int, ...] | None = None

    def forward(self, x: NDArray[Any], t: ArrayLike) -> Any:
        """Return the mean cross-entropy of scores ``x`` against targets ``t``."""
        x = np.asarray(x)
        num_classes = x.shape[-1]
        self.x_shape = x.shape
        scores = x.reshape(-1, num_classes)  # a 1-D sample becomes a batch of one
        t = np.asarray(t)
        if t.shape == x.shape:
            self.t = t.reshape(scores.shape).astype(x.dtype)
        else:
            self.t = one_hot(as_labels(t, x).reshape(-1), num_classes, dtype=x.dtype)
        batch_size = scores.shape[0]
        self.y = softmax(scores)
        self.loss = -np.sum(self.t * log_softmax(scores)) / batch_size
        return self.loss

    def backward(self, dout: Any = 1) -> NDArray[Any]:
        """Return ``dout * (y - t) / N`` in the shape of ``x`` (only ``dx``)."""
        assert self.y is not None and self.t is not None and self.x_shape is not None, (
            "call forward before backward"
        )
        batch_size = self.y.shape[0]
        dx = dout * (self.y - self.t) / batch_size
        return dx.reshape(self.x_shape)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer, a batch of 4 score rows over 3 classes and integer labels."""
        x = normal(rng, (4, 3), dtype)
        t = rng.integers(0, 3, size=4)
        return cls(), (x, t)


class MeanSquaredError:
    """Mean squared error, halved, averaged over the batch.

    ============================================  ========================================
    forward                                       backward
    ============================================  ========================================
    ``L = 0.5 * sum((y - t)**2) / N``             ``dy = dout * (y - t) / N``
    ============================================  ========================================

    Convention: ``N`` is the batch size (``y.shape[0]``, or 1 for a 1-D sample); the sum
    runs over every element. The textbook's ``mean_squared_error`` does not divide by
    ``N``; dividing makes the loss a per-sample mean like :class:`SoftmaxWithLoss`.
    """

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: NDArray[Any] | None = None
        self.t: NDArray[Any] | None = None

    def forward(self, y: NDArray[Any], t: NDArray[Any]) -> Any:
        """Return ``0.5 * sum((y - t)**2) / N``."""
        self.y = np.asarray(y)
        self.t = np.asarray(t)
        self.loss = 0.5 * np.sum((self.y - self.t) ** 2) / self._batch_size()
        return self.loss

    def backward(self, dout: Any = 1) -> NDArray[Any]:
        """Return ``dout * (y - t) / N`` (only ``dy``; ``t`` is a constant)."""
        assert self.y is not None and self.t is not None, "call forward before backward"
        return dout * (self.y - self.t) / self._batch_size()

    def _batch_size(self) -> int:
        assert self.y is not None
        return self.y.shape[0] if self.y.ndim > 1 else 1

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer, predictions ``(4, 3)`` and targets of the same shape."""
        return cls(), (normal(rng, (4, 3), dtype), normal(rng, (4, 3), dtype))
