"""The check: adapter → analytic pass → numerical engines → comparison → report.

This module only orchestrates; each step lives in its own module (DESIGN.md §5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.compare import Comparison, Status, compare, default_tolerance
from gradcheck.diagnostics import (
    NOTE,
    WARNING,
    AnalyticPass,
    Diagnostic,
    analytic_pass,
    unexplained_attributes,
)
from gradcheck.errors import CheckError, GradientCheckError
from gradcheck.numeric import (
    NumericalGradient,
    complex_step,
    stencil_derivatives,
    supports_complex_step,
)
from gradcheck.options import CheckOptions, resolve_options
from gradcheck.patterns import describe_mismatch, describe_swap
from gradcheck.report import Report, VariableReport, findings
from gradcheck.targets import Instance, Target, TargetRequest, Variable, make_target

__all__ = ["assert_gradients", "check"]

# Forward passes per element for each engine (the complex step needs one).
_COST = {"central": 4, "richardson": 6, "complex": 1}


@contextmanager
def _global_random_state_kept() -> Any:
    """Layers that draw from ``np.random`` must not advance the user's global state."""
    state = np.random.get_state()  # noqa: NPY002 (the legacy global state is what we keep)
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


@dataclass
class _Numerics:
    """The instances the numerical side runs on, and in which dtype."""

    real: Instance
    real_dtype: np.dtype
    complex_instance: Instance | None
    notes: list[Diagnostic]


def _numeric_instances(target: Target, options: CheckOptions) -> _Numerics:
    """Run the numerical side in float64 whenever the layer accepts it."""
    notes: list[Diagnostic] = []
    narrow = [v for v in target.variables if np.dtype(v.dtype).itemsize < 8]
    real = target.instantiate(np.float64)
    real_dtype = np.dtype(np.float64)
    if narrow:
        output = np.asarray(real.forward())
        if output.dtype != np.float64:
            real = target.instantiate()
            real_dtype = np.dtype(narrow[0].dtype)
            notes.append(Diagnostic(
                "narrow-numerics", NOTE,
                f"{target.name} computes in {output.dtype} even for float64 input, so the "
                "numerical side runs in that precision; its error estimate widens the "
                "tolerance accordingly.",
            ))
    complex_instance = None
    if options.method in ("auto", "complex"):
        complex_instance = target.instantiate(np.complex128)
    return _Numerics(real, real_dtype, complex_instance, notes)


def _scalar_loss(
    instance: Instance, name: str, dout: NDArray
) -> Callable[[NDArray], complex | float]:
    """``L(x) = Σ dout ⊙ forward()`` with variable ``name`` set to ``x``.

    The engines perturb the instance's own working array in place (no copy per call);
    any other array is copied into it first. Summed in double precision.
    """
    weights = dout.astype(np.float64)
    work = instance.arrays[name]

    def loss(x: NDArray) -> complex | float:
        if x is not work:
            np.copyto(work, x)
        output = np.asarray(instance.forward())
        total = np.sum(weights * output.astype(np.result_type(output.dtype, np.float64)))
        return complex(total) if np.iscomplexobj(total) else float(total)

    return loss


def _differentiate(
    var: Variable,
    numerics: _Numerics,
    dout: NDArray,
    analytic: NDArray,
    options: CheckOptions,
    scale: float,
    rng: np.random.Generator,
) -> tuple[NumericalGradient, Comparison, str, list[Diagnostic]]:
    """Numerical gradient of one variable with the chosen engine, and its comparison."""
    notes: list[Diagnostic] = []
    real_work = numerics.real.arrays[var.name]
    real_loss = _scalar_loss(numerics.real, var.name, dout)

    def tolerance_for(values: NDArray) -> Any:
        return default_tolerance(
            var.dtype, values, rtol=options.rtol, atol=options.atol, strict=options.strict
        )

    method = options.method
    if method in ("auto", "complex"):
        assert numerics.complex_instance is not None
        complex_work = numerics.complex_instance.arrays[var.name]
        complex_loss = _scalar_loss(numerics.complex_instance, var.name, dout)
        usable, reason = supports_complex_step(complex_loss, real_work.copy(), rng)
        np.copyto(complex_work, real_work)
        if usable:
            numerical = complex_step(complex_loss, complex_work)
            tolerance = tolerance_for(numerical.value)
            result = compare(analytic, numerical, tolerance)
            suspects = np.flatnonzero(result.status == Status.MISMATCH)
            label = "complex"
            if suspects.size:
                # Confirm with real differences, which also recognise kinks.
                patch = stencil_derivatives(real_loss, real_work, indices=suspects, scale=scale)
                numerical = _patched(numerical, patch)
                result = compare(analytic, numerical, tolerance)
                label = f"complex+central({suspects.size})"
            return numerical, result, label, notes
        if method == "complex":
            raise CheckError(f"{var.name}: method='complex' cannot be used: {reason}.")
        notes.append(Diagnostic("no-complex-step", NOTE,
                                f"complex step not used for {var.name}: {reason}"))
        method = "central"
    numerical = stencil_derivatives(real_loss, real_work, method=method, scale=scale)
    result = compare(analytic, numerical, tolerance_for(numerical.value))
    return numerical, result, method, notes


def _patched(base: NumericalGradient, patch: NumericalGradient) -> NumericalGradient:
    """``base`` with the elements that ``patch`` checked replaced by ``patch``'s values."""
    where = patch.checked
    assert patch.left is not None and patch.right is not None and patch.side_error is not None
    return NumericalGradient(
        value=np.where(where, patch.value, base.value),
        error=np.where(where, patch.error, base.error),
        method=base.method,
        evaluations=base.evaluations + patch.evaluations,
        left=np.where(where, patch.left, base.value),
        right=np.where(where, patch.right, base.value),
        side_error=np.where(where, patch.side_error, 0.0),
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
    checked = result.status != Status.UNCHECKED
    undefined = ~np.isfinite(numerical.value) & numerical.checked
    compared = checked & ~undefined & (result.status != Status.KINK)
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
        diagnosis=describe_mismatch(label, a, numerical.value, wrong, batch_size=batch_size),
        analytic=a,
        numerical=numerical.value,
        error=numerical.error,
        threshold=result.threshold,
        status=result.status,
    )


def _selected(target: Target, options: CheckOptions) -> list[Variable]:
    chosen = [v for v in target.variables if options.params or v.role == "input"]
    if options.wrt is None:
        return chosen
    known = {v.name for v in target.variables}
    unknown = [name for name in options.wrt if name not in known]
    if unknown:
        raise CheckError(
            f"{target.name}: wrt names {', '.join(unknown)}, which {target.name} does not have; "
            f"its inputs and parameters are: {', '.join(sorted(known)) or 'none'}."
        )
    return [v for v in chosen if v.name in options.wrt]


def _budget(target: Target, chosen: list[Variable], options: CheckOptions, seconds: float) -> None:
    per_element = _COST["central" if options.method == "auto" else options.method]
    needed = sum(v.value.size for v in chosen) * per_element
    if needed > options.max_evaluations:
        estimate = needed * seconds
        raise CheckError(
            f"{target.name}: a full check needs about {needed:,} forward passes "
            f"(~{estimate:,.0f} s at {seconds * 1e3:.2g} ms each), over max_evaluations="
            f"{options.max_evaluations:,}. Check fewer elements (wrt=..., smaller inputs) or "
            "raise max_evaluations."
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
        See :class:`gradcheck.options.CheckOptions`: ``method``, ``rtol``, ``atol``,
        ``seed``, ``wrt``, ``params``, ``allow_inplace``, ``strict``, ``forward_kwargs``...

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
    with _global_random_state_kept():
        target = make_target(
            TargetRequest(obj, inputs, vjp=vjp, grad=grad, forward_kwargs=opts.forward_kwargs)
        )
        chosen = _selected(target, opts)
        analytic = analytic_pass(target, seed=opts.seed, allow_inplace=opts.allow_inplace)
        _budget(target, chosen, opts, analytic.forward_seconds)
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
            "skipped", WARNING,
            "gradients were not compared: a non-deterministic forward makes every "
            "numerical derivative meaningless.",
        ))
        return [], 0
    numerics = _numeric_instances(target, options)
    numerics.real.copy_inputs = numerics.real.copy_inputs or analytic.inplace_forward
    if numerics.complex_instance is not None:
        numerics.complex_instance.copy_inputs = analytic.inplace_forward
    diagnostics += numerics.notes
    scale = float(np.sum(np.abs(analytic.dout.astype(np.float64) * analytic.output)))
    rng = np.random.default_rng(options.seed)
    batch_size = _batch_size(target)
    reports, evaluations = [], 0
    for var in chosen:
        numerical, result, method, notes = _differentiate(
            var, numerics, analytic.dout, analytic.gradients[var.name], options, scale, rng
        )
        diagnostics += notes
        evaluations += numerical.evaluations
        reports.append(_variable_report(
            var, analytic.gradients[var.name], numerical, result, method,
            numerics.real_dtype, batch_size,
        ))
    return reports, evaluations


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
