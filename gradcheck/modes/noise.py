"""How noisy the loss is, measured where the check stands, away from any kink.

Rounding makes ``L`` a noisy function: its values carry errors of a few units in the last
place of what they add up — or of far more, where the forward pass rounds like float32
inside float64, subtracts an offset of 1e6, or cancels a saturated softmax. The error
bars of real stencils, the complex step's floor and the default ``atol`` all rest on how
large that noise is, so it is measured, as Moré & Wild's ECnoise does: ``L`` at ``x +
k·δ·v`` for ``k = 0 … 6`` along a random direction ``v`` (in each variable's step units),
with ``δ`` so small that the smooth part of ``L`` adds nothing to differences of order
four and higher; those differences, scaled by ``1/√C(2k, k)``, are draws of the noise.

The points lie on one side of ``x``: a kink *at* the point (a ReLU input of exactly 0)
is not crossed, as every two-sided stencil's fourth difference would cross it.

The result is a ratio: the noise over one unit in the last place of the outputs the
moves reach (``ε·Σ|dout ⊙ f|`` over them). One ratio per check (all variables moved
together) sets ``atol`` and the complex step's floor; one per variable a real stencil
differentiates sets its elements' noise, each in its own units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradcheck.engine.numeric import random_direction, step_units
from gradcheck.engine.passes import Runner

__all__ = ["PROBE_PASSES", "Noise", "measure_noise"]

#: Forward passes of one measurement (the point itself is the runner's base).
PROBE_PASSES = 6
# The moves, relative to each element's step units: small enough that the smooth part of
# L adds nothing to a fourth difference, large enough to move inputs of 1e6 by many ulps
# (and at least this many ulps of the working dtype).
_MOVE, _ULPS = 1e-8, 1024
_ORDERS = (4, 5, 6)
# A ratio below this is no measurement (a function that did not move): one unit in the
# last place, a sixteenth of it, still rounds every difference.
_LEAST_RATIO = 1 / 16


@dataclass(frozen=True)
class Noise:
    """The measured noise of ``L``.

    Attributes
    ----------
    sigma : float
        Its standard deviation under small moves.
    unit : float
        One unit in the last place of the outputs those moves reach:
        ``ε·Σ|dout ⊙ f|`` over them.
    """

    sigma: float
    unit: float

    @property
    def ratio(self) -> float:
        """The noise in units of the last place: about 1 for a forward pass that rounds
        like its dtype, 1e6 for one that subtracts an offset of 1e6 from inputs of spread
        1, 1e9 for float32 inside float64."""
        if self.unit <= 0:
            return _LEAST_RATIO
        return max(self.sigma / self.unit, _LEAST_RATIO)


def measure_noise(
    runner: Runner, names: Sequence[str], dout: NDArray, rng: np.random.Generator,
    eps: float,
) -> Noise:
    """The noise of ``L = Σ dout ⊙ f`` when the variables ``names`` move together.

    Seven points on one side of ``x`` along a random direction (six passes beyond the
    runner's base output); every working array is restored from a saved copy.
    """
    arrays = [runner.arrays[name] for name in names]
    saved = [array.copy() for array in arrays]
    directions = []
    for array in arrays:
        units = step_units(array, "central").reshape(array.shape)
        ulps = _ULPS * eps * np.abs(array.real) / np.maximum(units, 1e-300)
        move = max(_MOVE, float(np.max(ulps))) if array.size else _MOVE
        directions.append(move * units * random_direction(rng, array.shape))
    weights = np.asarray(dout, dtype=np.float64)
    base = runner.base().astype(np.float64)
    values, magnitude = [0.0], 0.0
    try:
        for k in range(1, PROBE_PASSES + 1):
            for array, start, direction in zip(arrays, saved, directions, strict=True):
                np.copyto(array, start + k * direction, casting="unsafe")
            output = runner.output().astype(np.float64)
            moved = output != base
            values.append(float(np.sum(weights * (output - base))))
            magnitude = max(magnitude, float(np.sum(np.abs((weights * output)[moved]))))
    finally:
        for array, start in zip(arrays, saved, strict=True):
            np.copyto(array, start)
    table = np.array(values)
    draws = []
    for order in _ORDERS:
        differences = np.diff(table, n=order)
        draws.append(math.sqrt(float(np.mean(np.square(differences)))
                               / math.comb(2 * order, order)))
    return Noise(sigma=float(np.median(draws)), unit=eps * magnitude)
