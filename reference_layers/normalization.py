"""Batch normalization and layer normalization.

Both normalize ``x`` to zero mean and unit variance along some axis, then scale by
``gamma`` and shift by ``beta``; they differ in the axis. The backward formula is the same,
so one function serves both.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from reference_layers.sampling import normal

__all__ = ["BatchNormalization", "LayerNorm"]


def _normalize_backward(
    dxn: NDArray[Any], xn: NDArray[Any], std: NDArray[Any], axis: int
) -> NDArray[Any]:
    """Gradient through ``xn = (x - mean(x)) / std(x)`` with the statistics from ``x``.

    ``dx = (dxn - mean(dxn) - xn * mean(dxn * xn)) / std``, means along ``axis``: the two
    subtracted terms are what flows back through the mean and through the variance.
    """
    return (
        dxn
        - np.mean(dxn, axis=axis, keepdims=True)
        - xn * np.mean(dxn * xn, axis=axis, keepdims=True)
    ) / std


class BatchNormalization:
    """Batch normalization: normalize each feature over the batch.

    ===================================  =============================================
    forward (train)                      backward (train)
    ===================================  =============================================
    ``mu = mean(x, 0)``                  ``dbeta = sum(dout, 0)``
    ``var = mean((x - mu)**2, 0)``       ``dgamma = sum(dout * xn, 0)``
    ``std = sqrt(var + eps)``            ``dxn = dout * gamma``
    ``xn = (x - mu) / std``              ``dx = (dxn - mean(dxn, 0)``
    ``out = gamma * xn + beta``          ``      - xn * mean(dxn * xn, 0)) / std``
    ===================================  =============================================

    In evaluation (``train=False``) ``mu`` and ``var`` are the running statistics,
    constants, so ``dx = dout * gamma / std``; ``dgamma`` and ``dbeta`` are as above.

    Training updates ``running = momentum * running + (1 - momentum) * batch_statistic``
    (``var`` is the biased batch variance, as in the textbook). A 4-D input
    ``(N, C, H, W)`` is reshaped to ``(N, C*H*W)`` like the textbook does, so ``gamma`` and
    ``beta`` have ``C*H*W`` entries (this is not the per-channel "spatial" batch norm of
    CNN frameworks).

    Parameters
    ----------
    gamma, beta : ndarray
        Scale and shift, shape ``(D,)``.
    momentum : float
        Weight of the old running statistics.
    running_mean, running_var : ndarray or None
        Initial running statistics; None means zeros and ones of shape ``(D,)`` (the
        textbook starts the variance at zeros, which makes evaluation of a fresh layer
        divide by ``sqrt(eps)``).
    eps : float
        Added to the variance before the square root.
    """

    def __init__(
        self,
        gamma: NDArray[Any],
        beta: NDArray[Any],
        momentum: float = 0.9,
        running_mean: NDArray[Any] | None = None,
        running_var: NDArray[Any] | None = None,
        eps: float = 1e-5,
    ) -> None:
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.running_mean = running_mean
        self.running_var = running_var
        self.eps = eps
        self.input_shape: tuple[int, ...] | None = None
        self.train = True
        self.xn: NDArray[Any] | None = None
        self.std: NDArray[Any] | None = None
        self.dgamma: NDArray[Any] | None = None
        self.dbeta: NDArray[Any] | None = None

    def forward(self, x: NDArray[Any], train: bool = True) -> NDArray[Any]:
        """Normalize ``x`` ((N, D) or (N, C, H, W)) with batch or running statistics."""
        x = np.asarray(x)
        self.input_shape = x.shape
        self.train = train
        x = x.reshape(x.shape[0], -1)
        real_dtype = np.real(x).dtype
        if self.running_mean is None:
            self.running_mean = np.zeros(x.shape[1], dtype=real_dtype)
        if self.running_var is None:
            self.running_var = np.ones(x.shape[1], dtype=real_dtype)

        if train:
            mu = np.mean(x, axis=0)
            var = np.mean((x - mu) ** 2, axis=0)
            m = self.momentum
            # Running statistics are bookkeeping, not part of the differentiated
            # computation: keep them real even when a complex-step check runs forward.
            self.running_mean = m * self.running_mean + (1 - m) * np.real(mu)
            self.running_var = m * self.running_var + (1 - m) * np.real(var)
        else:
            mu = np.asarray(self.running_mean, dtype=x.dtype)
            var = np.asarray(self.running_var, dtype=x.dtype)

        self.std = np.sqrt(var + self.eps)
        self.xn = (x - mu) / self.std
        out = self.gamma * self.xn + self.beta
        return out.reshape(self.input_shape)

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Store ``dgamma`` and ``dbeta``; return ``dx`` in the shape of the input."""
        assert self.xn is not None and self.std is not None and self.input_shape, (
            "call forward before backward"
        )
        dout = dout.reshape(self.xn.shape)
        self.dbeta = np.sum(dout, axis=0)
        self.dgamma = np.sum(dout * self.xn, axis=0)
        dxn = dout * self.gamma
        if not self.train:
            # Evaluation: the running statistics are constants, so only xn depends on x.
            return (dxn / self.std).reshape(self.input_shape)
        dx = _normalize_backward(dxn, self.xn, self.std, axis=0)
        return dx.reshape(self.input_shape)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer over 3 features and a batch of 5 (training mode)."""
        layer = cls(1 + 0.1 * normal(rng, (3,), dtype), normal(rng, (3,), dtype))
        return layer, (normal(rng, (5, 3), dtype),)


class LayerNorm:
    """Layer normalization: normalize each sample over its last axis.

    ===================================  =============================================
    forward                              backward
    ===================================  =============================================
    ``mu = mean(x, -1)``                 ``dbeta = sum(dout)`` over the samples
    ``var = mean((x - mu)**2, -1)``      ``dgamma = sum(dout * xn)`` over the samples
    ``std = sqrt(var + eps)``            ``dxn = dout * gamma``
    ``xn = (x - mu) / std``              ``dx = (dxn - mean(dxn, -1)``
    ``out = gamma * xn + beta``          ``      - xn * mean(dxn * xn, -1)) / std``
    ===================================  =============================================

    The statistics belong to each sample, so there are no running statistics and training
    and evaluation are the same.

    Parameters
    ----------
    gamma, beta : ndarray
        Scale and shift, shape ``(D,)`` where ``D = x.shape[-1]``.
    eps : float
        Added to the variance before the square root.
    """

    def __init__(self, gamma: NDArray[Any], beta: NDArray[Any], eps: float = 1e-5) -> None:
        self.gamma = gamma
        self.beta = beta
        self.eps = eps
        self.xn: NDArray[Any] | None = None
        self.std: NDArray[Any] | None = None
        self.dgamma: NDArray[Any] | None = None
        self.dbeta: NDArray[Any] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Normalize every sample of ``x`` over the last axis, then scale and shift."""
        x = np.asarray(x)
        mu = np.mean(x, axis=-1, keepdims=True)
        var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
        self.std = np.sqrt(var + self.eps)
        self.xn = (x - mu) / self.std
        return self.gamma * self.xn + self.beta

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Store ``dgamma`` and ``dbeta``; return ``dx``."""
        assert self.xn is not None and self.std is not None, "call forward before backward"
        sample_axes = tuple(range(dout.ndim - 1))
        self.dbeta = np.sum(dout, axis=sample_axes)
        self.dgamma = np.sum(dout * self.xn, axis=sample_axes)
        return _normalize_backward(dout * self.gamma, self.xn, self.std, axis=-1)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer over 4 features and a batch of 3."""
        layer = cls(1 + 0.1 * normal(rng, (4,), dtype), normal(rng, (4,), dtype))
        return layer, (normal(rng, (3, 4), dtype),)
