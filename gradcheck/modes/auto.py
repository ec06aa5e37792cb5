"""Choosing the mode per variable, and refusing a full check over the budget.

``mode="auto"`` checks a variable in full when that costs at most a few forward passes
more than its fast check (:data:`_FREE_PASSES`), counted in passes of the variable's own
engine: a variable of 50 elements that each need a pass of a whole network is not
"small" (the chapter's biases took 75 % of an auto check when "small" meant 256 passes),
while a whole elementwise layer is one colour. Both modes run the same engine, so the
time of a pass cancels out of the comparison, and the choice (hence the report) does not
depend on how busy the machine is. As a variable grows, its cost moves from full to fast
without a cliff: the step is at most those few passes. Colouring candidates (and their
NaN probes) are built only when even the best colouring the shapes allow could be chosen.

Any mode falls back to fast when a full check would exceed what is left of
``max_evaluations``; ``mode="full"`` asked for explicitly is refused up front when even
the best colouring could not fit.
"""

from __future__ import annotations

from gradcheck.analytic.run import AnalyticPass
from gradcheck.conventions.target import Target, Variable
from gradcheck.engine.coloring import Colouring, fewest_colours
from gradcheck.engine.spec import engine
from gradcheck.errors import UsageError
from gradcheck.modes.context import Context, Outcome
from gradcheck.modes.fast import fast_check, screening_cost
from gradcheck.modes.full import colouring_for, full_check, full_cost
from gradcheck.modes.probe import PROBE_COST, engine_for
from gradcheck.options import CheckOptions
from gradcheck.report.formatting import format_duration
from gradcheck.vocabulary import Diagnostic, Mode, Severity

__all__ = ["differentiate", "refuse_over_budget"]

# mode="auto" checks a variable in full when that costs at most this many passes more
# than a fast check: every element's numbers for about the cost of the analytic pass.
_FREE_PASSES = 8


def differentiate(var: Variable, ctx: Context) -> Outcome:
    """Check ``var`` in the mode the options ask for (``auto`` picks per variable)."""
    method = engine_for(var, ctx)
    mode: Mode = ctx.options.mode
    colouring: Colouring | None = None
    if mode == "auto":
        mode, colouring = _cheaper(var, ctx, method)
    elif mode == "full":
        colouring = colouring_for(var, ctx)
    cost = full_cost(var, method, colouring)
    if mode == "full" and cost > ctx.budget_left():
        ctx.diagnostics.append(
            Diagnostic(
                "fast-instead",
                Severity.NOTE,
                f"{var.name}: a full check needs about {cost:,} more forward passes, over "
                "what is left of max_evaluations; checked in fast mode instead.",
            )
        )
        mode = "fast"
    if mode == "fast":
        return fast_check(var, ctx, method, colouring)
    return full_check(var, ctx, method, colouring)


def _cheaper(var: Variable, ctx: Context, method: str) -> tuple[Mode, Colouring | None]:
    """``"full"`` when it costs at most :data:`_FREE_PASSES` more than fast, with the
    colouring it would use (built only when the best one the shapes allow could do)."""
    fast = screening_cost(method) + (engine(method).arithmetic == "real")  # + f(x)
    best = fewest_colours(tuple(var.value.shape), tuple(ctx.analytic.output.shape))
    if full_cost(var, method, best) > fast + _FREE_PASSES:
        return "fast", None
    colouring = colouring_for(var, ctx) if best < var.value.size else None
    return (
        "full" if full_cost(var, method, colouring) <= fast + _FREE_PASSES else "fast"
    ), colouring


def refuse_over_budget(
    target: Target, chosen: list[Variable], options: CheckOptions, analytic: AnalyticPass
) -> None:
    """Refuse a ``mode="full"`` check that would need more than ``max_evaluations`` passes.

    The estimate is optimistic about colouring (the pattern with the fewest colours that
    the shapes allow); ``auto`` and ``fast`` adapt per variable and are not refused.

    Raises
    ------
    UsageError
        With the estimate, its duration, and what to do instead.
    """
    if options.mode != "full":
        return
    method = "central" if options.method == "auto" else options.method
    output_shape = tuple(analytic.output.shape)
    needed = sum(
        fewest_colours(tuple(var.value.shape), output_shape) * engine(method).cost + 1
        for var in chosen
    )
    if needed <= options.max_evaluations:
        return
    seconds = analytic.forward_seconds
    fast = len(chosen) * (PROBE_COST + screening_cost(method))
    raise UsageError(
        f"{target.name}: a full check needs about {needed:,} forward passes "
        f"(~{format_duration(needed * seconds)} at {format_duration(seconds)} each), over "
        f"max_evaluations={options.max_evaluations:,}. mode='fast' needs about {fast:,} "
        f"(~{format_duration(fast * seconds)}) when the gradients are right, and still names "
        "the wrong elements when they are not. Or check fewer elements (wrt=..., smaller "
        "inputs), or raise max_evaluations."
    )
