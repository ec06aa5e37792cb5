"""The methods being timed: the textbook loop, gradcheck's engine, and the whole check.

Each differentiates the planned elements of every parameter of a net (see
:func:`~gradcheck.teaching.speed.timing._sample_plan`) and leaves the parameters
bit-identical and still shared with the layers.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.teaching.speed.results import Timing
from gradcheck.teaching.speed.timing import _pieces, _Rate


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
