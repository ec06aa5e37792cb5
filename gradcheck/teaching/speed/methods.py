"""The methods being timed: the textbook loop, gradcheck's engine, and the whole check.

Each differentiates the planned elements of every parameter of a net (see
:func:`~gradcheck.teaching.speed.timing._sample_plan`) and leaves the parameters
bit-identical and still shared with the layers.
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from gradcheck.teaching.speed.results import Timing
from gradcheck.teaching.speed.timing import _parameter_count, _pieces, _Rate


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
                result = gradcheck.numerical_gradient(loss, param, method="central", indices=piece)
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
    When only the smallest parameter fits in ``samples``, the line runs through zero.
    """
    total = _parameter_count(net)
    if not quick or total <= samples:
        seconds, evaluations = _check_seconds(net, x, t, mode="full")
        return Timing(seconds, evaluations)
    chosen = _smallest_parameters(net, samples)
    small = _partial_check(net, x, t, chosen[:1], repeats=3)
    if len(chosen) == 1:
        return _extended(_Point(0, 0.0, 0), small, total)
    return _extended(small, _partial_check(net, x, t, chosen, repeats=2), total)


class _Point(NamedTuple):
    """A partial check: how many elements it differentiated, its time, its forward passes."""

    elements: int
    seconds: float
    evaluations: int


def _smallest_parameters(net: Any, samples: int) -> list[str]:
    """The smallest parameter, and the next smallest while their sizes add up to ``samples``."""
    by_size = sorted(net.params, key=lambda key: net.params[key].size)
    chosen, count = [by_size[0]], net.params[by_size[0]].size
    for key in by_size[1:]:
        if count + net.params[key].size > max(samples, count):
            break
        chosen.append(key)
        count += net.params[key].size
    return chosen


def _partial_check(net: Any, x: NDArray, t: NDArray, keys: list[str], repeats: int) -> _Point:
    """A full check of the parameters ``keys`` only, the fastest of ``repeats``."""
    seconds, evaluations = _check_seconds(net, x, t, repeats=repeats, mode="full", wrt=tuple(keys))
    return _Point(sum(net.params[key].size for key in keys), seconds, evaluations)


def _extended(first: _Point, second: _Point, total: int) -> Timing:
    """The line through two partial checks, extended to ``total`` elements."""
    span, beyond = second.elements - first.elements, total - first.elements
    per_element = max(second.seconds - first.seconds, 0.0) / span
    per_evaluation = (second.evaluations - first.evaluations) / span
    return Timing(
        first.seconds + per_element * beyond,
        round(first.evaluations + per_evaluation * beyond),
        extrapolated=True,
    )
