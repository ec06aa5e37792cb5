"""Shapes that fit together: fully connected, convolution and pooling layers.

Every strategy here draws sizes in an order that makes the constraints hold by
construction (a window no larger than the padded image), so no draw is rejected and the
output of a layer is never empty.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from hypothesis import strategies as st

from gradcheck.faces.strategies.validation import Shape, _check_int, _check_limits


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

    Parameters
    ----------
    max_batch, max_input_dims, max_side, max_outputs : int
        Upper bounds (>= 1) of ``N``, ``k``, every ``d_i`` and ``M``.

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(affine_shapes(max_input_dims=3))
    ... def test_affine_shapes(shapes):
    ...     x_shape, W_shape, b_shape = shapes
    ...     assert math.prod(x_shape[1:]) == W_shape[0]
    >>> test_affine_shapes()
    """
    batch, dims, side, outputs = _check_limits(
        max_batch=max_batch,
        max_input_dims=max_input_dims,
        max_side=max_side,
        max_outputs=max_outputs,
    )

    @st.composite
    def draw(draw: st.DrawFn) -> AffineShapes:
        n = draw(st.integers(1, batch))
        sides = draw(st.lists(st.integers(1, side), min_size=1, max_size=dims))
        m = draw(st.integers(1, outputs))
        features = math.prod(sides)
        return AffineShapes((n, *sides), (features, m), (m,))

    return draw()


# --------------------------------------------------------------------------- windows


class _Window(NamedTuple):
    """An image's height and width, its padding, a window that fits it, and a stride."""

    h: int
    w: int
    pad: int
    window_h: int
    window_w: int
    stride: int


def _draw_window(
    draw: st.DrawFn, *, max_side: int, max_pad: int, max_window: int, max_stride: int
) -> _Window:
    """The image side first, then the padding, then a window no larger than the padded image."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    p = draw(st.integers(0, max_pad))
    wh = draw(st.integers(1, min(max_window, h + 2 * p)))
    ww = draw(st.integers(1, min(max_window, w + 2 * p)))
    s = draw(st.integers(1, max_stride))
    return _Window(h, w, p, wh, ww, s)


def _output_sides(
    x: tuple[int, int, int, int], window: tuple[int, int], stride: int, pad: int
) -> tuple[int, int]:
    """``(OH, OW)`` of a window sliding over the images ``x = (N, C, H, W)``."""
    (_, _, h, w), (wh, ww) = x, window
    return (h + 2 * pad - wh) // stride + 1, (w + 2 * pad - ww) // stride + 1


# --------------------------------------------------------------------------- convolution


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
        oh, ow = _output_sides(self.x, self.W[2:], self.stride, self.pad)
        return self.x[0], self.W[0], oh, ow


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

    Parameters
    ----------
    max_batch, max_channels, max_filters, max_side, max_kernel, max_stride : int
        Upper bounds (>= 1) of ``N``, ``C``, ``FN``, the image sides, the kernel sides
        and the stride.
    max_pad : int
        Upper bound (>= 0) of the padding.

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(conv_shapes())
    ... def test_output_is_never_empty(shapes):
    ...     assert min(shapes.out) >= 1
    >>> test_output_is_never_empty()
    """
    batch, channels, filters, side, kernel, stride = _check_limits(
        max_batch=max_batch,
        max_channels=max_channels,
        max_filters=max_filters,
        max_side=max_side,
        max_kernel=max_kernel,
        max_stride=max_stride,
    )
    pad = _check_int("max_pad", max_pad, minimum=0)

    @st.composite
    def draw(draw: st.DrawFn) -> ConvShapes:
        n, c, fn = (draw(st.integers(1, top)) for top in (batch, channels, filters))
        win = _draw_window(draw, max_side=side, max_pad=pad, max_window=kernel, max_stride=stride)
        x = (n, c, win.h, win.w)
        return ConvShapes(x, (fn, c, win.window_h, win.window_w), (fn,), win.stride, win.pad)

    return draw()


# --------------------------------------------------------------------------- pooling


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
        oh, ow = _output_sides(self.x, (self.pool_h, self.pool_w), self.stride, self.pad)
        return self.x[0], self.x[1], oh, ow


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

    Parameters
    ----------
    max_batch, max_channels, max_side, max_pool, max_stride : int
        Upper bounds (>= 1) of ``N``, ``C``, ``H`` and ``W``, the window sides and the
        stride.
    max_pad : int
        Upper bound (>= 0) of the padding.

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(pooling_shapes(max_pool=2))
    ... def test_pooling_output(shapes):
    ...     assert min(shapes.out) >= 1
    >>> test_pooling_output()
    """
    batch, channels, side, pool, stride = _check_limits(
        max_batch=max_batch,
        max_channels=max_channels,
        max_side=max_side,
        max_pool=max_pool,
        max_stride=max_stride,
    )
    pad = _check_int("max_pad", max_pad, minimum=0)

    @st.composite
    def draw(draw: st.DrawFn) -> PoolingShapes:
        n, c = draw(st.integers(1, batch)), draw(st.integers(1, channels))
        win = _draw_window(draw, max_side=side, max_pad=pad, max_window=pool, max_stride=stride)
        return PoolingShapes((n, c, win.h, win.w), win.window_h, win.window_w, win.stride, win.pad)

    return draw()
