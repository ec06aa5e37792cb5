"""Verdicts on the layer families of tests/catalogue.py, and the holes they opened.

* A random correct case of every family without a known hole passes, and a detectable
  mutant of every (family, bug) without a known hole fails (small CI budgets; the rates
  over thousands of cases are in benchmarks/RESULTS.md).
* Each hole the catalogue found is pinned below by its minimal reproducer, as a strict
  xfail: the day the checker is fixed, the test turns red, and the exclusion goes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from catalogue import FAMILIES, TimeRNN, family_case, family_mutant
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mutants import Chain
from test_verdict_holes import Affine as RowFactorAffine

import gradcheck
from gradcheck.vocabulary import Status
from reference_layers import Affine, BatchNormalization, LayerNorm, MeanSquaredError, Relu

BUGS = [(f, b) for f, family in FAMILIES.items() for b in family.bugs]
CI = settings(max_examples=30, deadline=None)


def _verdict(case: Any) -> bool | None:
    """True/False for passed/failed, None when the checker refused (CheckError)."""
    try:
        return gradcheck.check(case.layer, *case.inputs).passed
    except gradcheck.CheckError:
        return None


@CI
@given(seed=st.integers(0, 2**32 - 1), family=st.sampled_from(list(FAMILIES)))
def test_a_correct_layer_of_any_family_passes(seed: int, family: str) -> None:
    case = family_case(np.random.default_rng(seed), family)
    assert _verdict(case) is True, str(case)


@CI
@given(seed=st.integers(0, 2**32 - 1), bug=st.sampled_from(BUGS))
def test_a_detectable_mutant_of_any_family_fails(seed: int, bug: tuple[str, str]) -> None:
    case = family_mutant(np.random.default_rng(seed), bug[0], bug=bug[1])
    assume(case is not None)
    assert _verdict(case) is not True, str(case)


# ---------------------------------------------------------------------------------------
# The holes, each in a few lines


class SequelEmbedding:
    """The sequel book's Embedding: ``backward`` adds into ``dW`` and returns None."""

    def __init__(self, W: Any) -> None:
        self.W = W

    def forward(self, idx: Any) -> Any:
        self.idx = idx
        return self.W[idx]

    def backward(self, dout: Any) -> None:
        self.dW = np.zeros_like(self.W)
        np.add.at(self.dW, self.idx, dout)


def test_an_embedding_returning_none_for_its_integer_input_is_checked() -> None:
    report = gradcheck.check(SequelEmbedding(np.ones((4, 3))), np.array([0, 2, 0]))
    assert report.passed
    assert [v.name for v in report.variables] == ["W"]


@pytest.mark.parametrize("seed", [0, 2, 77])
def test_the_sequels_rnn_with_float32_buffers_is_never_failed(seed: int) -> None:
    # float32 buffers round a float64 RNN's output: the stencils' steps must be large, and
    # their error bars on tiny variables can stay wider than float32's tolerance
    # (INCOMPLETE); a false FAILED — noise read as kinks, truncation as a mismatch — never.
    rng = np.random.default_rng(seed)
    layer = TimeRNN(
        rng.standard_normal((1, 2)),
        0.7 * rng.standard_normal((2, 2)),
        0.5 * rng.standard_normal(2),
        buffer="f",
    )
    report = gradcheck.check(
        layer, rng.standard_normal((1, 4, 1)), 0.5 * rng.standard_normal((1, 2))
    )
    assert report.verdict != "FAILED", str(report)
    assert all(v.kinks == 0 for v in report.variables)


@pytest.mark.parametrize("seed", [73, 713, 2249, 1097, 1513, 3113])
def test_the_sequels_rnn_with_float32_buffers_resolves_its_small_variables(seed: int) -> None:
    # 73: the loss sums the float32 output in float64, so its last bit is float64's, not
    # float32's times the whole loss (that floor was 10x the noise measured); 713: the
    # same for a coloured h0; 2249: a step half as large resolves what the full and the
    # quarter step cannot (truncation at one, rounding at the other); 1097, 1513, 3113:
    # gradients of 0.005 to 0.09, resolved only by a fit over sixteen steps.
    case = family_case(np.random.default_rng(seed), "rnn-float32-buffers")
    report = gradcheck.check(case.layer, *case.inputs)
    assert report.passed, str(report)


def test_what_float32_buffers_cannot_resolve_is_unresolved_not_matched() -> None:
    # Seed 4169: gradients of 3e-5 to 1.6e-3 of xs beside one of -0.6, at rtol 1e-3. Their
    # fitted error bars (about 4e-6: the scatter of sixteen float32 stencils, which the
    # calibration benchmark holds true) are wider than what their tolerance leaves, so
    # they are unresolved, said so, and the rest is verified.
    case = family_case(np.random.default_rng(4169), "rnn-float32-buffers")
    report = gradcheck.check(case.layer, *case.inputs)
    assert report.verdict == "INCOMPLETE", str(report)
    xs = report.variable("xs")
    assert xs.mismatches == 0 and 1 <= xs.unresolved <= 3, str(report)
    unresolved = np.asarray(xs.status).ravel() == Status.UNRESOLVED
    assert np.all(np.abs(np.asarray(xs.analytic).ravel()[unresolved]) < 2e-3), str(report)
    assert all(v.unresolved == 0 for v in report.variables if v.name != "xs"), str(report)


def test_a_parameter_the_output_does_not_depend_on_passes() -> None:
    rng = np.random.default_rng(0)
    chain = Chain(
        [
            LayerNorm(np.ones(1), np.zeros(1)),  # one feature: every sample -> beta
            Affine(rng.standard_normal((1, 2)), rng.standard_normal(2)),
            BatchNormalization(np.ones(2), np.zeros(2)),
        ]
    )  # of identical samples
    report = gradcheck.check(chain, rng.standard_normal((3, 1)))
    assert report.passed, str(report)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_5_percent_error_beside_a_huge_row_is_found_when_half_the_rows_are_huge(
    dtype: Any,
) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 2))
    x[:, 0] = 3e6 * (1 + rng.random(8))  # two features, one of them unnormalised
    W = 0.1 * rng.standard_normal((2, 1))
    layer = RowFactorAffine(W.astype(dtype), np.zeros(1, dtype), row_factor=1.05)
    assert not gradcheck.check(layer, x.astype(dtype)).passed


class ScaledLayerNorm(LayerNorm):
    """A LayerNorm whose ``dx`` is 5 % too large."""

    def backward(self, dout: Any) -> Any:
        return 1.05 * super().backward(dout)


def test_a_5_percent_error_in_a_layernorm_of_two_offset_features_is_found() -> None:
    x = np.random.default_rng(0).standard_normal((3, 2)) + 1e5
    report = gradcheck.check(ScaledLayerNorm(np.ones(2), np.zeros(2)), x)
    assert not report.passed, str(report)


class _ScaledBiasAffine(Affine):
    def backward(self, dout: Any) -> Any:
        dx = super().backward(dout)
        self.db = 1.05 * self.db
        return dx


@pytest.mark.parametrize("seed", range(6))
def test_every_relu_unit_of_a_sample_at_its_kink_before_a_loss_passes(seed: int) -> None:
    # Behind a loss one kink and several look alike: the check looks at nearby points.
    rng = np.random.default_rng(seed)
    x, W = rng.standard_normal((1, 5)), rng.standard_normal((5, 3)) / np.sqrt(5)
    W2, t = rng.standard_normal((3, 2)), rng.standard_normal((1, 2))

    def chain(last: type[Affine]) -> Chain:
        return Chain(
            [Affine(W, -(x @ W)[0]), Relu(), last(W2, np.zeros(2))], loss=MeanSquaredError()
        )

    report = gradcheck.check(chain(Affine), x, t)
    assert report.passed, str(report)
    # Every gradient before the ReLU is 0 there, whatever its bugs; after it, one shows.
    assert not gradcheck.check(chain(_ScaledBiasAffine), x, t).passed
