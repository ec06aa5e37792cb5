"""Fast checks: random directions, and group testing to find the wrong elements.

A full numerical gradient needs passes in proportion to the number of elements. Along a
direction ``v`` one derivative costs a fixed number of passes whatever the size: compare
the numerical directional derivative of ``L`` (a complex step along ``v``, or central
differences at two step sizes for an error estimate) with ``⟨analytic gradient, v⟩``
(PyTorch's ``fast_mode`` idea, docs/design.md §4).

Sensitivity must not be diluted by size
    With ``n`` elements of typical gradient ``g`` and random signs, ``⟨g, v⟩`` is a sum of
    size ``√n·g``; one element wrong by ``δ`` moves it by ``δ``. The threshold is therefore
    *not* a relative tolerance of the sum. It is the error estimate of the numerical
    directional derivative (≈1e-16 relative for the complex step, ≈1e-10 for central
    differences in float64) plus ``_SPREAD`` times the random-sign sum of the element
    tolerances, ``√Σ(τ_i v_i)²`` — what correct but imprecise elements (rounding within
    ``rtol``) can add up to. For the 39,760 parameters of the textbook's two-layer net an
    element off by 1e-3 of the typical gradient stands ~10× above that threshold.

Localization
    A failing direction is split: the same ``v`` restricted to each half of its support
    is tested again, and failing halves are split further (adaptive group testing), so a
    single wrong element among ``n`` costs ``2·log₂ n`` more tests. Splitting stops when
    checking the elements one by one is cheaper than descending further, or when failures
    are dense (then nearly everything is wrong and a full check is the better tool).

The element-level verdict belongs to the element engines
    A direction can fail without any element being wrong: it may cross a kink that no
    single element's stencil crosses. So :class:`DirectionalSearch` only *names
    suspects*; the checker differentiates them one by one (one-sided differences
    recognise kinks) and re-tests the directions on the remaining elements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gradcheck.engine.directional import directional_derivative
from gradcheck.engine.numeric import step_units
from gradcheck.engine.passes import Runner, Runners
from gradcheck.engine.spec import engine
from gradcheck.verdict.compare import ERROR_WEIGHT

__all__ = ["DirectionalSearch", "Suspects"]

# A random-sign sum of within-tolerance deviations rarely reaches this fraction of its
# root-sum-square; beyond it, the direction is worth a closer look (a false alarm only
# costs the element checks that clear it).
_SPREAD = 0.05
# Rounding of the analytic inner product, in units of the analytic dtype's ε.
_ANALYTIC_ROUNDING = 64.0
# A direction whose stencil straddles a kink is retried with steps this much smaller,
# this many times, before it counts as failed (the element checks then decide).
_SHRINK, _RETRIES = 16.0, 2
# Failures this dense (and at least this many) mean "wrong nearly everywhere".
_DENSE_FRACTION, _DENSE_COUNT = 0.5, 4


@dataclass(frozen=True)
class _Test:
    members: NDArray[np.intp]
    direction: int


@dataclass
class Suspects:
    """Elements to check one by one, and whether group testing gave up."""

    indices: NDArray[np.intp]
    gave_up: bool = False


@dataclass
class DirectionalSearch:
    """Directional tests of one variable's gradient, and the search for wrong elements.

    Parameters
    ----------
    runners : Runners
        Working copies in the engine's dtype (complex for ``method="complex"``).
    name : str
        The variable.
    dout : ndarray
        The upstream gradient that reduces the output to ``L = Σ dout ⊙ f``.
    analytic : ndarray
        Its gradient from ``backward``.
    tolerance : ndarray
        The per-element tolerance ``atol + rtol·|a|`` of the element-wise comparison.
    method : str
        The engine (a name in :data:`gradcheck.engine.spec.ENGINES`).
    scale : float
        Size of the terms ``L`` sums (rounding floor of the real engines).
    directions : int
        How many random directions screen the variable.
    element_cost : int
        Forward passes to check one element by itself.
    eps : float, optional
        Unit roundoff of the forward passes (default: that of the working arrays).
    """

    runners: Runners
    name: str
    dout: NDArray
    analytic: NDArray
    tolerance: NDArray
    method: str
    scale: float
    rng: np.random.Generator
    directions: int = 2
    element_cost: int = 4
    eps: float | None = None
    tests: int = field(default=0, init=False)
    _vectors: NDArray = field(init=False, repr=False)
    _weights: NDArray = field(init=False, repr=False)
    _f0: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        point = self.runners.main.arrays[self.name].real.ravel()
        unit = step_units(point, self.method)  # the element steps' units
        signs = self.rng.choice([-1.0, 1.0], size=(self.directions, point.size))
        sizes = self.rng.uniform(0.5, 1.0, size=(self.directions, point.size))
        self._vectors = signs * sizes * unit
        self._weights = self.analytic.astype(np.float64).ravel()

    @property
    def test_cost(self) -> int:
        """Forward passes per directional test."""
        return engine(self.method).cost

    # -- tests ----------------------------------------------------------------------
    def _run(self, runner: Runner, test: _Test) -> bool:
        """Whether the analytic gradient passes the test (restricted direction).

        A real stencil that straddles a kink (the whole direction moves many elements,
        so it crosses kinks no single element's stencil crosses) is retried smaller.
        """
        work = runner.arrays[self.name]
        v = np.zeros(work.size)
        v[test.members] = self._vectors[test.direction, test.members]
        terms = self._weights[test.members] * v[test.members]
        analytic = float(np.sum(terms))
        real = engine(self.method).arithmetic == "real"
        scale = self.scale if real else float(np.sum(np.abs(terms)))
        loss = runner.loss(self.name, self.dout)
        if real and self._f0 is None:
            self._f0 = complex(loss(work)).real  # the same point for every test: one pass
        for attempt in range(_RETRIES + 1):
            numerical = directional_derivative(
                loss, work, v.reshape(work.shape), method=self.method, scale=scale, f0=self._f0,
                shrink=_SHRINK**attempt, eps=self.eps,
            )
            if not numerical.kink:
                break
        eps = float(np.finfo(self.analytic.dtype).eps) if self.analytic.dtype.kind == "f" else 0
        threshold = (
            ERROR_WEIGHT * numerical.error
            + _SPREAD * math.sqrt(float(np.sum(np.square(self.tolerance.ravel()[test.members]
                                                          * v[test.members]))))
            + _ANALYTIC_ROUNDING * eps * math.sqrt(float(np.sum(np.square(terms))))
        )
        return abs(analytic - numerical.value) <= threshold

    def _run_all(self, tests: list[_Test]) -> list[bool]:
        self.tests += len(tests)
        return self.runners.map(self._run, tests)

    # -- the search -----------------------------------------------------------------
    def screen(self, members: NDArray[np.intp], only: list[int] | None = None) -> list[int]:
        """The directions (restricted to ``members``) that fail."""
        chosen = list(range(self.directions)) if only is None else only
        if members.size == 0:
            return []
        passed = self._run_all([_Test(members, d) for d in chosen])
        return [d for d, ok in zip(chosen, passed, strict=True) if not ok]

    def localize(self, direction: int, members: NDArray[np.intp], limit: int) -> Suspects:
        """Split the failing ``direction`` over ``members`` down to suspect elements.

        Gives up (``gave_up``) once more than ``limit`` elements would need checking one
        by one — the caller then checks the whole variable instead.
        """
        failing = [members]
        suspects: list[NDArray[np.intp]] = []
        while failing:
            groups: list[NDArray[np.intp]] = []
            for group in failing:
                if self._check_now(group.size):
                    suspects.append(group)
                else:
                    groups.extend(np.array_split(group, 2))
            if sum(s.size for s in suspects) > limit:
                return Suspects(np.concatenate(suspects), gave_up=True)
            if not groups:
                break
            passed = self._run_all([_Test(g, direction) for g in groups])
            failing = [g for g, ok in zip(groups, passed, strict=True) if not ok]
            if len(failing) >= _DENSE_COUNT and len(failing) > _DENSE_FRACTION * len(groups):
                suspects.extend(failing)
                size = sum(s.size for s in suspects)
                return Suspects(np.concatenate(suspects), gave_up=size > limit)
        found = np.concatenate(suspects) if suspects else np.zeros(0, dtype=np.intp)
        return Suspects(np.sort(found))

    def _check_now(self, size: int) -> bool:
        """Whether checking ``size`` elements one by one beats splitting further."""
        if size <= 1:
            return True
        descend = 2 * self.test_cost * math.ceil(math.log2(size)) + self.element_cost
        return size * self.element_cost <= descend
