"""The check: adapter → analytic pass → numerical engines → comparison → report.

This module only orchestrates; each step lives in its own module (DESIGN.md §5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.analytic.run import (
    AnalyticPass,
    analytic_pass,
    global_random_state_kept,
    unexplained_attributes,
)
from gradcheck.conventions.targets import Instance, Target, TargetRequest, Variable, make_target
from gradcheck.engine.coloring import (
    Colouring,
    candidates,
    coloured_gradient,
    fewest_colours,
    nan_consistent,
)
from gradcheck.engine.numeric import (
    NumericalGradient,
    complex_step,
    stencil_derivatives,
    supports_complex_step,
)
from gradcheck.engine.passes import Runner, Runners, chunks
from gradcheck.engine.search import TEST_COST, DirectionalSearch
from gradcheck.errors import GradientCheckError, UsageError
from gradcheck.options import CheckOptions, resolve_options
from gradcheck.report.formatting import format_duration
from gradcheck.report.reports import Report, VariableReport, findings
from gradcheck.verdict.compare import (
    Comparison,
    Tolerance,
    compare,
    default_tolerance,
    kink_mask,
)
from gradcheck.verdict.patterns import describe_mismatch, describe_swap
from gradcheck.vocabulary import Diagnostic, Severity, Status

__all__ = ["assert_gradients", "check"]

# Forward passes per element for each engine (the complex step needs one).
_COST = {"central": 4, "richardson": 6, "complex": 1}
# Passes of the complex-step probe (one complex, four real).
_PROBE_COST = 5
# Random directions that screen a variable in fast mode.
_DIRECTIONS = 2
# mode="auto" checks a variable in full when that costs at most this many passes (or a
# few times what its fast screening costs): small variables get every element's numbers.
_AUTO_FULL_PASSES = 256
_AUTO_FULL_FACTOR = 4
# Colour a variable only when that at least halves its passes; try at most this many
# patterns (a NaN probe of two passes each).
_COLOUR_GAIN = 2
_COLOUR_TRIES = 24
# Chunks of elements per executor in the element-by-element path.
_TASKS = 16


def _working_copy(target: Target, dtype: Any, copy_inputs: bool) -> Instance:
    """A fresh instance for the numerical side (module level, so executors can ship it)."""
    instance = target.instantiate(dtype)
    instance.copy_inputs = copy_inputs
    return instance


@dataclass
class _Numerics:
    """The working copies the numerical side runs on, and in which dtype."""

    real: Runners
    real_dtype: np.dtype
    complex: Runners | None
    notes: list[Diagnostic]

    @property
    def passes(self) -> int:
        """Forward passes of the numerical side so far."""
        return self.real.passes + (self.complex.passes if self.complex else 0)


def _numeric_instances(
    target: Target, options: CheckOptions, inplace_forward: bool
) -> _Numerics:
    """Run the numerical side in float64 whenever the layer accepts it."""
    notes: list[Diagnostic] = []
    narrow = [v for v in target.variables if np.dtype(v.dtype).itemsize < 8]
    real_dtype = np.dtype(np.float64)
    if narrow:
        output = np.asarray(target.instantiate(np.float64).forward())
        if output.dtype != np.float64:
            real_dtype = np.dtype(narrow[0].dtype)
            notes.append(Diagnostic(
                "narrow-numerics", Severity.NOTE,
                f"{target.name} computes in {output.dtype} even for float64 input, so the "
                "numerical side runs in that precision; its error estimate widens the "
                "tolerance accordingly.",
            ))
    dtype = None if real_dtype != np.float64 else np.float64
    real = Runners(partial(_working_copy, target, dtype, inplace_forward), options.executor)
    complex_runners = None
    if options.method in ("auto", "complex"):
        complex_runners = Runners(
            partial(_working_copy, target, np.complex128, inplace_forward), options.executor
        )
    return _Numerics(real, real_dtype, complex_runners, notes)


@dataclass
class _Context:
    """Everything the per-variable work shares within one check."""

    target: Target
    numerics: _Numerics
    analytic: AnalyticPass
    options: CheckOptions
    scale: float
    rng: np.random.Generator
    diagnostics: list[Diagnostic]
    complex_for_all: bool = False
    rounding: dict[str, NDArray] = field(default_factory=dict)

    @property
    def dout(self) -> NDArray:
        return self.analytic.dout

    def budget_left(self) -> int:
        return self.options.max_evaluations - self.numerics.passes

    def runners(self, engine: str) -> Runners:
        if engine == "complex":
            assert self.numerics.complex is not None
            return self.numerics.complex
        return self.numerics.real


@dataclass
class _Outcome:
    """One variable's numerical gradient, its comparison, and how it was obtained."""

    numerical: NumericalGradient
    result: Comparison
    method: str


def _joint_complex_probe(chosen: list[Variable], ctx: _Context) -> bool:
    """One complex-step probe for all chosen variables at once (five passes in all).

    When it fails, each variable is probed on its own: a layer may be analytic in some
    inputs and not in others.
    """
    if ctx.options.method not in ("auto", "complex") or len(chosen) < 2:
        return False
    runner = ctx.runners("complex").main
    real = ctx.numerics.real.main.arrays
    sizes = [real[v.name].size for v in chosen]
    ends = np.cumsum(sizes)
    loss = runner.loss(chosen[0].name, ctx.dout)

    def joint(z: NDArray) -> complex | float:
        for var, end, size in zip(chosen, ends, sizes, strict=True):
            np.copyto(runner.arrays[var.name], z[end - size:end].reshape(var.value.shape))
        return loss(runner.arrays[chosen[0].name])

    point = np.concatenate([real[v.name].ravel() for v in chosen])
    try:
        usable, _ = supports_complex_step(joint, point, ctx.rng)
    finally:
        for var in chosen:
            np.copyto(runner.arrays[var.name], real[var.name])
    return usable


def _engine(var: Variable, ctx: _Context) -> str:
    """The engine for ``var``: the complex step when the layer supports it, else a stencil."""
    method = ctx.options.method
    if method not in ("auto", "complex"):
        return method
    if ctx.complex_for_all:
        return "complex"
    complex_runners = ctx.runners("complex")
    real_work = ctx.numerics.real.main.arrays[var.name]
    complex_loss = complex_runners.main.loss(var.name, ctx.dout)
    usable, reason = supports_complex_step(complex_loss, real_work.copy(), ctx.rng)
    np.copyto(complex_runners.main.arrays[var.name], real_work)
    if usable:
        return "complex"
    if method == "complex":
        raise UsageError(f"{var.name}: method='complex' cannot be used: {reason}.")
    ctx.diagnostics.append(
        Diagnostic(
            "no-complex-step", Severity.NOTE, f"complex step not used for {var.name}: {reason}"
        )
    )
    return "central"


def _confirming_engine(ctx: _Context) -> str:
    """The real stencil that confirms complex-step mismatches (and recognises kinks)."""
    return "richardson" if ctx.options.method == "richardson" else "central"


# -- full mode ------------------------------------------------------------------------


def _colouring(var: Variable, ctx: _Context) -> Colouring | None:
    """A block pattern worth using for ``var`` that survives the NaN probe, if any."""
    output_shape = tuple(ctx.analytic.output.shape)
    worth = candidates(
        tuple(var.value.shape), output_shape,
        max_colours=var.value.size // _COLOUR_GAIN, limit=_COLOUR_TRIES,
    )
    for candidate in worth:
        if nan_consistent(ctx.numerics.real.main, var.name, candidate, ctx.rng):
            return candidate
    return None


def _full_cost(var: Variable, engine: str, colouring: Colouring | None) -> int:
    """Forward passes of a full check of ``var`` (coloured when a pattern is known)."""
    if colouring is None:
        return var.value.size * _COST[engine] + 1
    return colouring.colours * _COST[engine] + 6


def _plain(var: Variable, ctx: _Context, engine: str, indices: NDArray | None) -> NumericalGradient:
    """Element by element (``indices`` only, or all), in chunks when there is an executor."""
    runners = ctx.runners(engine)
    flat = np.arange(var.value.size) if indices is None else np.asarray(indices, dtype=np.intp)
    pieces = chunks(flat.size, _TASKS if runners.parallel else 1)

    def task(runner: Runner, part: NDArray[np.intp]) -> NumericalGradient:
        work = runner.arrays[var.name]
        loss = runner.loss(var.name, ctx.dout)
        if engine == "complex":
            return complex_step(loss, work, indices=flat[part])
        return stencil_derivatives(loss, work, method=engine, indices=flat[part], scale=ctx.scale)

    parts = runners.map(task, pieces)
    merged = parts[0]
    for part in parts[1:]:
        merged = _patched(merged, part)
    return merged


def _whole(
    var: Variable, ctx: _Context, engine: str, colouring: Colouring | None
) -> tuple[NumericalGradient, str]:
    """Every element of ``var``: coloured when a pattern holds, else one by one."""
    if colouring is not None:
        coloured = coloured_gradient(
            ctx.runners(engine), var.name, colouring, ctx.dout,
            method=engine, scale=ctx.scale, rng=ctx.rng,
        )
        if coloured.numerical is not None:
            colours = colouring.colours
            plural = "" if colours == 1 else "s"
            return coloured.numerical, f"{engine}, {colours} colour{plural} ({colouring.name})"
        ctx.diagnostics.append(Diagnostic(
            "colouring-refuted", Severity.NOTE,
            f"{var.name}: {coloured.reason}; checked element by element instead.",
        ))
    return _plain(var, ctx, engine, None), engine


def _full(
    var: Variable,
    ctx: _Context,
    engine: str,
    colouring: Colouring | None,
    indices: NDArray | None = None,
) -> _Outcome:
    """The numerical gradient of ``var`` (or of ``indices``) and its comparison.

    A complex-step mismatch is confirmed by a real stencil, which also recognises kinks.
    """
    analytic = ctx.analytic.gradients[var.name]
    if indices is None:
        numerical, label = _whole(var, ctx, engine, colouring)
    else:
        numerical, label = _plain(var, ctx, engine, indices), engine
    # A check of some elements only sizes atol by the analytic gradient (DESIGN §3.3).
    tolerance = _tolerance(var, ctx, numerical.value if indices is None else analytic)
    result = compare(analytic, numerical, tolerance)
    suspects = np.flatnonzero(result.status == Status.MISMATCH)
    if engine == "complex" and suspects.size:
        confirm = _confirming_engine(ctx)
        if colouring is not None and colouring.colours < suspects.size:
            again, _ = _whole(var, ctx, confirm, colouring)
        else:
            again = _plain(var, ctx, confirm, suspects)
        mask = np.zeros(var.value.size, dtype=bool)
        mask[suspects] = True
        numerical = _patched(numerical, replace(again, checked=again.checked & mask.reshape(
            var.value.shape)))
        result = compare(analytic, numerical, tolerance)
        label = f"{label}, +{suspects.size} {confirm}"
    return _Outcome(numerical, result, label)


def _tolerance(var: Variable, ctx: _Context, values: NDArray) -> Tolerance:
    opts = ctx.options
    return default_tolerance(
        var.dtype, values, rtol=opts.rtol, atol=opts.atol, strict=opts.strict,
        rounding=ctx.rounding.get(var.name, 0.0),
    )


def _analytic_rounding(
    target: Target, analytic: AnalyticPass, numerics: _Numerics
) -> dict[str, NDArray]:
    """How much a narrow (float32) backward rounds: its gradients minus float64 ones.

    The same code run in float64 gives the same formula without the rounding, so the
    difference is rounding alone (a formula bug is in both and cancels out). Where a
    gradient is tiny next to the terms it sums, no tolerance relative to the gradient
    covers float32 rounding; this measurement does. Empty when nothing is narrow or the
    layer does not run in float64.
    """
    narrow = [v for v in target.variables if np.dtype(v.dtype).itemsize < 8]
    if not narrow or numerics.real_dtype != np.float64:
        return {}
    instance = target.instantiate(np.float64)
    instance.copy_inputs = analytic.inplace_forward
    try:
        instance.forward()
        raw = instance.backward(analytic.dout.astype(np.float64))
        wide = {v.name: np.asarray(raw[v.name], dtype=np.float64) for v in narrow}
    except Exception:  # the float64 run is a refinement: without it, no allowance
        return {}
    return {
        name: np.abs(np.asarray(analytic.gradients[name], dtype=np.float64) - gradient)
        for name, gradient in wide.items()
        if gradient.shape == analytic.gradients[name].shape
    }


# -- fast mode --------------------------------------------------------------------------


def _fast_cost_passes(engine: str) -> int:
    """Forward passes of fast screening of one variable when nothing is wrong."""
    return _DIRECTIONS * TEST_COST[engine]


def _fast(var: Variable, ctx: _Context, engine: str, colouring: Colouring | None) -> _Outcome:
    """Random directions; on failure, group testing down to elements checked one by one.

    Falls back to a full check of ``var`` when localizing would cost about as much.
    """
    analytic = ctx.analytic.gradients[var.name]
    tolerance = _tolerance(var, ctx, analytic)
    a = np.asarray(analytic, dtype=np.float64)
    element_cost = _COST[engine] + (_COST[_confirming_engine(ctx)] if engine == "complex" else 0)
    search = DirectionalSearch(
        ctx.runners(engine), var.name, ctx.dout, analytic,
        tolerance.allowance(a), engine, ctx.scale, ctx.rng,
        directions=_DIRECTIONS, element_cost=element_cost,
    )
    full_cost = _full_cost(var, engine, colouring)
    limit = full_cost // (2 * element_cost)
    members = np.arange(var.value.size, dtype=np.intp)
    verified: _Outcome | None = None
    failing = search.screen(members)
    for _ in range(3):
        if not failing:
            break
        found = search.localize(failing[0], members, limit)
        if found.gave_up or not found.indices.size:
            break  # nothing to pin down: the full check below decides
        part = _full(var, ctx, engine, None, indices=found.indices)
        verified = part if verified is None else _merged_outcome(verified, part, a, tolerance)
        members = np.setdiff1d(members, found.indices, assume_unique=True)
        failing = search.screen(members, only=failing)
    label = f"fast {engine}, {search.tests} tests"
    if failing:
        colouring = colouring or _colouring(var, ctx)
        full_cost = _full_cost(var, engine, colouring)
        if full_cost <= ctx.budget_left():
            outcome = _full(var, ctx, engine, colouring)
            outcome.method = f"{label} → full {outcome.method}"
            return outcome
        ctx.diagnostics.append(Diagnostic(
            "fast-unresolved", Severity.WARNING,
            f"{var.name}: a random direction fails but a full check ({full_cost:,} passes) "
            "is over max_evaluations; the elements found so far are listed.",
        ))
    return _fast_outcome(var, ctx, verified, members, failing, tolerance, label)


def _merged_outcome(
    first: _Outcome, second: _Outcome, analytic: NDArray, tolerance: Tolerance
) -> _Outcome:
    numerical = _patched(first.numerical, second.numerical)
    return _Outcome(numerical, compare(analytic, numerical, tolerance), second.method)


def _fast_outcome(
    var: Variable,
    ctx: _Context,
    verified: _Outcome | None,
    unverified: NDArray[np.intp],
    failing: list[int],
    tolerance: Tolerance,
    label: str,
) -> _Outcome:
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
    return _Outcome(numerical, replace(result, status=status.reshape(result.status.shape)), label)


# -- mode dispatch ----------------------------------------------------------------------


def _differentiate(var: Variable, ctx: _Context) -> _Outcome:
    """Check ``var`` in the mode the options ask for (``auto`` picks per variable)."""
    engine = _engine(var, ctx)
    colouring = _colouring(var, ctx) if ctx.options.mode != "fast" else None
    mode = ctx.options.mode
    full_cost = _full_cost(var, engine, colouring)
    if mode == "auto":
        cheap = max(_AUTO_FULL_PASSES, _AUTO_FULL_FACTOR * _fast_cost_passes(engine))
        mode = "full" if full_cost <= cheap else "fast"
    if mode == "full" and full_cost > ctx.budget_left():
        ctx.diagnostics.append(Diagnostic(
            "fast-instead", Severity.NOTE,
            f"{var.name}: a full check needs about {full_cost:,} more forward passes, over "
            "what is left of max_evaluations; checked in fast mode instead.",
        ))
        mode = "fast"
    if mode == "fast":
        return _fast(var, ctx, engine, colouring)
    return _full(var, ctx, engine, colouring)


def _patched(base: NumericalGradient, patch: NumericalGradient) -> NumericalGradient:
    """``base`` with the elements that ``patch`` checked replaced by ``patch``'s values."""
    where = patch.checked

    def side(part: NDArray | None, fallback: NDArray) -> NDArray:
        return fallback if part is None else part

    return NumericalGradient(
        value=np.where(where, patch.value, base.value),
        error=np.where(where, patch.error, base.error),
        method=base.method,
        evaluations=base.evaluations + patch.evaluations,
        left=np.where(where, side(patch.left, patch.value), side(base.left, base.value)),
        right=np.where(where, side(patch.right, patch.value), side(base.right, base.value)),
        side_error=np.where(
            where,
            side(patch.side_error, np.zeros_like(patch.value)),
            side(base.side_error, np.zeros_like(base.value)),
        ),
        checked=base.checked | where,
    )


def _batch_size(target: Target) -> int | None:
    for var in target.variables:
        if var.role == "input" and var.value.ndim >= 2:
            return int(var.value.shape[0])
    data = getattr(target, "data", None)
    if data and isinstance(data[0], np.ndarray) and data[0].ndim >= 2:
        return int(data[0].shape[0])
    return None


def _variable_report(
    var: Variable,
    analytic: NDArray,
    numerical: NumericalGradient,
    result: Comparison,
    method: str,
    numeric_dtype: np.dtype,
    batch_size: int | None,
) -> VariableReport:
    wrong = result.status == Status.MISMATCH
    a = np.asarray(analytic, dtype=np.float64)
    # In fast mode some elements are vouched for by their directions, not computed.
    checked = (result.status != Status.UNCHECKED) & numerical.checked
    undefined = ~np.isfinite(numerical.value) & numerical.checked
    compared = checked & ~undefined & (result.status != Status.KINK)
    patterns = np.where(numerical.checked, numerical.value, a)
    label = f"d{var.name}" if var.role == "parameter" else f"the gradient of {var.name}"
    return VariableReport(
        name=var.name,
        role=var.role,
        shape=tuple(int(s) for s in var.value.shape),
        dtype=str(var.dtype),
        method=method,
        numeric_dtype=str(numeric_dtype),
        checked=result.checked,
        mismatches=result.mismatches,
        kinks=result.kinks,
        undefined=int(undefined.sum()),
        max_abs_error=float(result.abs_error[compared].max()) if compared.any() else 0.0,
        max_rel_error=float(result.rel_error[compared].max()) if compared.any() else 0.0,
        rtol=result.tolerance.rtol,
        atol=result.tolerance.atol,
        worst=findings(a, numerical.value, numerical.error, result.abs_error, wrong, "mismatch"),
        diagnosis=_kink_sentence(label, wrong, numerical, result)
        or describe_mismatch(label, a, patterns, wrong, batch_size=batch_size),
        analytic=a,
        numerical=numerical.value,
        error=numerical.error,
        threshold=result.threshold,
        status=result.status,
    )


def _kink_sentence(
    label: str, wrong: NDArray[np.bool_], numerical: NumericalGradient, result: Comparison
) -> str | None:
    """Say so when every wrong element sits at a kink: that verdict needs a second look."""
    at_kinks = kink_mask(numerical, result.tolerance)
    if not wrong.any() or at_kinks is None or not np.all(at_kinks[wrong]):
        return None
    return (
        f"every wrong element of {label} sits at a kink, with a value outside both one-sided "
        "derivatives: wrong at a single kink (ReLU at 0); where several kinks meet (an "
        "all-zero sample, zero bias) it can be valid — recheck away from kinks."
    )


def _selected(target: Target, options: CheckOptions) -> list[Variable]:
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


def _budget(
    target: Target, chosen: list[Variable], options: CheckOptions, analytic: AnalyticPass
) -> None:
    """Refuse a full check that would need more than ``max_evaluations`` passes.

    The estimate is optimistic about colouring (the pattern with the fewest colours that
    the shapes allow); ``auto`` and ``fast`` adapt per variable and are not refused.
    """
    if options.mode != "full":
        return
    engine = "central" if options.method == "auto" else options.method
    output_shape = tuple(analytic.output.shape)
    needed = 0
    for var in chosen:
        needed += fewest_colours(tuple(var.value.shape), output_shape) * _COST[engine] + 1
    if needed <= options.max_evaluations:
        return
    seconds = analytic.forward_seconds
    fast = len(chosen) * (_PROBE_COST + _fast_cost_passes(engine))
    raise UsageError(
        f"{target.name}: a full check needs about {needed:,} forward passes "
        f"(~{format_duration(needed * seconds)} at {format_duration(seconds)} each), over "
        f"max_evaluations={options.max_evaluations:,}. mode='fast' needs about {fast:,} "
        f"(~{format_duration(fast * seconds)}) when the gradients are right, and still names "
        "the wrong elements when they are not. Or check fewer elements (wrt=..., smaller "
        "inputs), or raise max_evaluations."
    )


def _conclusion(target: Target, reports: list[VariableReport], swap: str | None) -> str | None:
    if swap:
        return f"{target.name}.{target.backward_call}: {swap}"
    for var in reports:
        if not var.passed and var.diagnosis:
            return f"{target.name}.{target.backward_call}: {var.diagnosis}"
    return None


def _find_swap(reports: list[VariableReport]) -> str | None:
    failing = [v for v in reports if not v.passed]
    for i, first in enumerate(failing):
        for second in failing[i + 1:]:
            found = describe_swap(
                (first.name, first.analytic, first.numerical),
                (second.name, second.analytic, second.numerical),
            )
            if found:
                return found
    return None


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
    started = time.perf_counter()
    with global_random_state_kept():
        target = make_target(
            TargetRequest(obj, inputs, vjp=vjp, grad=grad, forward_kwargs=opts.forward_kwargs)
        )
        chosen = _selected(target, opts)
        analytic = analytic_pass(target, seed=opts.seed, allow_inplace=opts.allow_inplace)
        _budget(target, chosen, opts, analytic)
        diagnostics = list(analytic.diagnostics)
        diagnostics += unexplained_attributes(target, analytic.output)
        reports, evaluations = _compare_all(target, chosen, analytic, opts, diagnostics)
    swap = _find_swap(reports)
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
        conclusion=_conclusion(target, reports, swap),
    )


def _compare_all(
    target: Target,
    chosen: list[Variable],
    analytic: AnalyticPass,
    options: CheckOptions,
    diagnostics: list[Diagnostic],
) -> tuple[list[VariableReport], int]:
    if not analytic.deterministic:
        diagnostics.append(Diagnostic(
            "skipped", Severity.WARNING,
            "gradients were not compared: a non-deterministic forward makes every "
            "numerical derivative meaningless.",
        ))
        return [], 0
    numerics = _numeric_instances(target, options, analytic.inplace_forward)
    diagnostics += numerics.notes
    ctx = _Context(
        target=target,
        numerics=numerics,
        analytic=analytic,
        options=options,
        scale=float(np.sum(np.abs(analytic.dout.astype(np.float64) * analytic.output))),
        rng=np.random.default_rng(options.seed),
        diagnostics=diagnostics,
    )
    ctx.rounding = _analytic_rounding(target, analytic, numerics)
    ctx.complex_for_all = _joint_complex_probe(chosen, ctx)
    batch_size = _batch_size(target)
    reports = []
    for var in chosen:
        outcome = _differentiate(var, ctx)
        reports.append(_variable_report(
            var, analytic.gradients[var.name], outcome.numerical, outcome.result,
            outcome.method, numerics.real_dtype, batch_size,
        ))
    return reports, numerics.passes


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
