"""Shapes that fit together: fully connected, convolution and pooling layers.

Every strategy here draws sizes in an order that makes the constraints hold by
construction (a window no larger than the padded image), so no draw is rejected and the
output of a layer is never empty.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from hypothesis import strategies as st

from gradcheck.faces.strategies.validation import Shape, _check_int


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
