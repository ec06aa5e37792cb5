"""Fast checks: random directions, and group testing to find the wrong elements.

A full numerical gradient needs passes in proportion to the number of elements. Along a
direction ``v`` one derivative costs a fixed number of passes whatever the size: compare
the numerical directional derivative of ``L`` (a complex step along ``v``, or central
differences at two step sizes for an error estimate) with ``⟨analytic gradient, v⟩``
(PyTorch's ``fast_mode`` idea, docs/design.md §4).

Judged at the test's own error bar
    With ``n`` elements of typical gradient ``g`` and random signs, ``⟨g, v⟩`` is a sum of
    size ``√n·g``; one element wrong by ``δ`` moves it by ``δ·v_i``. Any threshold relative
    to the sum, or to a sum of per-element tolerances, dilutes that by ``√n``: one element
    wrong by ``10·rtol`` vanishes once ``n`` is a few thousand. A test therefore passes when
    ``|⟨a, v⟩ − D_v|`` is within what a *correct* gradient can differ by: the numerical
    derivative's error estimate (``≈1e-16`` relative for the complex step), the analytic
    side's measured rounding summed with random signs, ``K·√Σ(r_i·v_i)²``
    (:data:`_ROUNDING_SIGMAS`), and the rounding of the inner product itself. Nothing is
    allowed for ``rtol``: a direction that fails is only a reason to localise, and the
    element checks decide (an element off by less than ``rtol`` is found, checked, and
    passes). A passing test bounds every element it covers: one off by ``δ`` would have
    moved it by ``δ·v_i``, so ``|δ| ≤ (|difference| + threshold) / |v_i|``
    (:meth:`DirectionalSearch.catchable`).

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
from gradcheck.engine.numeric import random_direction
from gradcheck.engine.passes import Runner, Runners
from gradcheck.engine.spec import engine
from gradcheck.engine.steps import step_units

__all__ = ["DirectionalSearch", "Directions", "Measurement", "Suspects"]

# The analytic side's rounding along a direction is Σ e_i·v_i, |e_i| ≤ r_i (each element's
# measured rounding), with signs of v drawn independently of e: by Hoeffding's inequality
# it exceeds K·√Σ(r_i·v_i)² with probability at most 2·exp(−K²/2), 3e-8 for K = 6 — a
# needless localisation (which the element checks then clear) once in thirty million
# tests. It costs sensitivity only where rounding dominates, in float32: 1e5 elements
# rounded by ε ≈ 1.2e-7 of their size give 6·√1e5·ε ≈ 2.3e-4 of the typical element, a
# quarter of what ×1.001 moves one element's test by.
_ROUNDING_SIGMAS = 6.0
_EPS64 = float(np.finfo(np.float64).eps)
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
        return Measurement(
            self.value - other.value, self.error + other.error, self.kink or other.kink
        )


@dataclass(frozen=True)
class _Test:
    members: NDArray[np.intp]
    direction: int


@dataclass(frozen=True)
class Directions:
    """The fixed inputs of one variable's directional tests: a module-level, picklable
    task for :meth:`~gradcheck.engine.passes.Runners.map`.

    ``vectors[d]`` is direction ``d`` in the units of the element steps; ``terms`` the
    analytic gradient's terms ``g_i·v_i`` per direction; ``reach`` the size of the terms
    each element's derivative sums times ``|v_i|`` (the complex step's rounding scale:
    a gradient that cancels to near 0 is computed from terms of that size); ``f0`` the
    loss at the point (real engines, one pass for every test).
    """

    name: str
    dout: NDArray
    method: str
    scale: float
    eps: float | None
    vectors: NDArray
    terms: NDArray
    reach: NDArray
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
        scale = self.scale if real else float(np.sum(self.reach[test.direction, test.members]))
        loss = runner.loss(self.name, self.dout)
        for attempt in range(_RETRIES + 1):
            numerical = directional_derivative(
                loss,
                work,
                v.reshape(work.shape),
                method=self.method,
                scale=scale,
                f0=self.f0,
                shrink=_SHRINK**attempt,
                eps=self.eps,
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
    before the failing group ``indices`` could be split further; ``measured`` is its
    measurement.
    """

    indices: NDArray[np.intp]
    gave_up: bool = False
    dense: bool = False
    stopped: bool = False
    measured: Measurement | None = None


@dataclass
class _Group:
    members: NDArray[np.intp]
    measured: Measurement


@dataclass(frozen=True)
class _Judged:
    """The latest test of one direction over a set of members: its difference
    ``⟨a, v⟩ − D_v``, its threshold, and whether it passed."""

    members: NDArray[np.intp]
    difference: float
    threshold: float
    passed: bool


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
        The per-element allowance ``atol + rtol·|a| + 2·rounding`` of the element-wise
        comparison: only for :meth:`beyond_tolerance`, never in a test's threshold.
    rounding : ndarray or float
        The analytic side's measured rounding, per element (or one number).
    sizes : ndarray or float
        The size of the terms each gradient element sums: the complex step's rounding
        scale along a direction is ``Σ sizes_i·|v_i|``.
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
    rounding: NDArray | float
    sizes: NDArray | float
    method: str
    scale: float
    rng: np.random.Generator
    directions: int = 2
    element_cost: int = 4
    eps: float | None = None
    tests: int = field(default=0, init=False)
    roots: dict[int, Measurement] = field(default_factory=dict, init=False)
    judged: dict[int, _Judged] = field(default_factory=dict, init=False)
    _task: Directions = field(init=False, repr=False)
    _rounding: NDArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        point = self.runners.main.arrays[self.name].real.ravel()
        unit = step_units(point, self.method)  # the element steps' units
        vectors = random_direction(self.rng, (self.directions, point.size)) * unit
        weights = self.analytic.astype(np.float64).ravel()
        sizes = np.maximum(
            np.abs(weights),
            np.broadcast_to(np.asarray(self.sizes, dtype=np.float64), self.analytic.shape).ravel(),
        )
        self._rounding = np.broadcast_to(
            np.asarray(self.rounding, dtype=np.float64), self.analytic.shape
        ).ravel()
        f0 = None
        if engine(self.method).arithmetic == "real":
            # The same point for every test: one pass.
            main = self.runners.main
            f0 = complex(main.loss(self.name, self.dout)(main.arrays[self.name])).real
        self._task = Directions(
            self.name,
            self.dout,
            self.method,
            self.scale,
            self.eps,
            vectors,
            weights * vectors,
            sizes * np.abs(vectors),
            f0,
        )

    @property
    def test_cost(self) -> int:
        """Forward passes per directional test."""
        return engine(self.method).cost

    # -- tests ----------------------------------------------------------------------
    def threshold(
        self, members: NDArray[np.intp], direction: int, measured: Measurement, terms: NDArray
    ) -> float:
        """How far ``Σ terms`` may be from the measurement for a correct gradient: the
        measurement's error bar, the analytic rounding summed with random signs, and the
        rounding of the inner product (pairwise summation: ``⌈log₂ m⌉ + 1`` roundings of
        ``Σ|terms|``)."""
        v = self._task.vectors[direction, members]
        rounding = math.sqrt(float(np.sum(np.square(self._rounding[members] * v))))
        inner = (
            (math.ceil(math.log2(max(members.size, 2))) + 1) * _EPS64 * float(np.sum(np.abs(terms)))
        )
        return measured.error + _ROUNDING_SIGMAS * rounding + inner

    def passes(
        self,
        members: NDArray[np.intp],
        direction: int,
        measured: Measurement,
        weights: NDArray | None = None,
    ) -> bool:
        """Whether ``weights`` (default: the analytic gradient, flat) agree with the
        measurement along ``direction`` restricted to ``members``."""
        return self._judge(members, direction, measured, weights).passed

    def _judge(
        self,
        members: NDArray[np.intp],
        direction: int,
        measured: Measurement,
        weights: NDArray | None = None,
    ) -> _Judged:
        v = self._task.vectors[direction, members]
        terms = self._task.terms[direction, members] if weights is None else weights[members] * v
        difference = float(np.sum(terms)) - measured.value
        threshold = self.threshold(members, direction, measured, terms)
        passed = not measured.kink and abs(difference) <= threshold
        return _Judged(members, difference, threshold, passed)

    def beyond_tolerance(
        self, members: NDArray[np.intp], direction: int, measured: Measurement
    ) -> bool:
        """Whether the test fails even if every element were off by its whole tolerance
        (``|difference| > threshold + Σ tolerance_i·|v_i|``): then some element is wrong,
        whatever the others do. A kink proves nothing."""
        judged = self._judge(members, direction, measured)
        v = self._task.vectors[direction, members]
        allowed = float(np.sum(self.tolerance.ravel()[members] * np.abs(v)))
        return not measured.kink and abs(judged.difference) > judged.threshold + allowed

    def catchable(self, members: NDArray[np.intp]) -> NDArray[np.float64]:
        """Per element of ``members``, the smallest error of that element alone that the
        latest passing tests over exactly ``members`` would have caught: an element off
        by ``δ`` moves a test by ``δ·v_i``, so a test that passed bounds it by
        ``(|difference| + threshold) / |v_i|``; the best over the directions (``inf``
        where none passed)."""
        best = np.full(members.size, np.inf)
        for direction, judged in self.judged.items():
            if judged.passed and np.array_equal(judged.members, members):
                v = np.abs(self._task.vectors[direction, members])
                with np.errstate(divide="ignore"):
                    bound = (abs(judged.difference) + judged.threshold) / v
                best = np.minimum(best, bound)
        return best

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
            self.judged[direction] = self._judge(members, direction, result)
            if not self.judged[direction].passed:
                failing.append(direction)
        return failing

    def localize(
        self,
        direction: int,
        members: NDArray[np.intp],
        limit: int,
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
                return Suspects(smallest.members, stopped=True, measured=smallest.measured)
            children = self._split(direction, parents)
            failing = [g for g in children if not self.passes(g.members, direction, g.measured)]
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
        for k, measured in zip(
            missing, self._measure([_Test(halves[k][1], direction) for k in missing]), strict=True
        ):
            seconds[k] = measured
        children = []
        for (first, second), first_measured, second_measured in zip(
            halves, firsts, seconds, strict=True
        ):
            assert second_measured is not None
            children += [_Group(first, first_measured), _Group(second, second_measured)]
        return children

    def _check_now(self, size: int) -> bool:
        """Whether checking ``size`` elements one by one beats splitting further."""
        if size <= 1:
            return True
        descend = self.test_cost * math.ceil(math.log2(size)) + self.element_cost
        return size * self.element_cost <= descend
