"""Convolution and max pooling, with the textbook's im2col / col2im.

``im2col`` unrolls every filter-sized window of the input into one row, so a convolution
becomes a single matrix product; ``col2im`` is its adjoint: it adds each row back into
the window it came from (overlapping windows accumulate), which is exactly what the
backward pass needs.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from reference_layers.sampling import distinct_values, normal

__all__ = ["Convolution", "Pooling", "col2im", "im2col"]


def _output_size(size: int, filter_size: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - filter_size) // stride + 1


def im2col(
    input_data: NDArray[Any], filter_h: int, filter_w: int, stride: int = 1, pad: int = 0
) -> NDArray[Any]:
    """Unroll the windows of a batch of images into the rows of a matrix.

    Parameters
    ----------
    input_data : ndarray
        Images ``(N, C, H, W)``.
    filter_h, filter_w : int
        Window height and width.
    stride, pad : int
        Step between windows; zeros added on every side.

    Returns
    -------
    ndarray
        ``(N * out_h * out_w, C * filter_h * filter_w)``, dtype of ``input_data``; row
        ``(n, i, j)`` holds the window whose top-left corner is ``(i * stride, j * stride)``.
    """
    N, C, H, W = input_data.shape
    out_h = _output_size(H, filter_h, stride, pad)
    out_w = _output_size(W, filter_w, stride, pad)

    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], mode="constant")
    # dtype: the textbook's np.zeros(...) would silently turn float32 into float64.
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w), dtype=input_data.dtype)
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_max:stride, x:x_max:stride]

    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)


def col2im(
    col: NDArray[Any],
    input_shape: tuple[int, ...],
    filter_h: int,
    filter_w: int,
    stride: int = 1,
    pad: int = 0,
) -> NDArray[Any]:
    """Fold rows back into images, adding overlapping windows (the adjoint of im2col).

    Parameters
    ----------
    col : ndarray
        ``(N * out_h * out_w, C * filter_h * filter_w)``, as made by :func:`im2col`.
    input_shape : tuple of int
        ``(N, C, H, W)`` of the images.
    filter_h, filter_w, stride, pad : int
        As given to :func:`im2col`.

    Returns
    -------
    ndarray
        Images ``(N, C, H, W)``, dtype of ``col``; the padding is cut off.
    """
    N, C, H, W = input_shape
    out_h = _output_size(H, filter_h, stride, pad)
    out_w = _output_size(W, filter_w, stride, pad)
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)

    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1), dtype=col.dtype)
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            img[:, :, y:y_max:stride, x:x_max:stride] += col[:, :, y, x, :, :]

    return img[:, :, pad : H + pad, pad : W + pad]


class Convolution:
    """2-D convolution (cross-correlation, as in every deep-learning library).

    ==============================================  ======================================
    forward                                         backward
    ==============================================  ======================================
    ``col = im2col(x)``                             ``db = sum(dout)`` per filter
    ``out = col @ W.reshape(FN, -1).T + b``         ``dW = col.T @ dout``
                                                    ``dx = col2im(dout @ W.reshape(FN, -1))``
    ==============================================  ======================================

    Shapes: ``x (N, C, H, W)``, ``W (FN, C, FH, FW)``, ``b (FN,)``,
    ``out (N, FN, out_h, out_w)`` with ``out_h = (H + 2*pad - FH) // stride + 1``.
    """

    def __init__(self, W: NDArray[Any], b: NDArray[Any], stride: int = 1, pad: int = 0) -> None:
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x_shape: tuple[int, ...] | None = None
        self.col: NDArray[Any] | None = None
        self.col_W: NDArray[Any] | None = None
        self.dW: NDArray[Any] | None = None
        self.db: NDArray[Any] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Convolve the images ``x (N, C, H, W)`` with the filters ``W``."""
        x = np.asarray(x)
        FN, _, FH, FW = self.W.shape
        N, _, H, W = x.shape
        out_h = _output_size(H, FH, self.stride, self.pad)
        out_w = _output_size(W, FW, self.stride, self.pad)

        self.x_shape = x.shape
        self.col = im2col(x, FH, FW, self.stride, self.pad)
        self.col_W = self.W.reshape(FN, -1).T
        out = self.col @ self.col_W + self.b
        return out.reshape(N, out_h, out_w, FN).transpose(0, 3, 1, 2)

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Store ``dW`` and ``db``; return ``dx`` of shape ``(N, C, H, W)``."""
        assert self.col is not None and self.col_W is not None and self.x_shape, (
            "call forward before backward"
        )
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)  # one row per output pixel

        self.db = np.sum(dout, axis=0)
        self.dW = (self.col.T @ dout).T.reshape(FN, C, FH, FW)
        dcol = dout @ self.col_W.T
        return col2im(dcol, self.x_shape, FH, FW, self.stride, self.pad)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """Two 2x3 filters over 3 channels (stride 1, pad 1) and 2 images of 4x5."""
        layer = cls(normal(rng, (2, 3, 2, 3), dtype), normal(rng, (2,), dtype), pad=1)
        return layer, (normal(rng, (2, 3, 4, 5), dtype),)


class Pooling:
    """Max pooling over ``pool_h x pool_w`` windows, channel by channel.

    ==============================================  ======================================
    forward                                         backward
    ==============================================  ======================================
    ``out = max(window)``                           ``dx = dout`` at the argmax of each
                                                    window, 0 elsewhere
    ==============================================  ======================================

    Not differentiable where two entries of a window tie for the maximum. Padding adds
    zeros that take part in the maximum (textbook behaviour; frameworks pad with ``-inf``).
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x_shape: tuple[int, ...] | None = None
        self.arg_max: NDArray[np.intp] | None = None

    def forward(self, x: NDArray[Any]) -> NDArray[Any]:
        """Return the maximum of every window of ``x (N, C, H, W)``."""
        x = np.asarray(x)
        N, C, H, W = x.shape
        out_h = _output_size(H, self.pool_h, self.stride, self.pad)
        out_w = _output_size(W, self.pool_w, self.stride, self.pad)

        # One row per (sample, output pixel, channel) window.
        col = im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)
        col = col.reshape(-1, self.pool_h * self.pool_w)
        # argmax of the real part, then index: complex input passes through unchanged.
        self.x_shape = x.shape
        self.arg_max = np.argmax(np.real(col), axis=1)
        out = col[np.arange(col.shape[0]), self.arg_max]
        return out.reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        """Send each ``dout`` entry to the position that won its window."""
        assert self.arg_max is not None and self.x_shape, "call forward before backward"
        dout = dout.transpose(0, 2, 3, 1).reshape(-1)  # same order as the rows of col
        dcol = np.zeros((dout.size, self.pool_h * self.pool_w), dtype=dout.dtype)
        dcol[np.arange(dout.size), self.arg_max] = dout
        dcol = dcol.reshape(-1, self.x_shape[1] * self.pool_h * self.pool_w)
        return col2im(dcol, self.x_shape, self.pool_h, self.pool_w, self.stride, self.pad)

    @classmethod
    def example(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Self, tuple[Any, ...]]:
        """2x2 pooling (stride 2) and 2 images of 3 channels, 4x6, with no ties."""
        return cls(2, 2, stride=2), (distinct_values(rng, (2, 3, 4, 6), dtype),)
