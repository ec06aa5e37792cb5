"""Fast mode's sensitivity: directions judged at their own error bar, what they would
have caught stated per variable, and screened elements never reported as checked."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from mutants import correct_case  # tests/: no package

import gradcheck
from gradcheck.modes import fast
from gradcheck.report.formatting import summary_table
from gradcheck.vocabulary import Status
from reference_layers import TwoLayerNet


class PlantedAffine:
    """``x @ W + b`` whose ``dW`` is ``factor`` times too large at ``index`` (issue 19)."""

    def __init__(self, W: Any, b: Any, index: Any = None, factor: float = 1.0) -> None:
        self.W, self.b, self.index, self.factor = W, b, index, factor

    def forward(self, x: Any) -> Any:
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout: Any) -> Any:
        self.dW = self.x.T @ dout
        if self.index is not None:
            self.dW[self.index] *= self.factor
        self.db = dout.sum(0)
        return dout @ self.W.T


class AbsAffine:
    """``|x @ W|``: ``np.abs`` drops the imaginary part, so central differences decide."""

    def __init__(self, W: Any, shift: tuple[tuple[int, int], float] | None = None) -> None:
        self.W, self.shift = W, shift

    def forward(self, x: Any) -> Any:
        self.x, self.z = x, x @ self.W
        return np.abs(self.z)

    def backward(self, dout: Any) -> Any:
        dz = dout * np.sign(self.z)
        self.dW = self.x.T @ dz
        if self.shift is not None:
            self.dW[self.shift[0]] += self.shift[1]
        return dz @ self.W.T


def _issue_case(
    seed: int, index: tuple[int, int] | None = None, factor: float = 1.0
) -> tuple[PlantedAffine, Any]:
    rng = np.random.default_rng(seed)
    layer = PlantedAffine(rng.standard_normal((256, 64)) / 16, np.zeros(64), index, factor)
    return layer, rng.random((16, 256))


def _chapter_case(seed: int, factor: float = 1.0) -> tuple[PlantedAffine, Any, tuple[int, int]]:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((784, 100)) / 28
    x = rng.random((32, 784))
    index = (int(rng.integers(784)), int(rng.integers(100)))
    return PlantedAffine(W, np.zeros(100), index, factor), x, index


def _named(report: gradcheck.Report, index: tuple[int, int]) -> bool:
    weights = report.variable("W")
    return (
        weights.mismatches == 1
        and weights.worst[0].index == index
        and weights.status[index] == Status.MISMATCH
    )


@pytest.mark.parametrize("seed", range(10))
def test_one_element_off_by_ten_rtol_among_16384_is_named(seed: int) -> None:
    # 1 + 10·rtol: the default check used to pass it, diluted by √n in the threshold.
    layer, x = _issue_case(seed, (3, 5), 1.0001)
    report = gradcheck.check(layer, x)
    assert _named(report, (3, 5)), str(report)
    assert report.variable("W").method.startswith("fast")
    twin, x = _issue_case(seed)
    assert gradcheck.check(twin, x).passed


@pytest.mark.parametrize("seed", range(10))
def test_one_element_off_by_ten_rtol_among_78400_is_named(seed: int) -> None:
    layer, x, index = _chapter_case(seed, 1.0001)
    report = gradcheck.check(layer, x)
    assert _named(report, index), str(report)
    twin, x, _ = _chapter_case(seed)
    assert gradcheck.check(twin, x).passed


def test_screened_elements_are_never_reported_as_checked() -> None:
    layer, x = _issue_case(0)
    report = gradcheck.check(layer, x)
    weights = report.variable("W")
    assert report.passed and weights.method.startswith("fast")
    assert weights.checked == 0 and weights.screened == 256 * 64
    assert weights.screening is not None and weights.screening.sufficient
    text, markdown, html = str(report), report._repr_markdown_(), report._repr_html_()
    sentence = (
        "W: 16,384 elements screened by 2 random directions (none of them checked one by one)"
    )
    for page in (text, markdown, html):
        assert sentence in page
        assert "would catch one element off by ≥" in page
        assert "16384 elements match" not in page and "16,384 elements match" not in page
    columns, rows = summary_table(report)
    row = dict(zip(columns, rows[[v.name for v in report.variables].index("W")], strict=True))
    assert row["checked"] == "0" and row["screened"] == "16,384"
    assert report.summary() == (
        "PlantedAffine: passed (64 gradient elements checked one by "
        "one, 20,480 screened by random directions)"
    )
    exported = json.loads(json.dumps(report.to_dict()))
    (entry,) = [v for v in exported["variables"] if v["name"] == "W"]
    assert entry["checked"] == 0 and entry["screened"] == 16384
    assert entry["screening"]["sufficient"] and entry["screening"]["directions"] == 2


def test_a_failing_variable_counts_only_its_checked_elements() -> None:
    layer, x = _issue_case(0, (3, 5), 1.0001)
    weights = gradcheck.check(layer, x).variable("W")
    assert weights.checked < 10 and weights.checked + weights.screened == 16384
    assert weights.headline().startswith(f"1 of {weights.checked} checked one by one wrong")
    assert "more screened by 2 random directions" in weights.headline()


def test_a_networks_table_says_what_was_only_screened() -> None:
    rng = np.random.default_rng(0)
    net = TwoLayerNet(784, 50, 10, seed=0)
    report = gradcheck.check_network(net, rng.random((10, 784)), rng.integers(0, 10, 10))
    assert report.passed
    rows = {row[1]: row for row in gradcheck.report.formatting.network_rows(report)}
    assert "screened" in rows["Affine1 (Affine)"][3]
    assert "none checked one by one" in rows["gradient() end to end"][3]


def test_a_real_stencil_variable_states_what_it_would_catch() -> None:
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((256, 64)) / 16, rng.random((16, 256))
    report = gradcheck.check(AbsAffine(W), x)
    weights = report.variable("W")
    assert report.passed and weights.method.startswith("fast richardson"), str(report)
    screening = weights.screening
    assert screening is not None and screening.sufficient
    # A real stencil resolves a directional derivative far less than the complex step
    # does, and the sentence says so.
    exact = gradcheck.check(PlantedAffine(W, np.zeros(64)), x).variable("W").screening
    assert exact is not None and screening.sensitivity > 10 * exact.sensitivity
    assert f"would catch one element off by ≥ {screening.sensitivity:.1g}" in str(report)
    # What it says it catches, it catches: an element off by three times that bound (but
    # within rtol, so the element check clears it) fails a direction and is looked at.
    typical = float(np.median(np.abs(weights.analytic)))
    index = np.unravel_index(np.argmin(np.abs(np.abs(weights.analytic) - typical)), W.shape)
    shifted = ((int(index[0]), int(index[1])), 3 * screening.sensitivity * typical)
    again = gradcheck.check(AbsAffine(W, shifted), x).variable("W")
    assert again.passed and again.checked >= 1 and again.status[shifted[0]] == Status.OK


def test_every_element_a_tenth_of_rtol_off_passes_at_the_cost_of_a_full_check() -> None:
    # ×(1 + rtol/10) everywhere: every direction fails at its error bar, most groups of
    # the search fail, a sample of eight elements is within tolerance, and the coloured
    # full check (256 colours) decides: 283 passes in all, never the search's dead end.
    layer, x = _issue_case(0)
    layer.index, layer.factor = (slice(None), slice(None)), 1 + 1e-6
    report = gradcheck.check(layer, x)
    weights = report.variable("W")
    assert report.passed, str(report)
    assert "→ full" in weights.method and weights.checked == 256 * 64
    assert weights.screening is None
    assert report.evaluations <= 300


def test_a_small_spread_difference_the_budget_stops_is_incomplete_not_failed() -> None:
    layer, x = _issue_case(0)
    layer.index, layer.factor = (slice(None), slice(None)), 1 + 1e-6
    report = gradcheck.check(layer, x, max_evaluations=60)
    assert report.verdict == "INCOMPLETE", str(report)
    stopped = [d for d in report.diagnostics if d.kind == "budget-stopped"]
    assert stopped and stopped[0].severity == "incomplete"
    weights = report.variable("W")
    assert weights.screening is not None and not weights.screening.sufficient
    assert "a direction over them fails, so they are not verified" in str(report)


class _Float32Tanh:
    """``tanh(x @ W)`` kept in a float32 buffer (the sequel book's ``np.empty(..., 'f')``):
    the numerical side computes in float32, so its directions resolve little."""

    def __init__(self, W: Any) -> None:
        self.params, self.grads = [W], [np.zeros_like(W)]

    def forward(self, x: Any) -> Any:
        self.x = x
        self.out = np.empty((x.shape[0], self.params[0].shape[1]), "f")
        self.out[...] = np.tanh(x @ self.params[0])
        return self.out

    def backward(self, dout: Any) -> Any:
        dz = dout * (1 - self.out**2)
        self.grads[0][...] = self.x.T @ dz
        return dz @ self.params[0].T


def test_directions_too_coarse_to_verify_leave_the_check_incomplete() -> None:
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((64, 64)) / 8).astype("f")
    x = rng.standard_normal((16, 64)).astype("f")
    report = gradcheck.check(_Float32Tanh(W), x, max_evaluations=200)
    weights = report.variable("params[0]")
    assert report.verdict == "INCOMPLETE" and weights.verdict == "INCOMPLETE", str(report)
    assert weights.screening is not None and not weights.screening.sufficient
    assert weights.checked == 0 and weights.mismatches == 0
    assert "not enough to count as checked" in str(report)
    assert "only screened" in (report.conclusion or "")


def test_directions_too_coarse_to_verify_hand_the_variable_to_the_full_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A promise no direction can keep: every screened variable goes to the full check.
    monkeypatch.setattr(fast, "_PROMISE", 0.0)
    layer, x = _issue_case(0)
    report = gradcheck.check(layer, x)
    weights = report.variable("W")
    assert report.passed and "not sensitive enough → full" in weights.method
    assert weights.checked == 256 * 64 and weights.screening is None


def test_nearby_points_vouch_for_what_their_directions_screened() -> None:
    # A chain whose mismatches all sit where kinks meet behind abs: the nearby rechecks
    # pass in fast mode, screening the kinked elements rather than checking them; that
    # verifies them as a passing check does (bench_verdicts' correct case 6610).
    case = correct_case(np.random.default_rng(6610))
    report = gradcheck.check(case.layer, *case.inputs)
    assert report.passed, str(report)
    assert any(d.kind == "kinks-meet" and d.severity == "note" for d in report.diagnostics)
    assert any(v.screened for v in report.variables)
