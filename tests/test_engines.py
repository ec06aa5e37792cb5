"""Every numerical method is one entry of gradcheck.engine.spec.ENGINES: these tests run
over all of them, so a new entry is tested by being added."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck.engine.directional import directional_derivative
from gradcheck.engine.spec import ENGINES, engine
from gradcheck.options import METHODS
from reference_layers import Sigmoid, Tanh
from tests.zoo import BROKEN

REAL = [name for name, spec in ENGINES.items() if spec.arithmetic == "real"]


def _cubic(v: Any) -> Any:
    return np.sum(v**3 + np.sin(v))


@pytest.mark.parametrize("method", list(ENGINES))
def test_each_engine_is_accurate_within_its_own_error_estimate(method: str) -> None:
    x = np.array([0.3, -1.2, 2.5, 7.0])
    exact = 3 * x**2 + np.cos(x)
    gradient = gradcheck.numerical_gradient(_cubic, x, method=method)
    assert np.all(np.abs(gradient.value - exact) <= gradient.error), method
    assert np.all(gradient.error < 1e-5 * np.abs(exact)), method
    assert x.tolist() == [0.3, -1.2, 2.5, 7.0]


@pytest.mark.parametrize("method", list(ENGINES))
def test_each_engine_gives_a_directional_derivative_within_its_error(method: str) -> None:
    x = np.array([0.3, -1.2, 2.5])
    v = np.array([1.0, -0.5, 0.25])
    point = x.astype(np.complex128) if engine(method).arithmetic == "complex" else x.copy()
    derivative = directional_derivative(_cubic, point, v, method=method, scale=50.0)
    exact = float(np.dot(3 * x**2 + np.cos(x), v))
    assert abs(derivative.value - exact) <= derivative.error, method
    assert derivative.evaluations >= engine(method).cost


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("method", list(ENGINES))
def test_each_engine_names_the_wrong_element_in_every_mode(method: str, mode: str) -> None:
    layer, inputs = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs, method=method, mode=mode)
    assert not report.passed
    assert report.variable("W").worst[0].index == (2, 1)
    assert report.variable("W").mismatches == 1


@pytest.mark.parametrize("method", list(ENGINES))
@pytest.mark.parametrize("layer_class", [Sigmoid, Tanh])
def test_each_engine_passes_correct_layers(method: str, layer_class: type) -> None:
    layer, inputs = layer_class.example(np.random.default_rng(1))
    report = gradcheck.check(layer, *inputs, method=method)
    assert report.passed, str(report)
    assert method in report.variable("x").method


def test_every_engine_is_an_option_value() -> None:
    assert set(ENGINES) <= set(METHODS)
    assert METHODS[0] == "auto"


def test_the_cost_of_an_engine_is_its_number_of_evaluations_per_element() -> None:
    for method in REAL:
        x = np.linspace(0.5, 1.5, 5)
        gradient = gradcheck.numerical_gradient(_cubic, x, method=method)
        assert gradient.evaluations == 1 + x.size * engine(method).cost, method


class _SquareRoot:
    """sqrt(x): defined for x >= 0 only, so a point near 0 has no room on the left."""

    def forward(self, x: Any) -> Any:
        self.out = np.sqrt(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout / (2 * self.out)


def test_forward_differences_check_a_point_at_the_edge_of_the_domain() -> None:
    x = np.array([[1e-6, 4e-6, 0.25]])
    with np.errstate(invalid="ignore"):
        central = gradcheck.check(_SquareRoot(), x, method="central")
    # Central steps below 0, where sqrt is NaN: second looks at finer steps resolve what
    # they can, and what they cannot is left unresolved, never called wrong.
    assert central.verdict != "FAILED", str(central)
    report = gradcheck.check(_SquareRoot(), x, method="forward")
    assert report.passed, str(report)
    assert report.variable("x").undefined == 0
    assert np.all(np.isfinite(report.variable("x").numerical))


def test_forward_differences_catch_a_wrong_gradient_at_the_edge() -> None:
    class WrongSquareRoot(_SquareRoot):
        def backward(self, dout: Any) -> Any:
            return dout / self.out  # the factor 1/2 is missing

    report = gradcheck.check(WrongSquareRoot(), np.array([[1e-6, 0.25]]), method="forward")
    assert not report.passed
    assert report.variable("x").mismatches == 2


def test_an_unknown_engine_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="central, richardson, forward, complex"):
        engine("fivepoint")
