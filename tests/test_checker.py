"""The checker's verdicts: correct layers pass, every broken layer in the zoo fails."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from zoo import BROKEN, TextbookSoftmaxWithLoss

import gradcheck
import reference_layers
from gradcheck import CheckError, GradientCheckError
from gradcheck.vocabulary import Verdict
from reference_layers import Affine, MulLayer, Relu, Sigmoid, SoftmaxWithLoss


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(3))
def test_every_reference_layer_passes(dtype: Any, seed: int) -> None:
    for name, (layer, inputs) in reference_layers.examples(
        np.random.default_rng(seed), dtype
    ).items():
        report = gradcheck.check(layer, *inputs, seed=seed)
        assert report.passed, f"{name}:\n{report}"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_every_broken_layer_fails(name: str) -> None:
    layer, inputs = BROKEN[name](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs)
    assert not report.passed, str(report)


def test_one_wrong_element_is_named() -> None:
    layer, inputs = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs)
    weights = report.variable("W")
    assert weights.mismatches == 1
    assert weights.worst[0].index == (2, 1)
    assert "(2, 1)" in str(report)
    assert report.variable("x").passed and report.variable("b").passed


def test_the_largest_relative_error_counts_a_wrong_element_judged_by_atol() -> None:
    class SmallWrongElement(Affine):
        def backward(self, dout: np.ndarray) -> np.ndarray:
            dx = super().backward(dout)
            self.dW[2, 1] *= 1.01  # a small element, below the variable's typical size
            return dx

    rng = np.random.default_rng(0)
    layer = SmallWrongElement(rng.standard_normal((4, 3)), np.zeros(3))
    weights = gradcheck.check(layer, rng.standard_normal((5, 4))).variable("W")
    assert weights.mismatches == 1
    assert weights.max_rel_error == pytest.approx(0.01, rel=0.02)  # the 1 % of the bug


def test_indices_print_as_plain_integers() -> None:
    layer, inputs = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    text = str(gradcheck.check(layer, *inputs))
    assert "np.int64" not in text


def test_scaled_gradient_is_named_as_a_factor() -> None:
    layer, inputs = BROKEN["affine-db-times-batch"](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs)
    assert report.conclusion is not None
    assert "×5 too large" in report.conclusion and "batch size" in report.conclusion


def test_wrong_sign_is_named() -> None:
    layer, inputs = BROKEN["sigmoid-wrong-sign"](np.random.default_rng(0))
    assert "wrong sign" in str(gradcheck.check(layer, *inputs).conclusion)


def test_transposed_gradient_is_named() -> None:
    layer, inputs = BROKEN["affine-transposed-dW"](np.random.default_rng(0))
    assert "transposed" in str(gradcheck.check(layer, *inputs).conclusion)


def test_swapped_gradients_are_named() -> None:
    layer, inputs = BROKEN["mul-swapped-gradients"](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs)
    assert "swapped" in str(report.conclusion)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_off_by_a_thousandth_fails(dtype: Any) -> None:
    layer, inputs = BROKEN["tanh-scaled-1.001"](np.random.default_rng(0))
    report = gradcheck.check(layer, *(x.astype(dtype) for x in inputs))
    assert report.variable("x").mismatches == inputs[0].size


def test_textbook_softmax_with_loss_guard_is_not_a_false_alarm() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5))
    t = np.eye(5)[rng.integers(0, 5, size=4)]
    report = gradcheck.check(TextbookSoftmaxWithLoss(), x, t)
    assert report.passed, str(report)
    assert [c.name for c in report.constants] == ["t"]


def test_inplace_backward_is_its_own_diagnosis() -> None:
    layer, inputs = BROKEN["textbook-relu-inplace-backward"](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs)
    kinds = [d.kind for d in report.diagnostics]
    assert "inplace-backward" in kinds
    assert all(v.passed for v in report.variables)  # the values themselves are right
    assert "AddLayer" in str(report)
    assert gradcheck.check(layer, *inputs, allow_inplace=True).passed


def test_inplace_forward_is_reported() -> None:
    layer, inputs = BROKEN["relu-inplace-forward"](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs)
    assert [d.kind for d in report.diagnostics if d.severity == "error"] == ["inplace-forward"]


def test_unseeded_dropout_is_reported_as_nondeterminism() -> None:
    layer, inputs = BROKEN["unseeded-dropout"](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs)
    assert "nondeterministic" in [d.kind for d in report.diagnostics]
    assert "seed" in str(report)


class TextbookDropout:
    """The book's Dropout: a fresh mask from the global np.random on every forward."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.dropout_ratio = dropout_ratio
        self.mask: Any = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio  # noqa: NPY002
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout: Any) -> Any:
        return dout * self.mask


def test_the_textbooks_dropout_on_the_global_random_state_is_held_fixed_and_passes() -> None:
    np.random.seed(7)  # noqa: NPY002
    before = np.random.get_state()  # noqa: NPY002
    x = np.random.default_rng(0).standard_normal((4, 6))
    report = gradcheck.check(TextbookDropout(), x)
    assert report.passed, str(report)
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_the_global_random_state_is_held_only_for_a_forward_that_draws_from_it() -> None:
    from gradcheck.analytic.run import analytic_pass
    from gradcheck.conventions.registry import make_target
    from gradcheck.conventions.target import TargetRequest

    x = np.random.default_rng(0).standard_normal((4, 6))
    drawing = analytic_pass(
        make_target(TargetRequest(TextbookDropout(), (x,))), seed=0, allow_inplace=False
    )
    plain = analytic_pass(make_target(TargetRequest(Sigmoid(), (x,))), seed=0, allow_inplace=False)
    assert drawing.draws_global_random and not plain.draws_global_random


def test_a_bug_in_the_textbooks_dropout_is_still_found() -> None:
    class ForgetsTheMask(TextbookDropout):
        def backward(self, dout: Any) -> Any:
            return dout

    report = gradcheck.check(ForgetsTheMask(), np.random.default_rng(0).standard_normal((4, 6)))
    assert not report.passed
    assert report.variable("x").mismatches > 0


def test_the_global_mask_depends_on_the_seed_and_repeats_with_it() -> None:
    x = np.random.default_rng(0).standard_normal((4, 6))
    masks = []
    for seed in (1, 1, 2):
        report = gradcheck.check(TextbookDropout(), x, seed=seed)
        masks.append(report.variable("x").analytic != 0)
    assert np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[0], masks[2])


def test_seeded_dropout_is_held_fixed_and_passes() -> None:
    layer = reference_layers.Dropout(0.5, seed=3)
    assert gradcheck.check(layer, np.random.default_rng(0).standard_normal((4, 6))).passed


def test_accumulating_parameter_gradient_is_reported() -> None:
    layer, inputs = BROKEN["affine-accumulating-dW"](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs)
    assert "accumulating" in [d.kind for d in report.diagnostics]


def test_kink_is_skipped_not_reported() -> None:
    x = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, -3.0]])
    report = gradcheck.check(Relu(), x)
    assert report.passed, str(report)
    assert report.variable("x").kinks == 2


def test_wrong_value_at_a_kink_is_still_a_bug() -> None:
    class ReluWrongAtZero(Relu):
        def backward(self, dout: Any) -> Any:
            dx = super().backward(dout)
            return np.where(self.x == 0, 5.0 * dout, dx)

        def forward(self, x: Any) -> Any:
            self.x = x
            return super().forward(x)

    x = np.array([[1.0, 0.0, -1.0]])
    report = gradcheck.check(ReluWrongAtZero(), x, seed=1)
    assert not report.passed
    assert report.variable("x").worst[0].index == (0, 1)


def test_inputs_and_parameters_are_bit_identical_after_a_failed_check() -> None:
    layer, (x,) = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    before = (x.copy(), layer.W.copy(), layer.b.copy())
    gradcheck.check(layer, x)
    assert all(np.array_equal(a, b) for a, b in zip(before, (x, layer.W, layer.b), strict=True))
    assert layer.dW is None  # the user's object was never called


def test_inputs_are_bit_identical_when_the_layer_raises_midway() -> None:
    class Exploding(Sigmoid):
        calls = 0

        def forward(self, x: Any) -> Any:
            type(self).calls += 1
            if type(self).calls > 5:
                raise RuntimeError("boom")
            return super().forward(x)

    x = np.random.default_rng(0).standard_normal((3, 4))
    before = x.copy()
    with pytest.raises(RuntimeError, match="boom"):
        gradcheck.check(Exploding(), x)
    assert np.array_equal(x, before)


def test_read_only_inputs_work() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    x.flags.writeable = False
    assert gradcheck.check(Sigmoid(), x).passed


def test_global_random_state_is_not_advanced() -> None:
    np.random.seed(7)  # noqa: NPY002 (the legacy global state is under test)
    expected = np.random.get_state()[1].copy()  # noqa: NPY002
    layer, inputs = BROKEN["unseeded-dropout"](np.random.default_rng(0))
    gradcheck.check(layer, *inputs)
    assert np.array_equal(np.random.get_state()[1], expected)  # noqa: NPY002


def test_same_seed_same_report() -> None:
    layer, inputs = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    first = gradcheck.check(layer, *inputs, seed=4).to_dict()
    second = gradcheck.check(layer, *inputs, seed=4).to_dict()
    first.pop("seconds"), second.pop("seconds")
    assert first == second
    assert first["seed"] == 4


def test_report_is_json_ready() -> None:
    layer, inputs = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    data = json.loads(json.dumps(gradcheck.check(layer, *inputs).to_dict()))
    assert data["passed"] is False
    worst = data["variables"][1]["worst"][0]
    assert data["variables"][1]["name"] == "W" and worst["index"] == [2, 1]


def test_assert_gradients_raises_an_assertion_error_with_the_report() -> None:
    layer, inputs = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    with pytest.raises(AssertionError) as caught:
        gradcheck.assert_gradients(layer, *inputs)
    assert isinstance(caught.value, GradientCheckError)
    assert "(2, 1)" in str(caught.value)
    assert not caught.value.report.passed


def test_apple_example_with_python_numbers() -> None:
    report = gradcheck.check(MulLayer(), 100, 2)
    assert report.passed
    assert [v.name for v in report.variables] == ["x", "y"]


def test_labels_are_constants() -> None:
    rng = np.random.default_rng(0)
    report = gradcheck.check(SoftmaxWithLoss(), rng.standard_normal((4, 3)), np.array([0, 2, 1, 1]))
    assert report.passed
    assert [c.name for c in report.constants] == ["t"]


def test_wrt_and_params_select_what_is_checked() -> None:
    layer, inputs = Affine.example(np.random.default_rng(0))
    assert [v.name for v in gradcheck.check(layer, *inputs, wrt=["W"]).variables] == ["W"]
    assert [v.name for v in gradcheck.check(layer, *inputs, params=False).variables] == ["x"]
    with pytest.raises(CheckError, match="does not have"):
        gradcheck.check(layer, *inputs, wrt=["V"])


def test_forced_complex_step_on_a_non_analytic_layer_is_a_clear_error() -> None:
    class AbsLayer:
        def forward(self, x: Any) -> Any:
            self.x = x
            return np.abs(x)

        def backward(self, dout: Any) -> Any:
            return dout * np.sign(self.x)

    x = np.array([[1.0, -2.0]])
    assert gradcheck.check(AbsLayer(), x).passed
    with pytest.raises(CheckError, match="complex"):
        gradcheck.check(AbsLayer(), x, method="complex")


def test_layer_computing_in_float32_only_is_checked_in_its_precision() -> None:
    class Float32Only(Sigmoid):
        def forward(self, x: Any) -> Any:
            return super().forward(np.asarray(x, dtype=np.float32))

    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    report = gradcheck.check(Float32Only(), x)
    assert report.passed, str(report)
    assert report.variable("x").numeric_dtype == "float32"


def test_model_protocol() -> None:
    net, (x, t) = reference_layers.TwoLayerNet.example(np.random.default_rng(0))
    report = gradcheck.check(net, x, t)
    assert report.passed and report.kind == "model"
    assert [v.name for v in report.variables] == ["W1", "b1", "W2", "b2"]


def test_function_with_vjp_and_scalar_function_with_grad() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3))
    assert gradcheck.check(np.sin, x, vjp=lambda dout, x: dout * np.cos(x)).passed
    assert not gradcheck.check(np.sin, x, vjp=lambda dout, x: dout * np.sin(x)).passed
    assert gradcheck.check(lambda v: float(np.sum(v**2)), x, grad=lambda v: 2 * v).passed


class ScaleWithoutGradient:
    """``x * scale`` whose backward gives ``scale`` no gradient."""

    def __init__(self) -> None:
        self.scale = np.array([2.0])

    def forward(self, x: Any) -> Any:
        return x * self.scale

    def backward(self, dout: Any) -> Any:
        return dout * self.scale


class DeclaredScale(ScaleWithoutGradient):
    gradcheck_constants = ("scale",)


def test_an_array_the_output_depends_on_without_a_gradient_is_never_a_pass() -> None:
    report = gradcheck.check(ScaleWithoutGradient(), np.ones((2, 2)))
    assert report.verdict is Verdict.INCOMPLETE and not report.passed
    assert report.unchecked == ["scale"]
    [doubt] = [d for d in report.diagnostics if d.kind == "unchecked"]
    assert "gradcheck_constants = ('scale',)" in doubt.message
    assert "gradcheck.conventions.register" in doubt.message
    with pytest.raises(GradientCheckError, match="scale"):
        gradcheck.assert_gradients(ScaleWithoutGradient(), np.ones((2, 2)))


def test_a_declared_constant_is_not_counted() -> None:
    report = gradcheck.check(DeclaredScale(), np.ones((2, 2)))
    assert report.passed, str(report)
    assert [c.name for c in report.constants] == ["scale"]


def test_an_array_the_output_ignores_is_not_counted() -> None:
    class KeepsAStatistic:
        def __init__(self) -> None:
            self.seen = np.zeros(2)

        def forward(self, x: Any) -> Any:
            self.seen = self.seen + x.sum(axis=0)
            return 2 * x

        def backward(self, dout: Any) -> Any:
            return 2 * dout

    report = gradcheck.check(KeepsAStatistic(), np.ones((2, 2)))
    assert report.passed, str(report)


def test_public_names_are_all_importable() -> None:
    for name in gradcheck.__all__:
        assert getattr(gradcheck, name) is not None, name
    assert sorted(gradcheck.__all__) == sorted([*gradcheck._WHERE, "__version__"])


def test_a_scalar_function_checked_with_grad_is_named_by_grad() -> None:
    def loss(v: Any) -> float:
        return float(np.sum(v**2))

    def wrong_grad(v: Any) -> Any:
        return 3 * v

    report = gradcheck.check(loss, np.array([1.0, 2.0]), grad=wrong_grad)
    assert report.conclusion is not None
    assert report.conclusion.startswith(
        "test_a_scalar_function_checked_with_grad_is_named_by_grad.<locals>.loss.grad:"
    ), report.conclusion


class MeanLoss:
    """A loss whose backward scales its scalar dout in place: ``d *= 1 / n``."""

    def forward(self, x: Any) -> Any:
        self.shape = x.shape
        return x.mean()

    def backward(self, d: Any = 1) -> Any:
        d *= 1 / np.prod(self.shape)
        return np.full(self.shape, d)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_loss_scaling_its_scalar_dout_in_place_is_checked(dtype: Any) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(dtype)
    report = gradcheck.check(MeanLoss(), x)
    assert report.passed, str(report)


def test_a_loss_that_forgets_to_divide_by_n_fails_with_the_factor() -> None:
    class SumGradientLoss(MeanLoss):
        def backward(self, d: Any = 1) -> Any:
            return np.full(self.shape, d)

    report = gradcheck.check(SumGradientLoss(), np.ones((2, 3)))
    assert not report.passed
    assert "×6" in (report.variable("x").diagnosis or "")


def test_indices_of_a_zero_dimensional_mask_are_the_empty_tuple() -> None:
    from gradcheck.conventions.validation import format_indices

    assert format_indices(np.array(True)) == "()"


def test_a_numpy_ufunc_is_named_by_its_name() -> None:
    x = np.array([0.5, 1.0, 2.0])
    report = gradcheck.check(np.sqrt, x, vjp=lambda d, v: d * 0.5 / np.sqrt(v))
    assert report.target == "np.sqrt"
    wrong = gradcheck.check(np.sqrt, x, vjp=lambda d, v: d / np.sqrt(v))
    assert wrong.conclusion is not None and wrong.conclusion.startswith("np.sqrt.vjp:")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_factor_of_1_001_is_named_in_either_dtype(dtype: Any) -> None:
    class Off(Sigmoid):
        def backward(self, dout: np.ndarray) -> np.ndarray:
            return super().backward(dout) * 1.001

    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    report = gradcheck.check(Off(), x)
    assert report.conclusion is not None
    assert "×1.001 the true gradient" in report.conclusion


def test_one_element_off_by_1_percent_is_not_called_a_factor() -> None:
    from gradcheck.verdict.patterns import describe_factor

    n = np.random.default_rng(0).standard_normal(50)
    a = n.copy()
    a[3] *= 1.01
    assert describe_factor("dx", a, n) is None
    assert describe_factor("dx", 1.001 * n, n) is not None
