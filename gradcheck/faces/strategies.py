"""Hypothesis strategies for gradient checks: well-conditioned inputs, fitting shapes, cases.

In the manner of :mod:`hypothesis.extra.numpy`: keyword-only arguments, validated when the
strategy is made (an :class:`~hypothesis.errors.InvalidArgument` that says what to
change), short examples in every docstring.

* :func:`well_conditioned_arrays` — finite, normal floats of bounded magnitude, kept a
  margin away from the points where a layer is not differentiable (ReLU at 0). Built
  from the allowed intervals directly, never by rejecting draws, and exact at float32.
* :func:`affine_shapes`, :func:`conv_shapes`, :func:`pooling_shapes` — shapes that fit
  together (the output of a convolution is never empty).
* :func:`labels`, :func:`one_hot` — classification targets, batched or single-sample.
* :func:`reference_cases` — a ready ``(name, layer, inputs, dtype)`` for every layer of
  :mod:`reference_layers`, so one ``@given`` test sweeps them all.

Settings profiles, registered when this module is imported:

``gradcheck``
    No deadline (a check runs many forward passes), 50 examples, the ``too_slow`` health
    check suppressed. ``settings.load_profile("gradcheck")``.
``gradcheck-ci``
    The same with 15 examples, derandomized and without the example database, so a CI run
    draws the same cases every time.

>>> from hypothesis import given
>>> @given(reference_cases())
... def test_reference_layers(gradcheck, case):     # with the pytest plugin's fixture
...     gradcheck(case.layer, *case.inputs)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp
from numpy.typing import DTypeLike, NDArray

__all__ = [
    "REFERENCE_NAMES",
    "AffineShapes",
    "ConvShapes",
    "PoolingShapes",
    "ReferenceCase",
    "affine_shapes",
    "conv_shapes",
    "labels",
    "one_hot",
    "pooling_shapes",
    "reference_cases",
    "well_conditioned_arrays",
]

settings.register_profile(
    "gradcheck",
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "gradcheck-ci",
    settings.get_profile("gradcheck"),
    max_examples=15,
    derandomize=True,
    database=None,
)

# Central differences step up to 2·ε^(1/3)·max(|x|, 1) from the point: about 1e-2 at
# float32 (for a layer that computes in float32 whatever its input) and 1.2e-5 at float64.
# The default margin is five times the float32 step. (Richardson extrapolation steps up to
# 4·ε^(1/5)·max(|x|, 1), 0.16 at float32; elements that close to a kink are skipped as kinks
# by the check, not failed.)
_DEFAULT_MARGIN = 0.05
_WIDTHS: dict[np.dtype[Any], Literal[16, 32, 64]] = {
    np.dtype(np.float16): 16, np.dtype(np.float32): 32, np.dtype(np.float64): 64,
}

Shape = tuple[int, ...]


# --------------------------------------------------------------------------- validation


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgument(f"{name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise InvalidArgument(f"{name}={value!r} must be >= {minimum}")
    return int(value)


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidArgument(f"{name}={value!r} must be a real number")
    if not math.isfinite(value):
        raise InvalidArgument(f"{name}={value!r} must be finite")
    return float(value)


def _float_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise InvalidArgument(f"dtype={dtype!r} is not a NumPy dtype") from None
    if resolved not in _WIDTHS:
        raise InvalidArgument(
            f"dtype={dtype!r} is not supported; use np.float64, np.float32 or np.float16"
        )
    return resolved


def _check_shape(shape: Any) -> Shape | st.SearchStrategy[Shape]:
    if isinstance(shape, st.SearchStrategy):
        return shape
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple) or not all(
        isinstance(side, int | np.integer) and not isinstance(side, bool) and side >= 0
        for side in shape
    ):
        raise InvalidArgument(
            f"shape={shape!r} must be a tuple of sizes >= 0, an int, or a strategy of shapes "
            "(e.g. hypothesis.extra.numpy.array_shapes())"
        )
    return tuple(int(side) for side in shape)


# --------------------------------------------------------------------------- values


def _round_inward(low: float, high: float, dtype: np.dtype[Any]) -> tuple[float, float] | None:
    """``[low, high]`` shrunk to the nearest normal (or zero) values of ``dtype``."""
    info = np.finfo(dtype)
    tiny = float(info.tiny)
    # Snap bounds in the subnormal range to zero or the smallest normal, inward.
    if 0 < low < tiny:
        low = tiny
    elif -tiny < low < 0:
        low = 0.0
    if 0 < high < tiny:
        high = 0.0
    elif -tiny < high < 0:
        high = -tiny
    lo, hi = dtype.type(low), dtype.type(high)
    if float(lo) < low:
        lo = np.nextafter(lo, dtype.type(np.inf))
    if float(hi) > high:
        hi = np.nextafter(hi, dtype.type(-np.inf))
    if lo > hi:
        return None
    return float(lo), float(hi)


def _allowed_intervals(
    min_magnitude: float,
    max_magnitude: float,
    kinks: Sequence[float],
    margin: float,
    dtype: np.dtype[Any],
) -> list[tuple[float, float]]:
    """Closed intervals of ``dtype`` values with ``min <= |x| <= max``, ``|x - k| >= margin``.

    Bounds are exact: every value of ``dtype`` inside an interval satisfies the margin when
    measured in float64, so nothing is lost when a float32 draw is widened.
    """
    if min_magnitude == 0:
        intervals = [(-max_magnitude, max_magnitude)]
    else:
        intervals = [(-max_magnitude, -min_magnitude), (min_magnitude, max_magnitude)]
    for kink in sorted(set(kinks)):
        low, high = kink - margin, kink + margin
        while kink - low < margin:  # undo rounding of kink ± margin towards the kink
            low = float(np.nextafter(low, -np.inf))
        while high - kink < margin:
            high = float(np.nextafter(high, np.inf))
        kept = []
        for a, b in intervals:  # remove the open interval (low, high)
            if a <= low:
                kept.append((a, min(b, low)))
            if b >= high:
                kept.append((max(a, high), b))
        intervals = kept
    rounded = (_round_inward(a, b, dtype) for a, b in intervals)
    return [interval for interval in rounded if interval is not None]


def well_conditioned_arrays(
    *,
    shape: int | Shape | st.SearchStrategy[Shape],
    dtype: DTypeLike = np.float64,
    min_magnitude: float = 1e-3,
    max_magnitude: float = 10.0,
    kinks: Sequence[float] = (0.0,),
    margin: float = _DEFAULT_MARGIN,
) -> st.SearchStrategy[NDArray[np.floating[Any]]]:
    """Arrays of finite, normal floats that a gradient check can trust.

    Every element ``x`` satisfies ``min_magnitude <= |x| <= max_magnitude`` and
    ``|x - k| >= margin`` for every kink ``k`` — exactly, for the value of ``dtype`` (a
    float32 element keeps the margin; nothing is rounded after drawing). Subnormal numbers
    never appear. Values are drawn from the allowed intervals directly (no ``.filter``),
    so no draw is ever rejected.

    Parameters
    ----------
    shape : int, tuple of int, or strategy of tuples
        Shape of the arrays.
    dtype : np.float64, np.float32 or np.float16
        Element type; values are drawn at this width.
    min_magnitude : float
        Smallest ``|x|``; 0 allows zero itself (unless a kink excludes it). The default
        ``1e-3`` keeps products of inputs far from underflow.
    max_magnitude : float
        Largest ``|x|``; keeps activations out of their flat, ill-conditioned tails.
    kinks : sequence of float
        Points where the layer is not differentiable: 0 for ReLU and LeakyReLU, ``±c`` for
        clipping at ``c``. Pass ``()`` for smooth layers.
    margin : float
        Smallest distance from a kink. It should exceed gradcheck's central-difference step
        near the kink, ``2·ε^(1/3)·max(|k|, 1)``: about ``1e-2·max(|k|, 1)`` for layers that
        compute in float32, ``1.2e-5·max(|k|, 1)`` in float64 (closer elements are skipped
        as kinks, not checked). The default is 0.05.

    Raises
    ------
    InvalidArgument
        For a bad argument, or when no value satisfies all the constraints.

    Examples
    --------
    >>> relu_inputs = well_conditioned_arrays(shape=(3, 4), max_magnitude=2.0)
    >>> clip_inputs = well_conditioned_arrays(shape=5, kinks=(-1.0, 1.0), margin=0.1)
    >>> float32_inputs = well_conditioned_arrays(shape=(2, 3), dtype=np.float32)
    """
    checked_shape = _check_shape(shape)
    resolved = _float_dtype(dtype)
    low = _check_number("min_magnitude", min_magnitude)
    high = _check_number("max_magnitude", max_magnitude)
    gap = _check_number("margin", margin)
    if isinstance(kinks, str) or not isinstance(kinks, Sequence):
        raise InvalidArgument(f"kinks={kinks!r} must be a sequence of numbers, e.g. (0.0,)")
    points = [_check_number(f"kinks[{i}]", k) for i, k in enumerate(kinks)]
    info = np.finfo(resolved)
    if not 0 <= low <= high:
        raise InvalidArgument(
            f"need 0 <= min_magnitude <= max_magnitude; got min_magnitude={min_magnitude!r}, "
            f"max_magnitude={max_magnitude!r}"
        )
    if high == 0 or high > float(info.max):
        raise InvalidArgument(
            f"max_magnitude={max_magnitude!r} must be > 0 and at most the largest "
            f"{resolved} ({float(info.max):.6g})"
        )
    if 0 < low < float(info.tiny):
        raise InvalidArgument(
            f"min_magnitude={min_magnitude!r} is subnormal in {resolved}; use 0 or at least "
            f"{float(info.tiny):.6g}"
        )
    if gap <= 0:
        raise InvalidArgument(
            f"margin={margin!r} must be > 0 (the distance kept from every kink); pass "
            "kinks=() for a smooth layer"
        )
    intervals = _allowed_intervals(low, high, points, gap, resolved)
    if not intervals:
        raise InvalidArgument(
            f"no {resolved} value has {low} <= |x| <= {high} and lies {gap} away from the "
            f"kinks {tuple(points)}; raise max_magnitude or reduce margin"
        )
    width = _WIDTHS[resolved]
    elements = st.one_of(
        [
            st.floats(a, b, width=width, allow_nan=False, allow_infinity=False,
                      allow_subnormal=False)
            for a, b in intervals
        ]
    )
    return hnp.arrays(resolved, checked_shape, elements=elements)


# --------------------------------------------------------------------------- shapes


class AffineShapes(NamedTuple):
    """Shapes for :class:`~reference_layers.Affine`: ``x @ W + b`` after flattening ``x``."""

    x: Shape
    W: tuple[int, int]
    b: tuple[int]


def affine_shapes(
    *,
    max_batch: int = 4,
    max_input_dims: int = 2,
    max_side: int = 4,
    max_outputs: int = 4,
) -> st.SearchStrategy[AffineShapes]:
    """Fitting shapes ``(x, W, b)`` of a fully connected layer.

    ``x`` is ``(N, d1, ..., dk)`` with ``1 <= k <= max_input_dims`` (an image batch is
    flattened per sample to ``D = d1·...·dk``), ``W`` is ``(D, M)`` and ``b`` is ``(M,)``.
    ``N = 1`` is included and is where the simplest examples shrink to.

    Examples
    --------
    >>> @given(affine_shapes(max_input_dims=3))                     # doctest: +SKIP
    ... def test_affine_shapes(shapes):
    ...     x_shape, W_shape, b_shape = shapes
    ...     assert math.prod(x_shape[1:]) == W_shape[0]
    """
    batch = _check_int("max_batch", max_batch, minimum=1)
    dims = _check_int("max_input_dims", max_input_dims, minimum=1)
    side = _check_int("max_side", max_side, minimum=1)
    outputs = _check_int("max_outputs", max_outputs, minimum=1)

    @st.composite
    def draw(draw: st.DrawFn) -> AffineShapes:
        n = draw(st.integers(1, batch))
        sides = draw(st.lists(st.integers(1, side), min_size=1, max_size=dims))
        m = draw(st.integers(1, outputs))
        features = math.prod(sides)
        return AffineShapes((n, *sides), (features, m), (m,))

    return draw()


def _output_size(size: int, window: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - window) // stride + 1


class ConvShapes(NamedTuple):
    """Shapes and hyper-parameters of a :class:`~reference_layers.Convolution`."""

    x: tuple[int, int, int, int]
    W: tuple[int, int, int, int]
    b: tuple[int]
    stride: int
    pad: int

    @property
    def out(self) -> tuple[int, int, int, int]:
        """``(N, FN, OH, OW)``; every side is at least 1."""
        n, _, h, w = self.x
        filters, _, fh, fw = self.W
        return (
            n,
            filters,
            _output_size(h, fh, self.stride, self.pad),
            _output_size(w, fw, self.stride, self.pad),
        )


def conv_shapes(
    *,
    max_batch: int = 2,
    max_channels: int = 3,
    max_filters: int = 3,
    max_side: int = 5,
    max_kernel: int = 3,
    max_stride: int = 2,
    max_pad: int = 1,
) -> st.SearchStrategy[ConvShapes]:
    """Images, filters, stride and padding that fit: the output has every side >= 1.

    The image side is drawn first, then the padding, then a kernel no larger than the
    padded image — so no draw is rejected.

    Examples
    --------
    >>> @given(conv_shapes())                                       # doctest: +SKIP
    ... def test_output_is_never_empty(shapes):
    ...     assert min(shapes.out) >= 1
    """
    batch = _check_int("max_batch", max_batch, minimum=1)
    channels = _check_int("max_channels", max_channels, minimum=1)
    filters = _check_int("max_filters", max_filters, minimum=1)
    side = _check_int("max_side", max_side, minimum=1)
    kernel = _check_int("max_kernel", max_kernel, minimum=1)
    stride = _check_int("max_stride", max_stride, minimum=1)
    pad = _check_int("max_pad", max_pad, minimum=0)

    @st.composite
    def draw(draw: st.DrawFn) -> ConvShapes:
        n, c, fn = (draw(st.integers(1, top)) for top in (batch, channels, filters))
        h, w = draw(st.integers(1, side)), draw(st.integers(1, side))
        p = draw(st.integers(0, pad))
        fh = draw(st.integers(1, min(kernel, h + 2 * p)))
        fw = draw(st.integers(1, min(kernel, w + 2 * p)))
        s = draw(st.integers(1, stride))
        return ConvShapes((n, c, h, w), (fn, c, fh, fw), (fn,), s, p)

    return draw()


class PoolingShapes(NamedTuple):
    """Input shape and window of a :class:`~reference_layers.Pooling` layer."""

    x: tuple[int, int, int, int]
    pool_h: int
    pool_w: int
    stride: int
    pad: int

    @property
    def out(self) -> tuple[int, int, int, int]:
        """``(N, C, OH, OW)``; every side is at least 1."""
        n, c, h, w = self.x
        return (
            n,
            c,
            _output_size(h, self.pool_h, self.stride, self.pad),
            _output_size(w, self.pool_w, self.stride, self.pad),
        )


def pooling_shapes(
    *,
    max_batch: int = 2,
    max_channels: int = 3,
    max_side: int = 6,
    max_pool: int = 3,
    max_stride: int = 3,
    max_pad: int = 0,
) -> st.SearchStrategy[PoolingShapes]:
    """An input ``(N, C, H, W)`` and a pooling window that fits it (output sides >= 1).

    Examples
    --------
    >>> @given(pooling_shapes(max_pool=2))                          # doctest: +SKIP
    ... def test_pooling_output(shapes):
    ...     assert min(shapes.out) >= 1
    """
    batch = _check_int("max_batch", max_batch, minimum=1)
    channels = _check_int("max_channels", max_channels, minimum=1)
    side = _check_int("max_side", max_side, minimum=1)
    pool = _check_int("max_pool", max_pool, minimum=1)
    stride = _check_int("max_stride", max_stride, minimum=1)
    pad = _check_int("max_pad", max_pad, minimum=0)

    @st.composite
    def draw(draw: st.DrawFn) -> PoolingShapes:
        n, c = draw(st.integers(1, batch)), draw(st.integers(1, channels))
        h, w = draw(st.integers(1, side)), draw(st.integers(1, side))
        p = draw(st.integers(0, pad))
        ph = draw(st.integers(1, min(pool, h + 2 * p)))
        pw = draw(st.integers(1, min(pool, w + 2 * p)))
        s = draw(st.integers(1, stride))
        return PoolingShapes((n, c, h, w), ph, pw, s, p)

    return draw()


# --------------------------------------------------------------------------- targets


def _check_batch(batch_size: Any) -> Shape:
    if batch_size is None:
        return ()
    return (_check_int("batch_size", batch_size, minimum=1),)


def labels(
    batch_size: int | None, classes: int, *, dtype: DTypeLike = np.int64
) -> st.SearchStrategy[NDArray[np.integer[Any]]]:
    """Integer class labels in ``[0, classes)``: shape ``(batch_size,)``, or ``()`` for None.

    ``batch_size=None`` is the single-sample case: one label for scores of shape
    ``(classes,)``.

    Examples
    --------
    >>> batch_targets = labels(4, classes=3)
    >>> single_target = labels(None, classes=3)
    """
    shape = _check_batch(batch_size)
    count = _check_int("classes", classes, minimum=1)
    resolved = np.dtype(dtype)
    if resolved.kind not in "iu":
        raise InvalidArgument(f"dtype={dtype!r} must be an integer dtype, e.g. np.int64")
    return hnp.arrays(resolved, shape, elements=st.integers(0, count - 1))


def one_hot(
    batch_size: int | None, classes: int, *, dtype: DTypeLike = np.float64
) -> st.SearchStrategy[NDArray[np.floating[Any]]]:
    """One-hot target rows: ``(batch_size, classes)``, or ``(classes,)`` for None.

    Examples
    --------
    >>> batch_targets = one_hot(4, classes=3)
    >>> single_target = one_hot(None, classes=3, dtype=np.float32)
    """
    resolved = _float_dtype(dtype)
    count = _check_int("classes", classes, minimum=1)
    eye = np.eye(count, dtype=resolved)
    return labels(batch_size, count).map(lambda t: eye[t])


# --------------------------------------------------------------------------- reference cases


class ReferenceCase(NamedTuple):
    """A reference layer ready to check: ``gradcheck(case.layer, *case.inputs)``."""

    name: str
    layer: Any
    inputs: tuple[Any, ...]
    dtype: np.dtype[Any]

    def __repr__(self) -> str:
        arrays = {
            key: value for key, value in vars(self.layer).items()
            if isinstance(value, np.ndarray | int | float) and not key.startswith("d")
        }
        params = getattr(self.layer, "params", None)
        if isinstance(params, dict):
            arrays.update(params)
        state = ", ".join(f"{key}={value!r}" for key, value in arrays.items())
        return (
            f"ReferenceCase(name={self.name!r}, dtype={self.dtype.name}, "
            f"layer={type(self.layer).__name__}({state}), inputs={self.inputs!r})"
        )


_ACTIVATIONS: tuple[Literal["relu", "sigmoid", "tanh"], ...] = ("relu", "sigmoid", "tanh")
_Builder = Callable[[st.DrawFn, np.dtype[Any]], tuple[Any, tuple[Any, ...]]]


def _values(
    draw: st.DrawFn, shape: Shape, dtype: np.dtype[Any], *, kinks: Sequence[float] = (),
    max_magnitude: float = 3.0,
) -> NDArray[Any]:
    return draw(
        well_conditioned_arrays(shape=shape, dtype=dtype, kinks=kinks, max_magnitude=max_magnitude)
    )


def _spread(
    draw: st.DrawFn, shape: Shape, dtype: np.dtype[Any], axis: int
) -> NDArray[Any]:
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
        layer = cls(alpha=draw(st.sampled_from([0.01, 0.1, 0.3]))) if cls_name == "LeakyRelu" \
            else cls()
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


def _scores_and_targets(
    draw: st.DrawFn, dtype: np.dtype[Any]
) -> tuple[NDArray[Any], NDArray[Any]]:
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
    gamma = draw(well_conditioned_arrays(
        shape=(features,), dtype=dtype, min_magnitude=0.5, max_magnitude=2.0
    ))
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
                layer.b[j] = draw(well_conditioned_arrays(
                    shape=(), dtype=layer.b.dtype, max_magnitude=1.0,
                    kinks=tuple(-product[:, j]), margin=0.1,
                ))
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

#: Names of the reference layers that :func:`reference_cases` draws from.
REFERENCE_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def reference_cases(
    *,
    dtypes: Sequence[DTypeLike] = (np.float64, np.float32),
    names: Sequence[str] | None = None,
) -> st.SearchStrategy[ReferenceCase]:
    """A reference layer with drawn inputs and parameters, ready to check.

    Inputs come from the strategies of this module (shapes included), not from the
    layers' fixed ``example``; parameters are drawn too, all in the drawn dtype.

    Parameters
    ----------
    dtypes : sequence of dtypes
        Float dtypes to draw from, for inputs and parameters alike.
    names : sequence of str, optional
        Restrict to these layers (default: every layer in ``REFERENCE_NAMES``).

    Examples
    --------
    >>> @given(reference_cases(names=["Affine", "Relu"], dtypes=[np.float32]))
    ... def test_some(gradcheck, case):                              # doctest: +SKIP
    ...     gradcheck(case.layer, *case.inputs)
    """
    if isinstance(dtypes, str) or not isinstance(dtypes, Sequence) or not dtypes:
        raise InvalidArgument(f"dtypes={dtypes!r} must be a non-empty sequence of float dtypes")
    resolved = [_float_dtype(dtype) for dtype in dtypes]
    chosen = REFERENCE_NAMES if names is None else tuple(names)
    unknown = [name for name in chosen if name not in _BUILDERS]
    if isinstance(names, str) or not chosen or unknown:
        raise InvalidArgument(
            f"names={names!r} must be a non-empty sequence of reference layer names; "
            f"unknown: {unknown or names!r}; known: {', '.join(REFERENCE_NAMES)}"
        )

    @st.composite
    def draw(draw: st.DrawFn) -> ReferenceCase:
        name = draw(st.sampled_from(chosen))
        dtype = draw(st.sampled_from(resolved))
        layer, inputs = _BUILDERS[name](draw, dtype)
        return ReferenceCase(name, layer, inputs, dtype)

    return draw()
