"""The result of a numerical differentiation: values, error estimates, kinks, and noise.

A :class:`NumericalGradient` holds one derivative per element with an estimate of its
error: the engine's truncation estimate plus the rounding noise of ``f`` divided by the
step. How noisy ``f`` is, is *measured*, not guessed (Moré & Wild's idea in "Estimating
computational noise"): a central stencil evaluates ``f`` at five equally spaced points
``x − 2h … x + 2h``, whose fourth difference is ``h⁴f⁗`` — negligible at these steps —
plus the rounding noise of ``f`` with 70 times its variance. One such sample per element
(:class:`NoiseSamples`), pooled over the variable by their median
(:meth:`NumericalGradient.pooled`), gives the noise level: robust against the few
elements whose stencil crosses a kink, and far below the worst case ``ε·Σ|terms|`` when
moving one element changes few outputs (an elementwise layer changes one). The worst case
caps it (a variable whose every element sits at a kink measures only kinks), and
variables with few elements keep a fraction of it as a floor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import NOISE_SIGMAS, TRUNCATION_SAFETY
from gradcheck.engine.spec import NOISE_FACTOR

__all__ = ["NoiseSamples", "NumericalGradient"]

# Fewer samples than this are not pooled by their median but by their largest, with a
# fraction of the worst case as a floor (one draw can be small by chance).
_POOL = 8
# The worst case counts every term of f as rounding; pooling replaces it by a measurement,
# which for few samples is trusted down to this fraction of the worst case.
_WORST_CASE_FRACTION = 1 / 256


@dataclass(frozen=True)
class NoiseSamples:
    """What each element's stencil says about the rounding noise of ``f``.

    All arrays have the shape of the variable (zeros where nothing was measured).

    Attributes
    ----------
    sample : ndarray
        ``|Δ⁴f| / √70``: one draw of the noise level of ``f`` near the element.
    floor : ndarray
        ``ε·|f(x)|``: the least noise ``f`` can have (its own last bit).
    worst : ndarray
        ``ε·max(|f(x)|, S)``: the worst case, every term of ``f`` rounding (``S`` the
        size of the terms), used when too few samples were taken.
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
    """

    sample: NDArray[np.float64]
    floor: NDArray[np.float64]
    worst: NDArray[np.float64]
    step: NDArray[np.float64]
    truncation: NDArray[np.float64]
    gain: float
    measured: NDArray[np.bool_]
    side_truncation: NDArray[np.float64] | None = None

    def spread(self) -> NDArray[np.float64]:
        """Each element's rounding error bound: the pooled measurement, capped by the
        worst case (which a pool full of kinks would exceed), floored by ``f``'s last bit.

        ``NOISE_SIGMAS·gain·median(samples)/h``, at most ``NOISE_FACTOR·gain·worst/h``
        (the worst case); for fewer than a few samples their largest instead of their
        median, and at least a fraction of the worst case; at least
        ``NOISE_SIGMAS·gain·floor/h``. Zero where nothing was measured.
        """
        usable = self.measured & np.isfinite(self.sample) & np.isfinite(self.worst)
        samples = self.sample[usable]
        if samples.size == 0:
            return np.zeros_like(self.sample)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(self.measured, self.gain / self.step, 0.0)
        worst = 2 * NOISE_FACTOR * np.where(usable, self.worst,
                                            float(np.max(self.worst[usable])))
        worst = worst * scale
        few = samples.size < _POOL
        level = float(np.max(samples)) if few else float(np.median(samples))
        spread = np.minimum(NOISE_SIGMAS * level * scale, worst)
        if few:
            spread = np.maximum(spread, _WORST_CASE_FRACTION * worst)
        result: NDArray[np.float64] = np.maximum(spread, NOISE_SIGMAS * self.floor * scale)
        return result

    def merged(self, patch: NoiseSamples, where: NDArray[np.bool_]) -> NoiseSamples:
        """These samples with those of ``patch`` where ``where`` is True."""
        def pick(name: str) -> NDArray[np.float64]:
            chosen: NDArray[np.float64] = np.where(where, getattr(patch, name),
                                                   getattr(self, name))
            return chosen

        sides = None
        if self.side_truncation is not None or patch.side_truncation is not None:
            mine, theirs = (np.zeros_like(self.sample) if s is None else s
                            for s in (self.side_truncation, patch.side_truncation))
            sides = np.where(where, theirs, mine)
        return NoiseSamples(
            sample=pick("sample"), floor=pick("floor"), worst=pick("worst"),
            step=pick("step"), truncation=pick("truncation"),
            gain=max(self.gain, patch.gain),
            measured=np.where(where, patch.measured, self.measured),
            side_truncation=sides,
        )

    @staticmethod
    def none(shape: tuple[int, ...]) -> NoiseSamples:
        """No sample anywhere (for merging with an engine that takes none)."""
        zeros = np.zeros(shape)
        return NoiseSamples(zeros, zeros, zeros, np.ones(shape), zeros, 1.0,
                            np.zeros(shape, dtype=bool))


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

    def modelled(
        self, safety: float = 4.0, kinks: NDArray[np.bool_] | None = None
    ) -> NumericalGradient:
        """Truncation errors for the elements differentiated without one (NaN: the
        central core, :func:`gradcheck.engine.numeric.central_core`), from those with one.

        Central differences truncate as ``c·h²``: each such element gets ``safety`` times
        the largest ``truncation / h²`` of the others, times its own ``h²`` — leaving out
        the ``kinks`` (elements whose stencil crossed one, where the truncation is no
        ``c·h²``: a modelled element that crosses one mismatches, and is looked at again).
        Their noise comes from the others' samples when :meth:`pooled`. Like pooling, done
        on the merged result, so the numbers do not depend on how the work was split.
        """
        noise = self.noise
        if noise is None:
            return self
        missing = noise.measured & np.isnan(noise.truncation)
        known = noise.measured & ~missing & np.isfinite(noise.truncation)
        if kinks is not None:
            known &= ~kinks
        if not missing.any() or not known.any():
            return self
        ratio = float(np.max(noise.truncation[known] / np.square(noise.step[known])))
        truncation = np.where(missing, safety * ratio * np.square(noise.step), noise.truncation)
        return replace(self, noise=replace(noise, truncation=truncation))

    def pooled(self) -> NumericalGradient:
        """Error bars from the noise measured over all checked elements together.

        ``error = TRUNCATION_SAFETY·truncation + spread`` (see :meth:`NoiseSamples.spread`)
        and the sides' error a few times that spread, plus their gap's truncation where it
        is known.
        Pooling after merging partial results (chunks on an executor, confirmations)
        gives the same numbers however the work was split.
        """
        noise = self.noise
        if noise is None or not noise.measured.any():
            return self
        spread = noise.spread()
        error = np.where(noise.measured, TRUNCATION_SAFETY * noise.truncation + spread,
                         self.error)
        sides = 0.0 if noise.side_truncation is None else TRUNCATION_SAFETY * noise.side_truncation
        side = None if self.side_error is None else np.where(
            noise.measured, 4 * spread + sides, self.side_error
        )
        return replace(self, error=error, side_error=side)

    def with_truncation_at_least(self, bound: NDArray) -> NumericalGradient:
        """This gradient with each element's truncation estimate raised to ``bound``
        (where a second look at a smaller step showed the first estimate was off)."""
        noise = self.noise
        error = np.maximum(self.error, TRUNCATION_SAFETY * bound)
        if noise is None:
            return replace(self, error=error)
        truncation = np.where(noise.measured, np.maximum(noise.truncation, bound),
                              noise.truncation)
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
