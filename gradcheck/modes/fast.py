"""Fast mode: a few random directions, and group testing when one fails.

Each direction costs one engine stencil whatever the variable's size; a failing direction
is split into halves until the wrong elements are found (:mod:`gradcheck.modes.search`),
and those are checked element by element so the report names them like a full check.

When most groups fail (a factor, a sign: wrong nearly everywhere) and naming every
element would cost about a full check, a sample of them is checked one by one instead:
the variable FAILS on the sampled elements found wrong, and the report says the mismatch
is widespread, how large a share is wrong and its pattern. Otherwise, when localisation
cannot finish, the full check decides.

A failed direction is a failure whatever happens after it: when ``max_evaluations`` stops
the search before the wrong elements are named, the check FAILS and says how to go on.
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
    widespread: str | None = None


def fast_check(
    var: Variable, ctx: Context, method: str, colouring: Colouring | None
) -> Outcome:
    """Random directions; on failure, group testing down to elements checked one by one.

    Falls back to a full check of ``var`` when localising would cost about as much (a
    widespread mismatch is sampled instead), and fails with a note on how to go on when
    ``max_evaluations`` stops the search.
    """
    analytic = ctx.analytic.gradients[var.name]
    tolerance = ctx.tolerance(var)
    per_element = element_cost(ctx, method)
    search = DirectionalSearch(
        ctx.runners(method), var.name, ctx.dout, analytic,
        tolerance.allowance(np.asarray(analytic, dtype=np.float64)), method, ctx.scale,
        ctx.rng, directions=DIRECTIONS, element_cost=per_element, eps=ctx.eps,
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
            break
        if suspects.dense and suspects.gave_up:
            colouring = colouring or colouring_for(var, ctx)
            if _naming_all(var, method, colouring, suspects.indices.size, per_element) > (
                    _SAMPLE_GAIN * _SAMPLE * per_element):
                _sample_widespread(var, ctx, method, search, screened, suspects.indices,
                                   found, analytic, tolerance,
                                   full_cost(var, method, colouring))
                break
        if suspects.gave_up or not suspects.indices.size:
            break  # nothing to pin down: the full check below decides
        found.verified = _checked(var, ctx, method, suspects.indices, found.verified,
                                  analytic, tolerance)
        members = np.setdiff1d(members, suspects.indices, assume_unique=True)
        failing = search.screen(members, only=failing)
    label = f"fast {method}, {search.tests} tests"
    if found.widespread:
        assert found.verified is not None
        outcome = _vouched(var, ctx, found.verified, members, failing, tolerance,
                           f"{label}, widespread")
        outcome.diagnosis = found.widespread
        return outcome
    if failing and found.unlocalised is None:
        colouring = colouring or colouring_for(var, ctx)
        cost = full_cost(var, method, colouring)
        if cost <= ctx.budget_left():
            outcome = full_check(var, ctx, method, colouring)
            outcome.method = f"{label} → full {outcome.method}"
            return outcome
        found.unlocalised = members
    outcome = _vouched(var, ctx, found.verified, members, failing, tolerance, label)
    if failing:
        assert found.unlocalised is not None
        return _stopped_at_budget(var, ctx, outcome, found.unlocalised,
                                  search.test_cost, per_element)
    return outcome


def _naming_all(
    var: Variable, method: str, colouring: Colouring | None, wrong: int, per_element: int
) -> int:
    """Passes of a full check that finds ``wrong`` elements wrong: the stencils, and the
    confirmation of each mismatch (all of a colour's at once when coloured)."""
    confirmations = colouring.colours if colouring is not None else wrong
    return full_cost(var, method, colouring) + confirmations * (per_element
                                                                 - engine(method).cost)


def _checked(
    var: Variable, ctx: Context, method: str, indices: NDArray[np.intp],
    verified: Outcome | None, analytic: NDArray, tolerance: Tolerance,
) -> Outcome:
    """``indices`` checked one by one, merged with what was checked before."""
    part = some_elements(var, ctx, method, indices)
    if verified is None:
        return part
    numerical = verified.numerical.patched(part.numerical)
    return Outcome(numerical, compare(analytic, numerical, tolerance), part.method)


def _sample_widespread(
    var: Variable, ctx: Context, method: str, search: DirectionalSearch,
    screened: dict[int, Measurement], union: NDArray[np.intp], found: _Found,
    analytic: NDArray, tolerance: Tolerance, full: int,
) -> None:
    """Check a sample of the failing groups one by one; when some are wrong, say that the
    mismatch is widespread (the verdict FAILS on them), with its share and pattern."""
    drawn = ctx.rng.choice(union, size=min(_SAMPLE, union.size), replace=False)
    sample = np.zeros(0, dtype=np.intp)
    status = np.zeros(0, dtype=np.int8)
    for start in range(0, drawn.size, _BATCH):
        sample = np.sort(np.concatenate([sample, drawn[start:start + _BATCH]]))
        found.verified = _checked(var, ctx, method, drawn[start:start + _BATCH],
                                  found.verified, analytic, tolerance)
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
    pattern = describe_factor(label, a.reshape(-1)[compared], numbers,
                              batch_size=ctx.target.batch_size())
    if pattern is None and a.ndim == 2 and a.shape[0] == a.shape[1] and all(
            search.passes(np.arange(size, dtype=np.intp), d, measured, a.T.ravel())
            for d, measured in screened.items()):
        pattern = f"{label} is transposed: it equals the transpose of the true gradient."
    found.widespread = (
        f"{label} is wrong nearly everywhere: {wrong} of {sample.size} elements sampled "
        f"from the failing groups are wrong (at least {share:.0%} of its {size:,} elements, "
        f"{_CONFIDENCE:.0%} confidence)." + (f" {pattern}" if pattern else "")
    )
    ctx.diagnostics.append(Diagnostic(
        "widespread", Severity.NOTE,
        f"{var.name}: localisation stopped after {search.tests} directional tests, as most "
        f"groups failed; mode='full' names every wrong element (about {full:,} forward "
        "passes).",
    ))


def _lower_bound(wrong: int, sampled: int) -> float:
    """The share ``p`` of wrong elements below which seeing ``wrong`` of ``sampled`` has
    probability under ``1 − _CONFIDENCE`` (the one-sided Clopper–Pearson bound)."""

    def at_least(p: float) -> float:  # P(at least `wrong` of `sampled` wrong | share p)
        return sum(math.comb(sampled, k) * p**k * (1 - p) ** (sampled - k)
                   for k in range(wrong, sampled + 1))

    low, high = 0.0, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if at_least(middle) < 1 - _CONFIDENCE else (low, middle)
    return low


def _stopped_at_budget(
    var: Variable, ctx: Context, outcome: Outcome, unlocalised: NDArray[np.intp],
    test_cost: int, per_element: int,
) -> Outcome:
    """A direction failed but the budget ran out: FAILED, and how to go on.

    The group the failing direction was narrowed to is marked unresolved (not verified).
    """
    count = int(unlocalised.size)
    needed = test_cost * math.ceil(math.log2(max(count, 2))) + per_element
    ctx.diagnostics.append(Diagnostic(
        "budget-stopped", Severity.ERROR,
        f"{var.name}: a random direction fails, so its gradient is wrong somewhere among "
        f"{count:,} elements, but max_evaluations={ctx.options.max_evaluations:,} stopped "
        f"the search before naming them. Raise max_evaluations (at least {needed:,} more "
        "forward passes) to have them named, or check fewer elements (wrt=...).",
    ))
    status = outcome.result.status.copy().reshape(-1)
    status[unlocalised] = np.where(status[unlocalised] == Status.UNCHECKED,
                                   Status.UNRESOLVED, status[unlocalised])
    label = f"d{var.name}" if var.role == "parameter" else f"the gradient of {var.name}"
    result = replace(outcome.result, status=status.reshape(outcome.result.status.shape))
    return replace(
        outcome, result=result, method=f"{outcome.method}, stopped at max_evaluations",
        diagnosis=outcome.diagnosis or (
            f"{label} is wrong somewhere among {count:,} elements (a random direction over "
            "them fails); max_evaluations stopped the search before naming them."),
    )


def _vouched(
    var: Variable,
    ctx: Context,
    verified: Outcome | None,
    unverified: NDArray[np.intp],
    failing: list[int],
    tolerance: Tolerance,
    label: str,
) -> Outcome:
    """Elements checked one by one keep their verdict; the rest passed their directions."""
    analytic = ctx.analytic.gradients[var.name]
    if verified is None:
        nothing = np.zeros(var.value.shape)
        numerical = NumericalGradient(
            nothing, nothing, "fast", 0, None, None, None, np.zeros(var.value.shape, dtype=bool)
        )
        result = compare(analytic, numerical, tolerance)
    else:
        numerical, result = verified.numerical, verified.result
        label = f"{label}, {int(numerical.checked.sum())} by {verified.method}"
    status = result.status.copy().reshape(-1)
    if not failing:
        status[unverified] = Status.OK  # vouched for by the passing directions
    numerical = replace(numerical, value=np.where(numerical.checked, numerical.value, np.nan))
    return Outcome(numerical, replace(result, status=status.reshape(result.status.shape)), label)
