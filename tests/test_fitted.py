"""Fitting many stencils over their steps: an estimate whose error bar is honest."""

from __future__ import annotations

import numpy as np

from gradcheck.engine.fitted import FIT_STEPS, fitted, fitting_shrinks
from gradcheck.engine.gradient import NoiseSamples, NumericalGradient


def _run(value: np.ndarray, step: np.ndarray) -> NumericalGradient:
    shape = value.shape
    zeros = np.zeros(shape)
    noise = NoiseSamples(
        sample=zeros,
        unit=zeros,
        floor=zeros,
        step=step,
        truncation=zeros,
        gain=1.0,
        measured=np.ones(shape, dtype=bool),
    )
    return NumericalGradient(
        value=value,
        error=np.full(shape, np.inf),
        method="richardson",
        evaluations=6,
        left=None,
        right=None,
        side_error=None,
        checked=np.ones(shape, dtype=bool),
        noise=noise,
    )


def test_no_two_fitting_steps_share_a_point() -> None:
    shrinks = fitting_shrinks()
    assert shrinks.size == FIT_STEPS and np.all((shrinks >= 1) & (shrinks < 4))
    ratios = shrinks[:, None] / shrinks[None, :]
    for multiple in (2, 3, 4, 1.5):  # offsets of 1, 2, 3 steps: shared if a ratio is one
        off_diagonal = ~np.eye(FIT_STEPS, dtype=bool)
        assert np.min(np.abs(ratios[off_diagonal] - multiple)) > 1e-3


def test_the_fit_removes_truncation_and_its_error_bar_covers_the_truth() -> None:
    rng = np.random.default_rng(0)
    truth, curvature, sigma = np.array([0.3, -2.0, 1e-3]), np.array([5.0, -40.0, 0.0]), 1e-6
    base = 0.05
    covered, widths = 0, []
    for _ in range(300):
        runs = []
        for shrink in fitting_shrinks():
            h = np.full(3, base / shrink)
            runs.append(_run(truth + curvature * h**4 + sigma * rng.standard_normal(3), h))
        fit = fitted(runs)
        covered += int(np.all(np.abs(fit.value - truth) <= fit.error))
        widths.append(fit.error)
    assert covered == 300
    # A single stencil's noise is sigma; the fit's bar is a few standard errors, not more.
    assert np.median(widths) < 5 * sigma


def test_an_element_one_run_did_not_check_is_not_fitted() -> None:
    rng = np.random.default_rng(0)
    runs = [
        _run(np.array([1.0, 2.0]) + 1e-6 * rng.standard_normal(2), np.array([0.1, 0.1]) / s)
        for s in fitting_shrinks()
    ]
    runs[3] = NumericalGradient(**{**runs[3].__dict__, "checked": np.array([True, False])})
    fit = fitted(runs)
    assert fit.checked.tolist() == [True, False]


def test_estimates_that_repeat_are_quantised_and_give_no_error_bar() -> None:
    # A float32 output that did not move at any step: every stencil says 0 exactly; a fit
    # would claim 0 ± 0 where the truth may be 1e-9.
    runs = [_run(np.array([0.0, 0.5]), np.array([0.1, 0.1]) / s) for s in fitting_shrinks()]
    fit = fitted(runs)
    assert fit.checked.tolist() == [False, False]
