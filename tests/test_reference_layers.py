"""Specification of the reference layers.

Gradients are checked against an independent central difference written here (not
``reference_layers.functions.numerical_gradient``, not gradcheck), in float64.

Tolerance: with the step ``h = 1e-5 * max(1, |x|)`` (near the float64 optimum
``eps ** (1/3) ≈ 6e-6``) the truncation error is about ``h**2 * |f'''| / 6 ≈ 1e-10`` and
the rounding error about ``eps * |L| / h ≈ 1e-10`` for the losses ``|L| <= 50`` used here,
so ``rtol=1e-6, atol=1e-8`` leaves two orders of magnitude of margin yet catches any
wrong formula (errors of order 1e-2 and more).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import reference_layers as rl
from reference_layers import (
    AddLayer,
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    LayerNorm,
    LeakyRelu,
    MeanSquaredError,
    MulLayer,
    MultiLayerNet,
    Pooling,
    Relu,
    Sigmoid,
    Softmax,
    SoftmaxWithLoss,
    Softplus,
    Tanh,
    TwoLayerNet,
)
from reference_layers.conv import col2im, im2col
from reference_layers.functions import (
    cross_entropy_error,
    log_softmax,
    numerical_gradient,
    sigmoid,
    softmax,
)

RTOL, ATOL = 1e-6, 1e-8

# Names of the examples that follow the layer protocol (the nets are models instead).
LAYER_EXAMPLES = [name for name, (obj, _) in rl.examples().items() if hasattr(obj, "backward")]


# --------------------------------------------------------------------------- helpers


def central_difference(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Gradient of the scalar ``f`` at ``x``; ``f`` only ever sees fresh copies."""
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        h = 1e-5 * max(1.0, abs(x[idx]))
        plus, minus = x.copy(), x.copy()
        plus[idx] += h
        minus[idx] -= h
        # Divide by the step actually taken, which rounding can make differ from 2h.
        grad[idx] = (f(plus) - f(minus)) / (plus[idx] - minus[idx])
    return grad


def as_tuple(grads: Any) -> tuple[Any, ...]:
    return grads if isinstance(grads, tuple) else (grads,)


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def spaced(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Distinct values 4/size apart: no max-pooling ties, even after a small step."""
    return rng.permutation(np.linspace(-2, 2, int(np.prod(shape)))).reshape(shape)


@dataclass
class Case:
    """A layer, its forward inputs, and what to differentiate."""

    layer: Any
    inputs: tuple[Any, ...]
    wrt: tuple[int, ...] = (0,)  # indices of the differentiable inputs
    params: tuple[str, ...] = ()  # parameter attributes: W -> dW
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra forward arguments


def _cases(rng: np.random.Generator, n: int) -> dict[str, Case]:
    """Every layer configuration to check, for a batch of ``n`` samples."""
    normal = rng.standard_normal
    bn_eval = BatchNormalization(1 + 0.1 * normal(3), normal(3))
    bn_eval.running_mean, bn_eval.running_var = normal(3), rng.uniform(0.5, 2, 3)
    return {
        "MulLayer": Case(MulLayer(), (normal((n, 4)), normal((n, 4))), wrt=(0, 1)),
        "AddLayer": Case(AddLayer(), (normal((n, 4)), normal((n, 4))), wrt=(0, 1)),
        "Relu": Case(Relu(), (away_from_zero(rng, (n, 4)),)),
        "LeakyRelu": Case(LeakyRelu(alpha=0.1), (away_from_zero(rng, (n, 4)),)),
        "Sigmoid": Case(Sigmoid(), (2 * normal((n, 4)),)),
        "Tanh": Case(Tanh(), (normal((n, 4)),)),
        "Softplus": Case(Softplus(), (2 * normal((n, 4)),)),
        "Softmax": Case(Softmax(), (normal((n, 4)),)),
        "Affine": Case(Affine(normal((4, 3)), normal(3)), (normal((n, 4)),), params=("W", "b")),
        "Affine-4d": Case(
            Affine(normal((12, 5)), normal(5)), (normal((n, 2, 3, 2)),), params=("W", "b")
        ),
        "SoftmaxWithLoss-labels": Case(
            SoftmaxWithLoss(), (normal((n, 4)), rng.integers(4, size=n))
        ),
        "SoftmaxWithLoss-onehot": Case(
            SoftmaxWithLoss(), (normal((n, 4)), np.eye(4)[rng.integers(4, size=n)])
        ),
        "SoftmaxWithLoss-1d-label": Case(SoftmaxWithLoss(), (normal(4), 2)),
        "SoftmaxWithLoss-1d-onehot": Case(SoftmaxWithLoss(), (normal(4), np.eye(4)[1])),
        "MeanSquaredError": Case(MeanSquaredError(), (normal((n, 3)), normal((n, 3)))),
        "MeanSquaredError-1d": Case(MeanSquaredError(), (normal(3), normal(3))),
        "BatchNormalization-train": Case(
            BatchNormalization(1 + 0.1 * normal(3), normal(3)),
            (normal((n, 3)),),
            params=("gamma", "beta"),
        ),
        "BatchNormalization-eval": Case(
            bn_eval, (normal((n, 3)),), params=("gamma", "beta"), kwargs={"train": False}
        ),
        "BatchNormalization-4d": Case(
            BatchNormalization(1 + 0.1 * normal(12), normal(12)),
            (normal((n, 2, 3, 2)),),
            params=("gamma", "beta"),
        ),
        "LayerNorm": Case(
            LayerNorm(1 + 0.1 * normal(5), normal(5)), (normal((n, 5)),), params=("gamma", "beta")
        ),
        "LayerNorm-3d": Case(
            LayerNorm(1 + 0.1 * normal(5), normal(5)),
            (normal((n, 2, 5)),),
            params=("gamma", "beta"),
        ),
        "Convolution": Case(
            Convolution(normal((3, 2, 2, 3)), normal(3), stride=1, pad=1),
            (normal((n, 2, 4, 5)),),
            params=("W", "b"),
        ),
        "Convolution-stride2": Case(
            Convolution(normal((2, 2, 3, 2)), normal(2), stride=2, pad=0),
            (normal((n, 2, 5, 4)),),
            params=("W", "b"),
        ),
        "Pooling": Case(Pooling(2, 2, stride=2), (spaced(rng, (n, 2, 4, 6)),)),
        "Pooling-overlapping": Case(Pooling(3, 2, stride=1), (spaced(rng, (n, 2, 4, 5)),)),
    }


CASES = _cases(np.random.default_rng(0), 2)  # for the names and what each case checks
CASE_NAMES = list(CASES)


def loss_of(case: Case, dout: Any) -> Callable[..., float]:
    """``L = sum(dout * forward(*inputs))`` as a function of all inputs."""

    def loss(*inputs: Any) -> float:
        return float(np.sum(dout * case.layer.forward(*inputs, **case.kwargs)))

    return loss


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_input_gradients_match_central_difference(name, batch):
    rng = np.random.default_rng(batch)
    case = _cases(rng, batch)[name]
    out = case.layer.forward(*case.inputs, **case.kwargs)
    dout = rng.standard_normal(np.shape(out)) if np.ndim(out) else 1.0
    grads = as_tuple(case.layer.backward(dout))
    assert len(grads) == len(case.wrt)

    loss = loss_of(case, dout)
    for grad, i in zip(grads, case.wrt, strict=True):

        def loss_i(xi, i=i):
            return loss(*case.inputs[:i], xi, *case.inputs[i + 1 :])

        expected = central_difference(loss_i, case.inputs[i])
        np.testing.assert_allclose(grad, expected, rtol=RTOL, atol=ATOL, err_msg=f"input {i}")


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.params])
def test_parameter_gradients_match_central_difference(name, batch):
    rng = np.random.default_rng(batch)
    case = _cases(rng, batch)[name]
    out = case.layer.forward(*case.inputs, **case.kwargs)
    dout = rng.standard_normal(out.shape)
    case.layer.backward(dout)
    analytic = {p: getattr(case.layer, "d" + p).copy() for p in case.params}

    loss = loss_of(case, dout)
    for p in case.params:
        original = getattr(case.layer, p)

        def loss_p(value, p=p):
            setattr(case.layer, p, value)
            return loss(*case.inputs)

        expected = central_difference(loss_p, original)
        setattr(case.layer, p, original)
        np.testing.assert_allclose(analytic[p], expected, rtol=RTOL, atol=ATOL, err_msg=p)


# Dropout is left out: it draws a new random mask on every forward pass.
@pytest.mark.parametrize("name", [name for name in LAYER_EXAMPLES if name != "Dropout"])
def test_complex_step_agrees_with_backward(name):
    """The layers stay analytic on complex input, so the complex-step method checks them."""
    rng = np.random.default_rng(7)
    layer, inputs = rl.examples(rng)[name]
    out = layer.forward(*inputs)
    dout = rng.standard_normal(np.shape(out)) if np.ndim(out) else 1.0
    dx = as_tuple(layer.backward(dout))[0]

    direction = rng.standard_normal(np.shape(inputs[0]))
    h = 1e-20
    perturbed = layer.forward(inputs[0] + 1j * h * direction, *inputs[1:])
    directional = np.sum(dout * np.imag(perturbed)) / h
    assert directional == pytest.approx(np.sum(dx * direction), rel=1e-12, abs=1e-12)


# --------------------------------------------------------------------------- no in-place edits


def _read_only(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        a = a.copy()
        a.setflags(write=False)
    return a


@pytest.mark.parametrize("name", LAYER_EXAMPLES)
def test_layers_accept_read_only_inputs_and_dout(name):
    """A layer that edited its input or dout in place would raise on a read-only array."""
    layer, inputs = rl.examples()[name]
    out = layer.forward(*[_read_only(x) for x in inputs])
    dout = _read_only(np.ones_like(out)) if np.ndim(out) else 1.0
    layer.backward(dout)


def test_relu_backward_leaves_dout_unchanged():
    relu = Relu()
    relu.forward(np.array([[-1.0, 2.0], [3.0, -4.0]]))
    dout = np.array([[10.0, 20.0], [30.0, 40.0]])
    dx = relu.backward(dout)
    np.testing.assert_array_equal(dout, [[10.0, 20.0], [30.0, 40.0]])
    np.testing.assert_array_equal(dx, [[0.0, 20.0], [30.0, 0.0]])


def test_relu_backward_accepts_read_only_dout():
    relu = Relu()
    relu.forward(np.array([-1.0, 2.0]))
    dout = np.array([5.0, 6.0])
    dout.setflags(write=False)
    np.testing.assert_array_equal(relu.backward(dout), [0.0, 6.0])


def test_add_layer_returns_independent_gradients():
    dx, dy = AddLayer().backward(np.array([1.0, 2.0]))
    dx[0] = 99.0
    assert dy[0] == 1.0


# --------------------------------------------------------------------------- hazards


def test_sigmoid_of_large_negative_input_has_no_warning_and_is_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sigmoid(-1000.0) == 0.0
        assert sigmoid(1000.0) == 1.0
        out = Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


def test_sigmoid_matches_the_plain_formula_where_it_is_safe():
    x = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-15)


def test_softplus_of_large_inputs_has_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Softplus().forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(out, [0.0, np.log(2.0), 1000.0])


@pytest.mark.parametrize("x", [np.array([1000.0, 1000.0]), np.array([[1000.0, 1000.0]] * 2)])
def test_softmax_of_large_scores_is_finite(x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = softmax(x)
    np.testing.assert_array_equal(y, np.full_like(x, 0.5))


def test_log_softmax_is_log_of_softmax():
    x = np.random.default_rng(0).standard_normal((3, 5))
    np.testing.assert_allclose(log_softmax(x), np.log(softmax(x)), rtol=1e-14)


def test_softmax_with_loss_of_one_sample_does_not_divide_by_the_class_count():
    x = np.array([0.5, -1.0, 2.0, 0.1])
    layer = SoftmaxWithLoss()
    layer.forward(x, 2)
    np.testing.assert_allclose(layer.backward(), softmax(x) - np.eye(4)[2], rtol=1e-15)


@pytest.mark.parametrize("shape", [(4,), (3, 4)])
def test_softmax_with_loss_labels_and_one_hot_agree(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    labels = rng.integers(4, size=shape[:-1])
    by_label, by_one_hot = SoftmaxWithLoss(), SoftmaxWithLoss()
    assert by_label.forward(x, labels) == by_one_hot.forward(x, np.eye(4)[labels])
    np.testing.assert_array_equal(by_label.backward(), by_one_hot.backward())


def test_softmax_with_loss_of_one_sample_is_minus_log_softmax_exactly():
    x = np.array([0.5, -1.0, 2.0, 0.1])
    assert SoftmaxWithLoss().forward(x, 1) == -log_softmax(x)[1]


def test_softmax_with_loss_is_the_mean_of_minus_log_softmax():
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((5, 3)), rng.integers(3, size=5)
    expected = -np.mean(log_softmax(x)[np.arange(5), t])
    assert SoftmaxWithLoss().forward(x, t) == pytest.approx(expected, rel=1e-15)


def test_softmax_with_loss_of_extreme_scores_is_finite():
    loss = SoftmaxWithLoss().forward(np.array([[1000.0, -1000.0]]), np.array([1]))
    assert loss == pytest.approx(2000.0)


def test_softmax_with_loss_rejects_targets_of_the_wrong_shape():
    with pytest.raises(ValueError, match="one-hot"):
        SoftmaxWithLoss().forward(np.zeros((3, 4)), np.zeros(4, dtype=int))


def test_cross_entropy_error_one_sample_equals_batch_of_one():
    y, t = np.array([0.1, 0.7, 0.2]), 1
    assert cross_entropy_error(y, t) == cross_entropy_error(y[None], np.array([t]))
    assert cross_entropy_error(y, np.eye(3)[t]) == cross_entropy_error(y, t)


def test_mean_squared_error_is_half_the_sum_of_squares_per_sample():
    y, t = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [3.0, 2.0]])
    assert MeanSquaredError().forward(y, t) == 0.5 * (1.0 + 4.0) / 2


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("name", list(rl.examples()))
def test_float32_in_float32_out(name):
    obj, inputs = rl.examples(dtype=np.float32)[name]
    if not hasattr(obj, "backward"):  # a net
        assert np.asarray(obj.loss(*inputs)).dtype == np.float32
        assert {g.dtype for g in obj.gradient(*inputs).values()} == {np.dtype(np.float32)}
        return
    out = obj.forward(*inputs)
    assert np.asarray(out).dtype == np.float32
    dout = np.ones_like(out) if np.ndim(out) else 1
    for grad in as_tuple(obj.backward(dout)):
        assert grad.dtype == np.float32
    for p in ("W", "b", "gamma", "beta"):
        if hasattr(obj, p):
            assert getattr(obj, "d" + p).dtype == np.float32, p


def test_sigmoid_keeps_float32():
    assert sigmoid(np.array([-1000.0, 3.0], dtype=np.float32)).dtype == np.float32


# --------------------------------------------------------------------------- batch norm


def test_batch_norm_train_updates_running_statistics():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3))
    bn = BatchNormalization(np.ones(3), np.zeros(3), momentum=0.9)
    bn.forward(x, train=True)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=0))


def test_batch_norm_train_output_is_normalized_per_feature():
    rng = np.random.default_rng(4)
    x = 3 + 2 * rng.standard_normal((50, 3))
    out = BatchNormalization(np.ones(3), np.zeros(3)).forward(x, train=True)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-5)


def test_batch_norm_eval_uses_running_statistics_and_leaves_them_alone():
    rng = np.random.default_rng(5)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    bn = BatchNormalization(gamma, beta, running_mean=mean.copy(), running_var=var.copy())
    x = rng.standard_normal((4, 3))
    out = bn.forward(x, train=False)
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + bn.eps) + beta)
    np.testing.assert_array_equal(bn.running_mean, mean)
    np.testing.assert_array_equal(bn.running_var, var)


# --------------------------------------------------------------------------- dropout


def test_dropout_with_the_same_seed_draws_the_same_masks():
    x = np.random.default_rng(0).standard_normal((4, 5))
    a, b = Dropout(0.3, seed=42), Dropout(0.3, seed=42)
    for _ in range(2):
        np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_dropout_accepts_a_generator():
    x = np.ones((4, 5))
    by_int = Dropout(0.5, seed=1).forward(x)
    by_generator = Dropout(0.5, seed=np.random.default_rng(1)).forward(x)
    np.testing.assert_array_equal(by_int, by_generator)


def test_dropout_eval_is_the_identity():
    x = np.random.default_rng(0).standard_normal((4, 5))
    layer = Dropout(0.5, seed=0)
    np.testing.assert_array_equal(layer.forward(x, train=False), x)
    np.testing.assert_array_equal(layer.backward(x), x)


def test_dropout_train_keeps_units_scaled_and_routes_gradients_through_them():
    x = np.random.default_rng(0).uniform(1, 2, (20, 30))
    layer = Dropout(0.25, seed=0)
    out = layer.forward(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75)
    assert 0.6 < kept.mean() < 0.9
    dout = np.ones_like(x)
    np.testing.assert_allclose(layer.backward(dout), kept / 0.75)


def test_dropout_gradient_matches_central_difference_for_a_fixed_mask():
    rng = np.random.default_rng(6)
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    layer = Dropout(0.5, seed=0)

    def loss(x):
        layer.rng = np.random.default_rng(0)  # the same mask on every call
        return float(np.sum(dout * layer.forward(x)))

    expected = central_difference(loss, x)
    loss(x)
    np.testing.assert_allclose(layer.backward(dout), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("ratio", [-0.1, 1.0])
def test_dropout_rejects_a_ratio_outside_zero_one(ratio):
    with pytest.raises(ValueError, match="ratio"):
        Dropout(ratio)


# --------------------------------------------------------------------------- affine


def test_affine_flattens_images_and_returns_dx_in_their_shape():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 2, 2))
    layer = Affine(rng.standard_normal((12, 4)), np.zeros(4))
    out = layer.forward(x)
    np.testing.assert_allclose(out, x.reshape(2, 12) @ layer.W)
    assert layer.backward(np.ones_like(out)).shape == x.shape


def test_affine_rejects_a_single_unbatched_sample():
    with pytest.raises(ValueError, match="batch"):
        Affine(np.ones((3, 2)), np.zeros(2)).forward(np.ones(3))


# --------------------------------------------------------------------------- conv and pooling


def conv_by_loops(x, W, b, stride, pad):
    N, _, H, Wd = x.shape
    FN, _, FH, FW = W.shape
    xp = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    out_h, out_w = (H + 2 * pad - FH) // stride + 1, (Wd + 2 * pad - FW) // stride + 1
    out = np.zeros((N, FN, out_h, out_w))
    for n in range(N):
        for f in range(FN):
            for i in range(out_h):
                for j in range(out_w):
                    window = xp[n, :, i * stride : i * stride + FH, j * stride : j * stride + FW]
                    out[n, f, i, j] = np.sum(window * W[f]) + b[f]
    return out


def max_pool_by_loops(x, ph, pw, stride):
    N, C, H, W = x.shape
    out_h, out_w = (H - ph) // stride + 1, (W - pw) // stride + 1
    out = np.zeros((N, C, out_h, out_w))
    for n, c, i, j in np.ndindex(out.shape):
        out[n, c, i, j] = x[n, c, i * stride : i * stride + ph, j * stride : j * stride + pw].max()
    return out


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (1, 1), (2, 1)])
def test_convolution_matches_loops(stride, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 4))
    W, b = rng.standard_normal((3, 2, 2, 3)), rng.standard_normal(3)
    out = Convolution(W, b, stride=stride, pad=pad).forward(x)
    np.testing.assert_allclose(out, conv_by_loops(x, W, b, stride, pad), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("ph", "pw", "stride"), [(2, 2, 2), (3, 2, 1)])
def test_pooling_matches_loops(ph, pw, stride):
    x = spaced(np.random.default_rng(0), (2, 3, 4, 6))
    out = Pooling(ph, pw, stride=stride).forward(x)
    np.testing.assert_array_equal(out, max_pool_by_loops(x, ph, pw, stride))


def test_pooling_backward_routes_each_gradient_to_its_window_maximum():
    x = np.array([[[[1.0, 5.0], [3.0, 2.0]]]])
    layer = Pooling(2, 2, stride=2)
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.array([[[[7.0]]]])), [[[[0, 7.0], [0, 0]]]])


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4))
    col = im2col(x, 3, 2, stride=2, pad=1)
    c = rng.standard_normal(col.shape)
    assert np.sum(col * c) == pytest.approx(np.sum(x * col2im(c, x.shape, 3, 2, stride=2, pad=1)))


# --------------------------------------------------------------------------- nets


def tiny_two_layer_net():
    rng = np.random.default_rng(0)
    net = TwoLayerNet(3, 4, 2, weight_init_std=0.5, seed=0)
    return net, rng.standard_normal((2, 3)), np.array([0, 1])


def assert_gradient_matches_numerical_gradient(net, x, t):
    # The textbook step h=1e-4 leaves a truncation error of about h**2 = 1e-8.
    backprop, numerical = net.gradient(x, t), net.numerical_gradient(x, t)
    assert backprop.keys() == numerical.keys() == net.params.keys()
    for key in net.params:
        np.testing.assert_allclose(backprop[key], numerical[key], rtol=1e-5, atol=1e-7, err_msg=key)


def test_two_layer_net_gradient_agrees_with_numerical_gradient():
    assert_gradient_matches_numerical_gradient(*tiny_two_layer_net())


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_multi_layer_net_gradient_agrees_with_numerical_gradient(activation):
    rng = np.random.default_rng(1)
    net = MultiLayerNet(3, [4, 5], 2, activation=activation, weight_init_std=0.5, seed=1)
    assert_gradient_matches_numerical_gradient(net, rng.standard_normal((2, 3)), np.array([1, 0]))


def test_two_layer_net_has_the_chapter_structure():
    net, _, _ = tiny_two_layer_net()
    assert list(net.params) == ["W1", "b1", "W2", "b2"]
    assert list(net.layers) == ["Affine1", "Relu1", "Affine2"]
    assert isinstance(net.lastLayer, SoftmaxWithLoss)
    assert net.layers["Affine1"].W is net.params["W1"]
    assert net.layers["Affine2"].b is net.params["b2"]


def test_multi_layer_net_has_one_affine_per_layer_and_textbook_names():
    net = MultiLayerNet(3, [4, 5, 6], 2, activation="sigmoid")
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    assert list(net.layers)[:3] == ["Affine1", "Activation_function1", "Affine2"]
    assert isinstance(net.layers["Activation_function2"], Sigmoid)
    assert net.layers["Affine4"].W is net.params["W4"]


def test_net_numerical_gradient_restores_the_parameters_bit_for_bit():
    net, x, t = tiny_two_layer_net()
    before = {k: v.copy() for k, v in net.params.items()}
    net.numerical_gradient(x, t)
    for key, value in before.items():
        np.testing.assert_array_equal(net.params[key], value)


def test_net_accuracy_accepts_labels_and_one_hot():
    net, x, _ = tiny_two_layer_net()
    labels = np.argmax(net.predict(x), axis=1)
    assert net.accuracy(x, labels) == 1.0
    assert net.accuracy(x, np.eye(2)[1 - labels]) == 0.0


def test_net_seed_makes_initial_weights_reproducible():
    a, b = MultiLayerNet(3, [4], 2, seed=3), MultiLayerNet(3, [4], 2, seed=3)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])


def test_multi_layer_net_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        MultiLayerNet(3, [4], 2, activation="gelu")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- functions


def test_textbook_numerical_gradient_of_a_sum_of_squares():
    x = np.array([[3.0, 4.0], [0.5, -1.0]])
    before = x.copy()
    grad = numerical_gradient(lambda v: np.sum(v**2), x)
    np.testing.assert_allclose(grad, 2 * before, rtol=1e-9)
    np.testing.assert_array_equal(x, before)


def test_textbook_numerical_gradient_restores_x_when_f_raises():
    x = np.array([1.0, 2.0])

    def failing(v):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        numerical_gradient(failing, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


# --------------------------------------------------------------------------- examples


def test_examples_cover_every_exported_class():
    exported = {name for name in rl.__all__ if isinstance(getattr(rl, name), type)}
    ex = rl.examples()
    assert set(ex) == exported
    for name, (obj, inputs) in ex.items():
        assert type(obj) is getattr(rl, name)
        assert isinstance(inputs, tuple)


@pytest.mark.parametrize("name", list(rl.examples()))
def test_each_example_comes_from_the_class_method(name):
    cls = getattr(rl, name)
    obj, inputs = cls.example(np.random.default_rng(0), dtype=np.float64)
    assert isinstance(obj, cls)
    assert all(np.asarray(x).dtype == np.float64 for x in inputs if np.asarray(x).dtype.kind == "f")


def test_examples_are_reproducible():
    a, b = rl.examples(), rl.examples()
    for name in a:
        for x, y in zip(a[name][1], b[name][1], strict=True):
            np.testing.assert_array_equal(x, y)


def test_example_inputs_stay_away_from_kinks():
    ex = rl.examples()
    for name in ("Relu", "LeakyRelu"):
        assert np.min(np.abs(ex[name][1][0])) >= 0.1
    pool_input = ex["Pooling"][1][0]
    assert len(np.unique(pool_input)) == pool_input.size
