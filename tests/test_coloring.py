"""Coloured full checks: verified sparsity patterns, same numbers, fewer forward passes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gradcheck
import reference_layers
from gradcheck.conventions.registry import make_target
from gradcheck.conventions.target import TargetRequest
from gradcheck.engine.coloring import candidates, nan_consistent
from gradcheck.engine.passes import Runners
from gradcheck.modes import auto
from reference_layers import Affine, BatchNormalization, Sigmoid


class HiddenCrossRow:
    """Looks per-sample (``tanh(x @ W)`` row by row), but output row ``target`` also
    reads the element ``source`` of another row.

    ``hide_from_nan`` swallows a NaN in that element (``np.nan_to_num``), so the NaN
    probe cannot see the dependency and only the verification of the pattern can.
    ``correct`` says whether ``backward`` accounts for the hidden term.
    """

    def __init__(
        self, W: Any, source: tuple[int, int], target: int, *, hide_from_nan: bool, correct: bool
    ) -> None:
        self.W = W
        self.source, self.target = source, target
        self.hide_from_nan, self.correct = hide_from_nan, correct
        self.dW: Any = None

    def forward(self, x: Any) -> Any:
        self.x = x
        self.z = np.tanh(x @ self.W)
        out = self.z.copy()
        value = x[self.source]
        if self.hide_from_nan:
            value = np.nan_to_num(value)
        out[self.target] += 0.7 * value
        return out

    def backward(self, dout: Any) -> Any:
        dz = dout * (1 - self.z**2)
        self.dW = self.x.T @ dz
        dx = dz @ self.W.T
        if self.correct:
            dx[self.source] += 0.7 * np.sum(dout[self.target])
        return dx


def _hidden_case(seed: int, *, hide_from_nan: bool, correct: bool) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    rows, features = 6, 5
    source = (int(rng.integers(rows)), int(rng.integers(features)))
    target = int((source[0] + rng.integers(1, rows)) % rows)
    layer = HiddenCrossRow(
        0.5 * rng.standard_normal((features, 4)),
        source,
        target,
        hide_from_nan=hide_from_nan,
        correct=correct,
    )
    return layer, rng.standard_normal((rows, features))


def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "colouring_for", lambda *args: None)


def test_candidates_follow_the_shapes() -> None:
    assert candidates((3, 4), (3, 4))[0].name == "elementwise"
    per_sample = [c.name for c in candidates((100, 784), (100, 50))]
    assert per_sample == ["per-sample"]
    weights = candidates((784, 50), (100, 50))
    assert weights[0].pairs == ((1, 1),) and weights[0].colours == 784
    assert candidates((3, 4), ()) == []


def test_every_colour_holds_one_element_of_every_block() -> None:
    colouring = candidates((6, 5), (6, 4))[0]
    for colour in range(colouring.colours):
        members = colouring.members(colour)
        assert list(colouring.element_block[members]) == list(range(colouring.blocks))
    assert sorted(colouring.order) == list(range(30))


@pytest.mark.parametrize("method", ["auto", "central"])
def test_coloured_and_plain_full_checks_agree_on_the_reference_layers(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = reference_layers.examples(np.random.default_rng(3))
    coloured = {
        name: gradcheck.check(layer, *inputs, method=method, mode="full")
        for name, (layer, inputs) in examples.items()
    }
    _plain(monkeypatch)
    for name, (layer, inputs) in examples.items():
        plain = gradcheck.check(layer, *inputs, method=method, mode="full")
        assert plain.passed and coloured[name].passed, name
        for ours, theirs in zip(coloured[name].variables, plain.variables, strict=True):
            bound = ours.error + theirs.error + 1e-12
            assert np.all(np.abs(ours.numerical - theirs.numerical) <= bound), (name, ours.name)


def test_coloured_checks_are_used_where_they_pay() -> None:
    layer, inputs = reference_layers.examples(np.random.default_rng(0))["Affine"]
    report = gradcheck.check(layer, *inputs, mode="full", method="central")
    assert "per-sample" in report.variable("x").method
    assert "colours" in report.variable("W").method


@pytest.mark.parametrize("method", ["auto", "central"])
def test_an_elementwise_layer_costs_a_few_passes_whatever_its_size(method: str) -> None:
    # The passes of the noise measurement, the complex step's verification, the pattern's
    # NaN probe and one coloured stencil: as many for 78,400 elements as for 780.
    costs = []
    for shape in ((100, 784), (10, 78)):
        x = np.random.default_rng(0).standard_normal(shape)
        report = gradcheck.check(Sigmoid(), x, mode="full", method=method)
        assert report.passed
        assert report.variable("x").checked == x.size
        assert "1 colour (elementwise)" in report.variable("x").method
        costs.append(report.evaluations)
    assert costs[0] == costs[1] <= 20


def test_affine_needs_fifty_times_fewer_passes_than_the_element_loop() -> None:
    rng = np.random.default_rng(0)
    layer = Affine(0.1 * rng.standard_normal((784, 50)), np.zeros(50))
    x = rng.standard_normal((100, 784))
    report = gradcheck.check(layer, x, mode="full")
    assert report.passed
    naive = 2 * (x.size + layer.W.size + layer.b.size)
    assert report.evaluations * 50 <= naive


def test_batchnorm_in_training_mode_is_not_coloured_per_sample() -> None:
    layer, (x,) = reference_layers.examples(np.random.default_rng(0))["BatchNormalization"]
    target = make_target(TargetRequest(layer, (x,)))
    runners = Runners(lambda: target.instantiate(np.float64))
    per_sample = next(c for c in candidates(x.shape, x.shape) if c.pairs == ((0, 0),))
    assert not nan_consistent(runners.main, "x", per_sample, np.random.default_rng(0))
    report = gradcheck.check(layer, x, mode="full")
    assert report.passed
    assert "per-sample" not in report.variable("x").method
    assert "elementwise" not in report.variable("x").method


def test_batchnorm_in_evaluation_mode_is_elementwise() -> None:
    rng = np.random.default_rng(0)
    layer = BatchNormalization(
        1 + 0.1 * rng.standard_normal(3),
        rng.standard_normal(3),
        running_mean=rng.standard_normal(3),
        running_var=rng.uniform(0.5, 2.0, 3),
    )
    report = gradcheck.check(
        layer, rng.standard_normal((8, 3)), mode="full", forward_kwargs={"train": False}
    )
    assert report.passed
    assert "elementwise" in report.variable("x").method


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("hide_from_nan", [True, False])
def test_a_hidden_cross_row_dependency_falls_back_and_passes(
    seed: int, hide_from_nan: bool
) -> None:
    layer, x = _hidden_case(seed, hide_from_nan=hide_from_nan, correct=True)
    report = gradcheck.check(layer, x, mode="full", method="central", seed=seed)
    assert report.passed, str(report)
    assert "per-sample" not in report.variable("x").method
    if hide_from_nan:
        assert any(d.kind == "colouring-refuted" for d in report.diagnostics)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("method", ["auto", "central"])
def test_a_hidden_cross_row_dependency_missing_from_backward_is_named(
    seed: int, method: str
) -> None:
    layer, x = _hidden_case(seed, hide_from_nan=True, correct=False)
    report = gradcheck.check(layer, x, mode="full", method=method, seed=seed)
    found = report.variable("x")
    assert found.mismatches == 1 and found.worst[0].index == layer.source, str(report)
    assert report.variable("W").passed
