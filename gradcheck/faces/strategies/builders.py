"""How each reference layer is drawn: its inputs, its parameters, and the layer itself.

One builder per layer of :mod:`reference_layers`, each ``(draw, dtype) -> (layer, inputs)``
and collected in ``_BUILDERS``. The draws avoid what would make a correct gradient look
wrong: kinks (ReLU at 0, ties in max pooling), vanishing spreads under normalisation, and
gradients that cancel to rounding noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from gradcheck.faces.strategies.arrays import well_conditioned_arrays
from gradcheck.faces.strategies.shapes import affine_shapes, conv_shapes, pooling_shapes
from gradcheck.faces.strategies.targets import labels, one_hot
from gradcheck.faces.strategies.validation import Shape

_ACTIVATIONS: tuple[Literal["relu", "sigmoid", "tanh"], ...] = ("relu", "sigmoid", "tanh")
_Builder = Callable[[st.DrawFn, np.dtype[Any]], tuple[Any, tuple[Any, ...]]]


def _values(
    draw: st.DrawFn,
    shape: Shape,
    dtype: np.dtype[Any],
    *,
    kinks: Sequence[float] = (),
    max_magnitude: float = 3.0,
) -> NDArray[Any]:
    return draw(
        well_conditioned_arrays(shape=shape, dtype=dtype, kinks=kinks, max_magnitude=max_magnitude)
    )


def _spread(draw: st.DrawFn, shape: Shape, dtype: np.dtype[Any], axis: int) -> NDArray[Any]:
    """Values whose spread along ``axis`` is at least 0.5, for normalisation layers.

    A ramp of step 1 along ``axis`` plus noise below 0.25: normalising over ``axis``
    never divides by a vanishing standard deviation.
    """
    noise = draw(well_conditioned_arrays(shape=shape, dtype=dtype, kinks=(), max_magnitude=0.25))
    ramp_shape = [1] * len(shape)
    ramp_shape[axis] = shape[axis]
    ramp = np.arange(shape[axis]) - (shape[axis] - 1) / 2
    order = draw(st.permutations(range(shape[axis])))
    return (noise + ramp[list(order)].reshape(ramp_shape)).astype(dtype)


def _distinct(
    draw: st.DrawFn, shape: Shape, dtype: np.dtype[Any], max_magnitude: float = 2.0
) -> NDArray[Any]:
    """Values ``±(k + 1/2)·step`` for a permutation ``k``: no ties, no zeros.

    For max pooling, where a tie is a kink, and for weights, where equal columns make a
    gradient vanish by cancellation (leaving only rounding noise to compare).
    """
    size = math.prod(shape)
    order = np.array(draw(st.permutations(range(size))), dtype=np.float64)
    signs = draw(hnp.arrays(np.int8, size, elements=st.sampled_from([-1, 1])))
    step = max_magnitude / max(size, 1)
    return (signs * (order + 0.5) * step).reshape(shape).astype(dtype)


def _batch_shape(draw: st.DrawFn, *, max_dims: int = 3) -> Shape:
    return draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=4))


def _elementwise(cls_name: str, kinks: Sequence[float] = ()) -> _Builder:
    def build(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
        import reference_layers as rl

        cls = getattr(rl, cls_name)
        layer = (
            cls(alpha=draw(st.sampled_from([0.01, 0.1, 0.3]))) if cls_name == "LeakyRelu" else cls()
        )
        return layer, (_values(draw, _batch_shape(draw), dtype, kinks=kinks),)

    return build


def _binary(cls_name: str) -> _Builder:
    def build(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
        import reference_layers as rl

        shape = _batch_shape(draw)
        return getattr(rl, cls_name)(), (_values(draw, shape, dtype), _values(draw, shape, dtype))

    return build


def _affine(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
    from reference_layers import Affine

    shapes = draw(affine_shapes())
    layer = Affine(_values(draw, shapes.W, dtype), _values(draw, shapes.b, dtype))
    return layer, (_values(draw, shapes.x, dtype),)


def _scores_and_targets(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    batch = draw(st.none() | st.integers(1, 4))
    classes = draw(st.integers(2, 4))
    shape = (classes,) if batch is None else (batch, classes)
    target = draw(labels(batch, classes) | one_hot(batch, classes, dtype=dtype))
    return _values(draw, shape, dtype), target


def _softmax_with_loss(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
    from reference_layers import SoftmaxWithLoss

    return SoftmaxWithLoss(), _scores_and_targets(draw, dtype)


def _mean_squared_error(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
    from reference_layers import MeanSquaredError

    shape = _batch_shape(draw, max_dims=2)
    return MeanSquaredError(), (_values(draw, shape, dtype), _values(draw, shape, dtype))


def _dropout(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
    from reference_layers import Dropout

    layer = Dropout(draw(st.sampled_from([0.0, 0.2, 0.5])), seed=draw(st.integers(0, 2**16)))
    return layer, (_values(draw, _batch_shape(draw), dtype),)


def _gamma_beta(
    draw: st.DrawFn, features: int, dtype: np.dtype[Any]
) -> tuple[NDArray[Any], NDArray[Any]]:
    gamma = draw(
        well_conditioned_arrays(
            shape=(features,), dtype=dtype, min_magnitude=0.5, max_magnitude=2.0
        )
    )
    return gamma, _values(draw, (features,), dtype)


def _batch_normalization(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
    from reference_layers import BatchNormalization

    images = draw(st.booleans())
    # Two samples normalise to exactly ±1 whatever x is: dx vanishes by cancellation and
    # only rounding noise is left to compare. Three or more keep dx well-conditioned.
    shape = (draw(st.integers(3, 5)), *((2, 2, 2) if images else (draw(st.integers(1, 4)),)))
    gamma, beta = _gamma_beta(draw, math.prod(shape[1:]), dtype)
    return BatchNormalization(gamma, beta), (_spread(draw, shape, dtype, axis=0),)


def _layer_norm(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
    from reference_layers import LayerNorm

    shape = (draw(st.integers(1, 4)), draw(st.integers(3, 5)))  # 3+: see BatchNormalization
    gamma, beta = _gamma_beta(draw, shape[1], dtype)
    return LayerNorm(gamma, beta), (_spread(draw, shape, dtype, axis=1),)


def _convolution(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
    from reference_layers import Convolution

    shapes = draw(conv_shapes())
    W, b = _values(draw, shapes.W, dtype, max_magnitude=1.0), _values(draw, shapes.b, dtype)
    layer = Convolution(W, b, stride=shapes.stride, pad=shapes.pad)
    return layer, (_values(draw, shapes.x, dtype),)


def _pooling(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
    from reference_layers import Pooling

    shapes = draw(pooling_shapes())
    layer = Pooling(shapes.pool_h, shapes.pool_w, stride=shapes.stride, pad=shapes.pad)
    return layer, (_distinct(draw, shapes.x, dtype),)


def _net(cls_name: str) -> _Builder:
    def build(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, tuple[Any, ...]]:
        import reference_layers as rl

        sizes = draw(st.lists(st.integers(1, 5), min_size=3, max_size=4))
        inputs, *hidden, outputs = sizes
        outputs = max(outputs, 2)
        net: Any
        if cls_name == "TwoLayerNet":
            net = rl.TwoLayerNet(inputs, hidden[0], outputs, dtype=dtype)
        else:
            activation = draw(st.sampled_from(_ACTIVATIONS))
            net = rl.MultiLayerNet(inputs, hidden, outputs, activation=activation, dtype=dtype)
        for param in net.params.values():  # in place: the layers share these arrays
            param[...] = _distinct(draw, param.shape, dtype, max_magnitude=1.0)
        batch = draw(st.integers(1, 4))
        # Moderate scores: a saturated softmax makes the gradient y - t vanish by
        # cancellation, which float32 cannot resolve.
        x = _values(draw, (batch, inputs), dtype, max_magnitude=1.0)
        _keep_relus_off_their_kinks(draw, net.layers, x)
        return net, (x, draw(labels(batch, outputs) | one_hot(batch, outputs, dtype=dtype)))

    return build


def _keep_relus_off_their_kinks(draw: st.DrawFn, layers: Any, x: NDArray[Any]) -> None:
    """Redraw the bias of every Affine that feeds a Relu so no pre-activation is near 0.

    Unit ``j`` has a kink where ``b[j] = -(a @ W)[i, j]`` for some sample ``i``: those are
    the kinks of :func:`well_conditioned_arrays` for ``b[j]``.
    """
    from reference_layers import Affine, Relu

    chain = list(layers.values())
    a = x
    for layer, following in zip(chain, [*chain[1:], None], strict=True):
        if isinstance(layer, Affine) and isinstance(following, Relu):
            product = a.reshape(len(a), -1).astype(np.float64) @ layer.W.astype(np.float64)
            for j in range(layer.b.size):
                layer.b[j] = draw(
                    well_conditioned_arrays(
                        shape=(),
                        dtype=layer.b.dtype,
                        max_magnitude=1.0,
                        kinks=tuple(-product[:, j]),
                        margin=0.1,
                    )
                )
        a = layer.forward(a)


_BUILDERS: dict[str, _Builder] = {
    "MulLayer": _binary("MulLayer"),
    "AddLayer": _binary("AddLayer"),
    "Relu": _elementwise("Relu", kinks=(0.0,)),
    "Sigmoid": _elementwise("Sigmoid"),
    "Tanh": _elementwise("Tanh"),
    "LeakyRelu": _elementwise("LeakyRelu", kinks=(0.0,)),
    "Softplus": _elementwise("Softplus"),
    "Softmax": _elementwise("Softmax"),
    "Affine": _affine,
    "SoftmaxWithLoss": _softmax_with_loss,
    "MeanSquaredError": _mean_squared_error,
    "Dropout": _dropout,
    "BatchNormalization": _batch_normalization,
    "LayerNorm": _layer_norm,
    "Convolution": _convolution,
    "Pooling": _pooling,
    "TwoLayerNet": _net("TwoLayerNet"),
    "MultiLayerNet": _net("MultiLayerNet"),
}
