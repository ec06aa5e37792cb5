"""The check: adapter → analytic pass → numerical engines → comparison → report.

:func:`check` is the pipeline and nothing else; each step lives in its own room:

1. :mod:`gradcheck.conventions` turns the user's object into a target (named arrays to
   differentiate, and working copies to run);
2. :mod:`gradcheck.analytic` runs the user's forward and backward once, with its guards
   (in-place edits, non-determinism, repeatability), and decides the numerical precision;
3. :mod:`gradcheck.modes` covers each variable's elements (full, fast or auto) with the
   engines of :mod:`gradcheck.engine`;
4. :mod:`gradcheck.verdict` judges every element and names the shape of a bug;
5. :mod:`gradcheck.report` holds the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.analytic.attributes import unchecked_arrays, unchecked_diagnostics
from gradcheck.analytic.precision import measure_precision
from gradcheck.analytic.run import AnalyticPass, analytic_pass
from gradcheck.conventions.randomness import global_random_state_kept
from gradcheck.conventions.registry import make_target
from gradcheck.conventions.target import Target, TargetRequest, Variable
from gradcheck.errors import GradientCheckError, UsageError
from gradcheck.modes.auto import differentiate, refuse_over_budget
from gradcheck.modes.context import Context, make_numerics
from gradcheck.modes.kinks import judge_ties, resolve_meeting_kinks
from gradcheck.modes.noise import measure_noise
from gradcheck.modes.probe import complex_step_notes, joint_complex_probe
from gradcheck.options import CheckOptions, resolve_options
from gradcheck.report.records import VariableReport
from gradcheck.report.reports import Report
from gradcheck.verdict.summary import conclusion, variable_report
from gradcheck.vocabulary import Diagnostic, Severity

__all__ = ["assert_gradients", "check"]


def _selected(target: Target, options: CheckOptions) -> list[Variable]:
    """The variables to check: inputs, parameters unless ``params=False``, ``wrt``."""
    chosen = [v for v in target.variables if options.params or v.role == "input"]
    if options.wrt is None:
        return chosen
    known = {v.name for v in target.variables}
    unknown = [name for name in options.wrt if name not in known]
    if unknown:
        raise UsageError(
            f"{target.name}: wrt names {', '.join(unknown)}, which {target.name} does not have; "
            f"its inputs and parameters are: {', '.join(sorted(known)) or 'none'}."
        )
    chosen = [v for v in chosen if v.name in options.wrt]
    if not chosen:
        raise UsageError(
            f"{target.name}: nothing to check: wrt={list(options.wrt)} names only parameters, "
            "and params=False leaves them out."
        )
    return chosen


def check(
    obj: Any,
    *inputs: Any,
    vjp: Callable[..., Any] | None = None,
    grad: Callable[..., Any] | None = None,
    **options: Any,
) -> Report:
    """Compare the analytic gradients of ``obj`` with numerical ones, element by element.

    Never raises for a problem it *finds*; ``report.passed`` says whether all is well.
    Nothing you pass is changed: the check runs on deep copies.

    Parameters
    ----------
    obj : layer, model or function
        A layer with ``forward(*inputs)`` / ``backward(dout)``; a model with ``params``,
        ``loss(x, t)`` and ``gradient(x, t)``; or a function with ``vjp=`` or ``grad=``.
    *inputs : array_like
        The point to check at (forward's arguments, or the model's data).
    vjp : callable, optional
        ``vjp(dout, *inputs)`` returning one gradient per input, for a function ``obj``.
    grad : callable, optional
        ``grad(x)`` returning the gradient of a scalar function ``obj``.
    **options
        See :class:`gradcheck.options.CheckOptions`: ``method``, ``mode``, ``rtol``,
        ``atol``, ``seed``, ``wrt``, ``params``, ``allow_inplace``, ``strict``,
        ``forward_kwargs``, ``executor``...

        ``mode="full"`` computes every element's derivative, perturbing groups of
        independent elements together when a verified sparsity pattern allows (an
        elementwise layer costs a few passes whatever its size). ``mode="fast"`` tests a
        few random directions and, when one fails, localizes the wrong elements by group
        testing and checks them one by one. ``mode="auto"`` picks per variable.

    Returns
    -------
    Report
        ``str(report)`` is a readable table; ``report.to_dict()`` is JSON-ready.

    Raises
    ------
    CheckError
        When ``obj`` cannot be checked as given (malformed ``backward``, bad inputs);
        :class:`gradcheck.OptionError` for an invalid option.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> from reference_layers import Sigmoid
    >>> gradcheck.check(Sigmoid(), np.linspace(-2, 2, 6).reshape(2, 3)).passed
    True
    """
    opts = resolve_options(**options)
    with global_random_state_kept():
        target = make_target(
            TargetRequest(
                obj, inputs, vjp=vjp, grad=grad, forward_kwargs=opts.forward_kwargs, seed=opts.seed
            )
        )
        return _check_target(target, opts, look_nearby=True)


def _check_target(target: Target, opts: CheckOptions, *, look_nearby: bool) -> Report:
    """The pipeline after the adapter: analytic pass, numerics, verdict, report.

    ``look_nearby``: where every mismatch sits where several kinks meet, check again at
    nearby points (:mod:`gradcheck.modes.kinks`) — which do not look nearby in turn.
    """
    started = time.perf_counter()
    chosen = _selected(target, opts)
    analytic = analytic_pass(target, seed=opts.seed, allow_inplace=opts.allow_inplace)
    refuse_over_budget(target, chosen, opts, analytic)
    diagnostics = list(analytic.diagnostics)
    reports, evaluations = _compare_all(target, chosen, analytic, opts, diagnostics, look_nearby)
    # What the output depends on but no gradient was paired with. Nudging tells constants
    # from forgotten parameters only when forward is repeatable; a recheck at a nearby
    # point (not looking nearby) judges gradients only.
    unchecked = (
        unchecked_arrays(target, analytic.output) if analytic.deterministic and look_nearby else []
    )
    diagnostics += unchecked_diagnostics(target, unchecked)
    return Report(
        target=target.name,
        kind=target.kind,
        variables=reports,
        diagnostics=diagnostics,
        constants=list(target.constants),
        notes=list(target.notes),
        seed=opts.seed,
        options=opts.to_dict(),
        evaluations=evaluations,
        seconds=time.perf_counter() - started,
        conclusion=conclusion(f"{target.name}.{target.backward_call}", reports),
        convention=target.convention_name,
        unchecked=unchecked,
    )


def _compare_all(
    target: Target,
    chosen: list[Variable],
    analytic: AnalyticPass,
    options: CheckOptions,
    diagnostics: list[Diagnostic],
    look_nearby: bool,
) -> tuple[list[VariableReport], int]:
    """Differentiate and judge every chosen variable; return their reports and the passes."""
    if not analytic.deterministic:
        diagnostics.append(
            Diagnostic(
                "skipped",
                Severity.WARNING,
                "gradients were not compared: a non-deterministic forward makes every "
                "numerical derivative meaningless.",
            )
        )
        return [], 0
    precision = measure_precision(target, analytic)
    diagnostics += precision.notes
    numerics = make_numerics(target, options, analytic, precision.real_dtype)
    ctx = Context(
        target=target,
        numerics=numerics,
        analytic=analytic,
        precision=precision,
        options=options,
        scale=_rounding_scale(target, analytic),
        rng=np.random.default_rng(options.seed),
        diagnostics=diagnostics,
    )
    names = [v.name for v in target.variables]
    ctx.noise = measure_noise(numerics.real.main, names, ctx.dout, ctx.rng, ctx.eps)
    ctx.complex_for_all = joint_complex_probe(chosen, ctx)
    outcomes = {var.name: differentiate(var, ctx) for var in chosen}
    diagnostics += complex_step_notes(ctx)
    ties = judge_ties(ctx, outcomes)
    outcomes = ties.outcomes
    evaluations = numerics.passes + ties.evaluations
    if look_nearby:
        resolution = resolve_meeting_kinks(
            ctx,
            outcomes,
            lambda moved: _check_target(moved, options, look_nearby=False),
            ties.confirmed,
        )
        outcomes = resolution.outcomes
        diagnostics += resolution.diagnostics
        evaluations = numerics.passes + ties.evaluations + resolution.evaluations
    batch_size = target.batch_size()
    reports = [
        variable_report(
            var,
            analytic.gradients[var.name],
            outcomes[var.name].numerical,
            outcomes[var.name].result,
            outcomes[var.name].method,
            precision.real_dtype,
            batch_size,
            outcomes[var.name].diagnosis,
            outcomes[var.name].screening,
            precision.wide.get(var.name),
        )
        for var in chosen
    ]
    return reports, evaluations


def _rounding_scale(target: Target, analytic: AnalyticPass) -> float:
    """The size of the terms ``L = Σ dout ⊙ f`` rounds: the output's, and every variable's
    ``|x|·|∂L/∂x|`` (a forward pass computes ``f`` exactly at a point off by about
    ``ε·|x|``, so ``L`` is off by about ``ε·Σ|x·∂L/∂x|``: 1e5 added to every input of a
    LayerNorm makes its forward pass round 1e5 times more than its output suggests)."""
    total = float(np.sum(np.abs(analytic.dout.astype(np.float64) * analytic.output)))
    for var in target.variables:
        gradient = np.asarray(analytic.gradients[var.name], dtype=np.float64)
        total += float(np.sum(np.abs(var.value.astype(np.float64) * gradient)))
    return total


def assert_gradients(
    obj: Any,
    *inputs: Any,
    vjp: Callable[..., Any] | None = None,
    grad: Callable[..., Any] | None = None,
    **options: Any,
) -> Report:
    """Like :func:`check`, but raise :class:`GradientCheckError` when the check fails.

    Returns
    -------
    Report
        The (passing) report.

    Raises
    ------
    GradientCheckError
        An ``AssertionError`` whose message is the report.
    """
    report = check(obj, *inputs, vjp=vjp, grad=grad, **options)
    if not report.passed:
        raise GradientCheckError(report)
    return report
