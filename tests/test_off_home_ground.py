"""Issue 19's reproducers over ten seeds: each correct layer passes and each planted bug
fails.

Just off the home ground — large offsets, one outlier, tiny loss scales, float32 inside
float64, ties and exact zeros, one wrong element among tens of thousands, rows of very
different scales — the issue found the checker giving the wrong verdict on each of these,
most often a silent pass of a real bug. Where a single element is wrong, the report must
also name it. Each layer is the issue's code (laid out one statement a line, the bug's
factor made a parameter so the correct twin is the same class), at the issue's point with
``rng = np.random.default_rng(seed)``; the families of tests/catalogue.py draw the same
layers at random for the benchmark. A few neighbours stand beside them so a fix cannot
trade one for the other: the normalisations with the reference's mean of squares as well
as ``np.var``, a loss scaled by 1e12 as well as 1e-12, the small feature's row at three
shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from catalogue import (
    AffineSoftmaxL1,
    GroupNorm,
    StdScaling,
    TiedMaxPooling,
    TwoPassBatchNorm,
    VarLayerNorm,
)

import gradcheck
from gradcheck.vocabulary import Status
from reference_layers import BatchNormalization, LayerNorm
from reference_layers.functions import log_softmax

SEEDS = range(10)


def _verdicts(
    correct: Any, buggy: Any, *inputs: Any, **options: Any
) -> tuple[gradcheck.Report, gradcheck.Report]:
    return (
        gradcheck.check(correct, *inputs, **options),
        gradcheck.check(buggy, *inputs, **options),
    )


def _assert_right(right: gradcheck.Report, wrong: gradcheck.Report) -> None:
    assert right.passed, f"the correct layer:\n{right}"
    assert not wrong.passed, f"the buggy layer:\n{wrong}"


def _assert_named(report: gradcheck.Report, name: str, index: tuple[int, ...]) -> None:
    """The variable fails, and its element ``index`` is one it calls a mismatch."""
    var = report.variable(name)
    assert var.mismatches >= 1, str(report)
    assert var.status[index] == Status.MISMATCH, str(report)


# ---------------------------------------------------------------------------------------
# 1. The complex step trusted where it is invalid (norm, var, std drop the imaginary part)


class L2Normalize:
    def forward(self, x: Any) -> Any:
        self.n = np.linalg.norm(x, axis=1, keepdims=True)
        return x / self.n

    def backward(self, dout: Any) -> Any:
        return dout / self.n  # projection term missing


class CorrectL2Normalize(L2Normalize):
    """The same forward; backward projects out each row's own direction."""

    def forward(self, x: Any) -> Any:
        self.y = super().forward(x)
        return self.y

    def backward(self, dout: Any) -> Any:
        return (dout - self.y * np.sum(dout * self.y, axis=1, keepdims=True)) / self.n


@pytest.mark.parametrize("seed", SEEDS)
def test_l2_normalize_beside_one_element_of_1e5(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 6))
    x[0, 0] = 1e5
    before = x.copy()
    _assert_right(*_verdicts(CorrectL2Normalize(), L2Normalize(), x))
    assert x.tobytes() == before.tobytes(), "the user's array was changed"


class _VarianceDropped:
    """Mixin: a reference normalisation's backward without the variance's term."""

    xn: Any
    std: Any
    gamma: Any
    axis = -1

    def backward(self, dout: Any) -> Any:
        self.dbeta = dout.sum(axis=0)
        self.dgamma = (dout * self.xn).sum(axis=0)
        dxn = dout * self.gamma
        return (dxn - dxn.mean(axis=self.axis, keepdims=True)) / self.std


class LayerNormVarianceDropped(_VarianceDropped, LayerNorm):
    """The reference LayerNorm (mean of squares), its variance's term dropped."""

    axis = -1


class BatchNormVarianceDropped(_VarianceDropped, BatchNormalization):
    """The reference BatchNormalization (mean of squares), its variance's term dropped."""

    axis = 0


class VarBatchNorm:
    """BatchNorm (training) as students write it, with ``x.var(axis=0)``."""

    def __init__(self, gamma: Any, beta: Any, variance_branch: bool = True) -> None:
        self.gamma, self.beta, self.variance_branch = gamma, beta, variance_branch

    def forward(self, x: Any) -> Any:
        self.std = np.sqrt(x.var(axis=0) + 1e-5)
        self.xn = (x - x.mean(axis=0)) / self.std
        return self.gamma * self.xn + self.beta

    def backward(self, dout: Any) -> Any:
        self.dbeta, self.dgamma = dout.sum(axis=0), (dout * self.xn).sum(axis=0)
        dxn = dout * self.gamma
        dx = dxn - dxn.mean(axis=0)
        if self.variance_branch:
            dx = dx - self.xn * (dxn * self.xn).mean(axis=0)
        return dx / self.std


def _normalisations(kind: str, variance: str, gamma: Any, beta: Any) -> tuple[Any, Any]:
    """A correct normalisation and its twin without the variance's branch: with ``np.var``
    the complex step is not valid, with the reference's mean of squares it is."""
    if kind == "BatchNorm" and variance == "np.var":
        return VarBatchNorm(gamma, beta), VarBatchNorm(gamma, beta, variance_branch=False)
    if kind == "BatchNorm":
        return BatchNormalization(gamma, beta), BatchNormVarianceDropped(gamma, beta)
    if variance == "np.var":
        return VarLayerNorm(gamma, beta), VarLayerNorm(gamma, beta, bug="variance-branch-dropped")
    return LayerNorm(gamma, beta), LayerNormVarianceDropped(gamma, beta)


@pytest.mark.parametrize("variance", ["np.var", "mean of squares"])
@pytest.mark.parametrize("seed", SEEDS)
def test_layernorm_without_its_variance_branch_at_an_offset_of_3e4(
    seed: int, variance: str
) -> None:
    rng = np.random.default_rng(seed)
    gamma, beta = 1 + 0.1 * rng.standard_normal(4), rng.standard_normal(4)
    correct, buggy = _normalisations("LayerNorm", variance, gamma, beta)
    x = rng.standard_normal((3, 4)) + 3e4
    _assert_right(*_verdicts(correct, buggy, x))


@pytest.mark.parametrize("seed", SEEDS)
def test_std_scaling_at_1e4(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = 1e4 + rng.standard_normal((4, 5))
    _assert_right(*_verdicts(StdScaling(), StdScaling(bug="std-constant"), x))


@pytest.mark.parametrize("seed", SEEDS)
def test_groupnorm_with_one_outlier(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gamma, beta = 1 + 0.3 * rng.standard_normal(4), rng.standard_normal(4)
    x = rng.standard_normal((2, 4, 3))
    x[0, 0, 0] = 1e5
    correct = GroupNorm(gamma, beta, groups=2)
    buggy = GroupNorm(gamma, beta, groups=2, bug="variance-branch-dropped")
    _assert_right(*_verdicts(correct, buggy, x))


# ---------------------------------------------------------------------------------------
# 2. Steps scaled by |x| at large offsets


@pytest.mark.parametrize("variance", ["np.var", "mean of squares"])
@pytest.mark.parametrize("offset", [1e5, 1e6])
@pytest.mark.parametrize("kind", ["BatchNorm", "LayerNorm"])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_normalisation_at_a_large_offset(
    seed: int, kind: str, offset: float, variance: str
) -> None:
    rng = np.random.default_rng(seed)
    gamma, beta = 1 + 0.1 * rng.standard_normal(6), rng.standard_normal(6)
    correct, buggy = _normalisations(kind, variance, gamma, beta)
    x = offset + rng.standard_normal((5, 6))  # 30 elements
    right, wrong = _verdicts(correct, buggy, x)
    _assert_right(right, wrong)
    assert right.variable("x").kinks == 0, f"a step's size made kinks:\n{right}"


# ---------------------------------------------------------------------------------------
# 3. Fast mode blind to one wrong element


class Affine:
    """The issue's Affine; its ``dW[3, 5] *= 1.0001`` is ``factor`` at ``element``."""

    def __init__(
        self, W: Any, b: Any, factor: float = 1.0001, element: tuple[int, int] = (3, 5)
    ) -> None:
        self.W, self.b, self.factor, self.element = W, b, factor, element

    def forward(self, x: Any) -> Any:
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout: Any) -> Any:
        self.dW = self.x.T @ dout
        self.dW[self.element] *= self.factor
        self.db = dout.sum(0)
        return dout @ self.W.T


@pytest.mark.parametrize("seed", SEEDS)
def test_one_element_times_1_0001_in_a_256x64_weight(seed: int) -> None:
    rng = np.random.default_rng(seed)
    W, b, x = rng.standard_normal((256, 64)) / 16, np.zeros(64), rng.random((16, 256))
    arrays = [W.copy(), b.copy(), x.copy()]
    right, wrong = _verdicts(Affine(W, b, factor=1.0), Affine(W, b), x)
    _assert_right(right, wrong)
    _assert_named(wrong, "W", (3, 5))
    for before, after in zip(arrays, [W, b, x], strict=True):
        assert before.tobytes() == after.tobytes(), "the user's array was changed"


@pytest.mark.parametrize("factor", [1.001, 1.0001], ids=["x1.001", "x(1+10rtol)"])
@pytest.mark.parametrize("seed", SEEDS)
def test_one_element_in_a_784x100_weight_at_batch_32(seed: int, factor: float) -> None:
    rng = np.random.default_rng(seed)
    W, x = rng.standard_normal((784, 100)) / 28, rng.random((32, 784))
    element = (int(rng.integers(784)), int(rng.integers(100)))
    right, wrong = _verdicts(
        Affine(W, np.zeros(100), factor=1.0, element=element),
        Affine(W, np.zeros(100), factor=factor, element=element),
        x,
    )
    _assert_right(right, wrong)
    _assert_named(wrong, "W", element)


# ---------------------------------------------------------------------------------------
# 4. An absolute floor in the error estimate


class ScaledLoss:
    """``scale · CE(softmax(x W + b), t)``; ``factor`` scales every gradient."""

    def __init__(self, W: Any, b: Any, scale: float, factor: float = 1.0) -> None:
        self.W, self.b, self.scale, self.factor = W, b, scale, factor

    def forward(self, x: Any, t: Any) -> Any:
        self.x, self.t = x, t
        scores = log_softmax(x @ self.W + self.b)
        self.y = np.exp(scores)
        return self.scale * -np.mean(scores[np.arange(len(t)), t])

    def backward(self, dout: Any = 1) -> Any:
        d = self.y.copy()
        d[np.arange(len(self.t)), self.t] -= 1
        d = d * (self.scale * self.factor / len(self.t)) * dout
        self.dW, self.db = self.x.T @ d, d.sum(axis=0)
        return d @ self.W.T


@pytest.mark.parametrize("scale", [1e-12, 1e12])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_loss_scaled_by_1e_12_hides_no_factor_of_1_001(seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((5, 3)) / np.sqrt(5), 0.1 * rng.standard_normal(3)
    x, t = rng.standard_normal((4, 5)), rng.integers(0, 3, size=4)
    _assert_right(*_verdicts(ScaledLoss(W, b, scale), ScaledLoss(W, b, scale, 1.001), x, t))


# ---------------------------------------------------------------------------------------
# 5. float32 inside, float64 outside


class Float32Inside:
    """``x.astype('f') @ W.astype('f')`` returned as float64; ``factor`` on one dW element."""

    def __init__(self, W: Any, factor: float = 1.0, element: tuple[int, int] = (1, 2)) -> None:
        self.W, self.factor, self.element = W, factor, element

    def forward(self, x: Any) -> Any:
        self.x = x
        return (x.astype("f") @ self.W.astype("f")).astype(np.float64)

    def backward(self, dout: Any) -> Any:
        self.dW = self.x.T @ dout
        self.dW[self.element] *= self.factor
        return dout @ self.W.T


@pytest.mark.parametrize("seed", SEEDS)
def test_float32_inside_a_float64_layer(seed: int) -> None:
    rng = np.random.default_rng(seed)
    W, x = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    right, wrong = _verdicts(Float32Inside(W), Float32Inside(W, factor=1.01), x)
    _assert_right(right, wrong)
    assert all(v.kinks == 0 for v in right.variables), f"rounding read as kinks:\n{right}"
    _assert_named(wrong, "W", (1, 2))


class TanhAffine:  # float32 buffer; one dW element 1 % too large
    """The issue's TanhAffine; its ``grads[0][1, 2] *= 1.01`` is ``factor``."""

    def __init__(self, W: Any, factor: float = 1.01) -> None:
        self.params, self.grads, self.factor = [W], [np.zeros_like(W)], factor

    def forward(self, x: Any) -> Any:
        self.x, self.out = x, np.empty((x.shape[0], self.params[0].shape[1]), "f")
        self.out[...] = np.tanh(x @ self.params[0])
        return self.out

    def backward(self, dout: Any) -> Any:
        dz = dout * (1 - self.out**2)
        self.grads[0][...] = self.x.T @ dz
        self.grads[0][1, 2] *= self.factor
        return dz @ self.params[0].T


@pytest.mark.parametrize("dtype", ["f", "d"], ids=["float32", "float64-into-float32-buffer"])
@pytest.mark.parametrize("factor", [1.01, 1.3])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_float32_buffered_tanh_affine_with_one_element_off(
    seed: int, factor: float, dtype: str
) -> None:
    rng = np.random.default_rng(seed)
    W, x = rng.standard_normal((5, 20)).astype(dtype), rng.standard_normal((6, 5)).astype(dtype)
    right, wrong = _verdicts(TanhAffine(W, factor=1.0), TanhAffine(W, factor=factor), x)
    _assert_right(right, wrong)
    (weights,) = [v for v in wrong.variables if v.role == "parameter"]
    _assert_named(wrong, weights.name, (1, 2))


# ---------------------------------------------------------------------------------------
# 6. A float32 allowance that hides float32 damage


@pytest.mark.parametrize("seed", SEEDS)
def test_batchnorm_with_a_one_pass_variance_in_float32_at_1000(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gamma = (1 + 0.3 * rng.standard_normal(4)).astype(np.float32)
    beta = rng.standard_normal(4).astype(np.float32)
    x = (1000 + rng.standard_normal((8, 4))).astype(np.float32)
    correct = TwoPassBatchNorm(gamma, beta)
    buggy = TwoPassBatchNorm(gamma, beta, bug="one-pass-variance")
    right, wrong = _verdicts(correct, buggy, x)
    _assert_right(right, wrong)
    # Named for what it is: digits lost to float32, not a wrong formula.
    assert "of float32's 7 digits to rounding" in str(wrong), str(wrong)


@pytest.mark.parametrize("seed", range(6))
def test_a_float32_layernorm_at_1e5_is_judged_by_what_float32_did_to_it(seed: int) -> None:
    # 1e5 ± 1 keeps two digits of each deviation in float32, and the correct two-pass
    # LayerNorm's float32 gradient can be further from its float64 run than that
    # gradient's own size: precision damage, reported as such where it happened; the
    # same layer in float64 passes.
    x = (np.random.default_rng(seed).standard_normal((4, 2)) + 1e5).astype(np.float32)
    layer = LayerNorm(np.ones(2, np.float32), np.zeros(2, np.float32))
    dout = np.random.default_rng(100 + seed).standard_normal(x.shape)
    narrow = LayerNorm(np.ones(2, np.float32), np.zeros(2, np.float32))
    narrow.forward(x)
    wide = LayerNorm(np.ones(2), np.zeros(2))
    wide.forward(x.astype(np.float64))
    exact = wide.backward(dout)
    damage = np.max(np.abs(narrow.backward(dout.astype(np.float32)) - exact))
    report = gradcheck.check(layer, x)
    if damage > np.max(np.abs(exact)):
        assert report.verdict == "FAILED" and "digits to rounding" in str(report), str(report)
    else:
        assert report.passed, str(report)
    assert gradcheck.check(LayerNorm(np.ones(2), np.zeros(2)), x.astype(np.float64)).passed


# ---------------------------------------------------------------------------------------
# 7. Kinks


def _pool_with_ties(rng: np.random.Generator) -> Any:
    """(1, 1, 4, 4), distinct values but each 2x2 window's maximum copied to a neighbour."""
    x = rng.permutation(np.linspace(-2, 2, 16)).reshape(1, 1, 4, 4)
    for i in range(0, 4, 2):
        for j in range(0, 4, 2):
            window = x[0, 0, i : i + 2, j : j + 2]
            top = np.unravel_index(np.argmax(window), (2, 2))
            window[(top[0] + 1) % 2, top[1]] = window[top]
    return x


@pytest.mark.parametrize("seed", SEEDS)
def test_max_pool_giving_dout_to_every_tied_element(seed: int) -> None:
    x = _pool_with_ties(np.random.default_rng(seed))
    correct, buggy = TiedMaxPooling(2, 2), TiedMaxPooling(2, 2, bug="every-tie-gets-dout")
    _assert_right(*_verdicts(correct, buggy, x))


@pytest.mark.parametrize("seed", SEEDS)
def test_an_l1_penalty_adding_2_lambda_at_exact_zeros(seed: int) -> None:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((4, 3)) / 2
    W[rng.random(W.shape) < 0.4] = 0
    W[0, 0] = 0.0  # at least one exact zero
    b, x, t = 0.1 * rng.standard_normal(3), rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    correct = AffineSoftmaxL1(W, b, lam=0.1)
    buggy = AffineSoftmaxL1(W, b, lam=0.1, bug="plus-2lambda-at-zero")
    right, wrong = _verdicts(correct, buggy, x, t)
    _assert_right(right, wrong)
    assert wrong.variable("W").status[0, 0] == Status.MISMATCH, str(wrong)


# ---------------------------------------------------------------------------------------
# 8. atol by the lower quartile


class RowAffine:
    """The chapter's Affine with one row of ``dW`` multiplied by ``factor``."""

    def __init__(self, W: Any, b: Any, row: int, factor: float = 1.0) -> None:
        self.W, self.b, self.row, self.factor = W, b, row, factor

    def forward(self, x: Any) -> Any:
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout: Any) -> Any:
        self.dW = self.x.T @ dout
        self.dW[self.row] *= self.factor
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


@pytest.mark.parametrize(("batch", "outputs"), [(4, 2), (8, 1), (8, 3)])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_sign_flip_in_the_one_small_features_row(seed: int, batch: int, outputs: int) -> None:
    rng = np.random.default_rng(seed)
    x = 3e6 * (1 + rng.random((batch, 5)))
    x[:, 4] = rng.standard_normal(batch)  # 4 of 5 features at 3e6, one at 1
    W, b = 0.1 * rng.standard_normal((5, outputs)), np.zeros(outputs)
    right, wrong = _verdicts(RowAffine(W, b, row=4), RowAffine(W, b, row=4, factor=-1.0), x)
    _assert_right(right, wrong)
    status = wrong.variable("W").status
    assert np.any(status[4] == Status.MISMATCH), str(wrong)
    assert not np.any(status[:4] == Status.MISMATCH), f"a right row called wrong:\n{wrong}"
