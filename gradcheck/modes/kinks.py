"""Where several kinks meet: look nearby before calling a valid subgradient a bug.

At a single kink (a ReLU unit at exactly 0) every valid subgradient of an element lies
between its left and right one-sided derivatives, so a value outside them is a bug. Where
several kinks meet — an all-zero sample with zero bias before a ReLU puts every unit of
the sample at 0, and moving one input moves all of them — backprop's value (each unit's
mask taken on one side) can lie outside both one-sided derivatives of that input and
still be the gradient of a neighbouring smooth piece.

So when every mismatch of a check sits at a kink, and each of those elements moves more
than one kinked output (several kinks meet there) — or the output is one number (a loss),
behind which one kink and several look alike — the check is run again at a few nearby
points, moved away from the kinks, and decides there: if backward is right at every one
of them, those elements verified, the mismatches are counted as kinks (and the report
says why); if not, the check fails with what the nearby point found, or leaves them
unresolved when the nearby points could not verify them either. A lone kink in a vector
output keeps the strict rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import NOISE_SIGMAS, TRUNCATION_SAFETY
from gradcheck.conventions.target import Target, Variable
from gradcheck.engine.numeric import stencil_derivatives
from gradcheck.engine.passes import Runner
from gradcheck.modes.context import Context, Outcome
from gradcheck.verdict.compare import kink_mask
from gradcheck.vocabulary import Diagnostic, Result, Severity, Status, Verdict

__all__ = ["KinkResolution", "Nearby", "judge_ties", "resolve_meeting_kinks"]

# How many nearby points decide, how far they are moved (relative to each variable's
# spread: far beyond any stencil's steps, close enough to be the same situation),
# and how many wrong elements are examined for meeting kinks.
_POINTS = 3
_MOVE = 1e-3
_EXAMINED = 16
# A kinked output's one-sided derivatives differ by more than this many rounding levels.
_KINK_NOISE = 64.0
# Steps of the test whether a kink stays once the other inputs moved, relative to the
# usual ones (about ε^(1/5) of the spread, beside a move of _MOVE of it).
_INSIDE_MOVE = 1e-2


@dataclass
class KinkResolution:
    """The outcomes after looking nearby, what to tell the user, and what it cost."""

    outcomes: dict[str, Outcome]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    evaluations: int = 0
    # Elements a joint test found wrong: no nearby look may clear them.
    confirmed: dict[str, NDArray[np.bool_]] = field(default_factory=dict)


class _Statuses(Protocol):
    @property
    def status(self) -> NDArray[np.int8]:
        """Each element's :class:`Status`."""


class Nearby(Result, Protocol):
    """A recheck's report: its verdict, its cost, and each variable's statuses."""

    @property
    def evaluations(self) -> int:
        """Forward passes it took."""

    @property
    def verdict(self) -> Verdict:
        """Passed, FAILED or INCOMPLETE."""

    def variable(self, name: str) -> _Statuses:
        """The verdict on one variable."""


def resolve_meeting_kinks(
    ctx: Context,
    outcomes: dict[str, Outcome],
    recheck: Callable[[Target], Nearby],
    confirmed: dict[str, NDArray[np.bool_]] | None = None,
) -> KinkResolution:
    """Recheck nearby when every mismatch sits where several kinks meet.

    ``recheck`` runs a whole check of a moved target (it must not recheck in turn) and
    returns its report; its forward passes are counted in ``evaluations``. Mismatches in
    ``confirmed`` (found by the joint test of ties, :func:`judge_ties`) stay: the point
    itself showed them wrong, and a nearby point, away from the ties, cannot.
    """
    kept = confirmed or {}
    wrong = {
        name: (outcome.result.status == Status.MISMATCH)
        & ~kept.get(name, np.zeros(outcome.result.status.shape, dtype=bool))
        for name, outcome in outcomes.items()
    }
    if not any(mask.any() for mask in wrong.values()):
        return KinkResolution(outcomes)
    if not all(_at_kinks(outcomes[name], mask) for name, mask in wrong.items()):
        return KinkResolution(outcomes)
    examined = [(name, int(i)) for name, mask in wrong.items() for i in np.flatnonzero(mask)]
    # Several kinks meet where moving the element bends several outputs; behind a loss
    # (one number), where its kink goes away once the *other* inputs move (an all-zero
    # sample's units leave 0 when the sample's other features or the bias move; an L1
    # penalty's |w| at w = 0 does not care). A single kink keeps the strict rule.
    meet = _kinks_meet if np.size(ctx.analytic.output) > 1 else _kink_depends_on_others
    if not all(meet(ctx, name, index) for name, index in examined[:_EXAMINED]):
        return KinkResolution(outcomes)
    resolution = KinkResolution(outcomes)
    rng = np.random.default_rng(ctx.options.seed)
    for _ in range(_POINTS):
        report = recheck(ctx.target.moved(_nearby(ctx.target, rng)))
        resolution.evaluations += report.evaluations
        if report.verdict == Verdict.FAILED:
            resolution.diagnostics.append(
                Diagnostic(
                    "kinks-meet",
                    Severity.ERROR,
                    "every mismatch sits where several kinks meet, but at a nearby point away "
                    f"from them backward is wrong as well: {report.summary()}",
                )
            )
            return resolution
        # A passing recheck vouches for the elements its directions only screened (fast
        # mode): they would have caught any one of them off by ten tolerances.
        vouched = (Status.OK, Status.UNCHECKED)
        if not all(
            np.all(np.isin(report.variable(name).status[mask], vouched))
            for name, mask in wrong.items()
        ):
            # Skipped as kinks again, or unresolved: a pass that verified nothing there. The
            # elements are skipped as kinks, and the check says it is not complete.
            resolution.outcomes = _marked(outcomes, wrong, Status.KINK)
            resolution.diagnostics.append(
                Diagnostic(
                    "kinks-meet",
                    Severity.INCOMPLETE,
                    f"{sum(int(m.sum()) for m in wrong.values())} element(s) sit at kinks where "
                    "several may meet, where backward's value can be valid outside both one-sided "
                    "derivatives, and nearby points could not verify them either (kinks there "
                    "too, or steps wider than the inputs' spread); they are skipped, not verified. "
                    "Check again at a point away from the kinks, or with method='complex' if the "
                    "layer allows it.",
                )
            )
            return resolution
    count = sum(int(mask.sum()) for mask in wrong.values())
    resolution.outcomes = _marked(outcomes, wrong, Status.KINK)
    resolution.diagnostics.append(
        Diagnostic(
            "kinks-meet",
            Severity.NOTE,
            f"{count} element(s) sit at kinks where several meet, or may (an all-zero sample with "
            "zero bias before a ReLU, say): there backward's value can be a valid subgradient "
            f"outside both one-sided derivatives. Checked again at {_POINTS} nearby points away "
            "from the kinks, where every gradient matches; they are counted as kinks.",
        )
    )
    return resolution


def _marked(
    outcomes: dict[str, Outcome], wrong: dict[str, NDArray[np.bool_]], status: Status
) -> dict[str, Outcome]:
    """The outcomes with every wrong element given ``status``."""
    return {
        name: replace(
            outcome,
            result=replace(
                outcome.result,
                status=np.where(wrong[name], status, outcome.result.status).astype(np.int8),
            ),
        )
        for name, outcome in outcomes.items()
    }


def _at_kinks(outcome: Outcome, wrong: NDArray[np.bool_]) -> bool:
    at_kinks = kink_mask(outcome.numerical, outcome.result.tolerance)
    return not wrong.any() or (at_kinks is not None and bool(np.all(at_kinks[wrong])))


def _kinks_meet(ctx: Context, name: str, index: int) -> bool:
    """Whether moving element ``index`` of ``name`` bends more than one output."""
    runner = ctx.numerics.real.main
    work = runner.arrays[name].reshape(-1)
    saved = work[index].copy()
    h = float(np.finfo(np.float64).eps ** (1 / 3) * max(abs(float(saved.real)), 1.0))
    outputs = {}
    try:
        for offset in (0, 1, -1, 2, -2):
            work[index] = saved + offset * h
            outputs[offset] = runner.output().astype(np.float64).ravel()
    finally:
        work[index] = saved
    right = (-3 * outputs[0] + 4 * outputs[1] - outputs[2]) / (2 * h)
    left = (3 * outputs[0] - 4 * outputs[-1] + outputs[-2]) / (2 * h)
    typical = float(np.max(np.abs(outputs[0]))) if outputs[0].size else 0.0
    noise = _KINK_NOISE * ctx.eps * (np.abs(outputs[0]) + typical) / h
    return int(np.count_nonzero(np.abs(right - left) > noise)) >= 2


def _kink_depends_on_others(ctx: Context, name: str, index: int) -> bool:
    """Whether element ``index`` of ``name`` is smooth once every other input has moved to
    a nearby point (it alone staying put): then its kink was where several met."""
    moved = _nearby(ctx.target, np.random.default_rng(ctx.options.seed + index))
    moved[name].reshape(-1)[index] = ctx.target.variable(name).value.reshape(-1)[index]
    dtype = None if ctx.numerics.real_dtype != np.float64 else np.float64
    runner = Runner(ctx.target.moved(moved).instantiate(dtype))
    loss = runner.loss(name, ctx.dout)
    work = runner.arrays[name]
    # Steps far inside the move, so that the kinks moved away stay outside the stencil.
    stencil = stencil_derivatives(
        loss,
        work,
        method="richardson",
        indices=np.array([index]),
        eps=ctx.eps,
        multiplier=_INSIDE_MOVE,
    )
    sides = stencil.with_noise(max(ctx.noise.ratio, 1.0), None).pooled()
    assert sides.left is not None and sides.right is not None and sides.side_error is not None
    gap = abs(float(sides.right.ravel()[index] - sides.left.ravel()[index]))
    return gap <= 2 * float(sides.side_error.ravel()[index])


def _nearby(target: Target, rng: np.random.Generator) -> dict[str, NDArray]:
    """Every variable moved by a small random amount relative to its spread.

    The spread, not the size: inputs of 1e5 around a spread of 1e-3 moved by 1e-3 of
    their size would land where the layer (a BatchNorm) is another function altogether,
    and its gradient 0.
    """
    moved = {}
    for var in target.variables:
        value = var.value.astype(np.float64)
        spread = float(np.std(value)) if value.size > 1 else 0.0
        size = spread or (float(np.sqrt(np.mean(np.square(value)))) if value.size else 0.0)
        moved[var.name] = value + _MOVE * (size or 1.0) * rng.standard_normal(value.shape)
    return moved


# ---------------------------------------------------------------------------------------
# Ties: kinks judged together

# Offsets of the joint stencil along a tied group: the point, and ±1, ±2, ±4 steps.
_JOINT_OFFSETS = (1, -1, 2, -2, 4, -4)
# At most this many groups of tied elements per variable are tested.
_GROUPS = 16


@dataclass(frozen=True)
class _Joint:
    """The one-sided derivatives along a tied group moved together, with their bar."""

    left: float
    right: float
    central: float
    bar: float
    passes: int


def judge_ties(ctx: Context, outcomes: dict[str, Outcome]) -> KinkResolution:
    """Elements at kinks (skipped as kinks, or accused there) that are tied (exactly
    equal, as the inputs of a max or a sort are) are moved together: the output then
    moves by the derivative along their sum, which their gradients must add up to — a
    max-pool backward that gives ``dout`` to every tied element gives it twice where the
    output moves once. Only where the joint move is smooth (its sides agree) does it
    decide: the sum must match it. What this finds wrong is ``confirmed``: no look at
    nearby points, away from the ties, clears it.
    """
    resolution = KinkResolution(dict(outcomes))
    for name, outcome in outcomes.items():
        status = outcome.result.status.ravel()
        at_kink = kink_mask(outcome.numerical, outcome.result.tolerance)
        kinks = (status == Status.KINK) | (
            (status == Status.MISMATCH) & (at_kink.ravel() if at_kink is not None else False)
        )
        if kinks.sum() < 2:
            continue
        var = ctx.target.variable(name)
        values = var.value.ravel()
        groups = [np.flatnonzero(kinks & (values == value)) for value in np.unique(values[kinks])][
            :_GROUPS
        ]
        wrong = np.zeros(values.size, dtype=bool)
        notes = []
        for group in (g for g in groups if g.size >= 2):
            joint = _joint_sides(ctx, var, group)
            resolution.evaluations += joint.passes
            # Along a tie of one max (or sort) every piece beside the point agrees: the
            # joint move is smooth, and the sum must match it. Where the joint move bends
            # too, several kinks meet (an all-zero sample's ReLU units, independent units
            # at 0), and the sum of valid subgradients need not lie between its sides.
            if abs(joint.right - joint.left) > joint.bar:
                continue
            analytic = float(np.sum(np.asarray(ctx.analytic.gradients[name]).ravel()[group]))
            allowance = float(
                np.sum(
                    outcome.result.threshold.ravel()[group] - outcome.numerical.error.ravel()[group]
                )
            )
            slack = allowance + joint.bar
            outside = not (
                min(joint.left, joint.right) - slack
                <= analytic
                <= max(joint.left, joint.right) + slack
            )
            if outside:
                wrong[group] = True
                notes.append(
                    f"{group.size} elements tied at {values[group[0]]:.6g} move the "
                    f"output by {joint.central:.6g} together (one-sided "
                    f"{joint.left:.6g} and {joint.right:.6g}); their gradients add "
                    f"up to {analytic:.6g}"
                )
        if wrong.any():
            resolution.confirmed[name] = wrong.reshape(outcome.result.status.shape)
            status = status.copy()
            status[wrong] = Status.MISMATCH
            resolution.outcomes[name] = replace(
                outcome,
                result=replace(outcome.result, status=status.reshape(outcome.result.status.shape)),
                diagnosis=f"{'; '.join(notes)}: a backward that gives the whole gradient to "
                "every tied element counts it once per tie (give it to one of them, "
                "or share it).",
            )
    return resolution


def _joint_sides(ctx: Context, var: Variable, group: NDArray[np.intp]) -> _Joint:
    """One-sided and central derivatives along the group's elements moved together."""
    runner = ctx.numerics.real.main
    work = runner.arrays[var.name]
    saved = work.copy()
    loss = runner.loss(var.name, ctx.dout)
    units = float(np.min(ctx.step_units(var)[group]))
    ratio = max(ctx.noise_ratios.get(var.name, ctx.noise.ratio), 1.0)
    t = float((ctx.eps * ratio) ** (1 / 3) * units)
    along = np.zeros(work.size)
    along[group] = 1.0
    direction: NDArray = along.reshape(work.shape)
    try:
        f0 = float(np.real(loss(saved)))
        f = {k: float(np.real(loss(saved + k * t * direction))) for k in _JOINT_OFFSETS}
    finally:
        np.copyto(work, saved)

    def sides(step: int) -> tuple[float, float]:
        right = (-3 * f0 + 4 * f[step] - f[2 * step]) / (2 * step * t)
        left = (3 * f0 - 4 * f[-step] + f[-2 * step]) / (2 * step * t)
        return left, right

    left, right = sides(1)
    wide_left, wide_right = sides(2)
    central = (f[1] - f[-1]) / (2 * t)
    # Rounding: the loss's measured noise over the step; truncation: the sides' change
    # as the step doubles (second order: three times their own error).
    noise = max(ctx.noise.sigma, ctx.eps * abs(f0))
    rounding = NOISE_SIGMAS * 2 * noise / t
    truncation = max(abs(wide_left - left), abs(wide_right - right)) / 3
    return _Joint(
        left, right, central, rounding + TRUNCATION_SAFETY * truncation, 1 + len(_JOINT_OFFSETS)
    )
