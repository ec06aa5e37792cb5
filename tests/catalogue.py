"""Families of layers beyond ``mutants.py``'s chains, each with the bugs students write.

``mutants.py`` draws chains of the reference layers; the checker's next false alarm or
miss is more likely to hide in a layer shaped differently. Each *family* here is one small
hand-written layer, written the way students write them (``forward`` / ``backward``,
parameters as ``W`` / ``dW`` attributes), that draws a correct case from a NumPy generator
— small random shapes, float64 or float32 — and carries *named planted bugs*:

=========================  ===================================================================
family                     bugs
=========================  ===================================================================
``embedding``              ``drops-repeats`` (``dW[idx] += dout``: a repeated index counts
                           once), ``dW-over-batch``
``conv-stride-pad``        ``padding-not-cropped`` (col2im's crop starts at 0, not ``pad``),
                           ``stride-ignored`` (windows folded back at stride 1),
                           ``dW-over-batch``
``avg-pool``               ``no-1/area`` (the ``1/(ph·pw)`` left out), ``one-cell-only``
                           (each window's gradient sent to its first cell, max-pool style)
``rnn``                    ``carry-dropped`` (the ``dh`` from the next step not added),
                           ``dWh-one-step`` (``dWh =`` instead of ``dWh +=``)
``rnn-float32-buffers``    the same RNN with float64 input and the sequel book's
                           ``np.empty(..., dtype='f')`` buffers; the same bugs
``attention``              ``no-1/sqrt(d)-in-backward``, ``softmax-sum-dropped``
``gelu``                   ``erf-derivative`` (the exact form's derivative with the tanh
                           forward, as once in numpy-ml), ``product-rule-dropped``
``swish``                  ``sigmoid-only``, ``sigmoid-derivative-only``
``elu``                    ``forward-as-derivative`` (``α·(exp(x) − 1)`` for ``α·exp(x)``),
                           ``alpha-dropped``
``l2-decay``               ``decay-missing`` (``λW`` left out of ``dW``), ``decay-doubled``
``shared-affine``          ``dW-overwritten`` (the second branch's backward overwrites),
                           ``cache-overwritten`` (one ``x`` cached for both branches)
``unnormalised-feature``   ``row-off-5%`` (a feature ~3e6 in row 0, another row of ``dW``
                           ×1.05)
``offset-normalisation``   ``dx×1.05`` (LayerNorm or BatchNorm on inputs offset by 1e5;
                           float64: see ``Family.dtype``)
``mean-loss-inplace``      ``forgot-1/n``, ``1/rows`` (a mean loss scaling its scalar
                           ``dout`` in place, ``d *= 1 / n``)
``textbook-dropout``       ``mask-forgotten`` (the mask draws from ``np.random`` every forward)
``zero-sample-relu``       ``dx×1.05`` (Affine+ReLU on an all-zero sample, zero bias)
=========================  ===================================================================

The families after them sit just off the home ground (issue 19): large offsets,
outliers, tiny and huge loss scales, float32 inside float64, ties and exact zeros, rows of
very different scales, one wrong element among tens of thousands:

===============================  ==============================================================
family                           bugs
===============================  ==============================================================
``l2-normalize``                 ``projection-dropped`` (``dout / ‖x‖``); ``np.linalg.norm``,
                                 one outlier up to 1e5 or an offset up to 1e5
``layernorm-offset``             ``variance-branch-dropped``, ``dx×1.05``; ``x.var()``, each
                                 sample offset by 1e3 to 1e6 (float64)
``batchnorm-offset``             ``variance-branch-dropped``; the reference BatchNorm, each
                                 feature offset by 1e5 to 1e6 (float64)
``std-scaling``                  ``std-constant``; ``x / np.std(x)`` at 3e3 to 3e4 (float64)
``groupnorm-outlier``            ``variance-branch-dropped``; ``np.var``, one outlier input
                                 up to 1e5
``wide-affine-one-element``      ``one-element`` (one ``dW`` element ×1.05 in ``W`` of 256×64
                                 to 784×100, a batch of 16 to 32 pixels in [0, 1))
``loss-scale``                   ``×1.05``; a softmax cross-entropy ×10**k, k in [-12, 12]
``float32-inside``               ``one-element``; ``x.astype('f') @ W.astype('f')`` returned
                                 as float64 (float64 inputs)
``float32-buffer-tanh-affine``   ``one-element`` (in ``grads[0]``); the sequel book's
                                 ``params``/``grads`` lists and ``np.empty(..., 'f')`` buffer
``one-pass-variance-batchnorm``  ``one-pass-variance`` (``E[x²] − E[x]²``) at 1000 + N(0, 1)
                                 in float32: precision damage, which must fail
``maxpool-ties``                 ``every-tie-gets-dout``; windows with exact ties at their max
``sort-ties``                    ``every-tie-gets-every-slot``; rows with an exact tied pair
``l1-exact-zeros``               ``plus-2lambda-at-zero``; ``λ·Σ|W|`` with exact zeros in ``W``
``features-at-scales``           ``small-row-sign-flip``; all but one feature ~3e6
===============================  ==============================================================

The last five are the reproducers of ``tests/test_verdict_holes.py`` and
``tests/test_properties.py``, grown into families. Their bugs are ×1.05, not ×1.01: a
mutant only counts when it is *detectable* (as in ``mutants.py``: at the checker's own
``dout`` some element differs by more than 2 % of its size), and a ×1.01 never is. For the
same reason ``gelu``'s ``erf-derivative`` (off by at most 8.7e-4) almost never counts
(only where every gradient element is about 0, as at ``x ≈ -0.75``). Like ``mutants.py``,
mutants are drawn away from kinks: there a wrong formula can still give a valid
subgradient — except where the kink is the subject: ties and exact zeros are drawn on
purpose, in correct layers and mutants alike. ``unnormalised-feature`` measures
each element against its own size (``detectable(..., per_element=True)``): beside a row
of ``dW`` a million times larger, a 5 % error in another row is 5 % of *its* size, but
nothing next to the gradient's rms; so do the families with one wrong element or row.
``loss-scale`` is detectable at any scale, and ``one-pass-variance`` in the mutant's own
float32 (see :class:`Family`).

Everything is drawn from the generator given, so a seed reproduces a case::

    case = family_mutant(np.random.default_rng(7), "rnn", bug="carry-dropped")
    gradcheck.check(case.layer, *case.inputs)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from mutants import DTYPES, Case, detectable, fresh_point
from numpy.typing import NDArray
from scipy.special import erf

from reference_layers import Affine, BatchNormalization, Convolution, LayerNorm
from reference_layers.conv import col2im, im2col
from reference_layers.functions import log_softmax, sigmoid, softmax

__all__ = [
    "FAMILIES",
    "Family",
    "FamilyCase",
    "family_case",
    "family_mutant",
]

Array = NDArray[Any]


def _normal(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, scale: float = 1.0
) -> Array:
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _size(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer in ``[low, high]``."""
    return int(rng.integers(low, high + 1))


# ---------------------------------------------------------------------------------------
# The layers. Each reads ``self.bug`` (None: correct) where a student's version differs.


class Embedding:
    """``out = W[idx]`` (``+ pos`` when given); ``dW`` adds every row of ``dout`` at its
    index, repeated indices included.

    ``idx`` is an integer array and gets no gradient: backward returns None for it, alone
    (the sequel book's ``Embedding``) or beside ``dpos``.
    """

    BUGS = ("drops-repeats", "dW-over-batch")

    def __init__(self, W: Array, bug: str | None = None) -> None:
        self.W, self.bug = W, bug
        self.dW: Array | None = None

    def forward(self, idx: Array, pos: Array | None = None) -> Array:
        self.idx, self.positional = idx, pos is not None
        return self.W[idx] if pos is None else self.W[idx] + pos

    def backward(self, dout: Array) -> Any:
        dW = np.zeros_like(self.W)
        if self.bug == "drops-repeats":
            dW[self.idx] += dout  # buffered: a repeated index keeps only one row of dout
        else:
            np.add.at(dW, self.idx, dout)
        if self.bug == "dW-over-batch":
            dW /= len(self.idx)
        self.dW = dW
        return (None, dout * 1) if self.positional else None


class StridedConvolution(Convolution):
    """The reference convolution's forward; backward folds ``dcol`` back by hand.

    The gradient of the padded image is folded with stride and no padding, then the
    padding is cropped off: the two steps students get wrong.
    """

    BUGS = ("padding-not-cropped", "stride-ignored", "dW-over-batch")

    def __init__(self, W: Array, b: Array, stride: int, pad: int, bug: str | None = None) -> None:
        super().__init__(W, b, stride=stride, pad=pad)
        self.bug = bug

    def __repr__(self) -> str:
        return f"StridedConvolution(W{self.W.shape}, stride={self.stride}, pad={self.pad})"

    def backward(self, dout: Array) -> Array:
        assert self.col is not None and self.col_W is not None and self.x_shape
        FN, C, FH, FW = self.W.shape
        N, _, H, W = self.x_shape
        out_h, out_w = dout.shape[2:]
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.db = np.sum(dout, axis=0)
        self.dW = (self.col.T @ dout).T.reshape(FN, C, FH, FW)
        if self.bug == "dW-over-batch":
            self.dW = self.dW / N
        dcol = dout @ self.col_W.T
        p = self.pad
        if self.bug == "stride-ignored":  # windows put back side by side, at stride 1
            padded = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=dcol.dtype)
            folded = col2im(dcol, (N, C, out_h + FH - 1, out_w + FW - 1), FH, FW, 1, 0)
            padded[:, :, : folded.shape[2], : folded.shape[3]] = folded
        else:
            padded = col2im(dcol, (N, C, H + 2 * p, W + 2 * p), FH, FW, self.stride, 0)
        if self.bug == "padding-not-cropped":
            return padded[:, :, :H, :W]
        return padded[:, :, p : p + H, p : p + W]


class AveragePooling:
    """The mean of every ``ph × pw`` window; each cell gets ``dout / (ph·pw)`` back."""

    BUGS = ("no-1/area", "one-cell-only")

    def __init__(self, ph: int, pw: int, stride: int, bug: str | None = None) -> None:
        self.ph, self.pw, self.stride, self.bug = ph, pw, stride, bug

    def __repr__(self) -> str:
        return f"AveragePooling({self.ph}x{self.pw}, stride={self.stride})"

    def forward(self, x: Array) -> Array:
        N, C, H, W = x.shape
        out_h = (H - self.ph) // self.stride + 1
        out_w = (W - self.pw) // self.stride + 1
        self.x_shape = x.shape
        col = im2col(x, self.ph, self.pw, self.stride).reshape(-1, self.ph * self.pw)
        return col.mean(axis=1).reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)

    def backward(self, dout: Array) -> Array:
        area = self.ph * self.pw
        flat = dout.transpose(0, 2, 3, 1).reshape(-1, 1)
        if self.bug == "one-cell-only":
            dcol = np.zeros((flat.shape[0], area), dtype=dout.dtype)
            dcol[:, :1] = flat
        else:
            dcol = np.repeat(flat, area, axis=1)
            if self.bug != "no-1/area":
                dcol = dcol / area
        dcol = dcol.reshape(-1, self.x_shape[1] * area)
        return col2im(dcol, self.x_shape, self.ph, self.pw, self.stride)


class TimeRNN:
    """``h_t = tanh(x_t Wx + h_{t-1} Wh + b)`` over ``T`` steps from ``h0``; returns all h.

    ``buffer`` is the dtype of the output and ``dxs`` buffers: ``"f"`` is the sequel
    book's ``np.empty((N, T, H), dtype='f')``, which rounds a float64 computation to
    float32 on the way out; None keeps the input's dtype.
    """

    BUGS = ("carry-dropped", "dWh-one-step")

    def __init__(
        self, Wx: Array, Wh: Array, b: Array, buffer: str | None = None, bug: str | None = None
    ) -> None:
        self.Wx, self.Wh, self.b, self.buffer, self.bug = Wx, Wh, b, buffer, bug

    def forward(self, xs: Array, h0: Array) -> Array:
        N, T, _ = xs.shape
        hs = np.empty((N, T, self.Wh.shape[0]), dtype=self.buffer or xs.dtype)
        self.cache = []
        h = h0
        for t in range(T):
            h_next = np.tanh(xs[:, t] @ self.Wx + h @ self.Wh + self.b)
            self.cache.append((xs[:, t], h, h_next))
            hs[:, t] = h_next
            h = h_next
        return hs

    def backward(self, dhs: Array) -> tuple[Array, Array]:
        N, T, _ = dhs.shape
        dxs = np.empty((N, T, self.Wx.shape[0]), dtype=self.buffer or dhs.dtype)
        self.dWx, self.dWh = np.zeros_like(self.Wx), np.zeros_like(self.Wh)
        self.db = np.zeros_like(self.b)
        dh: Any = 0
        for t in reversed(range(T)):
            x, h_prev, h_next = self.cache[t]
            carried = dhs[:, t] if self.bug == "carry-dropped" else dhs[:, t] + dh
            dt = carried * (1 - h_next**2)
            self.db = self.db + dt.sum(axis=0)
            self.dWx = self.dWx + x.T @ dt
            if self.bug == "dWh-one-step":
                self.dWh = h_prev.T @ dt
            else:
                self.dWh = self.dWh + h_prev.T @ dt
            dxs[:, t] = dt @ self.Wx.T
            dh = dt @ self.Wh.T
        return dxs, dh


class Attention:
    """``softmax(Q Kᵀ / √d) V`` over the last two axes; returns ``dQ, dK, dV``."""

    BUGS = ("no-1/sqrt(d)-in-backward", "softmax-sum-dropped")

    def __init__(self, bug: str | None = None) -> None:
        self.bug = bug

    def forward(self, Q: Array, K: Array, V: Array) -> Array:
        self.Q, self.K, self.V = Q, K, V
        self.scale = 1 / float(np.sqrt(Q.shape[-1]))
        self.A = softmax(Q @ K.swapaxes(-1, -2) * self.scale)
        return self.A @ V

    def backward(self, dout: Array) -> tuple[Array, Array, Array]:
        A = self.A
        dA = dout @ self.V.swapaxes(-1, -2)
        dV = A.swapaxes(-1, -2) @ dout
        if self.bug == "softmax-sum-dropped":
            dS = A * dA
        else:
            dS = A * (dA - np.sum(dA * A, axis=-1, keepdims=True))
        if self.bug != "no-1/sqrt(d)-in-backward":
            dS = dS * self.scale
        return dS @ self.K, dS.swapaxes(-1, -2) @ self.Q, dV


class Elementwise:
    """``out = f(x)``, ``dx = dout · f'(x)``: the base of GELU, Swish and ELU."""

    BUGS: tuple[str, ...] = ()

    def __init__(self, bug: str | None = None) -> None:
        self.bug = bug

    def forward(self, x: Array) -> Array:
        self.x = x
        return self.function(x)

    def backward(self, dout: Array) -> Array:
        return dout * self.derivative(self.x)

    def function(self, x: Array) -> Array:
        raise NotImplementedError

    def derivative(self, x: Array) -> Array:
        raise NotImplementedError


_GELU_C = float(np.sqrt(2 / np.pi))


class Gelu(Elementwise):
    """GELU, tanh approximation: ``0.5·x·(1 + tanh(c·(x + 0.044715·x³)))``."""

    BUGS = ("erf-derivative", "product-rule-dropped")

    def function(self, x: Array) -> Array:
        return 0.5 * x * (1 + np.tanh(_GELU_C * (x + 0.044715 * x**3)))

    def derivative(self, x: Array) -> Array:
        if self.bug == "erf-derivative":  # Φ(x) + x·φ(x): the derivative of x·Φ(x)
            return 0.5 * (1 + erf(x / np.sqrt(2))) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
        t = np.tanh(_GELU_C * (x + 0.044715 * x**3))
        if self.bug == "product-rule-dropped":
            return 0.5 * (1 + t)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_C * (1 + 3 * 0.044715 * x * x)


class Swish(Elementwise):
    """``x·σ(x)``, whose derivative is ``σ + x·σ·(1 − σ)``."""

    BUGS = ("sigmoid-only", "sigmoid-derivative-only")

    def function(self, x: Array) -> Array:
        return x * sigmoid(x)

    def derivative(self, x: Array) -> Array:
        s = sigmoid(x)
        if self.bug == "sigmoid-only":
            return s
        if self.bug == "sigmoid-derivative-only":
            return s * (1 - s)
        return s + x * s * (1 - s)


class Elu(Elementwise):
    """``x`` for ``x > 0``, else ``α·(exp(x) − 1)``; a kink at 0 unless α = 1."""

    BUGS = ("forward-as-derivative", "alpha-dropped")

    def __init__(self, alpha: float, bug: str | None = None) -> None:
        super().__init__(bug)
        self.alpha = alpha

    def __repr__(self) -> str:
        return f"Elu(alpha={self.alpha:.3g})"

    def function(self, x: Array) -> Array:
        return np.where(x > 0, x, self.alpha * (np.exp(x) - 1))

    def derivative(self, x: Array) -> Array:
        if self.bug == "forward-as-derivative":
            negative = self.alpha * (np.exp(x) - 1)
        elif self.bug == "alpha-dropped":
            negative = np.exp(x)
        else:
            negative = self.alpha * np.exp(x)
        return np.where(x > 0, 1, negative)


class AffineSoftmaxL2:
    """A linear classifier's loss with weight decay: ``CE(softmax(xW + b), t) + λ/2·‖W‖²``."""

    BUGS = ("decay-missing", "decay-doubled")

    def __init__(self, W: Array, b: Array, lam: float, bug: str | None = None) -> None:
        self.W, self.b, self.lam, self.bug = W, b, lam, bug

    def __repr__(self) -> str:
        return f"AffineSoftmaxL2(W{self.W.shape}, lambda={self.lam:.3g})"

    def forward(self, x: Array, t: Array) -> Any:
        self.x, self.t = x, t
        scores = log_softmax(x @ self.W + self.b)
        self.y = np.exp(scores)
        data = -np.mean(scores[np.arange(len(t)), t])
        return data + 0.5 * self.lam * np.sum(self.W * self.W)

    def backward(self, dout: Any = 1) -> Array:
        dscores = self.y.copy()
        dscores[np.arange(len(self.t)), self.t] -= 1
        dscores = dscores * dout / len(self.t)
        decay = {"decay-missing": 0.0, "decay-doubled": 2.0}.get(self.bug or "", 1.0)
        self.dW = self.x.T @ dscores + decay * self.lam * self.W * dout
        self.db = dscores.sum(axis=0)
        return dscores @ self.W.T


class SharedAffine:
    """One Affine applied to two inputs, outputs added: ``(x1 W + b) + (x2 W + b)``.

    Each branch's backward must *add* to ``dW`` and ``db``, and use its own ``x``.
    """

    BUGS = ("dW-overwritten", "cache-overwritten")

    def __init__(self, W: Array, b: Array, bug: str | None = None) -> None:
        self.W, self.b, self.bug = W, b, bug

    def _forward(self, x: Array) -> Array:
        self.x = x  # one cache: the second call overwrites the first one's
        return x @ self.W + self.b

    def forward(self, x1: Array, x2: Array) -> Array:
        self.x1 = x1
        return self._forward(x1) + self._forward(x2)

    def _backward(self, x: Array, dout: Array) -> Array:
        if self.bug == "dW-overwritten":
            self.dW = x.T @ dout
            self.db = dout.sum(axis=0)
        else:
            self.dW = self.dW + x.T @ dout
            self.db = self.db + dout.sum(axis=0)
        return dout @ self.W.T

    def backward(self, dout: Array) -> tuple[Array, Array]:
        self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)
        first = self.x if self.bug == "cache-overwritten" else self.x1
        return self._backward(first, dout), self._backward(self.x, dout)


class UnnormalisedAffine(Affine):
    """The chapter's Affine; the bug scales one row of ``dW`` (not row 0) by 1.05."""

    BUGS = ("row-off-5%",)

    def __init__(self, W: Array, b: Array, row: int, bug: str | None = None) -> None:
        super().__init__(W, b)
        self.row, self.bug = row, bug

    def backward(self, dout: Array) -> Array:
        dx = super().backward(dout)
        if self.bug == "row-off-5%":
            assert self.dW is not None
            self.dW[self.row] *= 1.05
        return dx


class ScaledDx:
    """Mixin: ``dx`` of the parent's backward, ×1.05 under the bug ``dx×1.05``."""

    BUGS = ("dx×1.05",)
    bug: str | None = None

    def backward(self, dout: Array) -> Array:
        dx = super().backward(dout)  # type: ignore[misc]
        return dx * 1.05 if self.bug == "dx×1.05" else dx


class OffsetLayerNorm(ScaledDx, LayerNorm):
    """The reference LayerNorm, with the bug ``dx×1.05``."""


class OffsetBatchNorm(ScaledDx, BatchNormalization):
    """The reference BatchNormalization (training), with the bug ``dx×1.05``."""


class MeanLoss:
    """``mean(x)``, whose backward scales its scalar ``dout`` in place: ``d *= 1 / n``."""

    BUGS = ("forgot-1/n", "1/rows")

    def __init__(self, bug: str | None = None) -> None:
        self.bug = bug

    def forward(self, x: Array) -> Any:
        self.shape = x.shape
        return x.mean()

    def backward(self, d: Any = 1) -> Array:
        if self.bug == "1/rows":
            d *= 1 / self.shape[0]
        elif self.bug != "forgot-1/n":
            d *= 1 / np.prod(self.shape)
        return np.full(self.shape, d)


class TextbookDropout:
    """The textbook's Dropout: a mask from ``np.random.rand`` on every forward."""

    BUGS = ("mask-forgotten",)

    def __init__(self, ratio: float, bug: str | None = None) -> None:
        self.ratio, self.bug = ratio, bug

    def __repr__(self) -> str:
        return f"TextbookDropout(ratio={self.ratio:.2f})"

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        self.mask = np.random.rand(*x.shape) > self.ratio  # noqa: NPY002 (the textbook's)
        return x * self.mask

    def backward(self, dout: Array) -> Array:
        return dout * 1 if self.bug == "mask-forgotten" else dout * self.mask


class AffineRelu:
    """``relu(x W + b)`` in one layer, as a student writes it."""

    BUGS = ("dx×1.05",)

    def __init__(self, W: Array, b: Array, bug: str | None = None) -> None:
        self.W, self.b, self.bug = W, b, bug

    def forward(self, x: Array) -> Array:
        self.x = x
        z = x @ self.W + self.b
        self.mask = np.real(z) > 0
        return z * self.mask

    def backward(self, dout: Array) -> Array:
        dz = dout * self.mask
        self.dW = self.x.T @ dz
        self.db = dz.sum(axis=0)
        dx = dz @ self.W.T
        return dx * 1.05 if self.bug == "dx×1.05" else dx


# ---------------------------------------------------------------------------------------
# Off the home ground: layers at large offsets, beside outliers, at tiny or huge loss
# scales, computing in float32 inside float64, at ties and exact zeros (issue 19). Each
# correct twin computes in the dtype it is handed (longdouble included), or says through
# its family's ``truth`` how to make it do so.


def _normalised_backward(dxn: Array, xn: Array, std: Array, axis: int, bug: str | None) -> Array:
    """``dx`` through ``xn = (x − mean) / std`` along ``axis``.

    The mean's term and the variance's; ``variance-branch-dropped`` leaves out the second,
    as if ``std`` were a constant (what a complex step through ``np.var`` also sees).
    """
    dx = dxn - np.mean(dxn, axis=axis, keepdims=True)
    if bug != "variance-branch-dropped":
        dx = dx - xn * np.mean(dxn * xn, axis=axis, keepdims=True)
    return dx / std


class L2Normalize:
    """``y = x / ‖x‖`` per row, with ``np.linalg.norm`` (whose complex step is not valid).

    ``dx = (dout − y·(y · dout)) / ‖x‖``: the second term projects out the row's own
    direction, which ``projection-dropped`` forgets.
    """

    BUGS = ("projection-dropped",)

    def __init__(self, bug: str | None = None) -> None:
        self.bug = bug

    def forward(self, x: Array) -> Array:
        self.n = np.linalg.norm(x, axis=1, keepdims=True)
        self.y = x / self.n
        return self.y

    def backward(self, dout: Array) -> Array:
        if self.bug == "projection-dropped":
            return dout / self.n
        return (dout - self.y * np.sum(dout * self.y, axis=1, keepdims=True)) / self.n


class VarLayerNorm:
    """LayerNorm as students write it, with ``x.var()`` (whose complex step is not valid).

    ``x`` is ``(N, D)``, normalised over each row; ``gamma`` and ``beta`` are ``(D,)``.
    """

    BUGS = ("variance-branch-dropped", "dx×1.05")

    def __init__(
        self, gamma: Array, beta: Array, eps: float = 1e-5, bug: str | None = None
    ) -> None:
        self.gamma, self.beta, self.eps, self.bug = gamma, beta, eps, bug

    def forward(self, x: Array) -> Array:
        mu = x.mean(axis=-1, keepdims=True)
        self.std = np.sqrt(x.var(axis=-1, keepdims=True) + self.eps)
        self.xn = (x - mu) / self.std
        return self.gamma * self.xn + self.beta

    def backward(self, dout: Array) -> Array:
        self.dbeta = dout.sum(axis=0)
        self.dgamma = (dout * self.xn).sum(axis=0)
        dx = _normalised_backward(dout * self.gamma, self.xn, self.std, -1, self.bug)
        return dx * 1.05 if self.bug == "dx×1.05" else dx


class OffsetBatchNormBranch(BatchNormalization):
    """The reference BatchNormalization (training), with ``variance-branch-dropped``."""

    BUGS = ("variance-branch-dropped",)

    def __init__(self, gamma: Array, beta: Array, bug: str | None = None) -> None:
        super().__init__(gamma, beta)
        self.bug = bug

    def backward(self, dout: Array) -> Array:
        if self.bug != "variance-branch-dropped":
            return super().backward(dout)
        assert self.xn is not None and self.std is not None
        self.dbeta = dout.sum(axis=0)
        self.dgamma = (dout * self.xn).sum(axis=0)
        return _normalised_backward(dout * self.gamma, self.xn, self.std, 0, self.bug)


class StdScaling:
    """``y = x / std(x)`` per row, with ``np.std``; no centring, so ``y`` keeps the offset.

    With ``s = std(x)`` over ``D`` elements, ``dx = dout / s − (x − mean)·(dout · x) /
    (D·s³)``; at an offset of 1e4 the second term is the larger, and ``std-constant``
    (``dout / s``, what a complex step through ``np.std`` also gives) drops it.
    """

    BUGS = ("std-constant",)

    def __init__(self, bug: str | None = None) -> None:
        self.bug = bug

    def forward(self, x: Array) -> Array:
        self.x = x
        self.s = np.std(x, axis=-1, keepdims=True)
        return x / self.s

    def backward(self, dout: Array) -> Array:
        dx = dout / self.s
        if self.bug == "std-constant":
            return dx
        x, s = self.x, self.s
        centred = x - x.mean(axis=-1, keepdims=True)
        return dx - centred * np.sum(dout * x, axis=-1, keepdims=True) / (x.shape[-1] * s**3)


class GroupNorm:
    """GroupNorm of ``(N, C, L)``: each sample's channels in ``groups`` groups, normalised
    over a group's channels and positions with ``np.var``; ``gamma``, ``beta`` per channel.
    """

    BUGS = ("variance-branch-dropped",)

    def __init__(
        self, gamma: Array, beta: Array, groups: int, eps: float = 1e-5, bug: str | None = None
    ) -> None:
        self.gamma, self.beta, self.groups, self.eps, self.bug = gamma, beta, groups, eps, bug

    def __repr__(self) -> str:
        return f"GroupNorm(C={self.gamma.shape[0]}, groups={self.groups})"

    def forward(self, x: Array) -> Array:
        grouped = x.reshape(x.shape[0], self.groups, -1)
        mu = grouped.mean(axis=-1, keepdims=True)
        self.std = np.sqrt(grouped.var(axis=-1, keepdims=True) + self.eps)
        self.xn = ((grouped - mu) / self.std).reshape(x.shape)
        return self.gamma[:, None] * self.xn + self.beta[:, None]

    def backward(self, dout: Array) -> Array:
        self.dbeta = dout.sum(axis=(0, 2))
        self.dgamma = (dout * self.xn).sum(axis=(0, 2))
        shape = (dout.shape[0], self.groups, -1)
        dxn = (dout * self.gamma[:, None]).reshape(shape)
        dx = _normalised_backward(dxn, self.xn.reshape(shape), self.std, -1, self.bug)
        return dx.reshape(dout.shape)


class OneElementAffine(Affine):
    """The chapter's Affine; ``one-element`` makes one element of ``dW`` 5 % too large."""

    BUGS = ("one-element",)

    def __init__(
        self, W: Array, b: Array, element: tuple[int, int], bug: str | None = None
    ) -> None:
        super().__init__(W, b)
        self.element, self.bug = element, bug

    def __repr__(self) -> str:
        return f"Affine(W{self.W.shape}, element {self.element})"

    def backward(self, dout: Array) -> Array:
        dx = super().backward(dout)
        if self.bug == "one-element":
            assert self.dW is not None
            self.dW[self.element] *= 1.05
        return dx


class ScaledSoftmaxLoss:
    """``scale · CE(softmax(x W + b), t)``: a smooth loss whose scale is anything from
    1e-12 to 1e12 (a mean over millions, a sum over a corpus); ``×1.05`` scales every
    gradient."""

    BUGS = ("×1.05",)

    def __init__(self, W: Array, b: Array, scale: float, bug: str | None = None) -> None:
        self.W, self.b, self.scale, self.bug = W, b, scale, bug

    def __repr__(self) -> str:
        return f"ScaledSoftmaxLoss(W{self.W.shape}, scale={self.scale:.2g})"

    def forward(self, x: Array, t: Array) -> Any:
        self.x, self.t = x, t
        scores = log_softmax(x @ self.W + self.b)
        self.y = np.exp(scores)
        return self.scale * -np.mean(scores[np.arange(len(t)), t])

    def backward(self, dout: Any = 1) -> Array:
        dscores = self.y.copy()
        dscores[np.arange(len(self.t)), self.t] -= 1
        factor = 1.05 if self.bug == "×1.05" else 1.0
        dscores = dscores * (self.scale * factor / len(self.t)) * dout
        self.dW = self.x.T @ dscores
        self.db = dscores.sum(axis=0)
        return dscores @ self.W.T


class Float32InsideAffine:
    """``x W + b`` computed as ``x.astype('f') @ W.astype('f')``, returned as float64.

    The forward narrows to ``inside`` and widens back to ``outside``; None for either
    follows the input, which is how the family's ``truth`` computes without narrowing.
    The backward is the exact formula in the input's dtype; ``one-element`` makes one
    element of ``dW`` 5 % too large.
    """

    BUGS = ("one-element",)

    def __init__(
        self, W: Array, b: Array, element: tuple[int, int], bug: str | None = None
    ) -> None:
        self.W, self.b, self.element, self.bug = W, b, element, bug
        self.inside: Any = "f"
        self.outside: Any = np.float64

    def forward(self, x: Array) -> Array:
        self.x = x
        z = x.astype(self.inside or x.dtype) @ self.W.astype(self.inside or self.W.dtype)
        return z.astype(self.outside or np.result_type(x, self.W)) + self.b

    def backward(self, dout: Array) -> Array:
        self.dW = self.x.T @ dout
        if self.bug == "one-element":
            self.dW[self.element] *= 1.05
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


class BufferedTanhAffine:
    """``tanh(x W)`` in the sequel book's style: ``params``/``grads`` lists, and the
    output written into a ``np.empty(..., 'f')`` buffer whatever the input's dtype.

    ``buffer`` None sizes the buffers by the computation's dtype instead (the family's
    ``truth``); ``one-element`` makes one element of ``grads[0]`` 5 % too large.
    """

    BUGS = ("one-element",)

    def __init__(self, W: Array, element: tuple[int, int], bug: str | None = None) -> None:
        self.params, self.grads = [W], [np.zeros_like(W)]
        self.element, self.bug = element, bug
        self.buffer: Any = "f"

    def __repr__(self) -> str:
        return f"BufferedTanhAffine(W{self.params[0].shape}, buffer={self.buffer!r})"

    def forward(self, x: Array) -> Array:
        (W,) = self.params
        self.x = x
        self.out = np.empty((x.shape[0], W.shape[1]), self.buffer or np.result_type(x, W))
        self.out[...] = np.tanh(x @ W)
        return self.out

    def backward(self, dout: Array) -> Array:
        (W,) = self.params
        dz = dout * (1 - self.out**2)
        if self.buffer is None:  # the truth: the gradient buffer follows the computation too
            self.grads[0] = np.zeros_like(W)
        self.grads[0][...] = self.x.T @ dz
        if self.bug == "one-element":
            self.grads[0][self.element] *= 1.05
        return dz @ W.T


class TwoPassBatchNorm:
    """BatchNorm (training) of ``(N, D)`` whose variance is ``mean((x − mu)²)``.

    ``one-pass-variance`` computes ``E[x²] − E[x]²`` instead: the same mathematics, but at
    an offset of 1000 in float32 the two terms cancel to a few digits, and the backward
    that uses the resulting ``std`` is far from the true gradient (precision damage).
    """

    BUGS = ("one-pass-variance",)

    def __init__(
        self, gamma: Array, beta: Array, eps: float = 1e-5, bug: str | None = None
    ) -> None:
        self.gamma, self.beta, self.eps, self.bug = gamma, beta, eps, bug

    def forward(self, x: Array) -> Array:
        mu = x.mean(axis=0)
        if self.bug == "one-pass-variance":
            var = np.mean(x * x, axis=0) - mu * mu
        else:
            var = np.mean((x - mu) ** 2, axis=0)
        self.std = np.sqrt(var + self.eps)
        self.xn = (x - mu) / self.std
        return self.gamma * self.xn + self.beta

    def backward(self, dout: Array) -> Array:
        self.dbeta = dout.sum(axis=0)
        self.dgamma = (dout * self.xn).sum(axis=0)
        return _normalised_backward(dout * self.gamma, self.xn, self.std, 0, None)


class TiedMaxPooling:
    """Max over non-overlapping ``ph × pw`` windows of ``(N, C, H, W)``, at exact ties.

    At a tie the loss has a kink, and any split of ``dout`` among the tied maxima that
    sums to ``dout`` is a valid subgradient. The correct twin gives all of it to the
    first of them, as the textbook's ``Pooling.backward`` does through ``np.argmax``:
    that is the code readers write, so it is the one the checker must pass.
    ``every-tie-gets-dout`` gives each tied maximum the whole ``dout`` (a mask
    ``window == max``): each element's value lies between its one-sided derivatives, yet
    moving the tied elements together moves the output by ``dout`` once, not once each.
    """

    BUGS = ("every-tie-gets-dout",)

    def __init__(self, ph: int, pw: int, bug: str | None = None) -> None:
        self.ph, self.pw, self.bug = ph, pw, bug

    def __repr__(self) -> str:
        return f"TiedMaxPooling({self.ph}x{self.pw})"

    def _windows(self, x: Array) -> Array:
        N, C, H, W = x.shape
        return (
            x.reshape(N, C, H // self.ph, self.ph, W // self.pw, self.pw)
            .transpose(0, 1, 2, 4, 3, 5)
            .reshape(N, C, H // self.ph, W // self.pw, -1)
        )

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        self.windows = self._windows(x)
        return self.windows.max(axis=-1)

    def backward(self, dout: Array) -> Array:
        windows = self.windows
        if self.bug == "every-tie-gets-dout":
            mask = windows == windows.max(axis=-1, keepdims=True)
        else:
            first = np.argmax(windows, axis=-1)[..., None]
            mask = np.arange(windows.shape[-1]) == first
        dwin = mask * dout[..., None]
        N, C, H, W = self.x_shape
        return (
            dwin.reshape(N, C, H // self.ph, W // self.pw, self.ph, self.pw)
            .transpose(0, 1, 2, 4, 3, 5)
            .reshape(self.x_shape)
        )


class SortRows:
    """``np.sort`` of each row, at exact ties; backward sends each ``dout`` back to where
    its value came from (a stable ``argsort``).

    A tied pair's slots ``k, k+1`` give its two elements ``dout_k`` and ``dout_{k+1}``
    in either order, both valid. ``every-tie-gets-every-slot`` finds each element's slots
    by value (``x == y_k``), as students do, so each tied element gets both.
    """

    BUGS = ("every-tie-gets-every-slot",)

    def __init__(self, bug: str | None = None) -> None:
        self.bug = bug

    def forward(self, x: Array) -> Array:
        self.x = x
        self.order = np.argsort(x, axis=-1, kind="stable")
        self.y = np.take_along_axis(x, self.order, axis=-1)
        return self.y

    def backward(self, dout: Array) -> Array:
        if self.bug == "every-tie-gets-every-slot":
            slots = self.x[..., :, None] == self.y[..., None, :]
            return np.sum(slots * dout[..., None, :], axis=-1)
        dx = np.zeros_like(dout)
        np.put_along_axis(dx, self.order, dout, axis=-1)
        return dx


class AffineSoftmaxL1:
    """``CE(softmax(x W + b), t) + λ·Σ|W|`` with exact zeros in ``W`` (pruned weights).

    ``np.sign(W)`` is 0 at a zero: the smooth part's gradient, the middle of the interval
    ``[g − λ, g + λ]`` between the one-sided derivatives, a valid subgradient.
    ``plus-2lambda-at-zero`` adds ``2λ`` there instead: outside the interval, wrong at a
    single kink, and only there.
    """

    BUGS = ("plus-2lambda-at-zero",)

    def __init__(self, W: Array, b: Array, lam: float, bug: str | None = None) -> None:
        self.W, self.b, self.lam, self.bug = W, b, lam, bug

    def __repr__(self) -> str:
        return f"AffineSoftmaxL1(W{self.W.shape}, lambda={self.lam:.3g})"

    def forward(self, x: Array, t: Array) -> Any:
        self.x, self.t = x, t
        scores = log_softmax(x @ self.W + self.b)
        self.y = np.exp(scores)
        data = -np.mean(scores[np.arange(len(t)), t])
        return data + self.lam * np.sum(np.abs(self.W))

    def backward(self, dout: Any = 1) -> Array:
        dscores = self.y.copy()
        dscores[np.arange(len(self.t)), self.t] -= 1
        dscores = dscores * dout / len(self.t)
        sign = np.sign(self.W)
        if self.bug == "plus-2lambda-at-zero":
            sign = np.where(self.W == 0, 2, sign)
        self.dW = self.x.T @ dscores + self.lam * sign * dout
        self.db = dscores.sum(axis=0)
        return dscores @ self.W.T


class ScaledFeaturesAffine(Affine):
    """The chapter's Affine behind features at very different scales: every feature but
    ``small`` is ~3e6; ``small-row-sign-flip`` negates that feature's row of ``dW``."""

    BUGS = ("small-row-sign-flip",)

    def __init__(self, W: Array, b: Array, small: int, bug: str | None = None) -> None:
        super().__init__(W, b)
        self.small, self.bug = small, bug

    def backward(self, dout: Array) -> Array:
        dx = super().backward(dout)
        if self.bug == "small-row-sign-flip":
            assert self.dW is not None
            self.dW[self.small] *= -1
        return dx


# ---------------------------------------------------------------------------------------
# Drawing a case of each family. A draw takes the generator, the dtype and the bug it
# will carry (so it can make the bug matter: a stride above 1 for ``stride-ignored``), and
# returns the correct layer and its inputs.

Draw = Callable[[np.random.Generator, np.dtype, "str | None"], tuple[Any, tuple[Any, ...]]]


def _embedding(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    vocab, width = _size(rng, 2, 6), _size(rng, 1, 4)
    shape = (_size(rng, 2, 6),) if rng.random() < 0.6 else (_size(rng, 1, 3), _size(rng, 2, 3))
    idx = rng.integers(0, vocab, size=shape)
    idx.flat[-1] = idx.flat[0]  # at least one repeated index
    inputs: tuple[Any, ...] = (idx,)
    if rng.random() < 0.5:  # a positional term added: a float input beside idx
        inputs = (idx, _normal(rng, (*shape, width), dtype))
    return Embedding(_normal(rng, (vocab, width), dtype)), inputs


def _conv(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N = _size(rng, 2 if bug == "dW-over-batch" else 1, 2)
    C, FN, FH, FW = _size(rng, 1, 2), _size(rng, 1, 3), _size(rng, 1, 3), _size(rng, 1, 3)
    stride = _size(rng, 2 if bug == "stride-ignored" else 1, 3)
    pad = _size(rng, 1 if bug == "padding-not-cropped" else 0, 2)
    H, W = _size(rng, FH, FH + 4), _size(rng, FW, FW + 4)
    layer = StridedConvolution(
        _normal(rng, (FN, C, FH, FW), dtype, 1 / np.sqrt(C * FH * FW)),
        _normal(rng, (FN,), dtype),
        stride,
        pad,
    )
    return layer, (_normal(rng, (N, C, H, W), dtype),)


def _pool(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    ph, pw = _size(rng, 1, 3), _size(rng, 1, 3)
    if ph * pw == 1:
        pw = 2
    stride = _size(rng, 1, 3)
    shape = (_size(rng, 1, 2), _size(rng, 1, 2), _size(rng, ph, ph + 3), _size(rng, pw, pw + 3))
    return AveragePooling(ph, pw, stride), (_normal(rng, shape, dtype),)


def _rnn_draw(buffer: str | None) -> Draw:
    def draw(
        rng: np.random.Generator, dtype: np.dtype, bug: str | None
    ) -> tuple[Any, tuple[Any, ...]]:
        if buffer is not None:
            dtype = np.dtype(np.float64)  # float64 in, float32 buffers: the sequel's habit
        N, T, D, H = _size(rng, 1, 3), _size(rng, 2, 4), _size(rng, 1, 3), _size(rng, 1, 4)
        layer = TimeRNN(
            _normal(rng, (D, H), dtype, 1 / np.sqrt(D)),
            _normal(rng, (H, H), dtype, rng.uniform(0.5, 1.5) / np.sqrt(H)),
            _normal(rng, (H,), dtype, 0.5),
            buffer=buffer,
        )
        return layer, (_normal(rng, (N, T, D), dtype), _normal(rng, (N, H), dtype, 0.5))

    return draw


def _attention(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, Tq, Tk, d, dv = (
        _size(rng, 1, 2),
        _size(rng, 1, 3),
        _size(rng, 2, 4),
        _size(rng, 2, 4),
        _size(rng, 1, 3),
    )
    scale = float(rng.uniform(0.5, 2.0))
    return Attention(), (
        _normal(rng, (N, Tq, d), dtype, scale),
        _normal(rng, (N, Tk, d), dtype, scale),
        _normal(rng, (N, Tk, dv), dtype),
    )


def _elementwise_draw(
    make: Callable[[np.random.Generator], Elementwise], *, kink: bool = False
) -> Draw:
    def draw(
        rng: np.random.Generator, dtype: np.dtype, bug: str | None
    ) -> tuple[Any, tuple[Any, ...]]:
        layer = make(rng)
        shape = (_size(rng, 1, 4), _size(rng, 1, 5))
        x = _normal(rng, shape, dtype, float(rng.choice([0.3, 1.0, 3.0])))
        # Some inputs at or near the kink at 0 — for a correct layer only: at the kink a
        # mutant can be a valid subgradient (alpha-dropped gives 1, the right derivative).
        if kink and bug is None and rng.random() < 0.3:
            near = rng.random(shape) < 0.5
            x[near] = rng.choice([0.0, 1e-12, -1e-9, 1e-6, -1e-3], size=int(near.sum()))
        return layer, (x,)

    return draw


def _l2(rng: np.random.Generator, dtype: np.dtype, bug: str | None) -> tuple[Any, tuple[Any, ...]]:
    N, D, C = _size(rng, 1, 4), _size(rng, 1, 4), _size(rng, 2, 4)
    layer = AffineSoftmaxL2(
        _normal(rng, (D, C), dtype, 1 / np.sqrt(D)),
        _normal(rng, (C,), dtype, 0.1),
        float(rng.uniform(0.05, 1.0)),
    )
    return layer, (_normal(rng, (N, D), dtype), rng.integers(0, C, size=N))


def _shared(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D, M = _size(rng, 1, 4), _size(rng, 1, 4), _size(rng, 1, 4)
    layer = SharedAffine(_normal(rng, (D, M), dtype), _normal(rng, (M,), dtype))
    return layer, (_normal(rng, (N, D), dtype), _normal(rng, (N, D), dtype))


def _unnormalised(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D, M = _size(rng, 2, 8), _size(rng, 2, 5), _size(rng, 1, 4)
    x = rng.standard_normal((N, D))
    x[:, 0] = 3e6 * (1 + rng.random(N))  # an income column, never normalised
    b = np.zeros(M) if rng.random() < 0.5 else rng.standard_normal(M)
    layer = UnnormalisedAffine(
        _normal(rng, (D, M), dtype, 0.1), b.astype(dtype), row=_size(rng, 1, D - 1)
    )
    return layer, (x.astype(dtype),)


def _offset_norm(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D = _size(rng, 2, 4), _size(rng, 2, 5)
    cls = OffsetLayerNorm if rng.random() < 0.5 else OffsetBatchNorm
    layer = cls(1 + _normal(rng, (D,), dtype, 0.3), _normal(rng, (D,), dtype))
    return layer, ((rng.standard_normal((N, D)) + 1e5).astype(dtype),)


def _mean_loss(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    shape = (_size(rng, 1, 4), _size(rng, 2 if bug == "1/rows" else 1, 5))
    return MeanLoss(), (_normal(rng, shape, dtype),)


def _dropout(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    shape = (_size(rng, 1, 4), _size(rng, 2, 5))
    return TextbookDropout(float(rng.uniform(0.1, 0.6))), (_normal(rng, shape, dtype),)


def _zero_sample(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D, M = _size(rng, 2, 4), _size(rng, 2, 4), _size(rng, 2, 4)
    x = rng.standard_normal((N, D))
    x[rng.choice(N, size=_size(rng, 1, N - 1), replace=False)] = 0.0  # zero-padded samples
    layer = AffineRelu(_normal(rng, (D, M), dtype), np.zeros(M, dtype))
    return layer, (x.astype(dtype),)


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: Any = None) -> Any:
    """``10**u`` for ``u`` uniform in ``[log10 low, log10 high]``."""
    return 10.0 ** rng.uniform(np.log10(low), np.log10(high), size=size)


def _element(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(rng.integers(n)) for n in shape)


def _l2_normalize(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D = _size(rng, 1, 4), _size(rng, 2, 6)
    x = rng.standard_normal((N, D))
    if rng.random() < 0.5:  # one outlier: its row's other elements get gradients ~1/|x|
        x[_element(rng, x.shape)] = rng.choice([-1.0, 1.0]) * _log_uniform(rng, 1e2, 1e5)
    else:  # every row far from 0, along (1, ..., 1)
        x += rng.choice([-1.0, 1.0]) * _log_uniform(rng, 1e2, 1e5)
    return L2Normalize(), (x.astype(dtype),)


def _layernorm_offset(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D = _size(rng, 1, 4), _size(rng, 3, 6)  # two features normalise to ±1: no gradient
    layer = VarLayerNorm(1 + _normal(rng, (D,), dtype, 0.3), _normal(rng, (D,), dtype))
    offsets = _log_uniform(rng, 1e3, 1e6, size=(N, 1)) * rng.choice([-1.0, 1.0], size=(N, 1))
    return layer, ((rng.standard_normal((N, D)) + offsets).astype(dtype),)


def _batchnorm_offset(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D = _size(rng, 3, 6), _size(rng, 1, 4)  # two samples normalise to ±1: no gradient
    layer = OffsetBatchNormBranch(1 + _normal(rng, (D,), dtype, 0.3), _normal(rng, (D,), dtype))
    offsets = _log_uniform(rng, 1e5, 1e6, size=D)
    return layer, ((rng.standard_normal((N, D)) + offsets).astype(dtype),)


def _std_scaling(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D = _size(rng, 1, 4), _size(rng, 2, 6)
    offsets = _log_uniform(rng, 3e3, 3e4, size=(N, 1))
    return StdScaling(), ((rng.standard_normal((N, D)) + offsets).astype(dtype),)


def _groupnorm_outlier(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    groups = _size(rng, 1, 3)
    C, L = groups * _size(rng, 1, 3), _size(rng, 1, 4)
    if C // groups * L < 3:  # a group of two normalises to ±1: no gradient
        L = 3
    N = _size(rng, 1, 3)
    x = rng.standard_normal((N, C, L))
    x[_element(rng, x.shape)] = rng.choice([-1.0, 1.0]) * _log_uniform(rng, 1e2, 1e5)
    layer = GroupNorm(1 + _normal(rng, (C,), dtype, 0.3), _normal(rng, (C,), dtype), groups)
    return layer, (x.astype(dtype),)


_WIDE_SHAPES = ((256, 64), (300, 100), (512, 64), (784, 100))


def _wide_affine(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    D, M = _WIDE_SHAPES[int(rng.integers(len(_WIDE_SHAPES)))]
    N = _size(rng, 16, 32)
    W = _normal(rng, (D, M), dtype, 1 / np.sqrt(D))
    b = np.zeros(M, dtype) if rng.random() < 0.5 else _normal(rng, (M,), dtype, 0.1)
    layer = OneElementAffine(W, b, _element(rng, (D, M)))
    return layer, (rng.random((N, D)).astype(dtype),)  # pixels in [0, 1)


def _loss_scale(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D, C = _size(rng, 1, 4), _size(rng, 1, 4), _size(rng, 2, 4)
    layer = ScaledSoftmaxLoss(
        _normal(rng, (D, C), dtype, 1 / np.sqrt(D)),
        _normal(rng, (C,), dtype, 0.1),
        float(10.0 ** rng.uniform(-12, 12)),
    )
    return layer, (_normal(rng, (N, D), dtype), rng.integers(0, C, size=N))


def _float32_inside(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D, M = _size(rng, 2, 6), _size(rng, 2, 6), _size(rng, 2, 5)
    layer = Float32InsideAffine(
        _normal(rng, (D, M), dtype, 1 / np.sqrt(D)),
        _normal(rng, (M,), dtype, 0.1),
        _element(rng, (D, M)),
    )
    return layer, (_normal(rng, (N, D), dtype),)


def _buffered_tanh(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D, H = _size(rng, 2, 6), _size(rng, 2, 6), _size(rng, 2, 20)
    W = _normal(rng, (D, H), dtype, float(rng.uniform(0.3, 1.0)))
    return BufferedTanhAffine(W, _element(rng, (D, H))), (_normal(rng, (N, D), dtype),)


def _one_pass_batchnorm(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D = _size(rng, 4, 8), _size(rng, 1, 4)
    layer = TwoPassBatchNorm(1 + _normal(rng, (D,), dtype, 0.3), _normal(rng, (D,), dtype))
    offsets = rng.uniform(500, 1500, size=D)
    return layer, ((rng.standard_normal((N, D)) + offsets).astype(dtype),)


def _tied(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> Array:
    """Distinct values on a grid (no two closer than ``4 / size``), for ties to be planted."""
    size = int(np.prod(shape))
    return rng.permutation(np.linspace(-2.0, 2.0, size)).reshape(shape).astype(dtype)


def _max_pool_ties(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    ph, pw = _size(rng, 1, 2), _size(rng, 2, 3)
    N, C, nh, nw = _size(rng, 1, 2), _size(rng, 1, 2), _size(rng, 1, 3), _size(rng, 1, 3)
    layer = TiedMaxPooling(ph, pw)
    x = _tied(rng, (N, C, nh * ph, nw * pw), dtype)
    windows = layer._windows(x).reshape(-1, ph * pw)
    tied = rng.random(len(windows)) < 0.5
    tied[int(rng.integers(len(windows)))] = True  # at least one tie
    for w in np.flatnonzero(tied):  # the window's maximum, copied to one to two other cells
        top = int(np.argmax(windows[w]))
        others = [i for i in range(ph * pw) if i != top]
        copies = rng.choice(others, size=min(len(others), _size(rng, 1, 2)), replace=False)
        windows[w, copies] = windows[w, top]
    back = windows.reshape(N, C, nh, nw, ph, pw).transpose(0, 1, 2, 4, 3, 5)
    return layer, (back.reshape(x.shape),)


def _sort_ties(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D = _size(rng, 1, 4), _size(rng, 2, 6)
    x = _tied(rng, (N, D), dtype)
    tied = rng.random(N) < 0.6
    tied[int(rng.integers(N))] = True
    for row in np.flatnonzero(tied):  # one pair per row: at a triple tie the middle
        i, j = rng.choice(D, size=2, replace=False)  # element's value need not lie
        x[row, j] = x[row, i]  # between its one-sided derivatives, and a test reads them
    return SortRows(), (x,)


def _l1_exact_zeros(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D, C = _size(rng, 1, 4), _size(rng, 1, 4), _size(rng, 2, 4)
    W = _normal(rng, (D, C), dtype, 1 / np.sqrt(D))
    pruned = rng.random(W.shape) < 0.4
    pruned.flat[int(rng.integers(W.size))] = True  # at least one exact zero
    W[pruned] = 0
    layer = AffineSoftmaxL1(W, _normal(rng, (C,), dtype, 0.1), float(rng.uniform(0.05, 0.5)))
    return layer, (_normal(rng, (N, D), dtype), rng.integers(0, C, size=N))


def _features_at_scales(
    rng: np.random.Generator, dtype: np.dtype, bug: str | None
) -> tuple[Any, tuple[Any, ...]]:
    N, D, M = _size(rng, 2, 8), _size(rng, 4, 6), _size(rng, 1, 4)
    small = _size(rng, 0, D - 1)  # at most a quarter of dW's rows are small
    x = 3e6 * (1 + rng.random((N, D)))
    x[:, small] = rng.standard_normal(N)
    b = np.zeros(M) if rng.random() < 0.5 else rng.standard_normal(M)
    layer = ScaledFeaturesAffine(_normal(rng, (D, M), dtype, 0.1), b.astype(dtype), small)
    return layer, (x.astype(dtype),)


def _narrowing_removed(*names: str) -> Callable[[Any], Any]:
    """A ``truth``: a copy of the layer with its narrowing attributes set to None."""

    def truth(layer: Any) -> Any:
        wide = copy.deepcopy(layer)
        for name in names:
            setattr(wide, name, None)
        return wide

    return truth


@dataclass(frozen=True)
class Family:
    """A kind of layer: how to draw a correct case, and the bugs it can carry.

    ``per_element``, ``scale_free`` and ``precision_bug`` say how a mutant counts as
    detectable (:func:`mutants.detectable`): each element against its own size (rows of
    very different scales); without the absolute floor of 1e-8 (gradients of any scale:
    a loss ×1e-12); by the mutant's gradient in its own dtype (a bug that *is* float32
    rounding, which widening to float64 would repair).

    ``dtype`` is the only dtype the family is drawn in, whatever is asked (None: the one
    asked for, or drawn): float64 inputs for a layer whose subject is narrowing inside,
    float64 at offsets float32 cannot hold the spread of (at 1e6 its spacing is 0.06, at
    1e5 0.008, and every formula, the correct one too, loses the digits: the reference
    LayerNorm's float32 gradient at 1e5 is in places further from its float64 run than
    its own size, which the check reports as precision damage —
    ``test_off_home_ground.py``), float32 for cancellation that only float32 suffers.

    ``truth`` serves whoever needs the *true* gradient: the correct layer's analytic one
    in higher precision, with every input and parameter cast to ``np.longdouble``
    (``mutants.widened(layer, inputs, np.longdouble)``). Given a drawn correct layer it
    returns a twin that computes the same mathematics with no narrowing (a float32 buffer
    or cast made to follow the input); None when the layer itself does, as every layer
    here does that has no hard-coded float32 (handed longdouble, it computes in it).
    """

    name: str
    draw: Draw
    bugs: tuple[str, ...]
    per_element: bool = False
    scale_free: bool = False
    precision_bug: bool = False
    dtype: Any = None
    truth: Callable[[Any], Any] | None = None


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("embedding", _embedding, Embedding.BUGS),
        Family("conv-stride-pad", _conv, StridedConvolution.BUGS),
        Family("avg-pool", _pool, AveragePooling.BUGS),
        Family("rnn", _rnn_draw(None), TimeRNN.BUGS),
        Family(
            "rnn-float32-buffers",
            _rnn_draw("f"),
            TimeRNN.BUGS,
            dtype=np.float64,
            truth=_narrowing_removed("buffer"),
        ),
        Family("attention", _attention, Attention.BUGS),
        Family("gelu", _elementwise_draw(lambda rng: Gelu()), Gelu.BUGS),
        Family("swish", _elementwise_draw(lambda rng: Swish()), Swish.BUGS),
        Family(
            "elu",
            _elementwise_draw(lambda rng: Elu(float(rng.uniform(0.1, 2.0))), kink=True),
            Elu.BUGS,
        ),
        Family("l2-decay", _l2, AffineSoftmaxL2.BUGS),
        Family("shared-affine", _shared, SharedAffine.BUGS),
        Family("unnormalised-feature", _unnormalised, UnnormalisedAffine.BUGS, per_element=True),
        Family("offset-normalisation", _offset_norm, ScaledDx.BUGS, dtype=np.float64),
        Family("mean-loss-inplace", _mean_loss, MeanLoss.BUGS),
        Family("textbook-dropout", _dropout, TextbookDropout.BUGS),
        Family("zero-sample-relu", _zero_sample, AffineRelu.BUGS),
        Family("l2-normalize", _l2_normalize, L2Normalize.BUGS),
        Family("layernorm-offset", _layernorm_offset, VarLayerNorm.BUGS, dtype=np.float64),
        Family("batchnorm-offset", _batchnorm_offset, OffsetBatchNormBranch.BUGS, dtype=np.float64),
        Family("std-scaling", _std_scaling, StdScaling.BUGS, dtype=np.float64),
        Family("groupnorm-outlier", _groupnorm_outlier, GroupNorm.BUGS),
        Family("wide-affine-one-element", _wide_affine, OneElementAffine.BUGS, per_element=True),
        Family("loss-scale", _loss_scale, ScaledSoftmaxLoss.BUGS, scale_free=True),
        Family(
            "float32-inside",
            _float32_inside,
            Float32InsideAffine.BUGS,
            per_element=True,
            dtype=np.float64,
            truth=_narrowing_removed("inside", "outside"),
        ),
        Family(
            "float32-buffer-tanh-affine",
            _buffered_tanh,
            BufferedTanhAffine.BUGS,
            per_element=True,
            truth=_narrowing_removed("buffer"),
        ),
        Family(
            "one-pass-variance-batchnorm",
            _one_pass_batchnorm,
            TwoPassBatchNorm.BUGS,
            precision_bug=True,
            dtype=np.float32,
        ),
        Family("maxpool-ties", _max_pool_ties, TiedMaxPooling.BUGS),
        Family("sort-ties", _sort_ties, SortRows.BUGS),
        Family("l1-exact-zeros", _l1_exact_zeros, AffineSoftmaxL1.BUGS),
        Family(
            "features-at-scales", _features_at_scales, ScaledFeaturesAffine.BUGS, per_element=True
        ),
    )
}


# ---------------------------------------------------------------------------------------
# Cases


@dataclass
class FamilyCase(Case):
    """A layer of a family and the inputs to check it at; ``bug`` is None when correct."""

    family: str = ""
    bug: str | None = None

    def __str__(self) -> str:
        bug = f", bug: {self.bug}" if self.bug else ""
        return f"{self.family}: {self.description} {self.dtype}{bug}"


def _describe(layer: Any, inputs: tuple[Any, ...]) -> str:
    """``StridedConvolution(W(2, 1, 3, 2), stride=2, pad=1) at (1, 1, 5, 4)``."""
    shown = repr(layer) if type(layer).__repr__ is not object.__repr__ else type(layer).__name__
    return f"{shown} at {', '.join(str(np.shape(x)) for x in inputs)}"


def _dtype(rng: np.random.Generator, dtype: Any, family: Family) -> np.dtype:
    # Drawn even when the family fixes its dtype: a seed gives the same case as before.
    drawn = np.dtype(dtype if dtype is not None else DTYPES[int(rng.integers(2))])
    return np.dtype(family.dtype) if family.dtype is not None else drawn


def _family(rng: np.random.Generator, name: str | None) -> Family:
    if name is None:
        return FAMILIES[str(rng.choice(list(FAMILIES)))]
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def _drawn(
    rng: np.random.Generator, family: Family, dtype: np.dtype, bug: str | None
) -> FamilyCase:
    layer, inputs = family.draw(rng, dtype, bug)
    if rng.random() < 0.5:  # a layer that has been used before: its caches are stale
        state = np.random.get_state()  # noqa: NPY002 (the textbook Dropout draws from it)
        layer.forward(*fresh_point(rng, inputs))
        np.random.set_state(state)  # noqa: NPY002
    real = next(
        (x.dtype for x in inputs if isinstance(x, np.ndarray) and x.dtype.kind == "f"), dtype
    )
    return FamilyCase(layer, inputs, np.dtype(real), _describe(layer, inputs), family=family.name)


def family_case(
    rng: np.random.Generator, family: str | None = None, *, dtype: Any = None
) -> FamilyCase:
    """A correct layer of ``family`` (default: drawn) and a point to check it at.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness: the same state gives the same case.
    family : str, optional
        A key of :data:`FAMILIES`.
    dtype : dtype, optional
        float64 or float32 (default: drawn); a family with a ``dtype`` of its own is drawn
        in that one.
    """
    chosen = _family(rng, family)
    return _drawn(rng, chosen, _dtype(rng, dtype, chosen), None)


def family_mutant(
    rng: np.random.Generator,
    family: str | None = None,
    *,
    bug: str | None = None,
    dtype: Any = None,
    attempts: int = 8,
) -> FamilyCase | None:
    """A detectable mutant of ``family`` carrying ``bug``, or None if none was found.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    family : str, optional
        A key of :data:`FAMILIES` (default: drawn).
    bug : str, optional
        One of the family's bugs (default: drawn).
    dtype : dtype, optional
        float64 or float32 (default: drawn), unless the family has a ``dtype`` of its own.
    attempts : int
        How many points to try: a bug can be invisible at one (``drops-repeats`` where
        the repeated rows of ``dout`` happen to agree, ``alpha-dropped`` with α near 1).
    """
    chosen = _family(rng, family)
    bug = bug if bug is not None else str(rng.choice(chosen.bugs))
    if bug not in chosen.bugs:
        raise ValueError(
            f"{chosen.name} has no bug {bug!r}; expected one of {', '.join(chosen.bugs)}"
        )
    dtype = _dtype(rng, dtype, chosen)
    for _ in range(attempts):
        case = _drawn(rng, chosen, dtype, bug)
        mutant = copy.deepcopy(case.layer)
        mutant.bug = bug
        if detectable(
            case.layer,
            mutant,
            case.inputs,
            per_element=chosen.per_element,
            floor=0.0 if chosen.scale_free else 1e-8,
            native=chosen.precision_bug,
        ):
            return FamilyCase(
                mutant, case.inputs, case.dtype, case.description, family=chosen.name, bug=bug
            )
    return None
