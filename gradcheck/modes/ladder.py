"""Second looks at other steps: one rule for every doubtful number of a real stencil.

A real stencil's error bar is its truncation estimate plus its measured rounding, and
both rest on the step suiting the function. A step far wider than the function's
structure (inputs of 1e6 around a spread of 1, a function that saturates within the
step) makes the truncation estimate meaningless; one far narrower (a forward pass that
rounds like float32, or like the 1e6 it subtracts) drowns the derivative in rounding.
So the steps are measured, not assumed:

* **The rule.** Where an element's bar is too wide to judge it, or it is accused (a
  mismatch) or called a kink, it is differentiated again with steps smaller — where
  truncation dominates its bar, or where an accusation or a kink must survive a finer
  look (one :data:`FACTOR`) — or larger, where rounding does (a flat direction, whose
  derivative is 0 at any step, is resolved by a large one). A finer look that leaves the
  truncation as it was (a kink at the point) ends the descent. Of two estimates, a finer
  one that disagrees with a coarser one beyond both bars shows that the coarser step was
  too wide: the coarser is dropped and the finer keeps the gap's share as a lower bound
  of its error. Otherwise the smaller bar wins. An element moves on in the same
  direction while the new look wins, for at most :data:`RUNGS` looks.
* **The step of a variable** is found by the same rule on a few of its elements
  (:func:`gradcheck.modes.full.calibrate_steps`) before its bulk is differentiated one by
  one, so that one measurement, not a guess from ``|x|``, sets the steps of every element.

This replaces what used to be several special cases (Richardson for what central
differences leave unresolved, second looks two and four times smaller, kinks confirmed a
thousand times smaller, probes retried smaller): each was one rung of this ladder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import TRUNCATION_SAFETY
from gradcheck.engine.gradient import NumericalGradient
from gradcheck.engine.spec import engine
from gradcheck.vocabulary import Status

__all__ = ["FACTOR", "RUNGS", "Ladder", "climb"]

#: Each second look moves the step by at least this factor ...
FACTOR = 4.0
#: ... and at most by this one, as far as the bar's parts say it should move to reach
#: half the element's tolerance (rounding falls as 1/h, truncation as h^order).
LEAP = 1e4
#: At most this many second looks per element.
RUNGS = 6
#: At most this many elements of a variable get second looks (the rest keep their verdict:
#: unresolved stays unresolved, never a match).
MOST = 64

# Differentiate elements ``indices`` (flat) with per-element step multipliers.
Differentiate = Callable[[NDArray[np.intp], NDArray[np.float64]], NumericalGradient]
# Each element's status under the current numbers, and its tolerance.
Judge = Callable[[NumericalGradient], tuple[NDArray[np.int8], NDArray[np.float64]]]


@dataclass
class Ladder:
    """A variable's best numbers so far, and the step multiplier each was taken at."""

    numerical: NumericalGradient
    multiplier: NDArray[np.float64]  # flat, one per element
    looks: int = 0  # elements differentiated again


def _order(method: str) -> int:
    """The power of ``h`` of an engine's truncation (2 for central, 4 for Richardson)."""
    return 4 if len(engine(method).offsets) >= 6 else 2


def _parts(
    numerical: NumericalGradient, flat: NDArray[np.intp]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each element's bar split into rounding and truncation (or structure: an element
    whose own noise sample is far above the rounding its neighbours show has structure at
    this step — a kink, a tie — not rounding); truncation is infinite where there is no
    bar (steps wider than the function's structure)."""
    noise = numerical.noise
    bar = numerical.error.ravel()[flat]
    truncation = (
        np.zeros(flat.size) if noise is None else TRUNCATION_SAFETY * noise.truncation.ravel()[flat]
    )
    rounding = bar - truncation
    if noise is not None:
        value, pooled = (part.ravel()[flat] for part in noise.levels())
        structure = value - pooled
        truncation = np.where(structure > pooled, np.maximum(truncation, structure), truncation)
        rounding = np.where(structure > pooled, pooled, rounding)
    truncation = np.where(np.isfinite(bar), truncation, np.inf)
    return rounding, truncation


def _moves(
    numerical: NumericalGradient,
    flat: NDArray[np.intp],
    status: NDArray[np.int8],
    target: NDArray[np.float64],
    order: int,
) -> NDArray[np.float64]:
    """How much to multiply each element's step by for its next look.

    Accusations and kinks are confirmed one factor finer, and so is an estimate that has
    no bar or shows structure (:func:`_parts`). Otherwise the bar's larger part says which
    way: rounding (∝ 1/h) a larger step, truncation (∝ h^order) a smaller one, by as much
    as it takes to bring that part to ``target``, within [FACTOR, LEAP].
    """
    rounding, truncation = _parts(numerical, flat)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.clip(np.nan_to_num(rounding / target, nan=FACTOR, posinf=LEAP), FACTOR, LEAP)
        down = np.clip(
            np.nan_to_num((truncation / target) ** (1 / order), nan=FACTOR, posinf=LEAP),
            FACTOR,
            LEAP,
        )
    # An accusation or a kink is confirmed one factor finer — unless rounding dominates
    # its bar, where a finer step sees only more rounding.
    confirm = ((status[flat] == Status.MISMATCH) | (status[flat] == Status.KINK)) & ~(
        rounding > truncation
    )
    move: NDArray[np.float64] = np.where(
        confirm, 1 / FACTOR, np.where(rounding > truncation, up, 1 / down)
    )
    return move


def _gap(numerical: NumericalGradient, flat: NDArray[np.intp]) -> NDArray[np.float64]:
    """Each element's gap between its one-sided derivatives (NaN without them)."""
    if numerical.left is None or numerical.right is None:
        return np.full(flat.size, np.nan)
    gap: NDArray[np.float64] = np.abs(numerical.right.ravel()[flat] - numerical.left.ravel()[flat])
    return gap


def climb(
    ladder: Ladder,
    wanted: NDArray[np.bool_],
    differentiate: Differentiate,
    judge: Judge,
    method: str,
    *,
    until_settled: bool = False,
) -> Ladder:
    """Look again at the ``wanted`` elements (flat mask) at other steps.

    An element keeps moving while its status is doubtful (mismatch, kink, unresolved) and
    the new look wins; with ``until_settled`` (measuring a variable's step) it keeps
    moving while the new look wins whatever its status.
    """
    numerical, multiplier = ladder.numerical.settled(), ladder.multiplier.copy()
    judged = judge(numerical)
    status, tolerance = judged[0].ravel(), judged[1].ravel()
    chosen = np.flatnonzero(wanted)[:MOST]
    doubtful = (status != Status.OK) & (status != Status.UNCHECKED)
    moving = chosen[until_settled | doubtful[chosen]]
    looks = ladder.looks
    order = _order(method)
    previous = np.ones(numerical.value.size)  # each element's last move that won
    retry = np.ones(numerical.value.size)  # a shorter move to try after one that lost
    flipped = np.zeros(numerical.value.size, dtype=bool)  # sent coarser after a stall
    for _ in range(RUNGS):
        if not moving.size:
            break
        direction = _moves(numerical, moving, status, tolerance[moving] / 2, order)
        # A move that won and points the same way again was too timid: square it.
        last = previous[moving]
        again = (np.sign(np.log(direction)) == np.sign(np.log(last))) & (direction != 1 / FACTOR)
        direction = np.where(
            again,
            np.exp(
                np.sign(np.log(direction))
                * np.minimum(
                    np.maximum(np.abs(np.log(direction)), 2 * np.abs(np.log(last))), np.log(LEAP)
                )
            ),
            direction,
        )
        direction = np.where(retry[moving] != 1, retry[moving], direction)
        _, before = _parts(numerical, moving)
        gap_before = _gap(numerical, moving)
        fresh = differentiate(moving, multiplier[moving] * direction)
        looks += moving.size
        candidate = numerical.patched(fresh).pooled()
        old_value, old_bar = numerical.value.ravel()[moving], numerical.error.ravel()[moving]
        new_value = candidate.value.ravel()[moving]
        new_bar = candidate.error.ravel()[moving]
        gap = np.abs(new_value - old_value)
        contradicted = gap > old_bar + new_bar
        finer = direction < 1
        # A finer look that contradicts a coarser one wins whatever its bar; a coarser look
        # that contradicts a finer one loses; otherwise the smaller bar wins — and where
        # neither has one (steps wider than the function's structure), the finer.
        unbounded = ~np.isfinite(old_bar) & ~np.isfinite(new_bar)
        wins = np.where(contradicted, finer, (new_bar < old_bar) | (unbounded & finer))
        bound = np.where(contradicted & finer, gap / (direction**-order - 1), 0.0)
        won = moving[wins]
        mask = np.zeros(numerical.value.size, dtype=bool)
        mask[won] = True
        taken = replace(fresh, checked=fresh.checked & mask.reshape(fresh.checked.shape))
        lower = np.zeros(numerical.value.size)
        lower[moving] = bound
        numerical = numerical.patched(
            taken.with_truncation_at_least(lower.reshape(fresh.value.shape))
        ).pooled()
        multiplier[won] *= direction[wins]
        previous[moving] = np.where(wins, direction, previous[moving])
        # A long move that lost may have overshot (into steps wider than the function's
        # structure): half as long, in the same direction, once more.
        shorter = ~wins & (np.abs(np.log(direction)) > 1.01 * np.log(FACTOR))
        retry[moving] = np.where(shorter, np.sqrt(direction), 1.0)
        was_kink = status[moving] == Status.KINK
        judged = judge(numerical)
        status, tolerance = judged[0].ravel(), judged[1].ravel()
        doubtful = (status[moving] != Status.OK) & (status[moving] != Status.UNCHECKED)
        # A kink still there at a finer step is one: no need to look closer still. Nor
        # where a finer step left the truncation (or structure) as it was: it does not
        # fall as h^order there (a kink at the point), and finer steps find only rounding.
        # A kink's gap between its sides stays as the step shrinks; a smooth function's,
        # curved within the step (x / std(x) at an offset of 3e4), falls with it.
        gap_after = _gap(fresh, moving)
        confirmed = (
            was_kink
            & wins
            & finer
            & (status[moving] == Status.KINK)
            & ~(gap_after < gap_before / 2)
        )
        _, after = _parts(fresh.pooled(), moving)
        stalled = finer & np.isfinite(before) & (after > before * np.sqrt(direction))
        # An unresolved element whose "truncation" did not fall was reading noise (a
        # forward pass that rounds in steps, like float32 inside): coarser, once.
        coarser = stalled & ~flipped[moving] & (status[moving] == Status.UNRESOLVED)
        flipped[moving[coarser]] = True
        retry[moving] = np.where(coarser, np.where(wins, FACTOR / direction, FACTOR), retry[moving])
        keep = (((wins | shorter) & ~stalled) | coarser) & (until_settled | doubtful) & ~confirmed
        moving = moving[keep]
    return Ladder(numerical, multiplier, looks)
