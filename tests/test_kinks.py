"""No false alarms at or near kinks, in float64 and float32 (property tests)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import gradcheck
from reference_layers import LeakyRelu, Pooling, Relu

# Values at a kink (0), within a step of it, and far from it.
near_kink = st.sampled_from([0.0, 1e-12, -1e-12, 1e-7, -1e-7, 1e-5, -1e-5]) | st.floats(
    -3, 3, allow_nan=False, allow_subnormal=False
)
dtypes = st.sampled_from([np.float64, np.float32])


@st.composite
def arrays_near_kinks(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    values = draw(st.lists(near_kink, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(values).reshape(shape)


@given(x=arrays_near_kinks((3, 4)), dtype=dtypes, seed=st.integers(0, 2**16))
def test_relu_never_fails_near_its_kink(x: np.ndarray, dtype: Any, seed: int) -> None:
    report = gradcheck.check(Relu(), x.astype(dtype), seed=seed)
    assert report.passed, str(report)


@given(x=arrays_near_kinks((2, 5)), dtype=dtypes, seed=st.integers(0, 2**16))
def test_leaky_relu_never_fails_near_its_kink(x: np.ndarray, dtype: Any, seed: int) -> None:
    report = gradcheck.check(LeakyRelu(0.1), x.astype(dtype), seed=seed)
    assert report.passed, str(report)


@given(
    values=st.lists(st.sampled_from([-1.0, 0.0, 0.5, 1.0]), min_size=32, max_size=32),
    dtype=dtypes,
    seed=st.integers(0, 2**16),
)
def test_max_pooling_with_ties_never_fails(values: list[float], dtype: Any, seed: int) -> None:
    x = np.array(values, dtype=dtype).reshape(2, 1, 4, 4)
    report = gradcheck.check(Pooling(2, 2, stride=2), x, seed=seed)
    assert report.passed, str(report)


def test_a_wrong_subgradient_at_a_kink_is_caught() -> None:
    class ReluTwiceAtZero(Relu):
        def backward(self, dout: Any) -> Any:
            return np.where(self.at_zero, 2.0 * dout, super().backward(dout))

        def forward(self, x: Any) -> Any:
            self.at_zero = x == 0
            return super().forward(x)

    report = gradcheck.check(ReluTwiceAtZero(), np.array([[0.0, 1.0], [-1.0, 0.0]]))
    assert not report.passed
    assert report.variable("x").mismatches == 2
