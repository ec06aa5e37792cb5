"""Backprop code written the ways people write it: one small example per convention.

Every class and function takes a ``bug``: None for the correct code, ``"factor"`` for a
gradient three times too large in one parameter, ``"dropped"`` for a term left out.
:data:`CASES` builds each example at a dtype and says which variable each bug must fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_layers import Affine, Relu
from reference_layers.functions import log_softmax

Array = NDArray[Any]


def _planted(gradient: Array, bug: str | None) -> Array:
    """The ×3 bug in one parameter's gradient."""
    return 3 * gradient if bug == "factor" else gradient


def _bias_gradient(dout: Array, bug: str | None) -> Array:
    """``db`` — leaving out the first sample's term when the bug is "dropped"."""
    return dout[1:].sum(axis=0) if bug == "dropped" else dout.sum(axis=0)


def _softmax_loss(scores: Array, t: Array) -> tuple[float, Array]:
    """Mean cross-entropy of integer labels ``t`` and its gradient."""
    n = scores.shape[0]
    logp = log_softmax(scores)
    dscores = np.exp(logp)
    dscores[np.arange(n), t] -= 1
    return float(-logp[np.arange(n), t].sum() / n), dscores / n


# -- params/grads dicts ---------------------------------------------------------------------
class DictAffine:
    """``self.params['W']`` / ``self.grads['W']``."""

    def __init__(self, W: Array, b: Array, bug: str | None = None) -> None:
        self.params = {"W": W, "b": b}
        self.grads: dict[str, Array] = {}
        self.bug = bug

    def forward(self, x: Array) -> Array:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: Array) -> Array:
        self.grads["W"] = _planted(self.x.T @ dout, self.bug)
        self.grads["b"] = _bias_gradient(dout, self.bug)
        return dout @ self.params["W"].T


# -- params/grads lists (the sequel book) ---------------------------------------------------
class ListAffine:
    """``self.params = [W, b]``; backward writes ``self.grads[0][...] = dW`` in place, or
    rebinds ``self.grads[0] = dW`` (``rebind=True``)."""

    def __init__(self, W: Array, b: Array, bug: str | None = None, rebind: bool = False) -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.bug = bug
        self.rebind = rebind
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        W, b = self.params
        self.x = x
        return x @ W + b

    def backward(self, dout: Array) -> Array:
        W, _ = self.params
        assert self.x is not None
        dW = _planted(self.x.T @ dout, self.bug)
        db = _bias_gradient(dout, self.bug)
        if self.rebind:
            self.grads[0], self.grads[1] = dW, db
        else:
            self.grads[0][...] = dW
            self.grads[1][...] = db
        return dout @ W.T


class Embedding:
    """The sequel book's Embedding: ``W[idx]``, gradient by ``np.add.at``.

    ``bug="dropped"`` is the classic ``dW[idx] += dout``, which drops repeated indices.
    """

    def __init__(self, W: Array, bug: str | None = None) -> None:
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.bug = bug
        self.idx: Array | None = None

    def forward(self, idx: Array) -> Array:
        (W,) = self.params
        self.idx = idx
        return W[idx]

    def backward(self, dout: Array) -> None:
        (dW,) = self.grads
        dW[...] = 0
        if self.bug == "dropped":
            dW[self.idx] += dout
        else:
            np.add.at(dW, self.idx, dout)
        dW *= 3 if self.bug == "factor" else 1


class ListSigmoid:
    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []
        self.out: Array | None = None

    def forward(self, x: Array) -> Array:
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout: Array) -> Array:
        assert self.out is not None
        return dout * (1.0 - self.out) * self.out


class ListSoftmaxWithLoss:
    def __init__(self) -> None:
        self.params: list[Array] = []
        self.grads: list[Array] = []

    def forward(self, x: Array, t: Array) -> float:
        loss, self.dx = _softmax_loss(x, t)
        return loss

    def backward(self, dout: float = 1) -> Array:
        return self.dx * dout


class ListNet:
    """The sequel book's net: ``forward(x, t)`` → loss, ``backward(dout=1)``, and the
    layers' ``params``/``grads`` lists gathered in its own."""

    def __init__(self, W1: Array, b1: Array, W2: Array, b2: Array, bug: str | None = None) -> None:
        self.layers = [ListAffine(W1, b1), ListSigmoid(), ListAffine(W2, b2, bug=bug)]
        self.loss_layer = ListSoftmaxWithLoss()
        self.params: list[Array] = []
        self.grads: list[Array] = []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, x: Array, t: Array) -> float:
        for layer in self.layers:
            x = layer.forward(x)
        return self.loss_layer.forward(x, t)

    def backward(self, dout: float = 1) -> Array:
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


# -- parameters/gradients dicts that accumulate (numpy-ml) ----------------------------------
class AccumulatingDense:
    """numpy-ml's layers: gradients add up until an optimizer step; ``flush_gradients``
    zeroes them and drops the inputs cached by forward."""

    def __init__(self, W: Array, b: Array, bug: str | None = None) -> None:
        self.parameters = {"W": W, "b": b}
        self.gradients = {"W": np.zeros_like(W), "b": np.zeros_like(b)}
        self.X: list[Array] = []
        self.bug = bug

    def forward(self, X: Array) -> Array:
        self.X.append(X)
        return X @ self.parameters["W"] + self.parameters["b"]

    def backward(self, dLdy: Array) -> Any:
        dX = []
        for x in self.X:
            dX.append(dLdy @ self.parameters["W"].T)
            self.gradients["W"] += _planted(x.T @ dLdy, self.bug)
            self.gradients["b"] += _bias_gradient(dLdy, self.bug)
        return dX[0] if len(self.X) == 1 else dX

    def flush_gradients(self) -> None:
        self.X = []
        self.gradients = {k: np.zeros_like(v) for k, v in self.gradients.items()}


class AccumulatingBatchNorm:
    """numpy-ml's BatchNorm1D: running statistics kept in ``parameters`` beside the scale
    and the intercept; no reset method (gradcheck zeroes the gradients itself)."""

    def __init__(self, scaler: Array, intercept: Array, bug: str | None = None) -> None:
        self.parameters = {
            "scaler": scaler,
            "intercept": intercept,
            "running_mean": np.zeros_like(scaler),
            "running_var": np.ones_like(scaler),
        }
        self.gradients = {"scaler": np.zeros_like(scaler), "intercept": np.zeros_like(scaler)}
        self.bug = bug

    def forward(self, X: Array) -> Array:
        p = self.parameters
        mean, var = X.mean(axis=0), X.var(axis=0)
        p["running_mean"] = 0.9 * p["running_mean"] + 0.1 * np.real(mean)
        p["running_var"] = 0.9 * p["running_var"] + 0.1 * np.real(var)
        self.std = np.sqrt(var + 1e-5)
        self.xn = (X - mean) / self.std
        return p["scaler"] * self.xn + p["intercept"]

    def backward(self, dLdy: Array) -> Array:
        self.gradients["scaler"] += _planted((dLdy * self.xn).sum(axis=0), self.bug)
        self.gradients["intercept"] += dLdy.sum(axis=0)
        dxn = dLdy * self.parameters["scaler"]
        mean_term = 0 if self.bug == "dropped" else dxn.mean(axis=0)
        return (dxn - mean_term - self.xn * (dxn * self.xn).mean(axis=0)) / self.std


# -- forward/backward function pairs with a cache (cs231n) ----------------------------------
def affine_forward(x: Array, w: Array, b: Array) -> tuple[Array, Any]:
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    return dx, dw, dout.sum(axis=0)


def affine_backward_factor(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    dx, dw, db = affine_backward(dout, cache)
    return dx, 3 * dw, db


def affine_backward_dropped(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    dx, dw, _ = affine_backward(dout, cache)
    return dx, dw, dout[1:].sum(axis=0)


def batchnorm_forward(
    x: Array, gamma: Array, beta: Array, bn_param: dict[str, Any]
) -> tuple[Array, Any]:
    """cs231n's batchnorm: ``bn_param`` holds the mode and the running statistics."""
    running_mean = bn_param.get("running_mean", np.zeros(x.shape[1], dtype=x.real.dtype))
    mean, var = x.mean(axis=0), x.var(axis=0)
    bn_param["running_mean"] = 0.9 * running_mean + 0.1 * np.real(mean)
    std = np.sqrt(var + bn_param.get("eps", 1e-5))
    xn = (x - mean) / std
    return gamma * xn + beta, (xn, gamma, std)


def batchnorm_backward(dout: Array, cache: Any, bug: str | None = None) -> tuple[Array, ...]:
    xn, gamma, std = cache
    dgamma = _planted((dout * xn).sum(axis=0), bug)
    dxn = dout * gamma
    mean_term = 0 if bug == "dropped" else dxn.mean(axis=0)
    dx = (dxn - mean_term - xn * (dxn * xn).mean(axis=0)) / std
    return dx, dgamma, dout.sum(axis=0)


def word_embedding_forward(x: Array, W: Array) -> tuple[Array, Any]:
    """``x`` holds integer indices: a constant, never differentiated."""
    return W[x], (x, W)


def word_embedding_backward(dout: Array, cache: Any, bug: str | None = None) -> Array:
    x, W = cache
    dW = np.zeros_like(W)
    if bug == "dropped":
        dW[x] += dout  # repeated indices are counted once
    else:
        np.add.at(dW, x, dout)
    return _planted(dW, bug)


def two_outputs_forward(x: Array, Wh: Array, Wc: Array) -> tuple[Array, Array, Any]:
    """Two outputs, like an LSTM step's ``(h, c)``: ``h = tanh(x Wh)``, ``c = x Wc``."""
    h = np.tanh(x @ Wh)
    return h, x @ Wc, (x, Wh, Wc, h)


def two_outputs_backward(
    dh: Array, dc: Array, cache: Any, bug: str | None = None
) -> tuple[Array, Array, Array]:
    x, Wh, Wc, h = cache
    da = dh * (1 - h**2)
    dx = da @ Wh.T + (0 if bug == "dropped" else dc @ Wc.T)
    return dx, x.T @ da, _planted(x.T @ dc, bug)


def scaled_forward(x: Array, w: Array, *, scale: float = 1.0) -> tuple[Array, Any]:
    """A keyword argument (``forward_kwargs``) passed through as a constant."""
    return scale * (x @ w), (x, w, scale)


def scaled_backward(dout: Array, cache: Any) -> tuple[Array, Array]:
    x, w, scale = cache
    return scale * dout @ w.T, scale * x.T @ dout


# -- several outputs, as a layer (the sequel book's LSTM) -----------------------------------
class TwoOutputs:
    """``forward(x) -> (h, c)``; ``backward(dh, dc) -> dx``."""

    def __init__(self, Wh: Array, Wc: Array, bug: str | None = None) -> None:
        self.params = [Wh, Wc]
        self.grads = [np.zeros_like(Wh), np.zeros_like(Wc)]
        self.bug = bug

    def forward(self, x: Array) -> tuple[Array, Array]:
        h, c, self.cache = two_outputs_forward(x, *self.params)
        return h, c

    def backward(self, dh: Array, dc: Array) -> Array:
        dx, dWh, dWc = two_outputs_backward(dh, dc, self.cache, self.bug)
        self.grads[0][...] = dWh
        self.grads[1][...] = dWc
        return dx


# -- models ---------------------------------------------------------------------------------
class LossNet:
    """cs231n's TwoLayerNet: ``params`` dict, ``loss(X, y)`` returning ``(loss, grads)``."""

    def __init__(
        self, W1: Array, b1: Array, W2: Array, b2: Array, reg: float = 0.1, bug: str | None = None
    ) -> None:
        self.params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
        self.reg = reg
        self.bug = bug

    def loss(self, X: Array, y: Array | None = None) -> Any:
        p = self.params
        hidden = np.maximum(0, X @ p["W1"] + p["b1"])
        scores = hidden @ p["W2"] + p["b2"]
        if y is None:
            return scores
        loss, dscores = _softmax_loss(scores, y)
        loss += 0.5 * self.reg * float(np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        dhidden = (dscores @ p["W2"].T) * (hidden > 0)
        grads = {
            "W2": _planted(hidden.T @ dscores, self.bug) + self.reg * p["W2"],
            "b2": dscores.sum(axis=0),
            "W1": X.T @ dhidden + (0 if self.bug == "dropped" else self.reg * p["W1"]),
            "b1": dhidden.sum(axis=0),
        }
        return loss, grads


class FlagNet:
    """The first book's MultiLayerNetExtend pattern: ``loss(x, t, train_flg=False)`` and a
    ``gradient`` that runs the net in training mode (here: a scale only used in training)."""

    def __init__(self, W: Array, bug: str | None = None) -> None:
        self.params = {"W": W}
        self.bug = bug

    def loss(self, x: Array, t: Array, train_flg: bool = False) -> float:
        W = self.params["W"]
        scores = (0.5 if train_flg else 1.0) * (x @ W)
        return _softmax_loss(scores, t)[0] + 0.05 * float(np.sum(W**2))

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        W = self.params["W"]
        _, dscores = _softmax_loss(0.5 * (x @ W), t)
        weight_decay = 0 if self.bug == "dropped" else 0.1 * W
        return {"W": _planted(0.5 * x.T @ dscores, self.bug) + weight_decay}


# -- composite layers -----------------------------------------------------------------------
class ResidualBlock:
    """Sublayers as attributes: ``fc1``, ``relu``, ``fc2``; ``out = x + fc2(relu(fc1(x)))``."""

    def __init__(self, fc1: Any, fc2: Any) -> None:
        self.fc1, self.relu, self.fc2 = fc1, Relu(), fc2

    def forward(self, x: Array) -> Array:
        return x + self.fc2.forward(self.relu.forward(self.fc1.forward(x)))

    def backward(self, dout: Array) -> Array:
        return dout + self.fc1.backward(self.relu.backward(self.fc2.backward(dout)))


class Sequential:
    """Sublayers in a list: ``self.layers = [...]``."""

    def __init__(self, layers: list[Any]) -> None:
        self.layers = layers

    def forward(self, x: Array) -> Array:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: Array) -> Array:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


class BuggyAffine(Affine):
    """The reference Affine with a planted bug."""

    def __init__(self, W: Array, b: Array, bug: str | None = None) -> None:
        super().__init__(W, b)
        self.bug = bug

    def backward(self, dout: Array) -> Array:
        dx = super().backward(dout)
        assert self.dW is not None
        self.dW = _planted(self.dW, self.bug)
        self.db = _bias_gradient(dout, self.bug)
        return dx


# -- a loss function returning its gradient (cs231n's softmax_loss_vectorized) ------------
def softmax_classifier_loss(
    W: Array, X: Array, y: Array, reg: float, bug: str | None = None
) -> tuple[float, Array]:
    """``loss, dW`` of a linear softmax classifier with L2 regularisation ``reg``."""
    loss, dscores = _softmax_loss(X @ W, y)
    dW = X.T @ dscores
    if bug == "factor":
        dW = 3 * dW
    if bug != "dropped":  # the regulariser's term
        dW = dW + 2 * reg * W
    return loss + reg * float(np.sum(W * W)), dW


def _loss_function(bug: str | None) -> Callable[..., Any]:
    if bug is None:
        return softmax_classifier_loss

    def softmax_loss_vectorized(W: Array, X: Array, y: Array, reg: float) -> Any:
        return softmax_classifier_loss(W, X, y, reg, bug=bug)

    return softmax_loss_vectorized


# -- the cases ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One convention's example: ``build(rng, dtype, bug) -> (obj, inputs, options)``, the
    convention the report must name, and the variable each bug must fail."""

    build: Callable[
        [np.random.Generator, Any, str | None], tuple[Any, tuple[Any, ...], dict[str, Any]]
    ]
    convention: str
    wrong: dict[str, str]


def _normal(rng: np.random.Generator, dtype: Any, *shape: int) -> Array:
    return rng.standard_normal(shape).astype(dtype)


def _pair(
    forward: Callable[..., Any], backward: Callable[..., Any], bug: str | None
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The pair with ``bug`` bound into the backward (a named function, as students write)."""
    if bug is None:
        return forward, backward

    def planted(*args: Any) -> Any:
        return backward(*args, bug=bug)

    planted.__name__ = backward.__name__
    return forward, planted


def _indices(rng: np.random.Generator, high: int, shape: tuple[int, ...]) -> Array:
    """Integer indices with a repeat (the index pattern a wrong Embedding gets wrong)."""
    idx = rng.integers(0, high, size=shape)
    idx.flat[-1] = idx.flat[0]
    return idx


def _affine_pair(rng: np.random.Generator, dtype: Any, bug: str | None) -> Any:
    backward = {
        None: affine_backward,
        "factor": affine_backward_factor,
        "dropped": affine_backward_dropped,
    }[bug]
    return (
        (affine_forward, backward),
        (_normal(rng, dtype, 4, 2, 3), _normal(rng, dtype, 6, 3), _normal(rng, dtype, 3)),
        {},
    )


def _two_layer(rng: np.random.Generator, dtype: Any) -> list[Array]:
    return [
        _normal(rng, dtype, 4, 5),
        _normal(rng, dtype, 5),
        _normal(rng, dtype, 5, 3),
        _normal(rng, dtype, 3),
    ]


CASES: dict[str, Case] = {
    "attribute pairs": Case(
        lambda rng, dt, bug: (
            BuggyAffine(_normal(rng, dt, 4, 3), _normal(rng, dt, 3), bug),
            (_normal(rng, dt, 5, 4),),
            {},
        ),
        "W/dW attributes",
        {"factor": "W", "dropped": "b"},
    ),
    "params/grads dicts": Case(
        lambda rng, dt, bug: (
            DictAffine(_normal(rng, dt, 4, 3), _normal(rng, dt, 3), bug),
            (_normal(rng, dt, 5, 4),),
            {},
        ),
        "params/grads dicts",
        {"factor": "W", "dropped": "b"},
    ),
    "params/grads lists, in place": Case(
        lambda rng, dt, bug: (
            ListAffine(_normal(rng, dt, 4, 3), _normal(rng, dt, 3), bug),
            (_normal(rng, dt, 5, 4),),
            {},
        ),
        "params/grads lists",
        {"factor": "params[0]", "dropped": "params[1]"},
    ),
    "params/grads lists, rebound": Case(
        lambda rng, dt, bug: (
            ListAffine(_normal(rng, dt, 4, 3), _normal(rng, dt, 3), bug, rebind=True),
            (_normal(rng, dt, 5, 4),),
            {},
        ),
        "params/grads lists",
        {"factor": "params[0]", "dropped": "params[1]"},
    ),
    "embedding (integer indices)": Case(
        lambda rng, dt, bug: (
            Embedding(_normal(rng, dt, 6, 3), bug),
            (_indices(rng, 6, (2, 4)),),
            {},
        ),
        "params/grads lists",
        {"factor": "params[0]", "dropped": "params[0]"},
    ),
    "parameters/gradients, accumulating": Case(
        lambda rng, dt, bug: (
            AccumulatingDense(_normal(rng, dt, 4, 3), _normal(rng, dt, 3), bug),
            (_normal(rng, dt, 5, 4),),
            {},
        ),
        "parameters/gradients dicts (accumulating)",
        {"factor": "W", "dropped": "b"},
    ),
    "parameters/gradients with running statistics": Case(
        lambda rng, dt, bug: (
            AccumulatingBatchNorm(_normal(rng, dt, 3) + 2, _normal(rng, dt, 3), bug),
            (_normal(rng, dt, 5, 3),),
            {},
        ),
        "parameters/gradients dicts (accumulating)",
        {"factor": "scaler", "dropped": "X"},
    ),
    "loss function returning (loss, dW)": Case(
        lambda rng, dt, bug: (
            _loss_function(bug),
            (_normal(rng, dt, 4, 3), _normal(rng, dt, 5, 4), np.array([0, 2, 1, 1, 0]), 0.1),
            {},
        ),
        "loss function returning (loss, gradients)",
        {"factor": "W", "dropped": "W"},
    ),
    "function pair": Case(
        _affine_pair, "forward/backward function pair", {"factor": "w", "dropped": "b"}
    ),
    "function pair with a dict argument": Case(
        lambda rng, dt, bug: (
            _pair(batchnorm_forward, batchnorm_backward, bug),
            (
                _normal(rng, dt, 5, 3),
                _normal(rng, dt, 3) + 2,
                _normal(rng, dt, 3),
                {"mode": "train"},
            ),
            {},
        ),
        "forward/backward function pair",
        {"factor": "gamma", "dropped": "x"},
    ),
    "function pair with integer indices": Case(
        lambda rng, dt, bug: (
            _pair(word_embedding_forward, word_embedding_backward, bug),
            (_indices(rng, 6, (2, 4)), _normal(rng, dt, 6, 3)),
            {},
        ),
        "forward/backward function pair",
        {"factor": "W", "dropped": "W"},
    ),
    "function pair with two outputs": Case(
        lambda rng, dt, bug: (
            _pair(two_outputs_forward, two_outputs_backward, bug),
            (_normal(rng, dt, 4, 3), _normal(rng, dt, 3, 2), _normal(rng, dt, 3, 5)),
            {},
        ),
        "forward/backward function pair",
        {"factor": "Wc", "dropped": "x"},
    ),
    "layer with two outputs": Case(
        lambda rng, dt, bug: (
            TwoOutputs(_normal(rng, dt, 3, 2), _normal(rng, dt, 3, 5), bug),
            (_normal(rng, dt, 4, 3),),
            {},
        ),
        "params/grads lists",
        {"factor": "params[1]", "dropped": "x"},
    ),
    "model: loss returns (loss, grads)": Case(
        lambda rng, dt, bug: (
            LossNet(*_two_layer(rng, dt), bug=bug),
            (_normal(rng, dt, 6, 4), np.array([0, 2, 1, 1, 0, 2])),
            {},
        ),
        "loss → (loss, grads) model",
        {"factor": "W2", "dropped": "W1"},
    ),
    "model: forward(x, t) and backward(dout=1)": Case(
        lambda rng, dt, bug: (
            ListNet(*_two_layer(rng, dt), bug=bug),
            (_normal(rng, dt, 6, 4), np.array([0, 2, 1, 1, 0, 2])),
            {},
        ),
        "forward/backward model with params/grads lists",
        {"factor": "params[2]", "dropped": "params[3]"},
    ),
    "model: loss(x, t, train_flg)": Case(
        lambda rng, dt, bug: (
            FlagNet(_normal(rng, dt, 4, 3), bug=bug),
            (_normal(rng, dt, 6, 4), np.array([0, 2, 1, 1, 0, 2])),
            {"forward_kwargs": {"train_flg": True}},
        ),
        "params/loss/gradient model",
        {"factor": "W", "dropped": "W"},
    ),
    "composite: sublayers as attributes": Case(
        lambda rng, dt, bug: (
            ResidualBlock(
                Affine(_normal(rng, dt, 4, 3), _normal(rng, dt, 3)),
                BuggyAffine(_normal(rng, dt, 3, 4), _normal(rng, dt, 4), bug),
            ),
            (_normal(rng, dt, 5, 4),),
            {},
        ),
        "W/dW attributes; sublayers fc1 (W/dW attributes), fc2 (W/dW attributes)",
        {"factor": "fc2.W", "dropped": "fc2.b"},
    ),
    "composite: sublayers in a list": Case(
        lambda rng, dt, bug: (
            Sequential(
                [
                    ListAffine(_normal(rng, dt, 4, 3), _normal(rng, dt, 3), bug),
                    Relu(),
                    DictAffine(_normal(rng, dt, 3, 2), _normal(rng, dt, 2)),
                ]
            ),
            (_normal(rng, dt, 5, 4),),
            {},
        ),
        "W/dW attributes; sublayers layers[0] (params/grads lists), layers[2] (params/grads dicts)",
        {"factor": "layers[0].params[0]", "dropped": "layers[0].params[1]"},
    ),
}
