"""The chapter's networks: a two-layer net and a multi-layer net of any depth.

Both keep their parameters in a ``params`` dict whose arrays are *shared* with the Affine
layers (not copied): the textbook's ``numerical_gradient`` perturbs ``params['W1']`` in
place and the perturbation must reach the layer.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reference_layers import functions
from reference_layers.activations import Relu, Sigmoid, Tanh
from reference_layers.affine import Affine
from reference_layers.losses import SoftmaxWithLoss
from reference_layers.sampling import normal

__all__ = ["MultiLayerNet", "TwoLayerNet"]

Activation = Literal["relu", "sigmoid", "tanh"]
_ACTIVATIONS: dict[str, type[Relu] | type[Sigmoid] | type[Tanh]] = {
    "relu": Relu,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
}


class _LayerStack:
    """What both nets share: a chain of ``layers`` ending in ``lastLayer``.

    Subclasses fill ``params`` (``W1, b1, W2, b2, ...``) and ``layers`` (an ordered dict
    whose i-th Affine layer holds ``params['Wi']`` and ``params['bi']``).
    """

    params: dict[str, NDArray[Any]]
    layers: OrderedDict[str, Any]
    lastLayer: SoftmaxWithLoss  # noqa: N815 (the textbook's name)

    def predict(self, x: NDArray[Any]) -> NDArray[Any]:
        """Scores (before softmax) for a batch ``x``."""
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: NDArray[Any], t: ArrayLike) -> Any:
        """Mean cross-entropy loss of ``x`` against ``t`` (one-hot or labels)."""
        return self.lastLayer.forward(self.predict(x), t)

    def accuracy(self, x: NDArray[Any], t: ArrayLike) -> float:
        """Fraction of samples whose highest score is the target class."""
        y = self.predict(x)
        predicted = np.argmax(y, axis=1)
        return float(np.mean(predicted == functions.as_labels(t, y)))

    def numerical_gradient(self, x: NDArray[Any], t: ArrayLike) -> dict[str, NDArray[Any]]:
        """Gradients of the loss by the textbook's slow central differences."""

        def loss_W(W: NDArray[Any]) -> Any:
            # W is ignored: numerical_gradient perturbs params[key] in place, which the
            # layers share, so the loss sees the perturbation.
            return self.loss(x, t)

        return {
            key: functions.numerical_gradient(loss_W, param) for key, param in self.params.items()
        }

    def gradient(self, x: NDArray[Any], t: ArrayLike) -> dict[str, NDArray[Any]]:
        """Gradients of the loss by backpropagation, keyed like ``params``."""
        self.loss(x, t)

        dout = self.lastLayer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)

        grads = {}
        affine_layers = [layer for layer in self.layers.values() if isinstance(layer, Affine)]
        for i, layer in enumerate(affine_layers, start=1):
            assert layer.dW is not None and layer.db is not None
            grads[f"W{i}"] = layer.dW
            grads[f"b{i}"] = layer.db
        return grads


class TwoLayerNet(_LayerStack):
    """The chapter's two-layer net: ``Affine1 -> Relu1 -> Affine2 -> SoftmaxWithLoss``.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer widths.
    weight_init_std : float
        Standard deviation of the initial weights; biases start at zero.
    seed : int, numpy.random.Generator or None
        Source of the initial weights (``np.random.default_rng(seed)``).
    dtype : dtype
        Of the parameters (float64 by default).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        seed: int | np.random.Generator | None = 0,
        dtype: Any = np.float64,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": weight_init_std * normal(rng, (input_size, hidden_size), dtype),
            "b1": np.zeros(hidden_size, dtype=dtype),
            "W2": weight_init_std * normal(rng, (hidden_size, output_size), dtype),
            "b2": np.zeros(output_size, dtype=dtype),
        }
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])
        self.lastLayer = SoftmaxWithLoss()

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A ``4 -> 5 -> 3`` net, a batch of 3 samples and integer labels."""
        net = cls(4, 5, 3, weight_init_std=0.5, seed=rng, dtype=dtype)
        return net, (normal(rng, (3, 4), dtype), rng.integers(0, 3, size=3))


class MultiLayerNet(_LayerStack):
    """A fully connected net of any depth: ``(Affine -> activation) * k -> Affine``.

    Layers are named ``Affine1, Activation_function1, ..., Affine{k+1}`` as in the
    textbook; parameters ``W1, b1, ..., W{k+1}, b{k+1}``.

    Parameters
    ----------
    input_size : int
        Width of the input.
    hidden_size_list : list of int
        Width of each hidden layer (``k`` of them; may be empty).
    output_size : int
        Number of classes.
    activation : {'relu', 'sigmoid', 'tanh'}
        Activation after each hidden Affine layer.
    weight_init_std : float or {'relu', 'he', 'sigmoid', 'xavier'}
        A fixed standard deviation, or a name: ``'relu'``/``'he'`` gives
        ``sqrt(2 / fan_in)``, ``'sigmoid'``/``'xavier'`` gives ``sqrt(1 / fan_in)``.
    seed : int, numpy.random.Generator or None
        Source of the initial weights (``np.random.default_rng(seed)``).
    dtype : dtype
        Of the parameters (float64 by default).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: list[int],
        output_size: int,
        activation: Activation = "relu",
        weight_init_std: float | str = "relu",
        seed: int | np.random.Generator | None = 0,
        dtype: Any = np.float64,
    ) -> None:
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        rng = np.random.default_rng(seed)
        sizes = [input_size, *hidden_size_list, output_size]
        self.params = {}
        for i in range(1, len(sizes)):
            std = _init_std(weight_init_std, fan_in=sizes[i - 1])
            self.params[f"W{i}"] = std * normal(rng, (sizes[i - 1], sizes[i]), dtype)
            self.params[f"b{i}"] = np.zeros(sizes[i], dtype=dtype)

        self.layers = OrderedDict()
        last = len(sizes) - 1
        for i in range(1, last + 1):
            self.layers[f"Affine{i}"] = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            if i < last:
                self.layers[f"Activation_function{i}"] = _ACTIVATIONS[activation]()
        self.lastLayer = SoftmaxWithLoss()

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """A ``4 -> 5 -> 6 -> 3`` tanh net, a batch of 3 samples and integer labels."""
        net = cls(4, [5, 6], 3, activation="tanh", seed=rng, dtype=dtype)
        return net, (normal(rng, (3, 4), dtype), rng.integers(0, 3, size=3))


def _init_std(weight_init_std: float | str, fan_in: int) -> float:
    """The weight standard deviation for a layer with ``fan_in`` inputs."""
    if isinstance(weight_init_std, str):
        name = weight_init_std.lower()
        if name in ("relu", "he"):
            return float(np.sqrt(2.0 / fan_in))
        if name in ("sigmoid", "xavier"):
            return float(np.sqrt(1.0 / fan_in))
        raise ValueError(
            f"weight_init_std must be a number or one of 'relu', 'he', 'sigmoid', "
            f"'xavier'; got {weight_init_std!r}"
        )
    return float(weight_init_std)
