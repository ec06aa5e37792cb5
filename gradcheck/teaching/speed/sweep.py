"""The sweep: every method on two-layer nets of growing hidden width.

:func:`compare_speed` builds one seeded net per hidden size, with a synthetic MNIST-like
batch, and measures backprop, the textbook loop, gradcheck's engine and the whole check on
it (:func:`_measure_size`); :func:`fast_mode_support` says once whether a fast check exists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.teaching.speed.machine import _blas_threads, _machine
from gradcheck.teaching.speed.methods import (
    _check_full,
    _check_seconds,
    _engine,
    _max_diff,
    _textbook,
)
from gradcheck.teaching.speed.results import (
    FastModeSupport,
    Progress,
    SizeResult,
    SpeedComparison,
    SpeedConfig,
    Timing,
)
from gradcheck.teaching.speed.timing import _best_call_seconds, _parameter_count, _sample_plan


def synthetic_mnist(
    rng: np.random.Generator, input_size: int = 784, classes: int = 10, batch_size: int = 100
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """An MNIST-like batch: pixel values uniform in [0, 1] and random integer labels.

    Timing does not depend on the pixels being digits, so no download is needed.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the pixels, then the labels.
    input_size, classes, batch_size : int
        Pixels per sample, number of classes, samples in the batch.

    Returns
    -------
    x : ndarray, shape (batch_size, input_size)
    t : ndarray of int, shape (batch_size,)

    Examples
    --------
    >>> x, t = synthetic_mnist(np.random.default_rng(0), input_size=4, batch_size=3)
    >>> x.shape, t.shape
    ((3, 4), (3,))
    """
    x = rng.random((batch_size, input_size))
    t = rng.integers(0, classes, size=batch_size)
    return x, t


def fast_mode_support() -> FastModeSupport:
    """Probe ``check(mode="fast")`` on a tiny net.

    Fast mode is *available* when the check accepts it and needs fewer forward passes
    than the net has elements (a full check needs at least one per element).

    Returns
    -------
    FastModeSupport
        ``available``, and the ``reason``: the forward passes counted, or the refusal.
    """
    import gradcheck
    from reference_layers import TwoLayerNet

    rng = np.random.default_rng(0)
    net = TwoLayerNet(8, 6, 4, weight_init_std=0.5, seed=rng)
    x, t = synthetic_mnist(rng, 8, 4, 5)
    elements = _parameter_count(net)
    try:
        report = gradcheck.check(net, x, t, mode="fast")
    except Exception as error:  # any refusal means "not available"
        return FastModeSupport(False, f"check(mode='fast') raised {type(error).__name__}: {error}")
    if report.evaluations >= elements:
        return FastModeSupport(
            False,
            f"check(mode='fast') is accepted but ran {report.evaluations} forward passes for "
            f"{elements} elements, i.e. a full check",
        )
    return FastModeSupport(True, f"{report.evaluations} forward passes for {elements} elements")


@dataclass(frozen=True)
class _Setup:
    """One size ready to measure: the net, a synthetic batch, the elements to differentiate."""

    net: Any
    x: NDArray
    t: NDArray
    plan: dict[str, NDArray[np.intp]]

    @property
    def parameters(self) -> int:
        return _parameter_count(self.net)

    @property
    def compared(self) -> int:
        """Elements the numerical methods differentiate (all of them unless sampled)."""
        return sum(indices.size for indices in self.plan.values())

    @property
    def sampled(self) -> bool:
        return self.compared < self.parameters


def _set_up(hidden: int, config: SpeedConfig) -> _Setup:
    """The seeded two-layer net of width ``hidden``, its batch, and the sample plan."""
    from reference_layers import TwoLayerNet

    rng = np.random.default_rng(config.seed)
    net = TwoLayerNet(config.input_size, hidden, config.output_size, seed=rng)
    x, t = synthetic_mnist(rng, config.input_size, config.output_size, config.batch_size)
    return _Setup(net, x, t, _sample_plan(net, config.quick, config.samples))


def _time_backprop(setup: _Setup, min_seconds: float) -> tuple[Timing, dict[str, NDArray]]:
    """Backprop's best time, and its gradient: what the numerical ones are compared with."""
    net, x, t = setup.net, setup.x, setup.t
    seconds = _best_call_seconds(lambda: net.gradient(x, t), min_seconds)
    analytic = {key: grad.copy() for key, grad in net.gradient(x, t).items()}
    return Timing(seconds, 1, note="one forward and one backward pass"), analytic


def _time_textbook(setup: _Setup, analytic: dict[str, NDArray]) -> tuple[Timing, float]:
    """The textbook loop's time for every element, and its largest distance from backprop."""
    n, sampled = setup.parameters, setup.sampled
    rate, values = _textbook(setup.net, setup.x, setup.t, setup.plan, sampled)
    timing = Timing(rate.total(n, sampled), 2 * n, extrapolated=sampled)
    return timing, _max_diff(values, analytic, setup.plan)


def _time_engine(setup: _Setup, analytic: dict[str, NDArray]) -> tuple[Timing, float]:
    """gradcheck's engine: its time for every element, and its largest distance from backprop."""
    n, sampled = setup.parameters, setup.sampled
    rate, per_element, values = _engine(setup.net, setup.x, setup.t, setup.plan, sampled)
    passes = round(per_element * n) + len(setup.plan)
    timing = Timing(rate.total(n, sampled), passes, extrapolated=sampled)
    return timing, _max_diff(values, analytic, setup.plan)


def _time_checks(
    setup: _Setup, config: SpeedConfig, fast: FastModeSupport, progress: Progress
) -> tuple[Timing, Timing]:
    """The whole check in full mode, and in fast mode when there is one."""
    progress("gradcheck.check (full)")
    check_full = _check_full(setup.net, setup.x, setup.t, config.quick, config.samples)
    if not fast.available:
        return check_full, Timing(None, note=fast.reason)
    progress("gradcheck.check (fast)")
    seconds, evaluations = _check_seconds(setup.net, setup.x, setup.t, mode="fast")
    return check_full, Timing(seconds, evaluations)


def _measure_size(
    hidden: int, config: SpeedConfig, fast: FastModeSupport, progress: Progress
) -> SizeResult:
    """Every method on the net of one hidden width, in the order the table shows them."""
    setup = _set_up(hidden, config)
    label = f"hidden {hidden} ({setup.parameters:,} parameters)"
    sample_text = f" ({setup.compared} sampled elements)" if setup.sampled else ""
    progress(f"{label}: backprop")
    backprop, analytic = _time_backprop(setup, config.min_backprop_seconds)
    progress(f"{label}: textbook numerical_gradient{sample_text}")
    textbook, textbook_diff = _time_textbook(setup, analytic)
    progress(f"{label}: gradcheck.numerical_gradient(method='central'){sample_text}")
    engine, engine_diff = _time_engine(setup, analytic)
    check_full, check_fast = _time_checks(setup, config, fast, _prefixed(progress, f"{label}: "))
    return SizeResult(
        input_size=config.input_size,
        hidden_size=hidden,
        output_size=config.output_size,
        batch_size=config.batch_size,
        parameters=setup.parameters,
        textbook=textbook,
        engine=engine,
        check_full=check_full,
        check_fast=check_fast,
        backprop=backprop,
        textbook_max_diff=textbook_diff,
        engine_max_diff=engine_diff,
        gradient_scale=max(float(np.max(np.abs(g))) for g in analytic.values()),
        compared_elements=setup.compared,
    )


def compare_speed(
    config: SpeedConfig | None = None, progress: Progress | None = None
) -> SpeedComparison:
    """Time numerical gradients against backprop on two-layer nets of growing size.

    Parameters
    ----------
    config : SpeedConfig, optional
        Sizes and sampling; the default is the full sweep around the textbook's net.
    progress : callable, optional
        Called with a short message before each step (for a progress line).

    Returns
    -------
    SpeedComparison
        One :class:`SizeResult` per hidden size, in the order given.

    Examples
    --------
    >>> small = SpeedConfig(input_size=6, hidden_sizes=(3,), batch_size=4,
    ...                     min_backprop_seconds=0.0)
    >>> result = compare_speed(small)
    >>> result.results[0].parameters
    61
    """
    config = config or SpeedConfig()
    report: Progress = progress or (lambda message: None)
    started = time.perf_counter()
    machine = _machine()
    with _blas_threads(config.blas_threads) as blas:
        machine["blas_threads"] = blas
        report("probing check(mode='fast')")
        fast = fast_mode_support()
        results = []
        for number, hidden in enumerate(config.hidden_sizes, start=1):
            prefix = f"[{number}/{len(config.hidden_sizes)}] "
            results.append(_measure_size(hidden, config, fast, _prefixed(report, prefix)))
    return SpeedComparison(config, results, fast, time.perf_counter() - started, machine)


def _prefixed(progress: Progress, prefix: str) -> Progress:
    def report(message: str) -> None:
        progress(prefix + message)

    return report
