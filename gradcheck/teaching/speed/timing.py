"""How a time per element is measured: sampling elements, timing pieces, scaling up.

Quick mode differentiates a sample of elements spread over every parameter, times it in
pieces and extrapolates from the fastest piece; the full mode times everything at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Quick mode times the sample in pieces of this many elements and extrapolates from the
# fastest piece, so that a burst of load on a shared machine does not blow up the estimate.
_PIECE = 25
_MIN_PIECE = 5


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


def _pieces(indices: NDArray[np.intp], sampled: bool) -> list[NDArray[np.intp]]:
    if not sampled:
        return [indices]
    return [indices[i : i + _PIECE] for i in range(0, indices.size, _PIECE)]


def _sample_indices(size: int, budget: int) -> NDArray[np.intp]:
    """About ``budget`` flat indices spread evenly over an array of ``size`` elements."""
    step = max(1, math.ceil(size / max(budget, 1)))
    return np.arange(0, size, step, dtype=np.intp)


def _parameter_count(net: Any) -> int:
    """Elements over all of ``net.params``: how many a full numerical gradient differentiates."""
    return sum(p.size for p in net.params.values())


def _sample_plan(net: Any, quick: bool, samples: int) -> dict[str, NDArray[np.intp]]:
    """Per parameter, the flat indices to differentiate (all of them unless quick).

    The sample is split over the parameters in proportion to their sizes (each gets at
    least one element), so the time per element is a fair average over the whole net.
    """
    total = _parameter_count(net)
    plan = {}
    for key, param in net.params.items():
        budget = param.size if not quick else max(1, round(samples * param.size / total))
        plan[key] = _sample_indices(param.size, budget)
    return plan
