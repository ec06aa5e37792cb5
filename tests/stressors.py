"""Correct layers just off gradcheck's home ground, to measure whether its error bars hold.

``catalogue.py`` and ``mutants.py`` draw layers written like the book's, at inputs of
order 1. The error bars gradcheck puts on its numerical values are claims about the
function at hand, and the claims most likely to be false are made off that ground (issue
19): large offsets, single outliers, tiny or huge loss scales, float32 inside a float64
computation, formulas that cancel, ties and exact zeros, features at wildly different
scales. Each *stressor* here draws a **correct** layer of one such kind from a NumPy
generator; nothing carries a bug. ``tests/calibration.py`` compares every numerical value
gradcheck computes on them with the true gradient.

=====================  ==================================================================
stressor               what is off the home ground
=====================  ==================================================================
``offset-norm``        LayerNorm, BatchNorm and std-scaling (``x / np.std(x)``) on
                       ``±10^(0..6) + spread·N(0, 1)``
``outlier``            one input element of ``±10^(3..5)`` before an L2 normalisation
                       (``np.linalg.norm``), std-scaling, LayerNorm or BatchNorm
``loss-scale``         a chain of ``mutants.py`` whose output is multiplied by ``10^k``,
                       ``k`` in ``[-12, 12]`` (backward multiplies ``dout`` by it)
``float32-buffers``    the sequel book's ``np.empty(..., dtype='f')`` buffers around a
                       float64 computation (tanh or softmax after an affine map)
``float32-inside``     ``x.astype('f') @ W.astype('f')`` inside a float64 layer, the
                       backward in float64 or float32
``cancelling``         saturated softmax, ``log(1 + exp(x))`` on ``[-40, 30]``, the tanh
                       GELU's tails, ``var = E[x²] − E[x]²``, ``1 − cos(x)`` at small ``x``
``ties-zeros``         ReLU / LeakyReLU / ``abs`` / ``x²`` at exact zeros, max-pooling and
                       a row maximum over integer-valued inputs (ties; the first maximum
                       gets the gradient, a valid subgradient)
``feature-scales``     an affine layer (then tanh, or a softmax loss) whose input columns
                       sit at ``10^(-6..6)``, its weights sometimes scaled to match
``loss-head``          Affine → ReLU/tanh → Affine → softmax loss with a few hundred
                       weights behind one scalar: what ``auto`` sends to fast mode, and
                       what ``mode="full"`` checks at the floor
=====================  ==================================================================

A stressor whose layer cannot compute in higher precision — a float32 buffer, a cast to
float32 inside — has a ``truth`` hook: a twin computing the same mathematics without the
narrowing (``tests/test_stressors.py`` checks that every correct layer and twin here is
right, against finite differences written there, in ``np.longdouble``).

Everything is drawn from the generator given, so a seed reproduces a case::

    case = stress_case(np.random.default_rng(7), "outlier")
    gradcheck.check(case.layer, *case.inputs)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from catalogue import FamilyCase, Gelu
from mutants import Chain, correct_case
from mutants import Elementwise as Function
from numpy.typing import NDArray

from reference_layers import (
    Affine,
    BatchNormalization,
    LayerNorm,
    LeakyRelu,
    Pooling,
    Relu,
    SoftmaxWithLoss,
    Tanh,
)
from reference_layers import Softmax as SoftmaxLayer
from reference_layers.functions import sigmoid, softmax

__all__ = [
    "STRESSORS",
    "BufferedAffine",
    "L2Normalize",
    "MomentNorm",
    "NaiveSoftplus",
    "NarrowAffine",
    "OneMinusCos",
    "RowMax",
    "Scaled",
    "StdScale",
    "Stressor",
    "stress_case",
]

Array = NDArray[Any]
Drawn = tuple[Any, tuple[Any, ...]]


def _dtype(rng: np.random.Generator, float32_share: float = 0.5) -> np.dtype:
    return np.dtype(np.float32 if rng.random() < float32_share else np.float64)


def _size(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer in ``[low, high]``."""
    return int(rng.integers(low, high + 1))


def _normal(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, scale: float = 1.0
) -> Array:
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ---------------------------------------------------------------------------------------
# Layers. Each is correct: its backward is the derivative of its forward's mathematics.


class StdScale:
    """``x / std(x)`` over the last axis, with ``np.std``.

    ``np.std`` of a complex array takes ``|x − μ|²``, dropping the imaginary part: the
    complex step is not valid here, and a probe must see that.
    ``dx = dout/s − (x − μ)·mean(dout·x)/s³``.
    """

    def forward(self, x: Array) -> Array:
        self.x = x
        self.s = np.std(x, axis=-1, keepdims=True)
        return x / self.s

    def backward(self, dout: Array) -> Array:
        x, s = self.x, self.s
        centred = x - np.mean(x, axis=-1, keepdims=True)
        return dout / s - centred * np.mean(dout * x, axis=-1, keepdims=True) / s**3


class L2Normalize:
    """``x / ‖x‖`` per row, with ``np.linalg.norm`` (which drops an imaginary part too).

    ``dx = (dout − y·Σ dout·y) / ‖x‖`` with ``y`` the output.
    """

    def forward(self, x: Array) -> Array:
        self.n = np.linalg.norm(x, axis=-1, keepdims=True)
        self.y = x / self.n
        return self.y

    def backward(self, dout: Array) -> Array:
        return (dout - self.y * np.sum(dout * self.y, axis=-1, keepdims=True)) / self.n


class Scaled:
    """``scale · inner(*inputs)``: a loss or a layer at another scale.

    ``backward`` hands ``dout · scale`` to the inner layer, the chain rule for a constant
    factor; the inner layer's parameters are found as a sublayer's (``inner.W0``).
    """

    def __init__(self, inner: Any, scale: float) -> None:
        self.inner, self.scale = inner, scale

    def __repr__(self) -> str:
        return f"Scaled({self.scale:.0e}, {self.inner!r})"

    def forward(self, *inputs: Any) -> Any:
        return self.scale * self.inner.forward(*inputs)

    def backward(self, dout: Any = 1.0) -> Any:
        return self.inner.backward(dout * self.scale)


class BufferedAffine:
    """``act(x W + b)`` written like the sequel book: ``params``/``grads`` lists, and the
    output and ``dx`` in ``np.empty(..., dtype=buffer)`` buffers.

    ``buffer="f"`` rounds a float64 computation to float32 on the way out; None keeps the
    computation's own dtype (the twin the truth is computed with). ``act`` is ``"tanh"``
    or ``"softmax"`` (over the last axis).
    """

    def __init__(self, W: Array, b: Array, act: str, buffer: str | None = "f") -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.act, self.buffer = act, buffer

    def __repr__(self) -> str:
        return f"BufferedAffine(W{self.params[0].shape}, {self.act}, buffer={self.buffer!r})"

    def forward(self, x: Array) -> Array:
        W, b = self.params
        z = x @ W + b
        self.x = x
        self.out = np.empty(z.shape, dtype=self.buffer or z.dtype)
        self.out[...] = np.tanh(z) if self.act == "tanh" else softmax(z)
        return self.out

    def backward(self, dout: Array) -> Array:
        W, y = self.params[0], self.out
        if self.act == "tanh":
            dz = dout * (1 - y * y)
        else:
            dz = y * (dout - np.sum(dout * y, axis=-1, keepdims=True))
        self._store(0, self.x.T @ dz)
        self._store(1, np.sum(dz, axis=0))
        dx = np.empty(self.x.shape, dtype=self.buffer or dz.dtype)
        dx[...] = dz @ W.T
        return dx

    def _store(self, i: int, value: Array) -> None:
        # The book writes into the gradient arrays made at __init__; the twin keeps the
        # computation's precision instead (a longdouble value must not be narrowed there).
        if self.buffer is None:
            self.grads[i] = value
        else:
            self.grads[i][...] = value


class NarrowAffine:
    """``tanh(x W + b)`` with ``x W`` computed in float32 inside a float64 layer.

    ``inside="f"`` casts ``x`` and ``W`` to float32 for the product and back to float64
    (the issue's ``x.astype('f') @ W.astype('f')``); ``narrow_backward`` does the same for
    ``dW`` and ``dx``. ``inside=None`` is the twin without the casts.
    """

    def __init__(
        self, W: Array, b: Array, inside: str | None = "f", narrow_backward: bool = False
    ) -> None:
        self.W, self.b, self.inside, self.narrow_backward = W, b, inside, narrow_backward

    def __repr__(self) -> str:
        return (
            f"NarrowAffine(W{self.W.shape}, inside={self.inside!r}, "
            f"narrow_backward={self.narrow_backward})"
        )

    def _product(self, a: Array, b: Array, narrow: bool) -> Array:
        if self.inside is None or not narrow:
            return a @ b
        return (a.astype(self.inside) @ b.astype(self.inside)).astype(np.float64)

    def forward(self, x: Array) -> Array:
        self.x = x
        self.out = np.tanh(self._product(x, self.W, True) + self.b)
        return self.out

    def backward(self, dout: Array) -> Array:
        dz = dout * (1 - self.out**2)
        self.dW = self._product(self.x.T, dz, self.narrow_backward)
        self.db = np.sum(dz, axis=0)
        return self._product(dz, self.W.T, self.narrow_backward)


class NaiveSoftplus:
    """``log(1 + exp(x))`` as written in a first attempt: for ``x < −37`` the sum rounds
    to 1 and the output to 0, while the derivative ``σ(x)`` is still ~1e-17."""

    def forward(self, x: Array) -> Array:
        self.x = x
        return np.log(1 + np.exp(x))

    def backward(self, dout: Array) -> Array:
        return dout * sigmoid(self.x)


class OneMinusCos:
    """``1 − cos(x)``: at ``|x| ~ 1e-4`` half its digits cancel; ``dx = dout·sin(x)``."""

    def forward(self, x: Array) -> Array:
        self.x = x
        return 1 - np.cos(x)

    def backward(self, dout: Array) -> Array:
        return dout * np.sin(self.x)


class MomentNorm:
    """LayerNorm with the variance as ``E[x²] − E[x]²``: the same mathematics as the
    two-pass formula (so the same backward), but its forward cancels at an offset."""

    def __init__(self, gamma: Array, beta: Array, eps: float = 1e-5) -> None:
        self.gamma, self.beta, self.eps = gamma, beta, eps

    def forward(self, x: Array) -> Array:
        mu = np.mean(x, axis=-1, keepdims=True)
        var = np.mean(x * x, axis=-1, keepdims=True) - mu * mu
        self.std = np.sqrt(var + self.eps)
        self.xn = (x - mu) / self.std
        return self.gamma * self.xn + self.beta

    def backward(self, dout: Array) -> Array:
        xn, std = self.xn, self.std
        self.dbeta = np.sum(dout, axis=tuple(range(dout.ndim - 1)))
        self.dgamma = np.sum(dout * xn, axis=tuple(range(dout.ndim - 1)))
        dxn = dout * self.gamma
        return (
            dxn
            - np.mean(dxn, axis=-1, keepdims=True)
            - xn * np.mean(dxn * xn, axis=-1, keepdims=True)
        ) / std


class RowMax:
    """The maximum of each row; its gradient goes to the first maximum (``np.argmax``),
    a valid subgradient where several tie."""

    def forward(self, x: Array) -> Array:
        self.shape = x.shape
        self.arg = np.argmax(np.real(x), axis=-1)
        return np.take_along_axis(x, self.arg[..., None], axis=-1)[..., 0]

    def backward(self, dout: Array) -> Array:
        dx = np.zeros(self.shape, dtype=np.result_type(dout, float))
        np.put_along_axis(dx, self.arg[..., None], dout[..., None], axis=-1)
        return dx


# ---------------------------------------------------------------------------------------
# Draws: each returns a correct layer and its inputs.


def _offset_norm(rng: np.random.Generator) -> Drawn:
    dtype = _dtype(rng, 0.3)
    N, D = _size(rng, 2, 5), _size(rng, 2, 6)
    offset = float(rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(0, 6))
    spread = float(10 ** rng.uniform(-1, 1))
    x = (offset + spread * rng.standard_normal((N, D))).astype(dtype)
    kind = int(rng.integers(3))
    if kind == 2:
        return StdScale(), (x,)
    cls = LayerNorm if kind == 0 else BatchNormalization
    return cls(1 + _normal(rng, (D,), dtype, 0.3), _normal(rng, (D,), dtype)), (x,)


def _outlier(rng: np.random.Generator) -> Drawn:
    dtype = _dtype(rng, 0.3)
    N, D = _size(rng, 2, 5), _size(rng, 3, 8)
    x = rng.standard_normal((N, D))
    x[_size(rng, 0, N - 1), _size(rng, 0, D - 1)] = rng.choice([-1, 1]) * 10 ** rng.uniform(3, 5)
    x = x.astype(dtype)
    kind = int(rng.integers(4))
    if kind == 0:
        return L2Normalize(), (x,)
    if kind == 1:
        return StdScale(), (x,)
    cls = LayerNorm if kind == 2 else BatchNormalization
    return cls(1 + _normal(rng, (D,), dtype, 0.3), _normal(rng, (D,), dtype)), (x,)


def _loss_scale(rng: np.random.Generator) -> Drawn:
    scale = 10.0 ** int(rng.integers(-12, 13))
    case = correct_case(rng)
    return Scaled(case.layer, scale), case.inputs


def _float32_buffers(rng: np.random.Generator) -> Drawn:
    dtype = _dtype(rng, 0.5)  # float32 parameters and input, or float64 ones
    N, D, M = _size(rng, 1, 6), _size(rng, 1, 6), _size(rng, 2, 6)
    act = "tanh" if rng.random() < 0.6 else "softmax"
    layer = BufferedAffine(
        _normal(rng, (D, M), dtype, 1 / np.sqrt(D)), _normal(rng, (M,), dtype, 0.5), act
    )
    return layer, (_normal(rng, (N, D), dtype),)


def _float32_inside(rng: np.random.Generator) -> Drawn:
    N, D, M = _size(rng, 1, 6), _size(rng, 1, 6), _size(rng, 1, 6)
    layer = NarrowAffine(
        _normal(rng, (D, M), np.float64, 1 / np.sqrt(D)),
        _normal(rng, (M,), np.float64, 0.5),
        narrow_backward=bool(rng.random() < 0.5),
    )
    return layer, (_normal(rng, (N, D), np.float64),)


def _cancelling(rng: np.random.Generator) -> Drawn:
    dtype = _dtype(rng, 0.25)
    shape = (_size(rng, 1, 4), _size(rng, 2, 6))
    kind = int(rng.integers(5))
    if kind == 0:  # softmax with scores far apart: probabilities ~1 and ~1e-30
        return SoftmaxLayer(), (_normal(rng, shape, dtype, float(10 ** rng.uniform(1, 2.5))),)
    if kind == 1:
        return NaiveSoftplus(), (rng.uniform(-40, 30, shape).astype(dtype),)
    if kind == 2:  # tanh GELU in its tails, where 1 + tanh(...) cancels
        x = rng.choice([-1.0, 1.0], shape) * rng.uniform(2, 12, shape)
        return Gelu(), (x.astype(dtype),)
    if kind == 3:
        offset = float(rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(0, 3.5))
        x = (offset + rng.standard_normal(shape)).astype(dtype)
        D = shape[1]
        return MomentNorm(1 + _normal(rng, (D,), dtype, 0.3), _normal(rng, (D,), dtype)), (x,)
    x = rng.choice([-1.0, 1.0], shape) * 10 ** rng.uniform(-8, 0, shape)
    return OneMinusCos(), (x.astype(dtype),)


def _ties_zeros(rng: np.random.Generator) -> Drawn:
    dtype = _dtype(rng, 0.5)
    kind = int(rng.integers(5))
    if kind == 3:  # max-pooling over small integers: ties in most windows
        size = _size(rng, 2, 3)
        stride = size if rng.random() < 0.7 else 1
        shape = (
            _size(rng, 1, 2),
            _size(rng, 1, 2),
            _size(rng, size, size + 3),
            _size(rng, size, size + 3),
        )
        return Pooling(size, size, stride=stride), (rng.integers(-2, 3, shape).astype(dtype),)
    rows = (_size(rng, 1, 4), _size(rng, 2, 6))
    if kind == 4:
        return RowMax(), (rng.integers(-2, 3, rows).astype(dtype),)
    x = rng.standard_normal(rows)
    x[rng.random(rows) < 0.5] = 0.0
    x = x.astype(dtype)
    if kind == 0:
        return Relu(), (x,)
    if kind == 1:
        return LeakyRelu(alpha=float(rng.uniform(0.01, 0.5))), (x,)
    return Function(str(rng.choice(["abs", "square"]))), (x,)


def _feature_scales(rng: np.random.Generator) -> Drawn:
    dtype = _dtype(rng, 0.3)
    N, D, M = _size(rng, 2, 8), _size(rng, 2, 8), _size(rng, 2, 5)
    columns = 10 ** rng.uniform(-6, 6, D)
    x = (rng.standard_normal((N, D)) * columns).astype(dtype)
    W = rng.standard_normal((D, M)) / np.sqrt(D)
    if rng.random() < 0.6:  # weights sized to the features: pre-activations of order 1
        W = W / columns[:, None]
    affine = Affine(W.astype(dtype), _normal(rng, (M,), dtype, 0.5))
    kind = int(rng.integers(3))
    if kind == 0:
        return affine, (x,)
    if kind == 1:
        return Chain([affine, Tanh()]), (x,)
    return Chain([affine], loss=SoftmaxWithLoss()), (x, rng.integers(0, M, size=N))


def _loss_head(rng: np.random.Generator) -> Drawn:
    dtype = _dtype(rng, 0.3)
    N, D, H, C = _size(rng, 4, 12), _size(rng, 12, 32), _size(rng, 6, 16), _size(rng, 3, 8)
    first = Affine(_normal(rng, (D, H), dtype, 1 / np.sqrt(D)), _normal(rng, (H,), dtype, 0.1))
    second = Affine(_normal(rng, (H, C), dtype, 1 / np.sqrt(H)), _normal(rng, (C,), dtype, 0.1))
    middle = Relu() if rng.random() < 0.5 else Tanh()
    chain = Chain([first, middle, second], loss=SoftmaxWithLoss())
    return chain, (_normal(rng, (N, D), dtype), rng.integers(0, C, size=N))


# ---------------------------------------------------------------------------------------
# Twins for the truth


def _unbuffered(layer: Any) -> Any:
    """The same layer with no float32 buffer (``buffer=None``)."""
    twin = copy.deepcopy(layer)
    twin.buffer = None
    return twin


def _not_narrowed(layer: Any) -> Any:
    """The same layer with no float32 product inside (``inside=None``)."""
    twin = copy.deepcopy(layer)
    twin.inside = None
    return twin


@dataclass(frozen=True)
class Stressor:
    """A kind of correct layer off the home ground.

    ``truth``, when given, makes a twin of a drawn layer that computes the same
    mathematics without narrowing to float32, so that it can run in ``np.longdouble``.
    """

    name: str
    draw: Callable[[np.random.Generator], Drawn]
    truth: Callable[[Any], Any] | None = None


STRESSORS: dict[str, Stressor] = {
    s.name: s
    for s in (
        Stressor("offset-norm", _offset_norm),
        Stressor("outlier", _outlier),
        Stressor("loss-scale", _loss_scale),
        Stressor("float32-buffers", _float32_buffers, _unbuffered),
        Stressor("float32-inside", _float32_inside, _not_narrowed),
        Stressor("cancelling", _cancelling),
        Stressor("ties-zeros", _ties_zeros),
        Stressor("feature-scales", _feature_scales),
        Stressor("loss-head", _loss_head),
    )
}


def _describe(layer: Any, inputs: tuple[Any, ...]) -> str:
    shown = repr(layer) if type(layer).__repr__ is not object.__repr__ else type(layer).__name__
    return f"{shown} at {', '.join(str(np.shape(x)) for x in inputs)}"


def stress_case(rng: np.random.Generator, name: str) -> FamilyCase:
    """A correct layer of the stressor ``name`` and the point to check it at.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness: the same state gives the same case.
    name : str
        A key of :data:`STRESSORS`.
    """
    if name not in STRESSORS:
        raise ValueError(f"unknown stressor {name!r}; expected one of {', '.join(STRESSORS)}")
    layer, inputs = STRESSORS[name].draw(rng)
    real = next(
        (x.dtype for x in inputs if isinstance(x, np.ndarray) and x.dtype.kind == "f"),
        np.dtype(np.float64),
    )
    return FamilyCase(layer, inputs, np.dtype(real), _describe(layer, inputs), family=name)
