"""The result of a numerical differentiation: values, error bars, kinks, and noise.

A :class:`NumericalGradient` holds one derivative per element with its error bar: the
engine's truncation estimate (times a safety factor) plus the rounding noise of ``f``
divided by the step. How noisy ``f`` is, is *measured*, not guessed (Moré & Wild's idea
in "Estimating computational noise"): a central stencil evaluates ``f`` at five equally
spaced points ``x − 2h … x + 2h``, whose fourth difference is ``h⁴f⁗`` — negligible at
these steps — plus the rounding noise of ``f`` with 70 times its variance.

One sample per element is one draw: small by chance one time in a hundred. So samples
are pooled over the variable (:meth:`NoiseSamples.levels`), relative to each element's
own *unit*: one unit in the last place of the outputs the element moves (``ε·√Σ(dout ⊙
f)²`` over those outputs: moving one input of an elementwise layer moves one output of
thousands, and rounds like it). The pool's ratio of noise to unit — measured, so a
forward pass that rounds like float32 inside float64 shows it — times each element's
unit is its noise level; a lower quantile makes the pool robust against elements whose
stencil straddles a kink (their "noise" is the kink). An element whose own sample is
far above the pool's level (it rounds unlike the others) keeps its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import NOISE_POOL_QUANTILE, NOISE_SIGMAS, TRUNCATION_SAFETY

__all__ = ["NoiseSamples", "NumericalGradient"]

# Fewer samples than this are pooled by their largest ratio instead of a quantile.
_POOL = 8
# |Z|'s quantiles for a normal Z, turning a quantile of |samples| into a noise level.
_HALF_NORMAL = {0.25: 0.3186, 0.5: 0.6745}
# An element's own sample sets its level where it exceeds the pool's this many times
# (for one draw that is rare by chance: it rounds unlike the others).
_OWN = 4.0
# The pooled ratio is at least this: a function that did not move by a unit in its last
# place (exactly linear, exactly representable) still rounds its differences.
_LEAST_RATIO = 1 / 16


@dataclass(frozen=True)
class NoiseSamples:
    """What each element's stencil says about the rounding noise of ``f``.

    All arrays have the shape of the variable (zeros where nothing was measured).

    Attributes
    ----------
    sample : ndarray
        ``|Δ⁴f| / √70``: one draw of the noise level of ``f`` near the element.
    unit : ndarray
        ``ε·√Σ(dout ⊙ f)²`` over the outputs the element moves (or the whole loss's,
        where the engine cannot tell): one unit in the last place of what it rounds, as
        independent roundings add up.
    step : ndarray
        The step ``h`` of each element.
    truncation : ndarray
        The engine's truncation-error estimate.
    gain : float
        How much the engine's formula amplifies noise in ``f``, relative to ``D(h)``.
    measured : ndarray of bool
        Which elements carry a sample.
    side_truncation : ndarray or None
        The truncation of the one-sided derivatives' gap, where the engine estimates it.
    ratio : float or None
        The noise in units of the last place, measured apart from the stencils (away from
        kinks: :mod:`gradcheck.modes.noise`), when it was.
    floor : ndarray or None
        The least error bar of each element whatever its stencil says: how far the
        function as computed (at inputs off by their rounding, through a float32 buffer)
        may lie from the one the analytic side differentiates.
    unbounded : ndarray or None
        Where the engine's estimates at its steps do not converge, by how much (see
        :class:`~gradcheck.engine.spec.Stencil`).
    group : ndarray of int or None
        Elements that move the same outputs (a coloured check's blocks: a row of a
        per-sample layer) share a group id: they round alike, so their samples are also
        pooled among themselves — rows offset each by its own 1e5 round each their own way.
    pooling : bool
        Whether the samples still set the noise ratio (False once :meth:`settled`: second
        looks at other steps bring samples of another kind — at larger steps a fourth
        difference carries some curvature — which must not move the others' bars).
    """

    sample: NDArray[np.float64]
    unit: NDArray[np.float64]
    step: NDArray[np.float64]
    truncation: NDArray[np.float64]
    gain: float
    measured: NDArray[np.bool_]
    side_truncation: NDArray[np.float64] | None = None
    ratio: float | None = None
    floor: NDArray[np.float64] | None = None
    unbounded: NDArray[np.float64] | None = None
    group: NDArray[np.intp] | None = None
    pooling: bool = True

    def levels(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Each element's rounding error bound, for its value and for its sides.

        The ratio ``q`` of noise to unit — the smaller of the one measured apart from the
        stencils (:attr:`ratio`) and the pool's (a lower quantile of ``sample/unit``,
        scaled to a noise level, when there are enough; else their largest) — times each
        element's unit, times ``NOISE_SIGMAS·gain/h``. The value's bound rises to
        the element's own sample where that is far above the pool's (an element that rounds
        unlike the others); the sides' does not (a sample that straddles a kink measures the
        kink, and must not hide it). Zero where nothing was measured.
        """
        usable = self.measured & np.isfinite(self.sample) & np.isfinite(self.unit) & (self.unit > 0)
        zeros = np.zeros_like(self.sample)
        if not usable.any():
            return zeros, zeros
        ratio = self.noise_ratio()
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(self.measured, NOISE_SIGMAS * self.gain / self.step, 0.0)
        unit = np.where(self.unit > 0, self.unit, float(np.max(self.unit[usable])))
        pooled = ratio * unit
        own = np.where(usable, self.sample, 0.0) / _OWN
        value: NDArray[np.float64] = np.maximum(np.maximum(pooled, own), self._grouped(usable))
        value = value * scale
        if self.floor is not None:
            value = value + self.floor
        sides: NDArray[np.float64] = pooled * scale
        return value, sides

    def _grouped(self, usable: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Each element's group's noise: the median of its members' samples relative to
        their units, as a noise level, times its own unit (0 where it has no group). The
        median, not the largest: a group's elements at a kink or a tie measure that."""
        if self.group is None:
            return np.zeros_like(self.sample)
        ids = self.group.ravel()
        keep = usable.ravel() & (ids >= 0)
        ratios = self.sample.ravel()[keep] / self.unit.ravel()[keep]
        level = np.zeros(int(ids.max()) + 1 if ids.size else 0)
        members = ids[keep]
        order = np.argsort(members, kind="stable")
        bounds = np.flatnonzero(np.diff(members[order])) + 1
        for chunk in np.split(order, bounds):
            if chunk.size:
                level[members[chunk[0]]] = float(np.median(ratios[chunk])) / _HALF_NORMAL[0.5]
        grouped = np.where(ids >= 0, level[np.maximum(ids, 0)] * self.unit.ravel(), 0.0)
        result: NDArray[np.float64] = grouped.reshape(self.sample.shape)
        return result

    def noise_ratio(self) -> float:
        """The noise in units of the last place these samples stand for (see
        :meth:`levels`)."""
        if not self.pooling and self.ratio is not None:
            return self.ratio
        usable = self.measured & np.isfinite(self.sample) & np.isfinite(self.unit) & (self.unit > 0)
        if self.ratio is not None:
            # Measured apart from the stencils, on moves that cross no kink at the point:
            # the stencils' own samples see no rounding that jumps at the point itself
            # (the sums behind a normalisation at an offset, exact there and not beside).
            return max(self.ratio, _LEAST_RATIO)
        ratios = self.sample[usable] / self.unit[usable]
        # Stencils that mostly did not move the output at all (steps within the quantum
        # of a forward pass that rounds coarsely: float16 inside) saw no rounding, not
        # none: their pool says nothing.
        if ratios.size >= _POOL and np.count_nonzero(ratios) >= ratios.size / 2:
            quantile = float(np.quantile(ratios, NOISE_POOL_QUANTILE))
            ratio = quantile / _HALF_NORMAL[NOISE_POOL_QUANTILE]
        elif ratios.size:
            ratio = float(np.max(ratios)) / _HALF_NORMAL[0.25]
        else:
            ratio = _LEAST_RATIO
        return max(ratio, _LEAST_RATIO)

    def settled(self) -> NoiseSamples:
        """These samples with their noise ratio fixed as it stands now."""
        return replace(self, ratio=self.noise_ratio(), pooling=False)

    def merged(self, patch: NoiseSamples, where: NDArray[np.bool_]) -> NoiseSamples:
        """These samples with those of ``patch`` where ``where`` is True."""

        def pick(name: str) -> NDArray[np.float64]:
            chosen: NDArray[np.float64] = np.where(where, getattr(patch, name), getattr(self, name))
            return chosen

        def optional(name: str) -> NDArray[np.float64] | None:
            mine, theirs = getattr(self, name), getattr(patch, name)
            if mine is None and theirs is None:
                return None
            chosen: NDArray[np.float64] = np.where(
                where,
                np.zeros_like(self.sample) if theirs is None else theirs,
                np.zeros_like(self.sample) if mine is None else mine,
            )
            return chosen

        sides = optional("side_truncation")
        return NoiseSamples(
            sample=pick("sample"),
            unit=pick("unit"),
            step=pick("step"),
            truncation=pick("truncation"),
            gain=max(self.gain, patch.gain),
            measured=np.where(where, patch.measured, self.measured),
            side_truncation=sides,
            ratio=self.ratio
            if not self.pooling
            else max((r for r in (self.ratio, patch.ratio) if r is not None), default=None),
            floor=self._floor_with(patch, where),
            unbounded=optional("unbounded"),
            group=self.group if self.group is not None else patch.group,
            pooling=self.pooling and patch.pooling,
        )

    def _floor_with(
        self, patch: NoiseSamples, where: NDArray[np.bool_]
    ) -> NDArray[np.float64] | None:
        """Each element's floor from whichever samples it came from (a look in extended
        precision has extended precision's); where one side has none, the other's."""
        mine, theirs = self.floor, patch.floor
        if mine is None or theirs is None:
            return mine if theirs is None else theirs
        floor: NDArray[np.float64] = np.where(where, theirs, mine)
        return floor

    @staticmethod
    def none(shape: tuple[int, ...]) -> NoiseSamples:
        """No sample anywhere (for merging with an engine that takes none)."""
        zeros = np.zeros(shape)
        return NoiseSamples(zeros, zeros, np.ones(shape), zeros, 1.0, np.zeros(shape, dtype=bool))


@dataclass(frozen=True)
class NumericalGradient:
    """A numerical gradient with its error estimate.

    Attributes
    ----------
    value : ndarray
        The derivative estimate for each element (float64, the shape of ``x``).
    error : ndarray
        An estimate of ``|value − true derivative|`` for each element (after
        :meth:`pooled`, from the measured noise).
    method : str
        The engine used (a name in :data:`gradcheck.engine.spec.ENGINES`).
    evaluations : int
        How many times ``f`` was called.
    left, right : ndarray or None
        Second-order one-sided derivatives (two-sided real engines only); where they
        disagree beyond ``side_error`` the function has a kink at that element.
    side_error : ndarray or None
        Rounding-noise estimate of ``left`` and ``right``.
    checked : ndarray
        Boolean mask of the elements that were differentiated (all unless ``indices``).
    noise : NoiseSamples or None
        The noise measured by the stencils, from which :meth:`pooled` sets ``error``.
    """

    value: NDArray[np.float64]
    error: NDArray[np.float64]
    method: str
    evaluations: int
    left: NDArray[np.float64] | None
    right: NDArray[np.float64] | None
    side_error: NDArray[np.float64] | None
    checked: NDArray[np.bool_]
    noise: NoiseSamples | None = None

    def settled(self) -> NumericalGradient:
        """This gradient with its noise ratio fixed as it stands (see
        :meth:`NoiseSamples.settled`)."""
        if self.noise is None or not self.noise.measured.any():
            return self
        return replace(self, noise=self.noise.settled())

    def with_noise(self, ratio: float | None, floor: NDArray | None) -> NumericalGradient:
        """This gradient with the noise ratio measured apart from its stencils, and the
        floor of its error bars (see :class:`NoiseSamples`)."""
        if self.noise is None:
            return self
        return replace(self, noise=replace(self.noise, ratio=ratio, floor=floor))

    def pooled(self) -> NumericalGradient:
        """Error bars from the noise measured over all checked elements together.

        ``error = TRUNCATION_SAFETY·truncation + noise`` (see :meth:`NoiseSamples.levels`)
        and the sides' error a few times the pooled noise, plus their gap's truncation
        where it is known.
        Pooling after merging partial results (chunks on an executor, confirmations)
        gives the same numbers however the work was split.
        """
        noise = self.noise
        if noise is None or not noise.measured.any():
            return self
        value, sides_noise = noise.levels()
        bar = TRUNCATION_SAFETY * noise.truncation + value
        if noise.unbounded is not None:  # estimates that diverge beyond the noise: no bar
            bar = np.where(noise.unbounded > value, np.inf, bar)
        error = np.where(noise.measured, bar, self.error)
        sides = 0.0 if noise.side_truncation is None else TRUNCATION_SAFETY * noise.side_truncation
        side = (
            None
            if self.side_error is None
            else np.where(noise.measured, 4 * sides_noise + sides, self.side_error)
        )
        return replace(self, error=error, side_error=side)

    def with_truncation_at_least(self, bound: NDArray) -> NumericalGradient:
        """This gradient with each element's truncation estimate raised to ``bound``
        (where a second look at a smaller step showed the first estimate was off)."""
        noise = self.noise
        error = np.maximum(self.error, TRUNCATION_SAFETY * bound)
        if noise is None:
            return replace(self, error=error)
        truncation = np.where(noise.measured, np.maximum(noise.truncation, bound), noise.truncation)
        return replace(self, error=error, noise=replace(noise, truncation=truncation))

    def patched(self, patch: NumericalGradient) -> NumericalGradient:
        """This gradient with the elements ``patch`` checked taken from ``patch``."""
        where = patch.checked

        def side(part: NDArray | None, fallback: NDArray) -> NDArray:
            return fallback if part is None else part

        noise = None
        if self.noise is not None or patch.noise is not None:
            shape = self.value.shape
            mine = self.noise or NoiseSamples.none(shape)
            noise = mine.merged(patch.noise or NoiseSamples.none(shape), where)
        return NumericalGradient(
            value=np.where(where, patch.value, self.value),
            error=np.where(where, patch.error, self.error),
            method=self.method,
            evaluations=self.evaluations + patch.evaluations,
            left=np.where(where, side(patch.left, patch.value), side(self.left, self.value)),
            right=np.where(where, side(patch.right, patch.value), side(self.right, self.value)),
            side_error=np.where(
                where,
                side(patch.side_error, np.zeros_like(patch.value)),
                side(self.side_error, np.zeros_like(self.value)),
            ),
            checked=self.checked | where,
            noise=noise,
        )
