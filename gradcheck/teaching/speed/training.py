"""The same net trained with backprop on real digits, and what numerical gradients would cost."""

from __future__ import annotations

import importlib
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.teaching.speed.machine import _blas_threads
from gradcheck.teaching.speed.methods import _textbook
from gradcheck.teaching.speed.results import Progress, Timing
from gradcheck.teaching.speed.timing import _parameter_count, _sample_plan


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

    Parameters
    ----------
    config : TrainingConfig, optional
        Width, epochs, batch, learning rate, seed; the default trains the chapter's net.
    progress : callable, optional
        Called with a short message before each step (for a progress line).

    Returns
    -------
    TrainingResult
        Losses, accuracies, and backprop's time against the numerical estimate.

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
    report("timing one textbook numerical gradient step")
    numerical_step = _time_numerical_step(net, x_train, t_train, rng, config)
    losses, steps, backprop_seconds = _sgd(net, x_train, t_train, rng, config, report)
    assert numerical_step.seconds is not None
    return TrainingResult(
        config=config,
        parameters=_parameter_count(net),
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


def _time_numerical_step(
    net: Any, x: NDArray, t: NDArray, rng: np.random.Generator, config: TrainingConfig
) -> Timing:
    """One SGD step's gradient by the textbook loop, timed on a sample and scaled up."""
    n = _parameter_count(net)
    batch = rng.choice(len(x), config.batch_size)
    plan = _sample_plan(net, True, config.numerical_samples)
    sampled = sum(indices.size for indices in plan.values()) < n
    rate, _ = _textbook(net, x[batch], t[batch], plan, sampled)
    return Timing(rate.total(n, sampled), 2 * n, extrapolated=sampled)


def _sgd(
    net: Any,
    x: NDArray,
    t: NDArray,
    rng: np.random.Generator,
    config: TrainingConfig,
    report: Progress,
) -> tuple[list[float], int, float]:
    """Minibatch SGD with backprop: the loss after each epoch, the steps, the seconds spent."""
    steps_per_epoch = max(1, len(x) // config.batch_size)
    losses, steps, seconds = [], 0, 0.0
    for epoch in range(1, config.epochs + 1):
        report(f"epoch {epoch}/{config.epochs}")
        for _ in range(steps_per_epoch):
            batch = rng.choice(len(x), config.batch_size)
            started = time.perf_counter()
            grads = net.gradient(x[batch], t[batch])
            for key in net.params:
                net.params[key] -= config.learning_rate * grads[key]  # in place: shared
            seconds += time.perf_counter() - started
            steps += 1
        losses.append(float(net.loss(x, t)))
    return losses, steps, seconds
