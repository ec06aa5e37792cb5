"""Reports as Markdown: for notebook front ends and pages that show Markdown, not HTML.

The same tables as the HTML report (:mod:`gradcheck.report.html`), without pictures.
"""

from __future__ import annotations

from gradcheck.report.formatting import SUMMARY_COLUMNS, WORST_COLUMNS, summary_rows, worst_rows
from gradcheck.report.reports import Report

__all__ = ["render_markdown"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or " "


def _table(columns: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report) -> str:
    """One report as Markdown (what ``report._repr_markdown_`` shows).

    Parameters
    ----------
    report : Report
        The result of :func:`gradcheck.check`.

    Returns
    -------
    str
        The verdict in bold, the conclusion, diagnoses, a table of every input and
        parameter (failing names in bold), and the worst elements of each failing one.
    """
    verdict = "passed ✓" if report.passed else "FAILED ✗"
    lines = [f"**gradcheck {report.target}** ({report.kind}): **{verdict}**", ""]
    if report.conclusion:
        lines += [f"> {report.conclusion}", ""]
    for diagnostic in report.diagnostics:
        lines.append(f"- *{diagnostic.severity}*: {diagnostic.message}")
    if report.diagnostics:
        lines.append("")
    rows = summary_rows(report)
    for row, var in zip(rows, report.variables, strict=True):
        if not var.passed:
            row[1] = f"**{row[1]}**"
            row[6] = f"**{row[6]}**"
    if rows:
        lines += [*_table(SUMMARY_COLUMNS, rows), ""]
    for var in report.variables:
        if var.passed:
            continue
        lines.append(f"**{var.name}**: {var.mismatches} of {var.checked} elements wrong"
                     + (f" — {var.diagnosis}" if var.diagnosis else ""))
        lines += ["", *_table(WORST_COLUMNS, worst_rows(var)), ""]
    method = report.options.get("method", "auto")
    lines.append(f"*seed={report.seed}, method={method}, {report.evaluations} forward passes*")
    return "\n".join(lines)
