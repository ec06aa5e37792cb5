"""The two nodes of the chapter's computational graphs: multiplication and addition."""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from reference_layers.sampling import normal

__all__ = ["AddLayer", "MulLayer"]


class MulLayer:
    """Multiplication node.

    ============================  ====================================
    forward                       backward
    ============================  ====================================
    ``out = x * y``               ``dx = dout * y``,  ``dy = dout * x``
    ============================  ====================================

    Accepts Python numbers (the apple example) as well as arrays of the same shape.
    """

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None

    def forward(self, x: Any, y: Any) -> Any:
        """Return ``x * y`` and remember both factors."""
        self.x = x
        self.y = y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        """Return ``(dout * y, dout * x)``: each input gets the other factor."""
        dx = dout * self.y
        dy = dout * self.x
        return dx, dy

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer and two ``(3, 4)`` factors."""
        return cls(), (normal(rng, (3, 4), dtype), normal(rng, (3, 4), dtype))


class AddLayer:
    """Addition node.

    ============================  ====================================
    forward                       backward
    ============================  ====================================
    ``out = x + y``               ``dx = dout``,  ``dy = dout``
    ============================  ====================================

    The gradient passes through unchanged to both inputs; each gets its own copy so that
    neither branch can edit the other's.
    """

    def __init__(self) -> None:
        pass

    def forward(self, x: Any, y: Any) -> Any:
        """Return ``x + y``; nothing needs caching."""
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        """Return ``(dout, dout)`` as two separate copies."""
        dx = dout * 1
        dy = dout * 1
        return dx, dy

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A layer and two ``(3, 4)`` summands."""
        return cls(), (normal(rng, (3, 4), dtype), normal(rng, (3, 4), dtype))
