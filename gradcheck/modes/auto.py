"""Choosing the mode per variable, and refusing a full check over the budget.

``mode="auto"`` checks a variable in full when that costs little — small variables get
every element's numbers — and in fast mode otherwise. Any mode falls back to fast when a
full check would exceed what is left of ``max_evaluations``; ``mode="full"`` asked for
explicitly is refused up front when even the best colouring could not fit.
"""

from __future__ import annotations

from gradcheck.analytic.run import AnalyticPass
from gradcheck.conventions.target import Target, Variable
from gradcheck.engine.coloring import fewest_colours
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

# mode="auto" checks a variable in full when that costs at most this many passes (or a
# few times what its fast screening costs): small variables get every element's numbers.
_AUTO_FULL_PASSES = 256
_AUTO_FULL_FACTOR = 4


def differentiate(var: Variable, ctx: Context) -> Outcome:
    """Check ``var`` in the mode the options ask for (``auto`` picks per variable)."""
    method = engine_for(var, ctx)
    colouring = colouring_for(var, ctx) if ctx.options.mode != "fast" else None
    cost = full_cost(var, method, colouring)
    mode: Mode = ctx.options.mode
    if mode == "auto":
        cheap = max(_AUTO_FULL_PASSES, _AUTO_FULL_FACTOR * screening_cost(method))
        mode = "full" if cost <= cheap else "fast"
    if mode == "full" and cost > ctx.budget_left():
        ctx.diagnostics.append(Diagnostic(
            "fast-instead", Severity.NOTE,
            f"{var.name}: a full check needs about {cost:,} more forward passes, over "
            "what is left of max_evaluations; checked in fast mode instead.",
        ))
        mode = "fast"
    if mode == "fast":
        return fast_check(var, ctx, method, colouring)
    return full_check(var, ctx, method, colouring)


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
