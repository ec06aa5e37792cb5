"""From per-element verdicts to what the report says about each variable and the target.

:func:`variable_report` counts the statuses, picks the worst elements and names the shape
of the bug (:mod:`gradcheck.verdict.patterns`); :func:`conclusion` turns the variables'
diagnoses (or a swap between two of them) into the report's one-sentence conclusion.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Variable
from gradcheck.engine.gradient import NumericalGradient
from gradcheck.report.records import Screening, VariableReport, findings
from gradcheck.verdict.compare import Comparison, kink_mask
from gradcheck.verdict.patterns import describe_mismatch, describe_swap
from gradcheck.vocabulary import Status

__all__ = ["conclusion", "variable_report"]


def variable_report(
    var: Variable,
    analytic: NDArray,
    numerical: NumericalGradient,
    result: Comparison,
    method: str,
    numeric_dtype: np.dtype,
    batch_size: int | None,
    diagnosis: str | None = None,
    screening: Screening | None = None,
    wide: NDArray | None = None,
) -> VariableReport:
    """The report row of one variable: counts, worst elements, diagnosis, full arrays.

    ``diagnosis`` replaces the one read from the wrong elements' pattern (when only a
    sample of the elements was checked, their positions say nothing about the pattern).
    ``screening`` says what random directions vouch for the elements not checked one by
    one (fast mode). ``wide`` is the same backward run in a wider precision: where it is
    right and this one wrong, rounding damaged the gradient.
    """
    wrong = result.status == Status.MISMATCH
    unresolved = result.status == Status.UNRESOLVED
    a = np.asarray(analytic, dtype=np.float64)
    # In fast mode some elements are vouched for by their directions, not computed.
    undefined = ~np.isfinite(numerical.value) & numerical.checked
    compared = numerical.checked & ((result.status == Status.OK) | wrong)
    patterns = np.where(numerical.checked & np.isfinite(numerical.value), numerical.value, a)
    # dW for a parameter W; a path (fc1.W, params[0]) reads better spelled out.
    plain = var.role == "parameter" and var.name.isidentifier()
    label = f"d{var.name}" if plain else f"the gradient of {var.name}"
    shown, status = (wrong, "mismatch") if wrong.any() else (unresolved, "unresolved")
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
        unresolved=result.unresolved,
        max_abs_error=_largest(result.abs_error, compared),
        # A wrong element's relative error is news even where atol sets its tolerance.
        max_rel_error=_largest(result.rel_error, compared & (result.relative_governs() | wrong)),
        worst_ratio=_largest(_ratio(result.abs_error, result.threshold), compared),
        rtol=result.tolerance.rtol,
        atol=float(np.median(result.tolerance.atol)),
        worst=findings(a, numerical.value, numerical.error, result.abs_error, shown, status),
        diagnosis=_damage_sentence(label, a, wide, wrong, numerical, result, np.dtype(var.dtype))
        or diagnosis
        or _kink_sentence(label, wrong, numerical, result)
        or describe_mismatch(label, a, patterns, wrong, batch_size=batch_size),
        analytic=a,
        numerical=numerical.value,
        error=numerical.error,
        threshold=result.threshold,
        status=result.status,
        screening=screening,
    )


def _ratio(error: NDArray, threshold: NDArray) -> NDArray:
    """``error / threshold``, 0 where both are 0 (an exact match with no tolerance)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: NDArray = np.where(error == 0, 0.0, error / threshold)
    return ratio


def _largest(values: NDArray, where: NDArray[np.bool_]) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        chosen = values[where & np.isfinite(values)]
    return float(chosen.max()) if chosen.size else 0.0


def _damage_sentence(
    label: str,
    analytic: NDArray,
    wide: NDArray | None,
    wrong: NDArray[np.bool_],
    numerical: NumericalGradient,
    result: Comparison,
    dtype: np.dtype,
) -> str | None:
    """Say so when rounding, not the formula, made the wrong elements wrong: the same
    backward in a wider precision matches the numerical gradient where this one does not,
    and the difference between the two runs is the error."""
    if wide is None or not wrong.any():
        return None
    wide = np.asarray(wide, dtype=np.float64)
    error = np.abs(analytic - numerical.value)[wrong]
    rounded = np.abs(analytic - wide)[wrong]
    right = np.abs(wide - numerical.value)[wrong] <= result.threshold[wrong]
    if not (np.all(right) and np.all(rounded >= error / 2)):
        return None
    eps = float(np.finfo(dtype).eps)
    scale = float(np.sqrt(np.mean(np.square(wide))))
    total = round(-math.log10(eps))
    lost = min(round(math.log10(max(float(np.max(rounded)) / (eps * scale or 1.0), 1.0))), total)
    if lost < 1:
        return None
    return (
        f"{label} loses {lost} of {dtype}'s {total} digits to rounding: the same backward "
        "run in a wider precision is right — a cancelling formula such as E[x²] − E[x]², "
        "or inputs far from 0 beside their spread (1e5 ± 1 keeps two digits of each "
        "deviation in float32)? Compute without the cancellation (two-pass: "
        "mean((x − mean(x))²)), subtract the offset first, or compute in a wider precision."
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
        "derivatives: no valid subgradient at a single kink (a ReLU unit at 0); only where "
        "several kinks meet behind a one-number output (a loss) can it be valid — check "
        "again at a point away from the kinks to tell."
    )


def conclusion(where: str, reports: list[VariableReport]) -> str | None:
    """One sentence on what is wrong, prefixed by ``where`` (``"Affine.backward"``).

    Two gradients returned in each other's place are named first; otherwise the first
    failing variable's diagnosis. None when nothing failed or nothing is recognisable.
    """
    swap = _find_swap(reports)
    if swap:
        return f"{where}: {swap}"
    for var in reports:
        if var.mismatches and var.diagnosis:
            return f"{where}: {var.diagnosis}"
    if any(v.mismatches for v in reports):
        return None
    unresolved = [v for v in reports if v.unresolved]
    if unresolved:
        count = sum(v.unresolved for v in unresolved)
        return (
            f"nothing is wrong as far as can be seen, but {count} element(s) of "
            f"{', '.join(v.name for v in unresolved)} could not be resolved at "
            f"rtol={unresolved[0].rtol:g}: their numerical error bars are wider. Loosen rtol "
            "(rtol=1e-3 for a layer that computes in float32), let the layer compute in "
            "float64, or check a point where these gradients are not tiny."
        )
    short = [v for v in reports if v.screened_short and v.screening is not None]
    if short:
        first = short[0].screening
        assert first is not None
        return (
            f"nothing is wrong as far as can be seen, but {', '.join(v.name for v in short)} "
            f"{'was' if len(short) == 1 else 'were'} only screened: {first.sentence()}"
            + (
                f", above the {first.promised:.1g} a check must catch"
                if math.isfinite(first.sensitivity)
                else ""
            )
            + ". mode='full' checks each element (raise max_evaluations to let it)."
        )
    return None


def _find_swap(reports: list[VariableReport]) -> str | None:
    failing = [v for v in reports if not v.passed]
    for i, first in enumerate(failing):
        for second in failing[i + 1 :]:
            found = describe_swap(
                (first.name, first.analytic, first.numerical),
                (second.name, second.analytic, second.numerical),
            )
            if found:
                return found
    return None
