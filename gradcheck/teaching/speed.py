"""The teaching comparison: why backpropagation, and what a numerical check costs.

For the chapter's two-layer net (``784 -> 50 -> 10``, a batch of 100) and a sweep of
hidden sizes, :func:`compare_speed` times one full gradient of every parameter by

* the textbook's loop, :func:`reference_layers.functions.numerical_gradient` (two forward
  passes per element, fixed step ``h = 1e-4``), exactly as ``TwoLayerNet.numerical_gradient``
  calls it;
* gradcheck's engine, :func:`gradcheck.numerical_gradient` with ``method="central"``
  (four forward passes per element: the extra two buy an error estimate and kink detection);
* backpropagation, ``net.gradient(x, t)`` (one forward and one backward pass);
* the whole check, :func:`gradcheck.check` in full mode, and in fast mode when the library
  really has one (a mode that needs fewer forward passes than there are elements);

and measures how far each numerical gradient is from the backprop one. The cost of a
numerical gradient grows with the number of parameters *times* the cost of a forward pass,
which itself grows with the number of parameters: quadratic, against linear for backprop.

``quick=True`` times a sample of elements for the numerical methods and scales by
``n / k``; every such number is flagged ``extrapolated`` so a face can say so.

This module measures and returns data; it never prints. ``progress`` callbacks let a face
show where a long run is.
"""

from __future__ import annotations

import importlib
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "TEXTBOOK_HIDDEN",
    "FastModeSupport",
    "SizeResult",
    "SpeedComparison",
    "SpeedConfig",
    "Timing",
    "TrainingConfig",
    "TrainingResult",
    "compare_speed",
    "fast_mode_support",
    "synthetic_mnist",
    "train_digits",
]

Progress = Callable[[str], None]

#: Hidden width of the textbook's two-layer net (input 784, output 10, batch 100).
TEXTBOOK_HIDDEN = 50


@dataclass(frozen=True)
class SpeedConfig:
    """What to measure.

    Parameters
    ----------
    input_size, output_size, batch_size : int
        The net's input width, number of classes, and the batch the gradient is taken on.
    hidden_sizes : tuple of int
        The sweep: one two-layer net per hidden width.
    seed : int
        Seeds the weights and the synthetic data.
    quick : bool
        Time ``samples`` elements of each numerical method and extrapolate.
    samples : int
        Elements timed per method and size in quick mode.
    min_backprop_seconds : float
        Backprop is repeated until this much time has passed; the fastest call is kept.
    blas_threads : int or None
        Threads the BLAS may use while measuring (needs ``threadpoolctl``; None leaves the
        BLAS alone). One thread by default: the matrices are small, and a multithreaded
        BLAS sharing a core with another busy process slows down erratically (tenfold),
        which would make the numbers meaningless on a shared machine.
    """

    input_size: int = 784
    hidden_sizes: tuple[int, ...] = (5, 10, 20, 50, 100)
    output_size: int = 10
    batch_size: int = 100
    seed: int = 0
    quick: bool = False
    samples: int = 200
    min_backprop_seconds: float = 0.2
    blas_threads: int | None = 1

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size", "batch_size", "samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be widths >= 1, got {self.hidden_sizes}")


@dataclass(frozen=True)
class Timing:
    """Time for one full gradient of every parameter by one method.

    Attributes
    ----------
    seconds : float or None
        None when the method is not available (see ``note``).
    forward_passes : int or None
        Forward passes (calls of the loss) that one full gradient needs.
    extrapolated : bool
        True when measured on a sample of elements and scaled up.
    note : str or None
        Why the method is not available, or how it was measured.
    """

    seconds: float | None
    forward_passes: int | None = None
    extrapolated: bool = False
    note: str | None = None


@dataclass(frozen=True)
class SizeResult:
    """All methods on one net size."""

    input_size: int
    hidden_size: int
    output_size: int
    batch_size: int
    parameters: int
    textbook: Timing
    engine: Timing
    check_full: Timing
    check_fast: Timing
    backprop: Timing
    textbook_max_diff: float
    engine_max_diff: float
    gradient_scale: float
    compared_elements: int

    @property
    def is_textbook_size(self) -> bool:
        """Whether this is the chapter's ``784 -> 50 -> 10`` net, batch 100."""
        return (self.input_size, self.hidden_size, self.output_size, self.batch_size) == (
            784, TEXTBOOK_HIDDEN, 10, 100
        )

    @property
    def diff_sampled(self) -> bool:
        """True when the gradient differences were taken over a sample of elements."""
        return self.compared_elements < self.parameters

    @property
    def ratio(self) -> float | None:
        """Textbook numerical gradient time / backprop time."""
        return _ratio(self.textbook.seconds, self.backprop.seconds)

    @property
    def engine_ratio(self) -> float | None:
        """gradcheck engine time / backprop time."""
        return _ratio(self.engine.seconds, self.backprop.seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out.update(ratio=self.ratio, engine_ratio=self.engine_ratio,
                   diff_sampled=self.diff_sampled, textbook_size=self.is_textbook_size)
        return out


@dataclass(frozen=True)
class FastModeSupport:
    """Whether ``check(..., mode="fast")`` really is faster than a full check."""

    available: bool
    reason: str


@dataclass(frozen=True)
class SpeedComparison:
    """The result of :func:`compare_speed`."""

    config: SpeedConfig
    results: list[SizeResult]
    fast_mode: FastModeSupport
    seconds: float
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "config": asdict(self.config),
            "fast_mode": asdict(self.fast_mode),
            "seconds": self.seconds,
            "machine": self.machine,
            "results": [r.to_dict() for r in self.results],
        }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def synthetic_mnist(
    rng: np.random.Generator, input_size: int = 784, classes: int = 10, batch_size: int = 100
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """An MNIST-like batch: pixel values uniform in [0, 1] and random integer labels.

    Timing does not depend on the pixels being digits, so no download is needed.
    """
    x = rng.random((batch_size, input_size))
    t = rng.integers(0, classes, size=batch_size)
    return x, t


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "processor": platform.machine(),
    }


def _best_call_seconds(call: Callable[[], object], min_seconds: float) -> float:
    """Fastest of repeated calls (at least 5, for at least ``min_seconds``).

    The minimum, as ``timeit`` advises: other processes only ever add time, and a
    multithreaded BLAS competing for a shared core adds a lot of it.
    """
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - started < min_seconds:
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return min(times)


@dataclass
class _Rate:
    """Time per differentiated element, measured in pieces (quick mode) or all at once."""

    seconds: float = 0.0
    elements: int = 0
    best: float = math.inf

    def add(self, seconds: float, elements: int) -> None:
        self.seconds += seconds
        self.elements += elements
        if elements >= _MIN_PIECE:
            self.best = min(self.best, seconds / elements)

    def total(self, n: int, sampled: bool) -> float:
        """Seconds for all ``n`` elements: measured, or the fastest piece's rate times n."""
        if not sampled:
            return self.seconds
        rate = self.best if math.isfinite(self.best) else self.seconds / max(self.elements, 1)
        return rate * n


# Quick mode times the sample in pieces of this many elements and extrapolates from the
# fastest piece, so that a burst of load on a shared machine does not blow up the estimate.
_PIECE = 25
_MIN_PIECE = 5


def _pieces(indices: NDArray[np.intp], sampled: bool) -> list[NDArray[np.intp]]:
    if not sampled:
        return [indices]
    return [indices[i : i + _PIECE] for i in range(0, indices.size, _PIECE)]


def _sample_indices(size: int, budget: int) -> NDArray[np.intp]:
    """About ``budget`` flat indices spread evenly over an array of ``size`` elements."""
    step = max(1, math.ceil(size / max(budget, 1)))
    return np.arange(0, size, step, dtype=np.intp)


def _sample_plan(net: Any, quick: bool, samples: int) -> dict[str, NDArray[np.intp]]:
    """Per parameter, the flat indices to differentiate (all of them unless quick).

    The sample is split over the parameters in proportion to their sizes (each gets at
    least one element), so the time per element is a fair average over the whole net.
    """
    total = sum(p.size for p in net.params.values())
    plan = {}
    for key, param in net.params.items():
        budget = param.size if not quick else max(1, round(samples * param.size / total))
        plan[key] = _sample_indices(param.size, budget)
    return plan


def _owners(net: Any, param: NDArray) -> list[tuple[Any, str]]:
    """The (layer, attribute) pairs holding ``param`` itself (the net shares its arrays)."""
    found = []
    for layer in net.layers.values():
        for attribute, value in vars(layer).items():
            if value is param:
                found.append((layer, attribute))
    return found


def _textbook(
    net: Any, x: NDArray, t: NDArray, plan: dict[str, NDArray[np.intp]], sampled: bool
) -> tuple[_Rate, dict[str, NDArray]]:
    """Time the textbook loop over the planned elements; return their derivatives."""
    from reference_layers import functions

    def loss_W(W: NDArray) -> Any:
        # The textbook's idiom: W is ignored, the loss sees the in-place perturbation.
        return net.loss(x, t)

    rate, values = _Rate(), {}
    for key, param in net.params.items():
        flat = param.reshape(-1)
        found = []
        for piece in _pieces(plan[key], sampled):
            step = int(piece[1] - piece[0]) if piece.size > 1 else 1
            # A strided *view*: the textbook loop perturbs it in place, and so the parameter.
            view = flat[piece[0] : piece[-1] + 1 : step]
            started = time.perf_counter()
            found.append(functions.numerical_gradient(loss_W, view))
            rate.add(time.perf_counter() - started, piece.size)
        values[key] = np.concatenate(found)
    return rate, values


def _engine(
    net: Any, x: NDArray, t: NDArray, plan: dict[str, NDArray[np.intp]], sampled: bool
) -> tuple[_Rate, float, dict[str, NDArray]]:
    """Time gradcheck's central-difference engine over the planned elements.

    Returns the rate, the forward passes per element, and the derivatives.
    """
    import gradcheck

    rate, values, per_element = _Rate(), {}, 0.0
    for key, param in net.params.items():
        # The engine differentiates a copy of the parameter; the layers holding the
        # parameter are pointed at that copy for the duration (O(1) per call, no copying).
        owners = _owners(net, param)

        def loss(point: NDArray, owners: list[tuple[Any, str]] = owners) -> float:
            for layer, attribute in owners:
                setattr(layer, attribute, point)
            return float(net.loss(x, t))

        found = []
        try:
            for piece in _pieces(plan[key], sampled):
                started = time.perf_counter()
                result = gradcheck.numerical_gradient(
                    loss, param, method="central", indices=piece
                )
                rate.add(time.perf_counter() - started, piece.size)
                found.append(result.value.reshape(-1)[piece])
                # Each call also evaluates f at the unperturbed point once.
                per_element = max(per_element, (result.evaluations - 1) / piece.size)
        finally:
            for layer, attribute in owners:
                setattr(layer, attribute, param)
        values[key] = np.concatenate(found)
    return rate, per_element, values


def _max_diff(
    numerical: dict[str, NDArray], analytic: dict[str, NDArray], plan: dict[str, NDArray[np.intp]]
) -> float:
    return max(
        float(np.max(np.abs(np.ravel(numerical[key]) - analytic[key].reshape(-1)[plan[key]])))
        for key in plan
    )


def _check_seconds(
    net: Any, x: NDArray, t: NDArray, repeats: int = 1, **options: Any
) -> tuple[float, int]:
    """Fastest of ``repeats`` checks, and the forward passes one check used."""
    import gradcheck

    best, evaluations = math.inf, 0
    for _ in range(repeats):
        started = time.perf_counter()
        report = gradcheck.check(net, x, t, **options)
        best = min(best, time.perf_counter() - started)
        evaluations = report.evaluations
    return best, evaluations


def _check_full(net: Any, x: NDArray, t: NDArray, quick: bool, samples: int) -> Timing:
    """The full check; in quick mode extrapolated from checks of the smallest parameters.

    A check has a fixed cost (copies, the analytic pass, probes) besides its per-element
    cost, so two partial checks are timed — the smallest parameter alone, then the
    smallest parameters together — and the line through them is extended to all elements.
    """
    total = sum(p.size for p in net.params.values())
    if not quick or total <= samples:
        seconds, evaluations = _check_seconds(net, x, t, mode="full")
        return Timing(seconds, evaluations)
    by_size = sorted(net.params, key=lambda key: net.params[key].size)
    chosen, count = [by_size[0]], net.params[by_size[0]].size
    for key in by_size[1:]:
        if count + net.params[key].size > max(samples, count):
            break
        chosen.append(key)
        count += net.params[key].size
    small = net.params[chosen[0]].size
    t_small, e_small = _check_seconds(net, x, t, repeats=3, mode="full", wrt=(chosen[0],))
    if len(chosen) == 1:
        per_element, per_evaluation = t_small / small, e_small / small
        return Timing(per_element * total, round(per_evaluation * total), extrapolated=True)
    t_big, e_big = _check_seconds(net, x, t, repeats=2, mode="full", wrt=tuple(chosen))
    per_element = max(t_big - t_small, 0.0) / (count - small)
    per_evaluation = (e_big - e_small) / (count - small)
    return Timing(
        t_small + per_element * (total - small),
        round(e_small + per_evaluation * (total - small)),
        extrapolated=True,
    )


def fast_mode_support() -> FastModeSupport:
    """Probe ``check(mode="fast")`` on a tiny net.

    Fast mode is *available* when the check accepts it and needs fewer forward passes
    than the net has elements (a full check needs at least one per element).
    """
    import gradcheck
    from reference_layers import TwoLayerNet

    rng = np.random.default_rng(0)
    net = TwoLayerNet(8, 6, 4, weight_init_std=0.5, seed=rng)
    x, t = synthetic_mnist(rng, 8, 4, 5)
    elements = sum(p.size for p in net.params.values())
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


def _measure_size(
    hidden: int, config: SpeedConfig, fast: FastModeSupport, progress: Progress
) -> SizeResult:
    from reference_layers import TwoLayerNet

    rng = np.random.default_rng(config.seed)
    net = TwoLayerNet(config.input_size, hidden, config.output_size, seed=rng)
    x, t = synthetic_mnist(rng, config.input_size, config.output_size, config.batch_size)
    n = sum(p.size for p in net.params.values())
    plan = _sample_plan(net, config.quick, config.samples)
    k = sum(indices.size for indices in plan.values())
    sampled = k < n
    label = f"hidden {hidden} ({n:,} parameters)"

    progress(f"{label}: backprop")
    backprop_seconds = _best_call_seconds(
        lambda: net.gradient(x, t), config.min_backprop_seconds
    )
    analytic = {key: grad.copy() for key, grad in net.gradient(x, t).items()}

    sample_text = f" ({k} sampled elements)" if sampled else ""
    progress(f"{label}: textbook numerical_gradient{sample_text}")
    rate, textbook_values = _textbook(net, x, t, plan, sampled)
    textbook = Timing(rate.total(n, sampled), 2 * n, extrapolated=sampled)

    progress(f"{label}: gradcheck.numerical_gradient(method='central'){sample_text}")
    rate, per_element, engine_values = _engine(net, x, t, plan, sampled)
    engine = Timing(rate.total(n, sampled), round(per_element * n) + len(plan),
                    extrapolated=sampled)

    progress(f"{label}: gradcheck.check (full)")
    check_full = _check_full(net, x, t, config.quick, config.samples)
    if fast.available:
        progress(f"{label}: gradcheck.check (fast)")
        seconds, evaluations = _check_seconds(net, x, t, mode="fast")
        check_fast = Timing(seconds, evaluations)
    else:
        check_fast = Timing(None, note=fast.reason)

    return SizeResult(
        input_size=config.input_size,
        hidden_size=hidden,
        output_size=config.output_size,
        batch_size=config.batch_size,
        parameters=n,
        textbook=textbook,
        engine=engine,
        check_full=check_full,
        check_fast=check_fast,
        backprop=Timing(backprop_seconds, 1, note="one forward and one backward pass"),
        textbook_max_diff=_max_diff(textbook_values, analytic, plan),
        engine_max_diff=_max_diff(engine_values, analytic, plan),
        gradient_scale=max(float(np.max(np.abs(g))) for g in analytic.values()),
        compared_elements=k,
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


@contextmanager
def _blas_threads(threads: int | None) -> Iterator[str]:
    """Limit the BLAS to ``threads`` threads for the block; yield how it runs."""
    if threads is None:
        yield "not limited"
        return
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")  # optional, untyped
    except ImportError:
        yield f"not limited (install threadpoolctl to measure with {threads})"
        return
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        yield str(threads)


# --- training: the same net trained with backprop, and the cost with numerical gradients --


@dataclass(frozen=True)
class TrainingConfig:
    """Training the two-layer net on scikit-learn's bundled 8x8 digits (offline)."""

    hidden_size: int = 50
    epochs: int = 10
    batch_size: int = 100
    learning_rate: float = 0.5
    seed: int = 0
    numerical_samples: int = 200
    blas_threads: int | None = 1


@dataclass(frozen=True)
class TrainingResult:
    """How training went with backprop, and what numerical gradients would have cost.

    ``numerical_seconds`` is extrapolated from ``numerical_step`` (the textbook loop,
    timed on a sample of elements) times the number of steps.
    """

    config: TrainingConfig
    parameters: int
    steps: int
    train_size: int
    test_size: int
    backprop_seconds: float
    numerical_step: Timing
    numerical_seconds: float
    train_accuracy: float
    test_accuracy: float
    losses: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _digits(seed: int) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Scikit-learn's 8x8 digits, scaled to [0, 1], split 80/20. Raises ImportError."""
    datasets = importlib.import_module("sklearn.datasets")  # the optional "digits" extra
    data = datasets.load_digits()
    x = np.asarray(data.data, dtype=np.float64) / 16.0
    t = np.asarray(data.target)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    return x[order[:cut]], t[order[:cut]], x[order[cut:]], t[order[cut:]]


def train_digits(
    config: TrainingConfig | None = None, progress: Progress | None = None
) -> TrainingResult:
    """Train ``TwoLayerNet(64, hidden, 10)`` by SGD with backprop, timing the numerical cost.

    Raises
    ------
    ImportError
        When scikit-learn (the ``digits`` extra) is not installed.
    """
    config = config or TrainingConfig()
    with _blas_threads(config.blas_threads):
        return _train(config, progress or (lambda message: None))


def _train(config: TrainingConfig, report: Progress) -> TrainingResult:
    from reference_layers import TwoLayerNet

    x_train, t_train, x_test, t_test = _digits(config.seed)
    rng = np.random.default_rng(config.seed)
    net = TwoLayerNet(64, config.hidden_size, 10, weight_init_std=0.1, seed=rng)
    n = sum(p.size for p in net.params.values())
    steps_per_epoch = max(1, len(x_train) // config.batch_size)

    report("timing one textbook numerical gradient step")
    batch = rng.choice(len(x_train), config.batch_size)
    plan = _sample_plan(net, True, config.numerical_samples)
    k = sum(indices.size for indices in plan.values())
    rate, _ = _textbook(net, x_train[batch], t_train[batch], plan, k < n)
    numerical_step = Timing(rate.total(n, k < n), 2 * n, extrapolated=k < n)

    losses, steps, backprop_seconds = [], 0, 0.0
    for epoch in range(1, config.epochs + 1):
        report(f"epoch {epoch}/{config.epochs}")
        for _ in range(steps_per_epoch):
            batch = rng.choice(len(x_train), config.batch_size)
            started = time.perf_counter()
            grads = net.gradient(x_train[batch], t_train[batch])
            for key in net.params:
                net.params[key] -= config.learning_rate * grads[key]  # in place: shared
            backprop_seconds += time.perf_counter() - started
            steps += 1
        losses.append(float(net.loss(x_train, t_train)))
    assert numerical_step.seconds is not None
    return TrainingResult(
        config=config,
        parameters=n,
        steps=steps,
        train_size=len(x_train),
        test_size=len(x_test),
        backprop_seconds=backprop_seconds,
        numerical_step=numerical_step,
        numerical_seconds=numerical_step.seconds * steps,
        train_accuracy=net.accuracy(x_train, t_train),
        test_accuracy=net.accuracy(x_test, t_test),
        losses=losses,
    )
