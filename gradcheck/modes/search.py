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

Localisation by halves, one pass per level
    A failing direction is split: the same ``v`` restricted to one half of its support is
    tested, and the other half's numerical derivative is the parent's minus that one's —
    the directional derivative is linear in ``v``, so the sibling costs no pass (its error
    bar is the sum of the two it comes from; the analytic side is summed directly). A single
    wrong element among ``n`` costs ``log₂ n`` more tests. Splitting stops when checking the
    elements one by one is cheaper than descending further.

When the failing mass is not concentrated
    Most groups of a level failing means the gradient is wrong nearly everywhere (a factor,
    a sign): naming every element would cost a full check. The search then stops and says
    so (:attr:`Suspects.dense`); the caller checks a sample of those elements one by one.

The element-level verdict belongs to the element engines
    A direction can fail without any element being wrong: it may cross a kink that no
    single element's stencil crosses. So :class:`DirectionalSearch` only *names
    suspects*; the checker differentiates them one by one (one-sided differences
    recognise kinks) and re-tests the directions on the remaining elements. A sibling
    derived from a measurement that crossed a kink is measured instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gradcheck.engine.directional import directional_derivative
from gradcheck.engine.numeric import random_direction, step_units
from gradcheck.engine.passes import Runner, Runners
from gradcheck.engine.spec import engine

__all__ = ["DirectionalSearch", "Directions", "Measurement", "Suspects"]

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
class Measurement:
    """The numerical directional derivative over one group of elements.

    ``kink``: the stencil crossed a kink even with smaller steps, so the number is no
    basis for a sibling's (which is then measured, not derived).
    """

    value: float
    error: float
    kink: bool = False

    def minus(self, other: Measurement) -> Measurement:
        """The derivative along the rest of the group (linearity in the direction)."""
        return Measurement(self.value - other.value, self.error + other.error,
                           self.kink or other.kink)


@dataclass(frozen=True)
class _Test:
    members: NDArray[np.intp]
    direction: int


@dataclass(frozen=True)
class Directions:
    """The fixed inputs of one variable's directional tests: a module-level, picklable
    task for :meth:`~gradcheck.engine.passes.Runners.map`.

    ``vectors[d]`` is direction ``d`` in the units of the element steps; ``terms`` the
    analytic gradient's terms ``g_i·v_i`` per direction (the complex step's rounding
    scale); ``f0`` the loss at the point (real engines, one pass for every test).
    """

    name: str
    dout: NDArray
    method: str
    scale: float
    eps: float | None
    vectors: NDArray
    terms: NDArray
    f0: float | None

    def run(self, runner: Runner, test: _Test) -> Measurement:
        """The numerical derivative along ``vectors[direction]`` restricted to ``members``.

        A real stencil that straddles a kink (the whole direction moves many elements, so
        it crosses kinks no single element's stencil crosses) is retried smaller.
        """
        work = runner.arrays[self.name]
        v = np.zeros(work.size)
        v[test.members] = self.vectors[test.direction, test.members]
        real = engine(self.method).arithmetic == "real"
        scale = (self.scale if real
                 else float(np.sum(np.abs(self.terms[test.direction, test.members]))))
        loss = runner.loss(self.name, self.dout)
        for attempt in range(_RETRIES + 1):
            numerical = directional_derivative(
                loss, work, v.reshape(work.shape), method=self.method, scale=scale, f0=self.f0,
                shrink=_SHRINK**attempt, eps=self.eps,
            )
            if not numerical.kink:
                break
        return Measurement(numerical.value, numerical.error, numerical.kink)


@dataclass
class Suspects:
    """What localisation found.

    ``indices``: elements to check one by one. ``gave_up``: more of them than checking
    one by one is worth. ``dense``: most groups failed (the gradient is wrong nearly
    everywhere), ``indices`` is the failing groups' union. ``stopped``: the budget ran out
    before the failing group ``indices`` could be split further.
    """

    indices: NDArray[np.intp]
    gave_up: bool = False
    dense: bool = False
    stopped: bool = False


@dataclass
class _Group:
    members: NDArray[np.intp]
    measured: Measurement


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
    roots: dict[int, Measurement] = field(default_factory=dict, init=False)
    _task: Directions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        point = self.runners.main.arrays[self.name].real.ravel()
        unit = step_units(point, self.method)  # the element steps' units
        vectors = random_direction(self.rng, (self.directions, point.size)) * unit
        weights = self.analytic.astype(np.float64).ravel()
        f0 = None
        if engine(self.method).arithmetic == "real":
            # The same point for every test: one pass.
            main = self.runners.main
            f0 = complex(main.loss(self.name, self.dout)(main.arrays[self.name])).real
        self._task = Directions(self.name, self.dout, self.method, self.scale, self.eps,
                                vectors, weights * vectors, f0)

    @property
    def test_cost(self) -> int:
        """Forward passes per directional test."""
        return engine(self.method).cost

    # -- tests ----------------------------------------------------------------------
    def passes(self, members: NDArray[np.intp], direction: int, measured: Measurement,
               weights: NDArray | None = None) -> bool:
        """Whether ``weights`` (default: the analytic gradient, flat) agree with the
        measurement along ``direction`` restricted to ``members``."""
        v = self._task.vectors[direction, members]
        terms = self._task.terms[direction, members] if weights is None else weights[members] * v
        eps = float(np.finfo(self.analytic.dtype).eps) if self.analytic.dtype.kind == "f" else 0
        threshold = (
            measured.error
            + _SPREAD * math.sqrt(float(np.sum(np.square(self.tolerance.ravel()[members] * v))))
            + _ANALYTIC_ROUNDING * eps * math.sqrt(float(np.sum(np.square(terms))))
        )
        return not measured.kink and abs(float(np.sum(terms)) - measured.value) <= threshold

    def _measure(self, tests: list[_Test]) -> list[Measurement]:
        self.tests += len(tests)
        return self.runners.map(self._task.run, tests)

    # -- the search -----------------------------------------------------------------
    def screen(self, members: NDArray[np.intp], only: list[int] | None = None) -> list[int]:
        """The directions (restricted to ``members``) that fail; their measurements are
        kept in :attr:`roots` for :meth:`localize`."""
        chosen = list(range(self.directions)) if only is None else only
        if members.size == 0:
            return []
        measured = self._measure([_Test(members, d) for d in chosen])
        failing = []
        for direction, result in zip(chosen, measured, strict=True):
            self.roots[direction] = result
            if not self.passes(members, direction, result):
                failing.append(direction)
        return failing

    def localize(
        self, direction: int, members: NDArray[np.intp], limit: int,
        passes_left: Callable[[], int] | None = None,
    ) -> Suspects:
        """Split the failing ``direction`` over ``members`` down to suspect elements.

        Gives up (``gave_up``) once more than ``limit`` elements would need checking one
        by one; stops (``dense``) when most groups of a level fail; stops (``stopped``)
        when the next level's tests would exceed ``passes_left()``.
        """
        failing = [_Group(members, self.roots[direction])]
        suspects: list[NDArray[np.intp]] = []
        while failing:
            parents = []
            for group in failing:
                if self._check_now(group.members.size):
                    suspects.append(group.members)
                else:
                    parents.append(group)
            if sum(s.size for s in suspects) > limit:
                return Suspects(np.concatenate(suspects), gave_up=True)
            if not parents:
                break
            if passes_left is not None and len(parents) * self.test_cost > passes_left():
                smallest = min(parents, key=lambda g: g.members.size)
                return Suspects(smallest.members, stopped=True)
            children = self._split(direction, parents)
            failing = [g for g in children
                       if not self.passes(g.members, direction, g.measured)]
            if len(failing) >= _DENSE_COUNT and len(failing) > _DENSE_FRACTION * len(children):
                union = np.concatenate([*suspects, *(g.members for g in failing)])
                return Suspects(np.sort(union), gave_up=union.size > limit, dense=True)
        found = np.concatenate(suspects) if suspects else np.zeros(0, dtype=np.intp)
        return Suspects(np.sort(found))

    def _split(self, direction: int, parents: list[_Group]) -> list[_Group]:
        """Both halves of every parent: the first measured, the second derived from the
        parent unless a kink makes the difference meaningless (then measured too)."""
        halves = [np.array_split(p.members, 2) for p in parents]
        firsts = self._measure([_Test(first, direction) for first, _ in halves])
        seconds: list[Measurement | None] = [
            None if parent.measured.kink or first.kink else parent.measured.minus(first)
            for parent, first in zip(parents, firsts, strict=True)
        ]
        missing = [k for k, second in enumerate(seconds) if second is None]
        for k, measured in zip(missing, self._measure(
                [_Test(halves[k][1], direction) for k in missing]), strict=True):
            seconds[k] = measured
        children = []
        for (first, second), first_measured, second_measured in zip(
                halves, firsts, seconds, strict=True):
            assert second_measured is not None
            children += [_Group(first, first_measured), _Group(second, second_measured)]
        return children

    def _check_now(self, size: int) -> bool:
        """Whether checking ``size`` elements one by one beats splitting further."""
        if size <= 1:
            return True
        descend = self.test_cost * math.ceil(math.log2(size)) + self.element_cost
        return size * self.element_cost <= descend
