"""Fast mode: random directions, group testing down to the wrong elements, and the executor."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from zoo import BROKEN

import gradcheck
import reference_layers
from gradcheck import CheckError, OptionError
from reference_layers import Affine, Relu, Sigmoid, TwoLayerNet


def _verdicts(report: gradcheck.Report) -> dict[str, tuple[int, set[tuple[int, ...]]]]:
    """Per variable: how many elements are wrong and which ones are listed."""
    return {v.name: (v.mismatches, {f.index for f in v.worst}) for v in report.variables}


class PlantedNet(TwoLayerNet):
    """A two-layer net whose ``gradient`` is wrong in one element of one parameter."""

    def __init__(
        self, *args: Any, where: tuple[str, tuple[int, ...]], size: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.where, self.size = where, size

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        grads = super().gradient(x, t)
        name, index = self.where
        grads[name] = grads[name].copy()
        typical = float(np.sqrt(np.mean(np.square(grads[name]))))
        grads[name][index] += self.size * typical
        return grads


def _mnist_sized_net(
    rng: np.random.Generator, batch: int = 10, **planted: Any
) -> tuple[Any, tuple[Any, ...]]:
    net = PlantedNet(784, 50, 10, **planted) if planted else TwoLayerNet(784, 50, 10)
    return net, (rng.standard_normal((batch, 784)), rng.integers(0, 10, size=batch))


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_fast_mode_catches_what_full_mode_catches(name: str) -> None:
    layer, inputs = BROKEN[name](np.random.default_rng(0))
    full = gradcheck.check(layer, *inputs, mode="full")
    fast = gradcheck.check(layer, *inputs, mode="fast")
    assert not fast.passed, str(fast)
    assert _verdicts(fast) == _verdicts(full), f"full:\n{full}\nfast:\n{fast}"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_auto_mode_gives_the_same_verdicts_as_full_mode(name: str) -> None:
    layer, inputs = BROKEN[name](np.random.default_rng(0))
    full = gradcheck.check(layer, *inputs, mode="full")
    auto = gradcheck.check(layer, *inputs, mode="auto")
    assert auto.passed == full.passed
    assert _verdicts(auto) == _verdicts(full)


def test_localization_names_the_one_wrong_element() -> None:
    layer, inputs = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    report = gradcheck.check(layer, *inputs, mode="fast")
    weights = report.variable("W")
    assert weights.mismatches == 1 and weights.worst[0].index == (2, 1)
    assert "fast" in weights.method
    assert report.variable("x").passed and report.variable("b").passed


@pytest.mark.parametrize("method", ["auto", "central"])
@pytest.mark.parametrize("seed", range(2))
def test_a_thousandth_off_in_one_of_39760_parameters_is_found(method: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    name = ["W1", "W2"][seed % 2]
    shape = (784, 50) if name == "W1" else (50, 10)
    index = tuple(int(rng.integers(n)) for n in shape)
    net, data = _mnist_sized_net(rng, where=(name, index), size=1e-3)
    report = gradcheck.check(net, *data, mode="fast", method=method, seed=seed)
    found = report.variable(name)
    assert found.mismatches == 1 and found.worst[0].index == index, str(report)
    # Nothing else is accused; with central differences a variable whose directions
    # cannot resolve a tenth of a tolerance says so instead of passing.
    assert all(v.mismatches == 0 for v in report.variables if v.name != name)
    if method == "auto":
        assert all(v.passed for v in report.variables if v.name != name)
    # Group testing: O(log n) directional tests, not O(n) element checks.
    assert report.evaluations < 400


def test_correct_two_layer_net_passes_in_a_few_dozen_passes() -> None:
    net, data = _mnist_sized_net(np.random.default_rng(0))
    report = gradcheck.check(net, *data, mode="fast")
    assert report.passed, str(report)
    assert report.evaluations <= 40
    # Seen through directions only: screened, not checked one by one.
    weights = report.variable("W1")
    assert weights.checked == 0 and weights.screened == 784 * 50
    assert weights.screening is not None and weights.screening.sufficient


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(3))
def test_every_reference_layer_passes_in_fast_mode(dtype: Any, seed: int) -> None:
    examples = reference_layers.examples(np.random.default_rng(seed), dtype)
    for name, (layer, inputs) in examples.items():
        report = gradcheck.check(layer, *inputs, mode="fast", seed=seed)
        assert report.passed, f"{name}:\n{report}"


def test_fast_mode_cost_does_not_grow_with_size() -> None:
    small = gradcheck.check(Sigmoid(), np.linspace(-2, 2, 12).reshape(3, 4), mode="fast")
    rng = np.random.default_rng(0)
    large = gradcheck.check(Sigmoid(), rng.standard_normal((100, 784)), mode="fast")
    assert small.passed and large.passed
    assert large.evaluations == small.evaluations


def test_a_direction_across_a_kink_is_not_a_false_alarm() -> None:
    # Elements a hair away from ReLU's kink: the whole-array direction crosses it,
    # no single element's derivative is wrong.
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.0, size=(20, 30)) * rng.choice([-1.0, 1.0], size=(20, 30))
    x.flat[rng.choice(x.size, 5, replace=False)] = 1e-12
    full = gradcheck.check(Relu(), x, mode="full", method="central")
    fast = gradcheck.check(Relu(), x, mode="fast", method="central")
    assert full.passed and fast.passed, str(fast)
    assert fast.variable("x").kinks >= 1


def test_a_planted_bug_at_a_kink_is_still_found() -> None:
    class WrongAtOne(Relu):
        def backward(self, dout: Any) -> Any:
            dx = super().backward(dout).copy()
            dx[3, 7] += 0.5
            return dx

    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 1.0, size=(20, 30)) * rng.choice([-1.0, 1.0], size=(20, 30))
    x[3, 7] = 0.8
    x.flat[rng.choice(x.size, 5, replace=False)] = 1e-12
    x[3, 7] = 0.8
    report = gradcheck.check(WrongAtOne(), x, mode="fast", method="central")
    assert report.variable("x").mismatches == 1
    assert report.variable("x").worst[0].index == (3, 7)


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_an_executor_gives_the_same_report(mode: str) -> None:
    layer, inputs = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    serial = gradcheck.check(layer, *inputs, mode=mode)
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = gradcheck.check(layer, *inputs, mode=mode, executor=pool)
    assert _verdicts(parallel) == _verdicts(serial)
    for ours, theirs in zip(parallel.variables, serial.variables, strict=True):
        np.testing.assert_allclose(
            np.nan_to_num(ours.numerical), np.nan_to_num(theirs.numerical), rtol=0, atol=1e-8
        )
    assert parallel.evaluations >= serial.evaluations - 2
    assert parallel.options["executor"] == "ThreadPoolExecutor"


def test_an_executor_must_have_submit() -> None:
    with pytest.raises(OptionError, match="executor"):
        gradcheck.check(Sigmoid(), np.ones((2, 2)), executor=object())


def test_a_refused_full_check_points_to_fast_mode() -> None:
    net, data = _mnist_sized_net(np.random.default_rng(0))
    with pytest.raises(CheckError, match="mode='fast' needs about"):
        gradcheck.check(net, *data, mode="full", max_evaluations=1000)
    assert gradcheck.check(net, *data, mode="fast", max_evaluations=1000).passed


class _Counting(Affine):
    calls = 0

    def forward(self, x: Any) -> Any:
        type(self).calls += 1
        return super().forward(x)


@pytest.mark.parametrize("mode", ["fast", "full", "auto"])
def test_evaluations_count_every_numerical_forward_pass(mode: str) -> None:
    rng = np.random.default_rng(0)
    layer = _Counting(rng.standard_normal((30, 8)), rng.standard_normal(8))
    _Counting.calls = 0
    report = gradcheck.check(layer, rng.standard_normal((16, 30)), mode=mode)
    # Discovery runs forward once, the analytic pass twice, and the rounding measurement
    # (the same backward in float32) once; the rest is numerical.
    assert _Counting.calls - report.evaluations == 4


class _ScaledModel:
    """``L = Σ (tanh(x W) − t)²`` whose gradient is ``factor`` times the true one."""

    def __init__(self, factor: float, size: int = 100) -> None:
        rng = np.random.default_rng(0)
        self.params = {"W": rng.standard_normal((size, size)) * 0.1}
        self.factor = factor

    def loss(self, x: Any, t: Any) -> float:
        return float(np.sum((np.tanh(x @ self.params["W"]) - t) ** 2))

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        h = np.tanh(x @ self.params["W"])
        return {"W": self.factor * x.T @ (2 * (h - t) * (1 - h**2))}


def _scaled_data(size: int = 100) -> tuple[Any, Any]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((8, size)), rng.standard_normal((8, size))


def test_a_failed_direction_stopped_by_the_budget_is_a_failure() -> None:
    report = gradcheck.check(_ScaledModel(1.01), *_scaled_data(), max_evaluations=20)
    assert not report.passed and report.verdict == "FAILED"
    stopped = [d for d in report.diagnostics if d.kind == "budget-stopped"]
    assert stopped and stopped[0].severity == "error"
    assert "Raise max_evaluations" in stopped[0].message
    assert "max_evaluations" in report.variable("W").method
    with pytest.raises(gradcheck.GradientCheckError):
        gradcheck.assert_gradients(_ScaledModel(1.01), *_scaled_data(), max_evaluations=20)


def test_a_widespread_mismatch_is_sampled_and_fails_with_its_factor() -> None:
    report = gradcheck.check(_ScaledModel(1.01), *_scaled_data(), max_evaluations=1000)
    weights = report.variable("W")
    assert not report.passed and weights.mismatches >= 1
    assert "wrong nearly everywhere" in (weights.diagnosis or "")
    assert "×1.01" in (weights.diagnosis or "")
    assert "widespread" in weights.method
    assert weights.checked < 20  # a sample, not every one of the 10,000 elements
    assert report.evaluations < 200
    assert any(d.kind == "widespread" for d in report.diagnostics)


def test_a_widespread_transpose_is_named_from_the_directions() -> None:
    class Transposed(_ScaledModel):
        def gradient(self, x: Any, t: Any) -> dict[str, Any]:
            return {"W": super().gradient(x, t)["W"].T.copy()}

    report = gradcheck.check(Transposed(1.0), *_scaled_data(), mode="fast")
    assert not report.passed
    assert "transposed" in (report.variable("W").diagnosis or "")


def test_a_correct_model_under_a_small_budget_still_passes() -> None:
    report = gradcheck.check(_ScaledModel(1.0), *_scaled_data(), max_evaluations=20)
    assert report.passed, str(report)


@pytest.mark.parametrize("seed", range(3))
def test_one_wrong_element_costs_one_directional_test_per_halving(seed: int) -> None:
    size = 64
    rng = np.random.default_rng(seed)
    index = tuple(int(i) for i in rng.integers(size, size=2))

    class OneWrong(_ScaledModel):
        def gradient(self, x: Any, t: Any) -> dict[str, Any]:
            grads = super().gradient(x, t)
            grads["W"][index] += 1e-3 * float(np.sqrt(np.mean(np.square(grads["W"]))))
            return grads

    report = gradcheck.check(
        OneWrong(1.0, size), *_scaled_data(size), mode="fast", method="central"
    )
    weights = report.variable("W")
    assert weights.mismatches == 1 and weights.worst[0].index == index, str(report)
    tests = int(weights.method.split(" tests")[0].rsplit(" ", 1)[-1])
    # Two screening directions, one test per halving, the two re-screened directions.
    assert tests <= 2 + math.ceil(math.log2(size * size)) + 2
