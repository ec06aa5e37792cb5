"""Reference layers: correct, readable NumPy backprop layers in the textbook's protocol.

Every layer has ``forward(*xs)``, which caches what ``backward`` needs, and
``backward(dout)``, which returns ``dx`` (or one gradient per differentiable input) and
stores parameter gradients in ``dW``, ``db``, ``dgamma``, ``dbeta``. Each class's
docstring gives its forward and backward formulas side by side.

Every checkable class has a classmethod ``example(rng, dtype)`` returning a ready
instance and its forward inputs; :func:`examples` collects them all.

>>> import numpy as np
>>> layer, inputs = Affine.example(np.random.default_rng(0))
>>> layer.forward(*inputs).shape
(5, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_layers import functions
from reference_layers.activations import LeakyRelu, Relu, Sigmoid, Softmax, Softplus, Tanh
from reference_layers.affine import Affine
from reference_layers.basic import AddLayer, MulLayer
from reference_layers.conv import Convolution, Pooling, col2im, im2col
from reference_layers.losses import MeanSquaredError, SoftmaxWithLoss
from reference_layers.nets import MultiLayerNet, TwoLayerNet
from reference_layers.normalization import BatchNormalization, LayerNorm
from reference_layers.regularization import Dropout

__all__ = [
    "AddLayer",
    "Affine",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "LayerNorm",
    "LeakyRelu",
    "MeanSquaredError",
    "MulLayer",
    "MultiLayerNet",
    "Pooling",
    "Relu",
    "Sigmoid",
    "Softmax",
    "SoftmaxWithLoss",
    "Softplus",
    "Tanh",
    "TwoLayerNet",
    "col2im",
    "examples",
    "functions",
    "im2col",
]

# Every class with an `example`, in the order of the textbook's chapters.
_CHECKABLE = (
    MulLayer,
    AddLayer,
    Relu,
    Sigmoid,
    Tanh,
    LeakyRelu,
    Softplus,
    Softmax,
    Affine,
    SoftmaxWithLoss,
    MeanSquaredError,
    Dropout,
    BatchNormalization,
    LayerNorm,
    Convolution,
    Pooling,
    TwoLayerNet,
    MultiLayerNet,
)


def examples(
    rng: np.random.Generator | None = None, dtype: Any = np.float64
) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    """Every checkable reference class, by name, as a ready ``(instance, inputs)`` pair.

    Parameters
    ----------
    rng : numpy.random.Generator or None
        Source of the example data; None means ``np.random.default_rng(0)``, so repeated
        calls give the same examples.
    dtype : dtype
        Float dtype of the inputs and parameters.

    Returns
    -------
    dict
        ``{class name: (instance, forward inputs)}``. Layers follow the forward/backward
        protocol; ``TwoLayerNet`` and ``MultiLayerNet`` are models (``params``,
        ``loss(x, t)``, ``gradient(x, t)``) whose inputs are ``(x, t)``.

    Examples
    --------
    >>> layer, inputs = examples()["Relu"]
    >>> out = layer.forward(*inputs)
    """
    if rng is None:
        rng = np.random.default_rng(0)
    return {cls.__name__: cls.example(rng, dtype) for cls in _CHECKABLE}
