"""A zoo of broken layers: deliberately wrong copies of the reference layers.

Each entry is a bug a student really writes. Tests use the zoo to prove that the checker
catches every one of them (and, later, that every mode catches the same ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_layers import Affine, MulLayer, Relu, Sigmoid, SoftmaxWithLoss, Tanh


class SigmoidWrongSign(Sigmoid):
    """``dx = -dout * out * (1 - out)``."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        return -super().backward(dout)


class SigmoidMissingFactor(Sigmoid):
    """``dx = dout * out`` — the ``(1 - out)`` factor is missing."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        return dout * self.out


class TanhScaled(Tanh):
    """A gradient 0.1 % too large: ``×1.001``."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        return super().backward(dout) * 1.001


class AffineOneWrongElement(Affine):
    """``dW[2, 1]`` is off by 0.5; everything else is right."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        dx = super().backward(dout)
        assert self.dW is not None
        self.dW = self.dW.copy()
        self.dW[2, 1] += 0.5
        return dx


class AffineBiasTimesBatch(Affine):
    """``db`` multiplied by the batch size N: ×N too large."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        dx = super().backward(dout)
        self.db = np.sum(dout, axis=0) * dout.shape[0]
        return dx


class AffineTransposedW(Affine):
    """``dW = (x.T @ dout).T`` for a square ``W``."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        dx = super().backward(dout)
        assert self.dW is not None
        self.dW = self.dW.T.copy()
        return dx


class AffineAccumulating(Affine):
    """``self.dW = self.dW + x.T @ dout`` with no reset between calls."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        previous = self.dW
        dx = super().backward(dout)
        if previous is not None:
            self.dW = previous + self.dW
        return dx


class MulSwapped(MulLayer):
    """``backward`` returns ``(dy, dx)`` instead of ``(dx, dy)``."""

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx, dy = super().backward(dout)
        return dy, dx


class TextbookRelu:
    """The textbook's ``Relu``: its backward writes into ``dout``."""

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        dout[self.mask] = 0
        return dout


class ReluInplaceForward(Relu):
    """``forward`` clips its input in place (``x[x < 0] = 0``)."""

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        self.mask = x > 0
        x[~self.mask] = 0
        return x.copy()


class UnseededDropout:
    """Dropout drawing its mask from a generator it creates, unseeded, on every call."""

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        self.mask = np.random.default_rng().random(x.shape) > 0.5  # the bug under test
        return x * self.mask

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        return dout * self.mask


class TextbookSoftmaxWithLoss:
    """The textbook's loss: ``-sum(t * log(y + 1e-7)) / N`` — correct, up to ~1e-7."""

    def forward(self, x: NDArray[Any], t: NDArray[Any]) -> float:
        self.t = t
        shifted = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)
        batch_size = x.shape[0]
        return float(-np.sum(t * np.log(self.y + 1e-7)) / batch_size)

    def backward(self, dout: float = 1.0) -> NDArray[Any]:
        return (self.y - self.t) / self.t.shape[0]


# Each broken layer with a factory for a ready (layer, inputs) case.
def _affine_case(cls: type[Affine], square: bool = False) -> Callable[[np.random.Generator], Any]:
    def make(rng: np.random.Generator) -> tuple[Any, tuple[Any, ...]]:
        shape = (3, 3) if square else (4, 3)
        layer = cls(rng.standard_normal(shape), rng.standard_normal(shape[1]))
        return layer, (rng.standard_normal((5, shape[0])),)

    return make


def _elementwise_case(cls: type) -> Callable[[np.random.Generator], Any]:
    def make(rng: np.random.Generator) -> tuple[Any, tuple[Any, ...]]:
        return cls(), (rng.standard_normal((3, 4)),)

    return make


def _mul_case(rng: np.random.Generator) -> tuple[Any, tuple[Any, ...]]:
    return MulSwapped(), (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))


def _relu_case(cls: type) -> Callable[[np.random.Generator], Any]:
    def make(rng: np.random.Generator) -> tuple[Any, tuple[Any, ...]]:
        magnitude = rng.uniform(0.1, 2.0, size=(3, 4))
        return cls(), (magnitude * rng.choice([-1.0, 1.0], size=(3, 4)),)

    return make


BROKEN: dict[str, Callable[[np.random.Generator], tuple[Any, tuple[Any, ...]]]] = {
    "sigmoid-wrong-sign": _elementwise_case(SigmoidWrongSign),
    "sigmoid-missing-factor": _elementwise_case(SigmoidMissingFactor),
    "tanh-scaled-1.001": _elementwise_case(TanhScaled),
    "affine-one-wrong-element": _affine_case(AffineOneWrongElement),
    "affine-db-times-batch": _affine_case(AffineBiasTimesBatch),
    "affine-transposed-dW": _affine_case(AffineTransposedW, square=True),
    "affine-accumulating-dW": _affine_case(AffineAccumulating),
    "mul-swapped-gradients": _mul_case,
    "textbook-relu-inplace-backward": _relu_case(TextbookRelu),
    "relu-inplace-forward": _relu_case(ReluInplaceForward),
    "unseeded-dropout": _elementwise_case(UnseededDropout),
}

__all__ = ["BROKEN", "SoftmaxWithLoss", "TextbookSoftmaxWithLoss"]
