"""Dropout."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from reference_layers.sampling import normal

__all__ = ["Dropout"]


class Dropout:
    """Inverted dropout: drop each unit with probability ``ratio`` during training.

    ==========================================  ==========================================
    forward                                     backward
    ==========================================  ==========================================
    train: ``out = x * mask / (1 - ratio)``     train: ``dx = dout * mask / (1 - ratio)``
    eval:  ``out = x``                          eval:  ``dx = dout``
    ==========================================  ==========================================

    ``mask`` is drawn afresh by every training ``forward`` (``True`` with probability
    ``1 - ratio``) and reused by ``backward``. Scaling the kept units by ``1 / (1 - ratio)``
    in training keeps the expected output equal to ``x``, so evaluation is the identity
    (the textbook instead scales by ``1 - ratio`` at evaluation time).

    Parameters
    ----------
    ratio : float
        Drop probability, in ``[0, 1)``.
    seed : int, numpy.random.Generator or None
        Source of the masks: a Generator is used as is; an int or None seeds a new one
        with ``np.random.default_rng(seed)``. The same seed gives the same sequence of
        masks; note that two training forward passes still draw two different masks.
    """

    def __init__(self, ratio: float = 0.5, seed: int | np.random.Generator | None = None) -> None:
        if not 0 <= ratio < 1:
            raise ValueError(f"Dropout ratio must be in [0, 1), got {ratio}")
        self.ratio = ratio
        self.rng = np.random.default_rng(seed)
        self.mask: NDArray[np.bool_] | None = None
        self.train = True

    def forward(self, x: NDArray[Any], train: bool = True) -> NDArray[Any]:
        """Drop and rescale units in training; return a copy of ``x`` in evaluation."""
        x = np.asarray(x)
        self.train = train
        if not train:
            return x * 1
        self.mask = self.rng.random(x.shape) >= self.ratio
        return x * self.mask / (1 - self.ratio)

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Route ``dout`` through the units kept by the last forward pass."""
        if not self.train:
            return dout * 1
        return dout * self.mask / (1 - self.ratio)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer with a fixed seed and a ``(3, 4)`` input (training mode)."""
        return cls(ratio=0.5, seed=0), (normal(rng, (3, 4), dtype),)
