"""How numbers, arrays and report rows are written for people: in pictures and pages.

Floating-point arithmetic leaves noise in the last digits (``1.1 * 200`` is
``220.00000000000003``); a picture for a student should say ``220``. Six significant
digits keep every value of the chapter exact and hide the noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.report.records import diagnosis_line, worst_line

if TYPE_CHECKING:
    from gradcheck.report.records import CheckRecord, NetworkRecord, VariableReport

__all__ = [
    "NETWORK_COLUMNS",
    "SUMMARY_COLUMNS",
    "WORST_COLUMNS",
    "format_duration",
    "format_number",
    "format_value",
    "network_head",
    "network_rows",
    "row_failed",
    "summary_table",
    "worst_rows",
]

# The columns of the report's tables (the same as the plain-text report's).
SUMMARY_COLUMNS = [
    "",
    "name",
    "shape",
    "dtype",
    "method",
    "checked",
    "wrong",
    "kinks",
    "max rel err",
    "err/tol",
    "rtol",
]
WORST_COLUMNS = ["index", "analytic", "numerical", "error est.", "|diff|"]
NETWORK_COLUMNS = ["", "layer", "verdict", "worst element", "diagnosis"]

_MARK = {"passed": "✓", "FAILED": "✗", "INCOMPLETE": "?", "ERROR": "✗", "not run": "–"}
_WRONG = ("FAILED", "ERROR")
_UNRESOLVED_COLUMN = "unresolved"
_SCREENED_COLUMN = "screened"
_END_TO_END = "gradient() end to end"

_DIGITS = 6
# Arrays up to this size are written out in full; larger ones as a shape and a preview,
# in fewer digits: the preview says what the array looks like, not what it holds exactly.
_FULL_SIZE = 4
_PREVIEW = 3
_PREVIEW_DIGITS = 3


def format_duration(value: float | None) -> str:
    """A duration for people: ``152 µs``, ``36.8 ms``, ``20.7 s``, ``3.33 min``, ``136 h``."""
    if value is None:
        return "n/a"
    if value < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    if value < 120:
        return f"{value:.3g} s"
    if value < 7200:
        return f"{value / 60:.3g} min"
    return f"{value / 3600:.3g} h"


def format_number(value: Any, digits: int = _DIGITS) -> str:
    """A number in at most ``digits`` significant digits, without rounding noise.

    Parameters
    ----------
    value : int, float, complex or numpy scalar
        The number.
    digits : int, optional
        Significant digits to keep (default 6).

    Returns
    -------
    str
        ``"220"`` for ``220.00000000000003``, ``"1.5e-7"`` for ``1.5e-07``, ``"-0.5"``.

    Examples
    --------
    >>> format_number(1.1 * 200)
    '220'
    >>> format_number(3.3000000000000003)
    '3.3'
    >>> format_number(1.5e-7)
    '1.5e-7'
    """
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, complex | np.complexfloating):
        real = format_number(value.real, digits)
        imag = format_number(abs(value.imag), digits)
        return f"{real}{'-' if value.imag < 0 else '+'}{imag}j"
    number = float(value)
    if number == 0.0:
        return "0"
    text = f"{number:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def format_value(value: Any) -> str:
    """A short summary of a value: numbers in full, arrays as shape and first elements.

    Parameters
    ----------
    value : object
        A number, a numpy array, a tuple of those, or anything else.

    Returns
    -------
    str
        ``"220"``, ``"[0.5, -1]"`` for a small vector, ``"(5, 4) [0.126, -0.5, 2.1, …]"``
        (three significant digits) for a larger array, ``"None"``, or ``repr`` for other objects.

    Examples
    --------
    >>> format_value(np.arange(12.0).reshape(3, 4))
    '(3, 4) [0, 1, 2, …]'
    """
    if value is None:
        return "None"
    if isinstance(value, tuple):
        return "(" + ", ".join(format_value(item) for item in value) + ")"
    if isinstance(value, int | float | complex | np.generic):
        return format_number(value)
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return format_number(value.item())
        flat = value.ravel()
        if value.size <= _FULL_SIZE and value.ndim == 1:
            return "[" + ", ".join(format_number(v) for v in flat) + "]"
        shown = ", ".join(format_number(v, _PREVIEW_DIGITS) for v in flat[:_PREVIEW])
        more = ", …" if value.size > _PREVIEW else ""
        return f"{value.shape} [{shown}{more}]"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def summary_table(report: CheckRecord) -> tuple[list[str], list[list[str]]]:
    """The columns and the rows of a check's table: :data:`SUMMARY_COLUMNS`, with a column
    of elements only screened by random directions after ``checked`` (fast mode: they
    are not checked) and one of unresolved elements after ``kinks``, when any variable
    has some.

    Parameters
    ----------
    report : Report
        A check's report.

    Returns
    -------
    (list of str, list of list of str)
        The column titles, and ``["✗", "W (param)", "(4, 3)", "float64", ...]`` per
        variable.
    """
    columns = list(SUMMARY_COLUMNS)
    rows = [_summary_row(var) for var in report.variables]
    extra = [
        (_SCREENED_COLUMN, "checked", lambda var: f"{var.screened:,}", "screened"),
        (_UNRESOLVED_COLUMN, "kinks", lambda var: str(var.unresolved), "unresolved"),
    ]
    for title, after, cell, count in extra:
        if not any(getattr(var, count) for var in report.variables):
            continue
        at = columns.index(after) + 1
        columns.insert(at, title)
        for row, var in zip(rows, report.variables, strict=True):
            row.insert(at, cell(var))
    return columns, rows


def _summary_row(var: VariableReport) -> list[str]:
    # Fast mode vouches for elements through directions: no per-element numbers.
    numbers = bool(np.isfinite(var.numerical).any())
    return [
        var.verdict.mark,
        var.name + (" (param)" if var.role == "parameter" else ""),
        str(var.shape),
        var.dtype,
        var.method,
        str(var.checked),
        str(var.mismatches),
        str(var.kinks),
        f"{var.max_rel_error:.2e}" if numbers else "—",
        format_number(var.worst_ratio, 2) if numbers else "—",
        f"{var.rtol:.0e}",
    ]


def worst_rows(var: VariableReport) -> list[list[str]]:
    """The worst elements of one variable, in the order of :data:`WORST_COLUMNS`.

    Parameters
    ----------
    var : VariableReport
        The report of one input or parameter.

    Returns
    -------
    list of list of str
        ``["(2, 1)", "-0.356725", "-0.856725", "8.1e-9", "0.5"]`` per finding.
    """
    return [
        [
            str(finding.index),
            format_number(finding.analytic),
            format_number(finding.numerical),
            format_number(finding.error_estimate, 2),
            format_number(finding.abs_error, 3),
        ]
        for finding in var.worst
    ]


def network_head(report: NetworkRecord) -> str:
    """How a network was checked, for the line under or beside its verdict.

    Parameters
    ----------
    report : NetworkReport
        A network's report.

    Returns
    -------
    str
        ``"4 layers checked in place, then gradient() end to end, 0.21 s"``.
    """
    return (
        f"{len(report.checks)} layers checked in place, then {_END_TO_END}, {report.seconds:.3g} s"
    )


def network_rows(report: NetworkRecord) -> list[list[str]]:
    """One row per layer, then the end-to-end check, in the order of :data:`NETWORK_COLUMNS`.

    Parameters
    ----------
    report : NetworkReport
        The result of :func:`gradcheck.check_network`.

    Returns
    -------
    list of list of str
        ``["✗", "Affine2 (Affine)", "FAILED", "db[1]: 3.3 vs 1.1", "db is ×3 too large"]``
        per layer; :func:`row_failed` says which rows are wrong.
    """
    rows = []
    for check_ in report.checks:
        status = check_.verdict()
        worst = worst_line(check_.report) if check_.report is not None else ""
        name = check_.name if check_.kind == check_.name else f"{check_.name} ({check_.kind})"
        rows.append([_MARK[status], name, status, worst, check_.diagnosis()])
    if report.end_to_end is not None:
        e2e = report.end_to_end
        wrong = [v.name for v in e2e.variables if v.mismatches]
        diagnosis = f"wrong: {', '.join(wrong)}" if wrong else diagnosis_line(e2e)
        status = str(e2e.verdict)
        rows.append([_MARK[status], _END_TO_END, status, worst_line(e2e), diagnosis])
    elif report.end_to_end_error is not None:
        rows.append(["✗", _END_TO_END, "ERROR", "", report.end_to_end_error])
    return rows


def row_failed(row: list[str]) -> bool:
    """True for a row of :func:`network_rows` whose verdict is ``FAILED`` or ``ERROR``."""
    return row[2] in _WRONG
