"""Random correct layers, and mutants of them, to test the checker's verdicts.

A *correct case* is a :class:`Chain` of one to three blocks — reference layers and
elementwise functions, optionally behind a two-input ``MulLayer`` head and in front of a
loss — at a random point, in float64 or float32, sometimes with inputs placed near a kink
(ReLU, LeakyReLU, ``abs`` at 0). The checker must pass every one.

A *mutant* is a correct chain with one bug a student really writes:

==================  ===========================================================================
``sign``            one gradient negated
``factor``          one gradient scaled (×0.5, ×2, ×N, ×1.1, and ×1.01 in float64)
``transpose``       a square gradient transposed
``perturb-one``     one element of one gradient off
``dropped-term``    a term of a backward formula left out (sigmoid's ``1 - y``, softmax's sum,
                    normalisation's mean terms, a residual branch, a loss's ``- t``...)
``swap``            two gradients swapped (``MulLayer``'s ``dx, dy``; ``dgamma, dbeta``)
``stale-cache``     forward caches only on its first call, so backward uses an old point
==================  ===========================================================================

A mutant is only kept when it is *detectable*: at the checker's own ``dout`` some gradient
element differs from the correct one by more than 2 % of its size (a bug that changes
nothing at the point checked is not a miss). Everything is drawn from a NumPy generator,
so a seed reproduces a case exactly::

    case = mutant_case(np.random.default_rng(1234), kind="swap")
    gradcheck.check(case.layer, *case.inputs)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.analytic.run import draw_dout
from gradcheck.conventions.randomness import seeded_global_state
from reference_layers import (
    Affine,
    BatchNormalization,
    Dropout,
    LayerNorm,
    LeakyRelu,
    MeanSquaredError,
    MulLayer,
    Relu,
    Sigmoid,
    Softmax,
    SoftmaxWithLoss,
    Softplus,
    Tanh,
)
from reference_layers.functions import sigmoid

__all__ = [
    "KINDS",
    "Case",
    "Chain",
    "Elementwise",
    "Residual",
    "correct_case",
    "detectable",
    "fresh_point",
    "gradients",
    "mutant_case",
    "widened",
]

Array = NDArray[Any]

KINDS = (
    "sign",
    "factor",
    "transpose",
    "perturb-one",
    "dropped-term",
    "swap",
    "stale-cache",
)


# ---------------------------------------------------------------------------------------
# Elementwise functions: forward, derivative, and (where there is one) a derivative with a
# term dropped. Written with np.where rather than abs where possible so that complex input
# stays analytic and the complex step is exercised too.


def _swish(x: Array) -> Array:
    return x * sigmoid(x)


def _swish_grad(x: Array) -> Array:
    s = sigmoid(x)
    return s + x * s * (1 - s)


def _swish_grad_dropped(x: Array) -> Array:
    return sigmoid(x)


FUNCTIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "square": (lambda x: x * x, lambda x: 2 * x),
    "cube": (lambda x: x**3, lambda x: 3 * x * x),
    "sin": (np.sin, np.cos),
    "exp": (lambda x: np.exp(0.5 * x), lambda x: 0.5 * np.exp(0.5 * x)),
    "swish": (_swish, _swish_grad),
    "abs": (np.abs, np.sign),  # a kink at 0; sign(0) = 0 is a valid subgradient
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2),
}
DROPPED_FUNCTION_TERMS: dict[str, Callable[[Array], Array]] = {"swish": _swish_grad_dropped}
KINKED_FUNCTIONS = ("abs",)


class Elementwise:
    """``out = f(x)``, ``dx = dout * f'(x)`` for one of :data:`FUNCTIONS`."""

    def __init__(self, function: str) -> None:
        self.function = function
        self.x: Array | None = None

    def __repr__(self) -> str:
        return self.function

    def forward(self, x: Array) -> Array:
        self.x = x
        return FUNCTIONS[self.function][0](x)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        return dout * FUNCTIONS[self.function][1](self.x)


class Residual:
    """``out = x + inner(x)``, ``dx = dout + inner.backward(dout)``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"Residual({_name(self.inner)})"

    def forward(self, x: Array) -> Array:
        return x + self.inner.forward(x)

    def backward(self, dout: Array) -> Array:
        return dout + self.inner.backward(dout)


class FrozenCache:
    """A block whose cache is set by its first forward only (the stale-cache bug).

    Later forward passes compute the right output on a throwaway copy, so only
    ``backward`` — which reads the cache — is wrong.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.primed = False

    def __repr__(self) -> str:
        return f"FrozenCache({_name(self.inner)})"

    def forward(self, x: Array) -> Array:
        if self.primed:
            return copy.deepcopy(self.inner).forward(x)
        self.primed = True
        return self.inner.forward(x)

    def backward(self, dout: Array) -> Array:
        return self.inner.backward(dout)


def _name(block: Any) -> str:
    if isinstance(block, Affine):
        return f"Affine{tuple(block.W.shape)}"
    if isinstance(block, Elementwise | Residual | FrozenCache):
        return repr(block)
    return type(block).__name__


# Parameter attributes of the blocks, with their gradient attributes ("d" + name).
_PARAMETERS = ("W", "b", "gamma", "beta")


def _parameter_owners(block: Any) -> Iterator[tuple[Any, str]]:
    if isinstance(block, Residual | FrozenCache):
        yield from _parameter_owners(block.inner)
        return
    for attr in _PARAMETERS:
        if isinstance(getattr(block, attr, None), np.ndarray):
            yield block, attr


# ---------------------------------------------------------------------------------------
# The chain


@dataclass(frozen=True)
class Mutation:
    """One bug: its kind, where it sits, and its parameters."""

    kind: str
    block: int | None = None  # index into Chain.blocks; None for the head or the loss
    target: str = "x"  # "x" (the gradient a block returns) or a params key
    factor: float = 1.0
    index: tuple[int, ...] = ()
    delta: float = 0.0
    variant: int = 0

    def __str__(self) -> str:
        where = "head" if self.block is None else f"block {self.block}"
        extra = {
            "factor": f" ×{self.factor:g}",
            "perturb-one": f" at {self.index} by {self.delta:+.3g}",
            "dropped-term": f" (variant {self.variant})",
        }.get(self.kind, "")
        return f"{self.kind} of {self.target} in {where}{extra}"


class Chain:
    """Blocks applied in turn; ``backward`` runs them in reverse (the chain rule).

    ``forward(*inputs)`` takes ``x`` — or ``x, y`` multiplied by a ``MulLayer`` head —
    followed by the loss's targets ``t`` when there is a loss. Parameters of the blocks are
    shared with the ``params`` dict (keys ``W0``, ``b0``, ``gamma2``...), and ``backward``
    fills ``grads`` with the same keys, as the book's networks do.
    """

    def __init__(
        self,
        blocks: list[Any],
        *,
        head: MulLayer | None = None,
        loss: Any = None,
        mutation: Mutation | None = None,
    ) -> None:
        self.blocks = blocks
        self.head = head
        self.loss = loss
        self.mutation = mutation
        self.params: dict[str, Array] = {}
        self.owners: dict[str, tuple[Any, str]] = {}
        for i, block in enumerate(blocks):
            for owner, attr in _parameter_owners(block):
                self.params[f"{attr}{i}"] = getattr(owner, attr)
                self.owners[f"{attr}{i}"] = (owner, attr)
        self.grads: dict[str, Array | None] = dict.fromkeys(self.params)
        self.seen: Array | None = None  # the mutated gradient before the mutation

    def _corrupt(self, gradient: Array) -> Array:
        assert self.mutation is not None
        self.seen = gradient
        return _corrupt(gradient, self.mutation)

    def __repr__(self) -> str:
        parts = [_name(b) for b in self.blocks]
        if self.head is not None:
            parts.insert(0, "Mul")
        if self.loss is not None:
            parts.append(type(self.loss).__name__)
        return f"Chain[{', '.join(parts)}]"

    def forward(self, *inputs: Any) -> Any:
        rest = list(inputs)
        out = self.head.forward(rest.pop(0), rest.pop(0)) if self.head else rest.pop(0)
        for block in self.blocks:
            out = block.forward(out)
        if self.loss is not None:
            out = self.loss.forward(out, rest.pop(0))
        return out

    def backward(self, dout: Any = 1.0) -> Any:
        bug = self.mutation
        if self.loss is not None:
            dout = self._loss_backward(dout)
        for i in reversed(range(len(self.blocks))):
            dout = self._block_backward(i, dout)
            if bug is not None and bug.block == i and bug.target == "x":
                dout = self._corrupt(dout)
        for key, (owner, attr) in self.owners.items():
            gradient = getattr(owner, "d" + attr)
            if bug is not None and bug.target == key:
                gradient = self._corrupt(gradient)
            self.grads[key] = gradient
        if bug is not None and bug.kind == "swap" and bug.target != "head":
            first, second = bug.target.split("/")
            self.grads[first], self.grads[second] = self.grads[second], self.grads[first]
        if self.head is None:
            return dout
        dx, dy = self.head.backward(dout)
        if bug is not None and bug.kind == "swap" and bug.target == "head":
            return dy, dx
        return dx, dy

    def _loss_backward(self, dout: Any) -> Array:
        bug = self.mutation
        if bug is not None and bug.kind == "dropped-term" and bug.target == "loss":
            # Leave out the "- t" of (y - t) / N (y: the prediction, or softmax's output).
            y = self.loss.y
            size = y.shape[0] if y.ndim > 1 else 1
            dx = dout * y / size
            return dx.reshape(self.loss.x_shape) if isinstance(self.loss, SoftmaxWithLoss) else dx
        return self.loss.backward(dout)

    def _block_backward(self, i: int, dout: Array) -> Array:
        bug = self.mutation
        block = self.blocks[i]
        if bug is not None and bug.kind == "dropped-term" and bug.block == i:
            return _dropped_term_backward(block, dout, bug.variant)
        return block.backward(dout)


def _corrupt(gradient: Array, bug: Mutation) -> Array:
    if bug.kind == "sign":
        return -gradient
    if bug.kind == "factor":
        return gradient * np.asarray(bug.factor, dtype=gradient.dtype)
    if bug.kind == "transpose":
        return gradient.T.copy()
    if bug.kind == "perturb-one":
        out = np.array(gradient, copy=True)
        out[bug.index] += bug.delta
        return out
    return gradient


def _dropped_term_backward(block: Any, dout: Array, variant: int) -> Array:
    """``block``'s backward with one term of its formula left out."""
    if isinstance(block, Sigmoid):
        return dout * block.out  # d sigmoid = y - y², without the - y²
    if isinstance(block, Tanh):
        return dout * np.ones_like(block.out)  # 1 - y², without the - y²
    if isinstance(block, Softmax):
        return block.out * dout  # y * (dout - sum(dout * y)), without the sum
    if isinstance(block, LayerNorm | BatchNormalization):
        return _normalization_dropped(block, dout, variant)
    if isinstance(block, Residual):
        return block.inner.backward(dout) if variant == 0 else dout * 1
    if isinstance(block, Elementwise) and block.function in DROPPED_FUNCTION_TERMS:
        assert block.x is not None
        return dout * DROPPED_FUNCTION_TERMS[block.function](block.x)
    raise ValueError(f"{_name(block)} has no dropped-term variant")


def _normalization_dropped(block: Any, dout: Array, variant: int) -> Array:
    """Normalisation backward without the mean term (variant 0) or the variance term (1)."""
    batch = isinstance(block, BatchNormalization)
    axis = 0 if batch else -1
    xn, std = block.xn, block.std
    shaped = dout.reshape(xn.shape)
    sample_axes = 0 if batch else tuple(range(dout.ndim - 1))
    block.dbeta = np.sum(shaped, axis=sample_axes)
    block.dgamma = np.sum(shaped * xn, axis=sample_axes)
    dxn = shaped * block.gamma
    if variant == 0:
        dx = (dxn - xn * np.mean(dxn * xn, axis=axis, keepdims=True)) / std
    else:
        dx = (dxn - np.mean(dxn, axis=axis, keepdims=True)) / std
    return dx.reshape(dout.shape)


DROPPABLE = (Sigmoid, Tanh, Softmax, LayerNorm, BatchNormalization, Residual)


def _has_dropped_term(block: Any) -> bool:
    if isinstance(block, Elementwise):
        return block.function in DROPPED_FUNCTION_TERMS
    return isinstance(block, DROPPABLE)


# ---------------------------------------------------------------------------------------
# Building random chains


@dataclass
class Case:
    """A layer and the inputs to check it at, with a description for messages."""

    layer: Any
    inputs: tuple[Any, ...]
    dtype: np.dtype
    description: str
    mutation: Mutation | None = None

    def __str__(self) -> str:
        bug = f", mutant: {self.mutation}" if self.mutation else ""
        return f"{self.description} {self.dtype}{bug}"


BLOCKS = (
    "affine",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softplus",
    "softmax",
    "layernorm",
    "batchnorm",
    "dropout",
    "elementwise",
    "residual",
)
KINKED_BLOCKS = ("relu", "leaky_relu", "abs")
DTYPES = (np.float64, np.float32)
# Distances from a kink, relative to the size of the input: at, within and beyond the
# finite-difference step (≈ 6e-6 in float64, 5e-3 in float32).
NEAR_KINK = (0.0, 1e-12, 1e-9, 1e-7, 1e-5, 1e-4, 1e-3, 1e-2)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> Array:
    return rng.standard_normal(shape).astype(dtype)


def _block(
    rng: np.random.Generator, kind: str, width: int, dtype: np.dtype, *, square: bool
) -> tuple[Any, int]:
    """A block of ``kind`` taking ``width`` features; return it and its output width."""
    if kind == "affine":
        out = width if square else int(rng.integers(1, 6))
        scale = 1 / np.sqrt(width)
        weights = (rng.standard_normal((width, out)) * scale * rng.uniform(0.5, 2)).astype(dtype)
        return Affine(weights, _normal(rng, (out,), dtype)), out
    if kind == "elementwise":
        return Elementwise(str(rng.choice(list(FUNCTIONS)))), width
    if kind == "residual":
        inner: Any = (
            Affine(
                (rng.standard_normal((width, width)) / np.sqrt(width)).astype(dtype),
                _normal(rng, (width,), dtype),
            )
            if rng.random() < 0.4
            else Elementwise(str(rng.choice(["sin", "swish", "softsign", "square"])))
        )
        return Residual(inner), width
    if kind in ("layernorm", "batchnorm"):
        cls = LayerNorm if kind == "layernorm" else BatchNormalization
        gamma = (1 + 0.3 * rng.standard_normal(width)).astype(dtype)
        return cls(gamma, _normal(rng, (width,), dtype)), width
    if kind == "dropout":
        return Dropout(float(rng.uniform(0.1, 0.6)), seed=int(rng.integers(2**31))), width
    simple = {
        "relu": Relu,
        "leaky_relu": lambda: LeakyRelu(alpha=float(rng.uniform(0.01, 0.5))),
        "sigmoid": Sigmoid,
        "tanh": Tanh,
        "softplus": Softplus,
        "softmax": Softmax,
    }
    return simple[kind](), width


def _kinked(block: Any) -> bool:
    return isinstance(block, Relu | LeakyRelu) or (
        isinstance(block, Elementwise) and block.function in KINKED_FUNCTIONS
    )


def _move_to_kink(rng: np.random.Generator, blocks: list[Any], x: Array, kink_at: int) -> None:
    """Put a few pre-activations of block ``kink_at`` near 0 (in place).

    The kinked block's input is ``x`` itself (first block) or an Affine's output, whose
    bias is shifted so that chosen pre-activations of the first sample land near 0.
    """
    distance = float(rng.choice(NEAR_KINK)) * rng.choice([-1.0, 1.0])
    if kink_at == 0:
        count = int(rng.integers(1, x.size + 1))
        chosen = rng.choice(x.size, size=count, replace=False)
        flat = x.reshape(-1)
        flat[chosen] = (distance * rng.uniform(0.5, 2, size=count)).astype(x.dtype)
        return
    affine = blocks[kink_at - 1]
    if not isinstance(affine, Affine):
        return
    inner = x
    for block in copy.deepcopy(blocks[: kink_at - 1]):  # a copy: no state may advance
        inner = block.forward(inner)
    row = np.asarray(inner, dtype=np.float64).reshape(inner.shape[0], -1)[0]
    pre = row @ affine.W.astype(np.float64)
    units = rng.choice(pre.size, size=int(rng.integers(1, pre.size + 1)), replace=False)
    scale = max(float(np.max(np.abs(pre + affine.b))), 1.0)
    affine.b[units] = (distance * scale - pre[units]).astype(affine.b.dtype)


@dataclass(frozen=True)
class _Shape:
    """The chain's wiring before it is built."""

    kinds: tuple[str, ...]
    head: bool
    loss: str | None
    square: bool


def _draw_shape(rng: np.random.Generator, kind: str | None) -> _Shape:
    count = int(rng.integers(1, 4))
    kinds = [str(rng.choice(BLOCKS)) for _ in range(count)]
    head = rng.random() < 0.25
    loss = str(rng.choice(["softmax", "mse"])) if rng.random() < 0.3 else None
    square = rng.random() < 0.2
    if kind == "swap" and not head and "layernorm" not in kinds and "batchnorm" not in kinds:
        if rng.random() < 0.5:
            head = True
        else:
            kinds[int(rng.integers(count))] = str(rng.choice(["layernorm", "batchnorm"]))
    if kind == "dropped-term" and loss is None:
        droppable = ["sigmoid", "tanh", "softmax", "layernorm", "batchnorm", "residual"]
        kinds[int(rng.integers(count))] = str(rng.choice(droppable))
    if kind == "transpose":
        square = True
    if kind == "stale-cache" and "affine" not in kinds:
        kinds[int(rng.integers(count))] = "affine"
    return _Shape(tuple(kinds), head, loss, square)


def _build(
    rng: np.random.Generator,
    dtype: np.dtype,
    shape: _Shape,
    *,
    near_kink: bool,
) -> tuple[list[Any], MulLayer | None, Any, tuple[Any, ...]]:
    batch = int(rng.integers(1, 5))
    width = int(rng.integers(1, 6))
    if shape.square:
        batch = width = max(2, width)
    blocks: list[Any] = []
    current = width
    for kind in shape.kinds:
        if kind == "batchnorm" and batch == 1:
            kind = "layernorm"  # a batch of one has no batch statistics to speak of
        block, current = _block(rng, kind, current, dtype, square=shape.square)
        blocks.append(block)
    scale = float(rng.choice([0.1, 1.0, 3.0]))
    x = (rng.standard_normal((batch, width)) * scale).astype(dtype)
    inputs: list[Any] = [x]
    head = None
    if shape.head:
        head = MulLayer()
        inputs.append(_normal(rng, (batch, width), dtype))
    kinks = [i for i, b in enumerate(blocks) if _kinked(b)]
    if near_kink and kinks:
        kink_at = int(rng.choice(kinks))
        if head is None:
            _move_to_kink(rng, blocks, x, kink_at)
        else:  # the first block sees x * y: move that product, then divide y back out
            product = x * inputs[1]
            _move_to_kink(rng, blocks, product, kink_at)
            if kink_at == 0:
                inputs[0] = (product / inputs[1]).astype(dtype)
    loss: Any = None
    if shape.loss == "softmax":
        loss = SoftmaxWithLoss()
        inputs.append(rng.integers(0, current, size=batch))
    elif shape.loss == "mse":
        loss = MeanSquaredError()
        inputs.append(_normal(rng, (batch, current), dtype))
    return blocks, head, loss, tuple(inputs)


def fresh_point(rng: np.random.Generator, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        _normal(rng, x.shape, x.dtype) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x
        for x in inputs
    )


def correct_case(
    rng: np.random.Generator,
    *,
    dtype: Any = None,
    near_kink: bool | None = None,
) -> Case:
    """A random correct chain and a point to check it at.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness: the same state gives the same case.
    dtype : dtype, optional
        float64 or float32 (default: drawn).
    near_kink : bool, optional
        Place some pre-activations of a kinked block within ``NEAR_KINK`` of 0
        (default: drawn; only has an effect when the chain has a kinked block).
    """
    dtype = np.dtype(dtype if dtype is not None else DTYPES[int(rng.integers(2))])
    near = bool(rng.random() < 0.4) if near_kink is None else near_kink
    shape = _draw_shape(rng, None)
    blocks, head, loss, inputs = _build(rng, dtype, shape, near_kink=near)
    chain = Chain(blocks, head=head, loss=loss)
    if rng.random() < 0.5:  # a layer that has been used before: its caches are stale
        chain.forward(*fresh_point(rng, inputs))
    description = repr(chain) + (" near a kink" if near and any(map(_kinked, blocks)) else "")
    return Case(chain, inputs, dtype, description)


def _sites(chain: Chain, kind: str) -> list[Mutation]:
    """Every place a mutation of ``kind`` can go in ``chain`` (parameters filled later)."""
    blocks = range(len(chain.blocks))
    keys = list(chain.params)
    if kind in ("sign", "factor", "perturb-one"):
        return [Mutation(kind, i) for i in blocks] + [Mutation(kind, None, key) for key in keys]
    if kind == "transpose":
        return [Mutation(kind, i) for i in blocks] + [
            Mutation(kind, None, key)
            for key in keys
            if chain.params[key].ndim == 2
            and chain.params[key].shape[0] == chain.params[key].shape[1]
        ]
    if kind == "dropped-term":
        found = [
            Mutation(kind, i, variant=v)
            for i in blocks
            if _has_dropped_term(chain.blocks[i])
            for v in (0, 1)
        ]
        return found + ([Mutation(kind, None, "loss")] if chain.loss is not None else [])
    if kind == "swap":
        found = [Mutation(kind, None, "head")] if chain.head is not None else []
        return found + [
            Mutation(kind, None, f"gamma{i}/beta{i}")
            for i in blocks
            if isinstance(chain.blocks[i], LayerNorm | BatchNormalization)
        ]
    if kind == "stale-cache":
        return [Mutation(kind, i) for i in blocks]
    raise ValueError(f"unknown mutation kind {kind!r}; expected one of {', '.join(KINDS)}")


def _finish(rng: np.random.Generator, site: Mutation, chain: Chain, dtype: np.dtype) -> Mutation:
    """Fill in the random parameters of a mutation at ``site``."""
    if site.kind == "factor":
        factors = [0.5, 2.0, 1.1, 0.9, float(rng.integers(2, 6))]
        if dtype == np.float64:
            factors.append(1.01)
        return Mutation("factor", site.block, site.target, factor=float(rng.choice(factors)))
    if site.kind == "perturb-one":
        return Mutation("perturb-one", site.block, site.target, delta=float(rng.choice([-1, 1])))
    return site


def gradients(
    layer: Any, inputs: tuple[Any, ...], seed: int = 0, *, dtype: Any = np.float64, dout: Any = None
) -> dict[str, Array]:
    """Every gradient ``layer`` reports at ``inputs`` for the checker's ``dout`` (on a copy).

    That is what backward returns (None, for an input that gets no gradient, is left out),
    the ``grads`` dict or list (the sequel book's ``grads[i]`` beside ``params[i]``, keyed
    ``grads[i]``), and every ``dW`` attribute beside a float array ``W``. The global
    ``np.random`` state is the one the checker sets for ``seed`` (the textbook's Dropout
    draws from it), and is put back afterwards.

    The gradients come in ``dtype`` (float64: exact enough to compare), or as the layer
    returned them with ``dtype=None`` (to see what precision it really computed in).
    ``dout`` replaces the checker's (the same one for a layer and its longdouble twin).
    """
    layer = copy.deepcopy(layer)
    state = np.random.get_state()  # noqa: NPY002 (the legacy global state, kept)
    np.random.set_state(seeded_global_state(seed))  # noqa: NPY002
    try:
        output = np.asarray(layer.forward(*inputs))
    finally:
        np.random.set_state(state)  # noqa: NPY002
    returned = layer.backward(draw_dout(output, seed) if dout is None else dout)
    found = dict(enumerate(returned if isinstance(returned, tuple) else (returned,)))
    out = {f"input{i}": np.asarray(g, dtype=dtype) for i, g in found.items() if g is not None}
    grads = getattr(layer, "grads", {})
    listed = (
        grads.items()
        if isinstance(grads, dict)
        else ((f"grads[{i}]", g) for i, g in enumerate(grads))
    )
    for key, value in listed:
        out[key] = np.asarray(value, dtype=dtype)
    for key, value in vars(layer).items():
        gradient = getattr(layer, "d" + key, None)
        if _is_float_array(value) and _is_float_array(gradient):
            out["d" + key] = np.asarray(gradient, dtype=dtype)
    return out


def _is_float_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def widened(
    layer: Any, inputs: tuple[Any, ...], dtype: Any = np.float64
) -> tuple[Any, tuple[Any, ...]]:
    """Copies of ``layer`` and ``inputs`` with every float array in ``dtype``.

    Arrays shared inside the layer (a ``params`` entry and a block's ``W``) stay shared.
    ``dtype=np.longdouble`` is how the truth of a correct layer is computed beyond float64
    (what ``catalogue.Family.truth`` prepares a layer for).
    """
    converted: dict[int, Array] = {}
    seen: set[int] = set()

    def widen(value: Any) -> Any:
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            if id(value) not in converted:
                converted[id(value)] = value.astype(dtype)
            return converted[id(value)]
        if id(value) in seen or isinstance(value, np.random.Generator | type):
            return value
        seen.add(id(value))
        if isinstance(value, dict):
            for key in value:
                value[key] = widen(value[key])
        elif isinstance(value, list):
            value[:] = [widen(item) for item in value]
        elif hasattr(value, "__dict__"):
            for key, item in vars(value).items():
                new = widen(item)
                if new is not item:
                    setattr(value, key, new)
        return value

    layer = widen(copy.deepcopy(layer))
    return layer, tuple(widen(x) for x in inputs)


def detectable(
    correct: Any,
    mutant: Any,
    inputs: tuple[Any, ...],
    seed: int = 0,
    margin: float = 0.02,
    *,
    per_element: bool = False,
    floor: float = 1e-8,
    native: bool = False,
) -> bool:
    """True when the mutant's exact gradient differs from the correct one, visibly.

    Measured in float64 (exact enough), at the checker's own ``dout`` for ``seed``: some
    element must differ by more than ``margin·(|g| + rms(g)) + floor`` *and* by more than
    ten times the rounding error of the correct layer's own backward in its dtype (a
    float32 gradient that is all rounding noise cannot be told from a scaled one).

    ``per_element=True`` measures each element against its own size and rounding alone
    (``margin·|g| + floor``): for a gradient whose rows differ in scale by orders of
    magnitude (a feature ~3e6 beside features ~1), where the gradient's rms and its
    largest rounding error belong to the huge row and would hide every other one.

    ``floor`` (1e-8) keeps gradients of about 0 from counting; ``floor=0`` judges
    gradients of any scale alike (a loss ×1e-12, whose every gradient lies under 1e-8).
    ``native=True`` takes the mutant's gradient in its own dtype, not widened: for a bug
    that *is* precision (``E[x²] − E[x]²`` in float32), which widening would repair.
    """
    right = gradients(*widened(correct, inputs), seed)
    wrong = gradients(mutant, inputs, seed) if native else gradients(*widened(mutant, inputs), seed)
    own = gradients(correct, inputs, seed)
    for key, g in right.items():
        h = wrong[key]
        if h.shape != g.shape:
            return True
        if not g.size:
            continue
        rounding: Any = np.abs(own[key] - g)
        size = 0.0
        if not per_element:
            size = float(np.sqrt(np.mean(g * g)))
            rounding = float(np.max(rounding))
        difference = np.abs(h - g)
        if np.any(
            (difference > margin * (np.abs(g) + size) + floor) & (difference > 10 * rounding)
        ):
            return True
    return False


def _with_perturbation(
    mutation: Mutation, chain: Chain, inputs: tuple[Any, ...], rng: np.random.Generator
) -> Mutation:
    """Size a perturb-one mutation from the gradient it corrupts (half its size, or more)."""
    probe = copy.deepcopy(chain)
    probe.mutation = Mutation("factor", mutation.block, mutation.target, factor=1.0)
    output = np.asarray(probe.forward(*inputs))
    probe.backward(draw_dout(output, 0))
    assert probe.seen is not None
    gradient = probe.seen
    flat = int(rng.integers(gradient.size))
    index = tuple(int(i) for i in np.unravel_index(flat, gradient.shape))
    size = float(np.sqrt(np.mean(np.asarray(gradient, dtype=np.float64) ** 2)))
    delta = mutation.delta * (0.5 * (abs(float(gradient[index])) + size) + 1e-3)
    return Mutation("perturb-one", mutation.block, mutation.target, index=index, delta=delta)


def mutant_case(
    rng: np.random.Generator,
    *,
    kind: str | None = None,
    dtype: Any = None,
    attempts: int = 8,
) -> Case | None:
    """A random detectable mutant of a correct chain, or None if none was found.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    kind : str, optional
        One of :data:`KINDS` (default: drawn).
    dtype : dtype, optional
        float64 or float32 (default: drawn).
    attempts : int
        How many chains to try before giving up (a mutation can be invisible at a point:
        a sign flip of a gradient that is zero there).
    """
    kind = kind if kind is not None else str(rng.choice(KINDS))
    dtype = np.dtype(dtype if dtype is not None else DTYPES[int(rng.integers(2))])
    for _ in range(attempts):
        shape = _draw_shape(rng, kind)
        blocks, head, loss, inputs = _build(rng, dtype, shape, near_kink=False)
        correct = Chain(blocks, head=head, loss=loss)
        sites = _sites(correct, kind)
        if not sites:
            continue
        site = sites[int(rng.integers(len(sites)))]
        mutation = _finish(rng, site, correct, dtype)
        if kind == "perturb-one":
            mutation = _with_perturbation(mutation, correct, inputs, rng)
        mutant = _mutant(correct, mutation)
        old_point = fresh_point(rng, inputs)
        correct.forward(*old_point)
        mutant.forward(*old_point)
        if detectable(correct, mutant, inputs):
            return Case(mutant, inputs, dtype, repr(correct), mutation)
    return None


def _mutant(correct: Chain, mutation: Mutation) -> Chain:
    """A copy of ``correct`` with ``mutation`` built in."""
    mutant = copy.deepcopy(correct)
    if mutation.kind == "stale-cache":
        assert mutation.block is not None
        blocks = list(mutant.blocks)
        blocks[mutation.block] = FrozenCache(blocks[mutation.block])
        return Chain(blocks, head=mutant.head, loss=mutant.loss)
    mutant.mutation = mutation
    return mutant
