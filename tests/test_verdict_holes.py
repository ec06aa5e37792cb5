"""Verdicts that used to be wrong on real code: each reproducer, and what it says now."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from catalogue import Gelu, OffsetBatchNorm
from mutants import correct_case

import gradcheck
from gradcheck import GradientCheckError
from gradcheck.accuracy import NARROW_RTOL
from reference_layers import BatchNormalization, LayerNorm


class Affine:
    """The chapter's Affine, with an optional factor on one row of dW."""

    def __init__(self, W: Any, b: Any, row_factor: float = 1.0) -> None:
        self.W, self.b, self.row_factor = W, b, row_factor

    def forward(self, x: Any) -> Any:
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout: Any) -> Any:
        self.dW = self.x.T @ dout
        self.dW[1] *= self.row_factor
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


def _unnormalised(dtype: Any) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4))
    x[:, 0] = 3e6 * (1 + rng.random(8))  # an income column
    W = rng.standard_normal((4, 3)) * 0.1
    return x.astype(dtype), W.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_huge_feature_does_not_hide_an_error_in_another_row(dtype: Any) -> None:
    x, W = _unnormalised(dtype)
    report = gradcheck.check(Affine(W, np.zeros(3, dtype), row_factor=1.05), x)
    assert not report.passed
    weights = report.variable("W")
    assert weights.mismatches == 3 and {f.index[0] for f in weights.worst} == {1}
    assert "row 1" in (weights.diagnosis or "")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_huge_feature_with_a_correct_backward_passes(dtype: Any) -> None:
    x, W = _unnormalised(dtype)
    report = gradcheck.check(Affine(W, np.zeros(3, dtype)), x)
    assert report.passed, str(report)


def test_no_passing_variable_shows_a_figure_beyond_its_tolerance() -> None:
    x, W = _unnormalised(np.float64)
    report = gradcheck.check(Affine(W, np.zeros(3), row_factor=1.05), x)
    for var in report.variables:
        assert (var.worst_ratio <= 1) == var.passed, var.name


def _offset_layer(cls: type, factor: float) -> tuple[Any, Any]:
    class Scaled(cls):  # type: ignore[valid-type, misc]
        def backward(self, dout: Any) -> Any:
            return super().backward(dout) * factor

    layer, (x,) = cls.example(np.random.default_rng(0))
    scaled = Scaled.__new__(Scaled)
    scaled.__dict__.update(layer.__dict__)
    return scaled, x + 1e5


@pytest.mark.parametrize("cls", [LayerNorm, BatchNormalization])
def test_a_planted_bug_in_a_normalisation_of_offset_inputs_is_found(cls: type) -> None:
    layer, x = _offset_layer(cls, 1.01)
    report = gradcheck.check(layer, x)
    assert not report.passed
    assert report.variable("x").mismatches == x.size
    assert "×1.01" in (report.variable("x").diagnosis or "")
    assert report.variable("x").kinks == 0  # rounding noise is no kink


@pytest.mark.parametrize("cls", [LayerNorm, BatchNormalization])
def test_a_normalisation_of_offset_inputs_passes(cls: type) -> None:
    layer, x = _offset_layer(cls, 1.0)
    assert gradcheck.check(layer, x).passed


class Float32Tanh:
    """The sequel book's habit: compute in float32 whatever the input's dtype."""

    def __init__(self, wrong: bool = False) -> None:
        self.wrong = wrong

    def forward(self, x: Any) -> Any:
        out = np.empty(x.shape, dtype="f")
        out[...] = np.tanh(x)
        self.out = out
        return out

    def backward(self, dout: Any) -> Any:
        return dout * (1 - self.out) if self.wrong else dout * (1 - self.out**2)


def test_a_layer_computing_in_float32_from_float64_input_passes_in_float32s_precision() -> None:
    x = np.random.default_rng(0).standard_normal((3, 3, 4))
    report = gradcheck.check(Float32Tanh(), x)
    assert report.passed, str(report)
    assert report.variable("x").kinks == 0
    # The numerical side cannot compute it in float64 either: float32's narrow tolerance.
    assert report.variable("x").rtol == NARROW_RTOL
    assert any(d.kind == "narrow-compute" for d in report.diagnostics)


def test_a_bug_in_a_layer_computing_in_float32_is_found() -> None:
    x = np.random.default_rng(0).standard_normal((3, 3, 4))
    report = gradcheck.check(Float32Tanh(wrong=True), x)
    assert not report.passed and report.variable("x").mismatches > 0


def test_where_the_complex_step_is_not_valid_a_real_stencil_decides() -> None:
    # softsign (x / (1 + |x|)) and then a LayerNorm of two features: the gradient of x is
    # tiny, and the complex step loses the derivative of |x|. It is not shown valid there,
    # so it does not decide: a real stencil does.
    case = correct_case(np.random.default_rng(418), dtype=np.float64)
    assert "softsign" in str(case) and "LayerNorm" in str(case)
    report = gradcheck.check(case.layer, *case.inputs)
    assert report.passed, str(report)
    assert "richardson" in report.variable("x0").method


def test_the_complex_step_names_an_error_below_what_central_differences_resolve() -> None:
    x, W = np.random.default_rng(1).standard_normal((5, 4)), np.ones((4, 3))
    report = gradcheck.check(Affine(W, np.zeros(3), row_factor=1 + 1e-6), x, rtol=1e-8)
    assert report.variable("W").mismatches == 3, str(report)


def tanh_in_float16(x: Any) -> Any:
    return np.tanh(x.astype(np.float16)).astype(np.float64)


def _tanh_vjp(dout: Any, x: Any) -> Any:
    return dout * (1 - np.tanh(x) ** 2)


def test_an_element_central_differences_cannot_resolve_is_unresolved_not_a_match() -> None:
    # tanh through float16 inside a float64 function, judged at rtol=1e-6: the forward's
    # quantum is far wider than any step resolves; what is not resolved is said so (and
    # the stencils that see no change at all do not claim a derivative of 0).
    x = np.random.default_rng(0).standard_normal((2, 3))
    report = gradcheck.check(tanh_in_float16, x, vjp=_tanh_vjp, method="central", rtol=1e-6)
    var = report.variable("x")
    assert var.unresolved >= 1 and var.mismatches == 0, str(report)
    assert report.verdict == "INCOMPLETE" and not report.passed
    assert "unresolved" in str(report) and str(report).startswith(
        "gradcheck tanh_in_float16 (function): INCOMPLETE"
    )
    with pytest.raises(GradientCheckError, match="INCOMPLETE"):
        gradcheck.assert_gradients(tanh_in_float16, x, vjp=_tanh_vjp, method="central", rtol=1e-6)


# ---------------------------------------------------------------------------------------
# Reports that read correctly


def test_a_network_leads_with_the_wrong_gradient_not_an_in_place_relu() -> None:
    from zoo import AffineBiasTimesBatch, TextbookRelu

    from reference_layers import TwoLayerNet

    rng = np.random.default_rng(0)
    net = TwoLayerNet(4, 5, 3, weight_init_std=0.5, seed=rng)
    net.layers["Relu1"] = TextbookRelu()  # edits dout in place: harmless in this chain
    net.layers["Affine2"] = AffineBiasTimesBatch(net.params["W2"], net.params["b2"])
    report = gradcheck.check_network(net, rng.standard_normal((3, 4)), rng.integers(0, 3, 3))
    assert report.guilty == "Affine2", str(report)
    assert report.conclusion is not None
    assert report.conclusion.startswith("Affine2.backward: db is ×3 too large")
    assert "Also wrong: Relu1" in report.conclusion


def test_an_in_place_forward_is_named_in_one_whole_sentence_in_a_network_table() -> None:
    from zoo import ReluInplaceForward

    from reference_layers import TwoLayerNet

    rng = np.random.default_rng(0)
    net = TwoLayerNet(4, 5, 3, weight_init_std=0.5, seed=rng)
    net.layers["Relu1"] = ReluInplaceForward()
    report = gradcheck.check_network(net, rng.standard_normal((3, 4)), rng.integers(0, 3, 3))
    row = next(line for line in str(report).splitlines() if "Relu1" in line)
    assert "e.g. at" in row and row.rstrip().endswith(").")


def test_a_gradient_that_changes_between_calls_is_worded_correctly() -> None:
    class Drifting:
        calls = 0

        def forward(self, x: Any) -> Any:
            return 2 * x

        def backward(self, dout: Any) -> Any:
            Drifting.calls += 1
            return dout * (2 + Drifting.calls)

    report = gradcheck.check(Drifting(), np.ones((2, 2)))
    message = next(d.message for d in report.diagnostics if d.kind == "not-repeatable")
    assert "returned the gradient of x differently" in message


def test_the_complex_step_note_is_given_once_for_every_variable_it_concerns() -> None:
    from reference_layers import Affine as ReferenceAffine

    class AbsAffine(ReferenceAffine):
        def forward(self, x: Any) -> Any:
            return np.abs(super().forward(x))

        def backward(self, dout: Any) -> Any:
            return super().backward(dout * np.sign(self.x @ self.W + self.b))

    rng = np.random.default_rng(0)
    layer = AbsAffine(rng.standard_normal((4, 3)), rng.standard_normal(3))
    report = gradcheck.check(layer, rng.standard_normal((5, 4)))
    notes = [d.message for d in report.diagnostics if d.kind == "no-complex-step"]
    assert len(notes) == 1 and "x, W, b" in notes[0], notes


@pytest.mark.parametrize(
    ("bias_gradient", "hint"),
    [
        (lambda d: d.sum(axis=1), "summed over the wrong axis?"),
        (lambda d: d.copy(), "not summed over the batch?"),
    ],
)
def test_a_bias_gradient_of_the_wrong_shape_names_the_parameter_and_the_axis(
    bias_gradient: Any, hint: str
) -> None:
    class WrongBias(Affine):
        def backward(self, dout: Any) -> Any:
            dx = super().backward(dout)
            self.db = bias_gradient(dout)
            return dx

    with pytest.raises(gradcheck.CheckError) as caught:
        gradcheck.check(WrongBias(np.ones((4, 3)), np.zeros(3)), np.ones((5, 4)))
    message = str(caught.value)
    assert "WrongBias.backward: db has shape" in message
    assert "the shape of parameter b" in message and hint in message


@pytest.mark.parametrize("seed", range(4))
def test_a_correct_gelu_whose_derivative_cancels_to_1e_14_passes(seed: int) -> None:
    # 1 + tanh(z) for z of about -7 cancels terms of dout's size to ~1e-14, with float64
    # rounding of ~1e-16; a float32 stand-in gives 0 there and cannot measure it.
    x = np.array([[-7.0, -6.8, -6.6, 0.3]])
    # The analytic side's rounding is measured against the same backward in extended
    # precision; where even that precision's forward rounds too coarsely for a step to
    # resolve the tolerance (1 + tanh(z) rounds at 3e-19 of dout), the element is left
    # unresolved — never called wrong.
    assert gradcheck.check(Gelu(), x, seed=seed).verdict != "FAILED"
    report = gradcheck.check(Gelu(bug="product-rule-dropped"), x, seed=seed)
    assert report.variable("x").mismatches >= 3, str(report)


def test_a_correct_abs_beside_its_kink_is_not_failed_by_the_complex_step() -> None:
    # abs drops the imaginary part (every complex-step value is 0), and x[1, 0] = 5e-6
    # lies closer to the kink than the stencil's steps: the stencil must judge it.
    case = correct_case(np.random.default_rng(64677786), dtype=np.float64)
    assert case.inputs[0][1, 0] == pytest.approx(5.389e-6, rel=1e-3)
    report = gradcheck.check(case.layer, *case.inputs)
    assert report.passed, str(report)


def test_a_correct_saturated_softmax_with_gradients_of_1e_46_passes() -> None:
    # The backward cancels terms of dout's size to 0 where the truth is 1e-46.
    case = correct_case(np.random.default_rng(64677788), dtype=np.float64)
    report = gradcheck.check(case.layer, *case.inputs)
    assert np.max(np.abs(report.variable("x0").numerical)) < 1e-40
    assert report.passed, str(report)


def _batch_of_two_offset_by_1e5(bug: str | None) -> tuple[Any, Any]:
    # Two samples 2.5e-3 apart in the first feature, 1e5 from 0: steps scaled by |x| are
    # a thousand times the spread.
    x = np.array(
        [
            [99999.97235903717, 99999.49370403722, 99999.94367667931, 99998.83756451291],
            [99999.97490209543, 99999.71896479084, 99999.88404712664, 99998.98336536477],
        ]
    )
    layer = OffsetBatchNorm(
        np.array([1.0448, 0.9135, 0.9562, 1.0999]), np.array([-0.7614, -0.4112, -2.2729, 0.4941])
    )
    layer.bug = bug
    return layer, x


def test_a_probe_step_wider_than_the_spread_does_not_refuse_the_complex_step() -> None:
    layer, x = _batch_of_two_offset_by_1e5(None)
    report = gradcheck.check(layer, x)
    assert report.passed, str(report)
    assert report.variable("x").method.startswith("complex"), str(report)
    layer, x = _batch_of_two_offset_by_1e5("dx×1.05")
    report = gradcheck.check(layer, x)
    assert report.variable("x").mismatches == 8, str(report)
    assert "×1.05" in str(report)


def test_nearby_points_that_cannot_verify_the_kinks_leave_no_pass() -> None:
    # Forced central differences see kinks everywhere; the points nearby (moved by the
    # spread, not by 1e5) must find the 5 % error, or at least not vouch for it.
    layer, x = _batch_of_two_offset_by_1e5("dx×1.05")
    assert not gradcheck.check(layer, x, method="central").passed


def test_an_element_the_distrusted_complex_step_left_unresolved_gets_a_second_look() -> None:
    # LeakyRelu, then softsign's abs (which drops the imaginary part): the stencil judges,
    # and one element near the kink needs smaller steps to be resolved.
    case = correct_case(np.random.default_rng(3430))
    report = gradcheck.check(case.layer, *case.inputs)
    assert report.passed, str(report)
    assert "looks at other steps" in report.variable("x0").method


def test_a_complex_step_that_says_exactly_0_where_the_stencil_does_not_is_distrusted() -> None:
    # abs before a BatchNorm, float32, behind a loss: the joint probe passed (gamma and beta
    # carry the imaginary part), and two elements of x near abs's kink had the complex
    # step's 0 stand against the analytic 29.4 and -15.5.
    case = correct_case(np.random.default_rng(12154))
    assert case.inputs[0].dtype == np.float32
    report = gradcheck.check(case.layer, *case.inputs)
    assert report.passed, str(report)


def test_the_probe_refuses_a_complex_step_whose_imaginary_part_vanishes() -> None:
    from gradcheck.engine.numeric import supports_complex_step

    x = np.array([0.5, -1.0, 2.0])
    # Complex output, imaginary part 0: abs dropped it, a later complex factor kept the type.
    usable, reason = supports_complex_step(
        lambda z: np.sum(np.abs(z) ** 2 * (1 + 0 * z)), x, np.random.default_rng(0)
    )
    assert not usable and "vanished" in reason
    assert supports_complex_step(lambda z: np.sum(z**2), x, np.random.default_rng(0))[0]
