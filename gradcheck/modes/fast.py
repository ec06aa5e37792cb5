"""Fast mode: a few random directions, and group testing when one fails.

Each direction costs one engine stencil whatever the variable's size; a failing direction
is split into halves until the wrong elements are found (:mod:`gradcheck.modes.search`),
and those are checked element by element so the report names them like a full check.

A direction is judged at its own error bar, so a failing one is only a reason to look
closer: the element checks decide. The elements never checked one by one are *screened*,
not checked: the report says so, with the smallest error of one element the passing
directions would have caught (:class:`~gradcheck.report.records.Screening`). When that
is more than :data:`_PROMISE` tolerances of a typical element, the full check decides
(or, over ``max_evaluations``, the variable is INCOMPLETE).

When most groups fail (a factor, a sign: wrong nearly everywhere) and naming every
element would cost about a full check, a sample of them is checked one by one instead:
the variable FAILS on the sampled elements found wrong, and the report says the mismatch
is widespread, how large a share is wrong and its pattern. When the sample finds nothing
wrong (many elements each off by less than ``rtol``), or localisation cannot finish
otherwise, the full check decides.

When ``max_evaluations`` stops the search before the elements behind a failing direction
are checked, the check FAILS if that direction differs by more than every element off by
its whole tolerance could make (some element is wrong), and is INCOMPLETE otherwise;
either way the report says how to go on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Variable
from gradcheck.engine.coloring import Colouring
from gradcheck.engine.gradient import NumericalGradient
from gradcheck.engine.spec import engine
from gradcheck.modes.context import Context, Outcome
from gradcheck.modes.full import colouring_for, full_check, full_cost, some_elements
from gradcheck.modes.probe import confirming_engine
from gradcheck.modes.search import DirectionalSearch, Measurement
from gradcheck.report.records import Screening
from gradcheck.verdict.compare import Tolerance, compare
from gradcheck.verdict.patterns import describe_factor
from gradcheck.vocabulary import Diagnostic, Severity, Status

__all__ = ["DIRECTIONS", "fast_check", "screening_cost"]

# Random directions that screen a variable in fast mode.
DIRECTIONS = 2
# Rounds of localisation before the full check decides.
_ROUNDS = 3
# Elements of a widespread mismatch checked one by one: enough to see that many are
# wrong and how, few enough that the whole check costs a few fast checks. They are drawn
# in batches, and sampling stops once a batch leaves this many found wrong.
_SAMPLE, _BATCH, _ENOUGH = 8, 2, 2
# ... when naming every element would cost more than this many samples (else the full
# check).
_SAMPLE_GAIN = 1
# One-sided confidence of the share of wrong elements the report claims.
_CONFIDENCE = 0.95
# Screened elements count as verified when the directions would have caught any one of
# them off by this many tolerances of a typical element: ×1.001 of such an element, the
# smallest bug the default tolerances are sized for (100 tolerances in float64, 10 in
# float32), is always caught, and a fast check never lets through an error more than ten
# times what a full check would name there.
_PROMISE = 10.0

# In fast mode, a variable its directions screen too coarsely is checked in full when that
# costs at most this many passes, or this many times what its directions did.
_SMALL_FULL, _FAST_SHARE = 64, 4


def screening_cost(method: str) -> int:
    """Forward passes of fast screening of one variable when nothing is wrong."""
    return DIRECTIONS * engine(method).cost


def element_cost(ctx: Context, method: str) -> int:
    """Passes to check one element, a complex-step mismatch's confirmation included."""
    cost = engine(method).cost
    if engine(method).arithmetic == "complex":
        cost += engine(confirming_engine(ctx)).cost
    return cost


@dataclass
class _Found:
    """What the rounds of localisation left: elements checked, and why they stopped."""

    verified: Outcome | None = None
    unlocalised: NDArray[np.intp] | None = None  # a failing group the budget left
    failed_test: tuple[int, Measurement] | None = None  # its direction and measurement
    needed: int = 0  # the passes that would have checked it
    widespread: str | None = None


def fast_check(var: Variable, ctx: Context, method: str, colouring: Colouring | None) -> Outcome:
    """Random directions; on failure, group testing down to elements checked one by one.

    Falls back to a full check of ``var`` when localising would cost about as much (a
    widespread mismatch is sampled instead) and when the directions that pass would miss
    what a full check catches; when ``max_evaluations`` forbids it, says what is left
    unverified (INCOMPLETE) or, when a direction proves an element wrong, how to go on
    (FAILED).
    """
    analytic = ctx.analytic.gradients[var.name]
    tolerance = ctx.tolerance(var)
    allowance = tolerance.allowance(np.asarray(analytic, dtype=np.float64))
    per_element = element_cost(ctx, method)
    # The terms each element sums as measured, not floored by the gradients flowing
    # through the computation (a loss's dout of 1 would make that the size of every
    # element): the complex step's rounding follows its own derivatives.
    sizes = ctx.analytic.terms.get(var.name, 0.0)
    search = DirectionalSearch(
        ctx.runners(method, var),
        var.name,
        ctx.dout,
        analytic,
        allowance,
        tolerance.rounding,
        sizes,
        method,
        ctx.scale,
        ctx.rng,
        directions=DIRECTIONS,
        element_cost=per_element,
        eps=ctx.eps_of(method, var),
    )
    full = full_cost(var, method, colouring)
    limit = full // (2 * per_element)
    members = np.arange(var.value.size, dtype=np.intp)
    failing = search.screen(members)
    screened = dict(search.roots)
    found = _Found()
    for _ in range(_ROUNDS):
        if not failing:
            break
        suspects = search.localize(failing[0], members, limit, ctx.budget_left)
        if suspects.stopped:
            found.unlocalised = suspects.indices
            assert suspects.measured is not None
            found.failed_test = (failing[0], suspects.measured)
            found.needed = (
                search.test_cost * math.ceil(math.log2(max(suspects.indices.size, 2))) + per_element
            )
            break
        if suspects.dense and suspects.gave_up:
            colouring = colouring or colouring_for(var, ctx)
            if _naming_all(var, method, colouring, suspects.indices.size, per_element) > (
                _SAMPLE_GAIN * _SAMPLE * per_element
            ):
                _sample_widespread(
                    var,
                    ctx,
                    method,
                    search,
                    screened,
                    suspects.indices,
                    found,
                    analytic,
                    tolerance,
                    full_cost(var, method, colouring),
                )
                break
        if suspects.gave_up or not suspects.indices.size:
            break  # nothing to pin down: the full check below decides
        found.verified = _checked(
            var, ctx, method, suspects.indices, found.verified, analytic, tolerance
        )
        members = np.setdiff1d(members, suspects.indices, assume_unique=True)
        # Every direction again over what is left, so that each passing test bounds
        # exactly the elements it vouches for.
        failing = search.screen(members)
    label = f"fast {method}, {search.tests} tests"
    if found.widespread:
        assert found.verified is not None
        outcome = _vouched(var, ctx, found.verified, tolerance, f"{label}, widespread")
        outcome.diagnosis = found.widespread
        return outcome
    if failing and found.unlocalised is None:
        # A direction fails that localisation could not explain (many elements each off
        # by a little, a kink along the way): the element checks decide, all of them.
        full_outcome, found.needed = _full_if_affordable(var, ctx, method, colouring, label)
        if full_outcome is not None:
            return full_outcome
        found.unlocalised = members
        found.failed_test = (failing[0], search.roots[failing[0]])
    outcome = _vouched(var, ctx, found.verified, tolerance, label)
    if failing:
        assert found.unlocalised is not None and found.failed_test is not None
        direction, measured = found.failed_test
        proven = search.beyond_tolerance(found.unlocalised, direction, measured)
        return _stopped_at_budget(
            var, ctx, outcome, members, found.unlocalised, found.needed, proven
        )
    if not members.size:
        return outcome
    outcome.screening = _screening(search, members, allowance, tolerance.rtol)
    if outcome.screening.sufficient:
        return outcome
    # The directions would miss an element a full check catches: check every one — when
    # fast mode was asked for, only if that costs about what the directions did (what
    # they would miss is said, not paid for).
    cap = None
    if ctx.options.mode == "fast":
        cap = max(_SMALL_FULL, _FAST_SHARE * search.tests * search.test_cost)
    full_outcome, _ = _full_if_affordable(
        var, ctx, method, colouring, f"{label}, not sensitive enough", cap
    )
    return outcome if full_outcome is None else full_outcome


def _full_if_affordable(
    var: Variable,
    ctx: Context,
    method: str,
    colouring: Colouring | None,
    label: str,
    cap: int | None = None,
) -> tuple[Outcome | None, int]:
    """The full check of ``var`` when what is left of ``max_evaluations`` (and ``cap``)
    allows it, and the passes it needs."""
    colouring = colouring or colouring_for(var, ctx)
    cost = full_cost(var, method, colouring)
    if cost > ctx.budget_left() or (cap is not None and cost > cap):
        return None, cost
    outcome = full_check(var, ctx, method, colouring)
    outcome.method = f"{label} → full {outcome.method}"
    return outcome, cost


def _screening(
    search: DirectionalSearch, members: NDArray[np.intp], allowance: NDArray, rtol: float
) -> Screening:
    """What the passing directions say about ``members``: the largest, over them, of the
    smallest error of one element they would have caught, relative to the variable's
    typical element (its median allowance over ``rtol``: ``|a|`` with ``atol`` and
    rounding, which an all-zero gradient still has)."""
    worst = float(np.max(search.catchable(members)))
    typical = float(np.median(allowance)) / rtol
    relative = 0.0 if worst == 0 else worst / typical if typical > 0 else math.inf
    return Screening(int(members.size), search.directions, relative, _PROMISE * rtol)


def _naming_all(
    var: Variable, method: str, colouring: Colouring | None, wrong: int, per_element: int
) -> int:
    """Passes of a full check that finds ``wrong`` elements wrong: the stencils, and the
    confirmation of each mismatch (all of a colour's at once when coloured)."""
    confirmations = colouring.colours if colouring is not None else wrong
    return full_cost(var, method, colouring) + confirmations * (per_element - engine(method).cost)


def _checked(
    var: Variable,
    ctx: Context,
    method: str,
    indices: NDArray[np.intp],
    verified: Outcome | None,
    analytic: NDArray,
    tolerance: Tolerance,
) -> Outcome:
    """``indices`` checked one by one, merged with what was checked before."""
    part = some_elements(var, ctx, method, indices)
    if verified is None:
        return part
    numerical = verified.numerical.patched(part.numerical)
    return Outcome(numerical, compare(analytic, numerical, tolerance), part.method)


def _sample_widespread(
    var: Variable,
    ctx: Context,
    method: str,
    search: DirectionalSearch,
    screened: dict[int, Measurement],
    union: NDArray[np.intp],
    found: _Found,
    analytic: NDArray,
    tolerance: Tolerance,
    full: int,
) -> None:
    """Check a sample of the failing groups one by one; when some are wrong, say that the
    mismatch is widespread (the verdict FAILS on them), with its share and pattern."""
    drawn = ctx.rng.choice(union, size=min(_SAMPLE, union.size), replace=False)
    sample = np.zeros(0, dtype=np.intp)
    status = np.zeros(0, dtype=np.int8)
    for start in range(0, drawn.size, _BATCH):
        sample = np.sort(np.concatenate([sample, drawn[start : start + _BATCH]]))
        found.verified = _checked(
            var, ctx, method, drawn[start : start + _BATCH], found.verified, analytic, tolerance
        )
        status = found.verified.result.status.reshape(-1)[sample]
        if np.count_nonzero(status == Status.MISMATCH) >= _ENOUGH:
            break
    wrong = int(np.count_nonzero(status == Status.MISMATCH))
    if not wrong or found.verified is None:
        return  # no wrong element in the sample: the full check decides
    size = var.value.size
    share = _lower_bound(wrong, int(sample.size)) * union.size / size
    label = f"d{var.name}" if var.role == "parameter" else f"the gradient of {var.name}"
    # The factor is read from elements compared as such (not kinks, nor unresolved).
    compared = sample[(status == Status.MISMATCH) | (status == Status.OK)]
    numbers = found.verified.numerical.value.reshape(-1)[compared]
    a = np.asarray(analytic, dtype=np.float64)
    pattern = describe_factor(
        label, a.reshape(-1)[compared], numbers, batch_size=ctx.target.batch_size()
    )
    if (
        pattern is None
        and a.ndim == 2
        and a.shape[0] == a.shape[1]
        and all(
            search.passes(np.arange(size, dtype=np.intp), d, measured, a.T.ravel())
            for d, measured in screened.items()
        )
    ):
        pattern = f"{label} is transposed: it equals the transpose of the true gradient."
    found.widespread = (
        f"{label} is wrong nearly everywhere: {wrong} of {sample.size} elements sampled "
        f"from the failing groups are wrong (at least {share:.0%} of its {size:,} elements, "
        f"{_CONFIDENCE:.0%} confidence)." + (f" {pattern}" if pattern else "")
    )
    ctx.diagnostics.append(
        Diagnostic(
            "widespread",
            Severity.NOTE,
            f"{var.name}: localisation stopped after {search.tests} directional tests, as most "
            f"groups failed; mode='full' names every wrong element (about {full:,} forward "
            "passes).",
        )
    )


def _lower_bound(wrong: int, sampled: int) -> float:
    """The share ``p`` of wrong elements below which seeing ``wrong`` of ``sampled`` has
    probability under ``1 − _CONFIDENCE`` (the one-sided Clopper–Pearson bound)."""

    def at_least(p: float) -> float:  # P(at least `wrong` of `sampled` wrong | share p)
        return sum(
            math.comb(sampled, k) * p**k * (1 - p) ** (sampled - k)
            for k in range(wrong, sampled + 1)
        )

    low, high = 0.0, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if at_least(middle) < 1 - _CONFIDENCE else (low, middle)
    return low


def _stopped_at_budget(
    var: Variable,
    ctx: Context,
    outcome: Outcome,
    members: NDArray[np.intp],
    unlocalised: NDArray[np.intp],
    needed: int,
    proven: bool,
) -> Outcome:
    """A direction failed but the budget ran out before its elements were checked.

    ``proven``: the direction's difference is more than every element of the group off
    by its whole tolerance could make, so some element is wrong: FAILED, and how to go
    on. Otherwise it could be many elements each off by less than ``rtol`` (or a kink),
    so nothing is proven either way: INCOMPLETE. Either way the elements not checked one
    by one are screened by directions that did not all pass: not verified.
    """
    count = int(unlocalised.size)
    go_on = (
        f"Raise max_evaluations (at least {needed:,} more forward passes) to have them "
        "checked, or check fewer elements (wrt=...)."
    )
    if proven:
        ctx.diagnostics.append(
            Diagnostic(
                "budget-stopped",
                Severity.ERROR,
                f"{var.name}: a random direction fails, so its gradient is wrong somewhere among "
                f"{count:,} elements, but max_evaluations={ctx.options.max_evaluations:,} stopped "
                f"the search before naming them. {go_on}",
            )
        )
    else:
        ctx.diagnostics.append(
            Diagnostic(
                "budget-stopped",
                Severity.INCOMPLETE,
                f"{var.name}: a random direction over {count:,} elements differs from "
                "⟨gradient, v⟩ by more than its error bar, but by no more than elements each "
                "within tolerance could add up to (or it crosses a kink); "
                f"max_evaluations={ctx.options.max_evaluations:,} stopped the search before "
                f"their elements were checked, so they are not verified. {go_on}",
            )
        )
    label = f"d{var.name}" if var.role == "parameter" else f"the gradient of {var.name}"
    diagnosis = outcome.diagnosis
    if proven and diagnosis is None:
        diagnosis = (
            f"{label} is wrong somewhere among {count:,} elements (a random direction "
            "over them fails); max_evaluations stopped the search before naming them."
        )
    unchecked = int(np.count_nonzero(~outcome.numerical.checked.reshape(-1)[members]))
    return replace(
        outcome,
        diagnosis=diagnosis,
        method=f"{outcome.method}, stopped at max_evaluations",
        screening=Screening(
            unchecked, DIRECTIONS, math.inf, _PROMISE * outcome.result.tolerance.rtol
        ),
    )


def _vouched(
    var: Variable, ctx: Context, verified: Outcome | None, tolerance: Tolerance, label: str
) -> Outcome:
    """Elements checked one by one keep their verdict; the others stay unchecked (what
    the directions say about them is the outcome's :class:`Screening`)."""
    if verified is None:
        nothing = np.zeros(var.value.shape)
        numerical = NumericalGradient(
            nothing, nothing, "fast", 0, None, None, None, np.zeros(var.value.shape, dtype=bool)
        )
        result = compare(ctx.analytic.gradients[var.name], numerical, tolerance)
    else:
        numerical, result = verified.numerical, verified.result
        label = f"{label}, {int(numerical.checked.sum())} by {verified.method}"
    numerical = replace(numerical, value=np.where(numerical.checked, numerical.value, np.nan))
    return Outcome(numerical, result, label)
