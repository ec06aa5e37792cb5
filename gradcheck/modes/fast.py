"""Fast mode: a few random directions, and group testing when one fails.

Each direction costs one engine stencil whatever the variable's size; a failing direction
is split into halves until the wrong elements are found (:mod:`gradcheck.modes.search`),
and those are checked element by element so the report names them like a full check.
When localisation would cost about as much as a full check, the full check decides.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Variable
from gradcheck.engine.coloring import Colouring
from gradcheck.engine.gradient import NumericalGradient
from gradcheck.engine.spec import engine
from gradcheck.modes.context import Context, Outcome
from gradcheck.modes.full import colouring_for, full_check, full_cost, some_elements
from gradcheck.modes.probe import confirming_engine
from gradcheck.modes.search import DirectionalSearch
from gradcheck.verdict.compare import Tolerance, compare
from gradcheck.vocabulary import Diagnostic, Severity, Status

__all__ = ["DIRECTIONS", "fast_check", "screening_cost"]

# Random directions that screen a variable in fast mode.
DIRECTIONS = 2
# Rounds of localisation before the full check decides.
_ROUNDS = 3


def screening_cost(method: str) -> int:
    """Forward passes of fast screening of one variable when nothing is wrong."""
    return DIRECTIONS * engine(method).cost


def _element_cost(ctx: Context, method: str) -> int:
    """Passes to check one element, a complex-step mismatch's confirmation included."""
    cost = engine(method).cost
    if engine(method).arithmetic == "complex":
        cost += engine(confirming_engine(ctx)).cost
    return cost


def fast_check(
    var: Variable, ctx: Context, method: str, colouring: Colouring | None
) -> Outcome:
    """Random directions; on failure, group testing down to elements checked one by one.

    Falls back to a full check of ``var`` when localising would cost about as much.
    """
    analytic = ctx.analytic.gradients[var.name]
    tolerance = ctx.tolerance(var).sized(np.asarray(analytic, dtype=np.float64))
    element_cost = _element_cost(ctx, method)
    search = DirectionalSearch(
        ctx.runners(method), var.name, ctx.dout, analytic,
        tolerance.allowance(np.asarray(analytic, dtype=np.float64)), method, ctx.scale,
        ctx.rng, directions=DIRECTIONS, element_cost=element_cost, eps=ctx.eps,
    )
    limit = full_cost(var, method, colouring) // (2 * element_cost)
    members = np.arange(var.value.size, dtype=np.intp)
    verified: Outcome | None = None
    failing = search.screen(members)
    for _ in range(_ROUNDS):
        if not failing:
            break
        found = search.localize(failing[0], members, limit)
        if found.gave_up or not found.indices.size:
            break  # nothing to pin down: the full check below decides
        part = some_elements(var, ctx, method, found.indices)
        verified = part if verified is None else _merged(verified, part, analytic, tolerance)
        members = np.setdiff1d(members, found.indices, assume_unique=True)
        failing = search.screen(members, only=failing)
    label = f"fast {method}, {search.tests} tests"
    if failing:
        colouring = colouring or colouring_for(var, ctx)
        cost = full_cost(var, method, colouring)
        if cost <= ctx.budget_left():
            outcome = full_check(var, ctx, method, colouring)
            outcome.method = f"{label} → full {outcome.method}"
            return outcome
        ctx.diagnostics.append(Diagnostic(
            "fast-unresolved", Severity.WARNING,
            f"{var.name}: a random direction fails but a full check ({cost:,} passes) "
            "is over max_evaluations; the elements found so far are listed.",
        ))
    return _vouched(var, ctx, verified, members, failing, tolerance, label)


def _merged(first: Outcome, second: Outcome, analytic: NDArray, tolerance: Tolerance) -> Outcome:
    numerical = first.numerical.patched(second.numerical)
    return Outcome(numerical, compare(analytic, numerical, tolerance), second.method)


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
