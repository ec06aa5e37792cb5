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

The result is a ratio: the noise over one unit in the last place of the outputs the moves reach, as
independent roundings add up (``ε·√Σ(dout ⊙ f)²`` over them) — so that the ratio is each output's
own, whether one output moves or a thousand. One ratio per check (all variables moved together) sets
``atol`` and the complex step's floor; one per variable a real stencil differentiates sets its
elements' noise, each in its own units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradcheck.engine.numeric import random_direction
from gradcheck.engine.passes import Runner
from gradcheck.engine.steps import step_units

__all__ = ["PROBE_PASSES", "Noise", "measure_noise"]

#: Forward passes of one measurement (the point itself is the runner's base).
PROBE_PASSES = 6
# The moves, relative to each element's step units: small enough that the smooth part of
# L adds nothing to a fourth difference ((1e-5)⁴ of L's size, far below a float64 ulp),
# large enough to cross many float32 ulps (a float32 cast inside a float64 layer rounds
# every move smaller than 1e-7 away) and at least this many ulps of the working dtype.
# Where the differences still fall with their order (the smooth part shows), the
# measurement is repeated with moves this much smaller.
_MOVE, _ULPS, _SMALLER, _RETRIES = 1e-5, 1024, 1e-2, 3
_ORDERS = (4, 5, 6)
# A ratio below this is no measurement (a function that did not move): one unit in the
# last place, a sixteenth of it, still rounds every difference.
_LEAST_RATIO = 1 / 16
# A kink crossed: the second differences elsewhere are at most this fraction of its own.
_STRUCTURE = 10.0


@dataclass(frozen=True)
class Noise:
    """The measured noise of ``L``.

    Attributes
    ----------
    sigma : float
        Its standard deviation under small moves.
    unit : float
        One unit in the last place of the outputs those moves reach, as their roundings
        add up: ``ε·√Σ(dout ⊙ f)²`` over them.
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
    runner: Runner,
    names: Sequence[str],
    dout: NDArray,
    rng: np.random.Generator,
    eps: float,
) -> Noise:
    """The noise of ``L = Σ dout ⊙ f`` when the variables ``names`` move together.

    Seven points on one side of ``x`` along a random direction (six passes beyond the
    runner's base output, six more each time the moves were too large, or too small to
    move the output at all); every working array is restored from a saved copy.
    """
    signs = [random_direction(rng, runner.arrays[name].shape) for name in names]
    move = _MOVE
    draws, unit, kinked = _draws(runner, names, dout, signs, eps, move)
    if unit == 0:
        # The output did not move at all: moves within the quantum of a forward pass that
        # rounds coarsely (float16 inside), which moves a hundred times larger cross — or
        # a function flat here (every ReLU off), which larger moves move only by crossing
        # a kink: that is structure, and a flat function's noise is none.
        move /= _SMALLER
        draws, unit, kinked = _draws(runner, names, dout, signs, eps, move)
        if unit == 0 or kinked:
            return Noise(sigma=0.0, unit=0.0)
    for _ in range(_RETRIES):
        if draws[-1] >= draws[0] / 4 and not kinked:
            break
        # Falling with the order: the smooth part, not noise (moves wider than the
        # function's structure, where the inputs' spread says little of it); or a kink
        # crossed (a ReLU input within the moves of 0, downstream where no input's size
        # shows it).
        move *= _SMALLER
        draws, unit, kinked = _draws(runner, names, dout, signs, eps, move)
    return Noise(sigma=float(np.median(draws)), unit=unit)


def _crosses_kink(table: NDArray) -> bool:
    """Whether ``L`` along the moves changes slope once and keeps the new slope (a kink
    crossed): its second differences sit in one place (two adjacent ones at most, of one
    sign) and are far smaller everywhere else. Rounding spreads them over every place, and
    one quantum crossed (a jump) gives two that cancel."""
    second = np.diff(table, n=2)
    size = np.abs(second)
    top = int(np.argmax(size))
    if size[top] == 0:
        return False
    pair = [top]
    neighbours = [i for i in (top - 1, top + 1) if 0 <= i < size.size]
    partner = max(neighbours, key=lambda i: size[i])
    if size[partner] > size[top] / _STRUCTURE:
        if np.sign(second[partner]) != np.sign(second[top]):
            return False
        pair.append(partner)
    rest = np.delete(size, pair)
    return bool(np.all(rest <= size[top] / _STRUCTURE))


def _draws(
    runner: Runner,
    names: Sequence[str],
    dout: NDArray,
    signs: list[NDArray],
    eps: float,
    relative: float,
) -> tuple[list[float], float, bool]:
    """The noise draws of orders 4 to 6 along ``signs`` at moves ``relative`` to each
    element's step units, one unit in the last place of the outputs they moved, and
    whether the moves crossed a kink."""
    arrays = [runner.arrays[name] for name in names]
    saved = [array.copy() for array in arrays]
    directions = []
    for array, sign in zip(arrays, signs, strict=True):
        units = step_units(array, "central").reshape(array.shape)
        # No further than the element's own size: an input a hair beside a kink at 0 (a
        # ReLU input of 1e-12) is not carried across it. An input at 0 is at its kink, which
        # moves on one side never cross.
        size = np.abs(array.real)
        units = np.where(size > 0, np.minimum(units, size), units)
        ulps = _ULPS * eps * size / np.maximum(units, 1e-300)
        move = max(relative, float(np.max(ulps))) if array.size else relative
        directions.append(move * units * sign)
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
            magnitude = max(magnitude, float(np.sqrt(np.sum(np.square((weights * output)[moved])))))
    finally:
        for array, start in zip(arrays, saved, strict=True):
            np.copyto(array, start)
    table = np.array(values)
    draws = []
    for order in _ORDERS:
        differences = np.diff(table, n=order)
        draws.append(
            math.sqrt(float(np.mean(np.square(differences))) / math.comb(2 * order, order))
        )
    return draws, eps * magnitude, _crosses_kink(table)
