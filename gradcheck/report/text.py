"""Reports as plain text: what ``str(report)`` returns, in the manner of a pytest failure.

A check's report is a short aligned table: diagnoses (in-place edits, non-determinism)
first, then one row per input and parameter, then the worst elements of each failing one
with their index, analytic value, numerical value and error estimate. A network's report
is one row per layer, the conclusion and its hints, then the guilty layer's report.
"""

from __future__ import annotations

from gradcheck.report.formatting import (
    NETWORK_COLUMNS,
    WORST_COLUMNS,
    network_head,
    network_rows,
    summary_table,
    worst_rows,
)
from gradcheck.report.records import CheckRecord, NetworkRecord, Record, VariableReport
from gradcheck.vocabulary import Severity

__all__ = ["render_text"]


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def render_text(report: Record) -> str:
    """The plain-text report (what ``str(report)`` returns).

    Parameters
    ----------
    report : Report or NetworkReport
        One check's result, or a network's.

    Returns
    -------
    str
        Lines without a trailing newline.
    """
    if isinstance(report, NetworkRecord):
        return _network_text(report)
    return _check_text(report)


def _check_text(report: CheckRecord) -> str:
    method = report.options.get("method", "auto")
    lines = [
        f"gradcheck {report.target} ({report.kind}): {report.verdict}   "
        f"seed={report.seed}, method={method}, {report.evaluations} forward passes, "
        f"{report.seconds:.3g} s"
    ]
    if report.conclusion:
        lines.append(f"  → {report.conclusion}")
    # Errors, doubts and warnings first; notes (how the check was done) go last.
    for diagnostic in report.diagnostics:
        if diagnostic.severity != Severity.NOTE:
            lines.append(f"  {diagnostic.severity.mark} {diagnostic.message}")
    if report.variables:
        columns, rows = summary_table(report)
        lines += _table([columns, *rows], right=set(range(5, len(columns))))
    lines += [f"  {note}" for var in report.variables if (note := var.screening_note())]
    for var in report.variables:
        if not var.passed:
            lines += _variable_detail(var)

    kinks = [v for v in report.variables if v.kinks]
    if kinks:
        text = ", ".join(f"{v.name}: {v.kinks}" for v in kinks)
        lines.append(f"  non-differentiable points skipped (kinks): {text}")
    if report.convention:
        lines.append(f"  convention: {report.convention}")
    for constant in report.constants:
        lines.append(f"  {constant.name} treated as a constant: {constant.reason}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    for diagnostic in report.diagnostics:
        if diagnostic.severity == Severity.NOTE:
            lines.append(f"  note: {diagnostic.message}")
    return "\n".join(lines)


def _variable_detail(var: VariableReport) -> list[str]:
    """The lines under the table for a variable that failed or was not fully verified."""
    lines = ["", f"  {var.name}: {var.headline()}"]
    if var.diagnosis:
        lines.append(f"    {var.diagnosis}")
    if var.worst:
        rows = [WORST_COLUMNS, *worst_rows(var)]
        lines += ["  " + line for line in _table(rows, right={1, 2, 3, 4})]
    hidden = var.shown_count - len(var.worst)
    if hidden > 0:
        lines.append(f"      ... and {hidden} more")
    return lines


def _network_text(report: NetworkRecord) -> str:
    lines = [f"gradcheck {report.target} (network): {report.verdict}   {network_head(report)}"]
    lines += _table([NETWORK_COLUMNS, *network_rows(report)], right=set())
    if report.conclusion:
        lines.append(f"  → {report.conclusion}")
    lines += [f"    · {hint}" for hint in report.hints]
    lines += [f"  note: {note}" for note in report.notes]
    detail = report.detail()
    if detail is not None:
        lines.append("")
        lines += [f"  {line}" if line else "" for line in _check_text(detail).splitlines()]
    return "\n".join(lines)
