"""Reports as Markdown: for notebook front ends and pages that show Markdown, not HTML.

The same tables as the HTML report (:mod:`gradcheck.report.html`), without pictures: a
check's, or a network's per-layer table followed by its guilty layer's.
"""

from __future__ import annotations

from gradcheck.report.formatting import (
    NETWORK_COLUMNS,
    WORST_COLUMNS,
    network_head,
    network_rows,
    row_failed,
    summary_table,
    worst_rows,
)
from gradcheck.report.records import CheckRecord, NetworkRecord, Record

__all__ = ["render_markdown"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or " "


def _table(columns: list[str], rows: list[list[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(_cell(c) for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _bold(row: list[str], columns: tuple[int, ...]) -> list[str]:
    return [f"**{cell}**" if i in columns else cell for i, cell in enumerate(row)]


def render_markdown(report: Record) -> str:
    """One report as Markdown (what ``report._repr_markdown_`` shows).

    Parameters
    ----------
    report : Report or NetworkReport
        The result of :func:`gradcheck.check` or :func:`gradcheck.check_network`.

    Returns
    -------
    str
        For a check: the verdict in bold, the conclusion, diagnoses, a table of every
        input and parameter (failing names in bold), and the worst elements of each
        failing one. For a network: the verdict, the conclusion and its hints, a table of
        every layer (failing ones in bold), notes, then the guilty layer's report.
    """
    if isinstance(report, NetworkRecord):
        return _network_markdown(report)
    return _check_markdown(report)


def _head(report: Record) -> list[str]:
    """The verdict in bold, then the conclusion quoted, each followed by a blank line."""
    verdict = f"{report.verdict} {report.verdict.mark}"
    lines = [f"**gradcheck {report.target}** ({report.kind}): **{verdict}**", ""]
    if report.conclusion:
        lines += [f"> {report.conclusion}", ""]
    return lines


def _check_markdown(report: CheckRecord) -> str:
    lines = _head(report)
    for diagnostic in report.diagnostics:
        lines.append(f"- *{diagnostic.severity}*: {diagnostic.message}")
    if report.diagnostics:
        lines.append("")
    columns, rows = summary_table(report)
    rows = [
        row if var.passed else _bold(row, (1, columns.index("wrong")))
        for row, var in zip(rows, report.variables, strict=True)
    ]
    if rows:
        lines += [*_table(columns, rows), ""]
    screened = [note for var in report.variables if (note := var.screening_note())]
    if screened:
        lines += [*(f"- {note}" for note in screened), ""]
    for var in report.variables:
        if var.passed:
            continue
        lines.append(
            f"**{var.name}**: {var.headline()}" + (f" — {var.diagnosis}" if var.diagnosis else "")
        )
        lines.append("")
        if var.worst:
            lines += [*_table(WORST_COLUMNS, worst_rows(var)), ""]
    if report.convention:
        lines.append(f"*convention: {report.convention}*")
    method = report.options.get("method", "auto")
    lines.append(f"*seed={report.seed}, method={method}, {report.evaluations} forward passes*")
    return "\n".join(lines)


def _network_markdown(report: NetworkRecord) -> str:
    lines = _head(report)
    if report.hints:
        lines += [*(f"- {hint}" for hint in report.hints), ""]
    rows = [_bold(row, (1, 2)) if row_failed(row) else row for row in network_rows(report)]
    lines += [*_table(NETWORK_COLUMNS, rows), ""]
    lines += [f"*note: {note}*" for note in report.notes]
    lines.append(f"*seed={report.seed}, {network_head(report)}*")
    detail = report.detail()
    if detail is not None:
        lines += ["", "---", "", _check_markdown(detail)]
    return "\n".join(lines)
