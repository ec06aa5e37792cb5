"""Reports as HTML: a table with failures highlighted, and heatmaps that show the bug.

One self-contained fragment per report (no scripts, no external files; pictures are
inline SVG from :mod:`gradcheck.report.heatmap`), used by ``Report._repr_html_`` in notebooks,
and a standalone page for one or several reports (``gradcheck check ... --html FILE``).
A network's fragment is its per-layer table, the failing row highlighted, followed by the
fragment of its guilty layer.

Colours that carry meaning are inline ``style``/SVG attributes, not only CSS classes, so
a notebook that strips ``<style>`` still highlights the failures.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path

from gradcheck.report.formatting import (
    NETWORK_COLUMNS,
    WORST_COLUMNS,
    network_head,
    network_rows,
    row_failed,
    summary_table,
    worst_rows,
)
from gradcheck.report.heatmap import pictures
from gradcheck.report.mosaic import MAX_CELLS
from gradcheck.report.records import CheckRecord, NetworkRecord, Record, VariableReport
from gradcheck.vocabulary import Verdict

__all__ = ["STYLE", "render_html", "to_html_page", "write_html"]

_FAILED_ROW = "background:#fdecea;color:#8b1a1a;font-weight:600"
_PASSED_HEAD = "background:#e8f5e9;border-left:6px solid #2e7d32"
_FAILED_HEAD = "background:#fdecea;border-left:6px solid #c62828"
_DOUBT_HEAD = "background:#fff8e1;border-left:6px solid #f9a825"
_PASSING_CELLS = 400

STYLE = """
.gradcheck-report{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:13px;
 color:#222;margin:0 0 28px 0}
.gradcheck-report .gc-head{padding:8px 12px;margin:0 0 8px 0;font-size:15px}
.gradcheck-report .gc-conclusion{font-size:14px;margin:4px 0 8px 0}
.gradcheck-report table.gc-table{border-collapse:collapse;margin:6px 0 10px 0}
.gradcheck-report table.gc-table th,.gradcheck-report table.gc-table td{
 padding:3px 9px;border-bottom:1px solid #e0e0e0;text-align:right;font-variant-numeric:tabular-nums}
.gradcheck-report table.gc-table th{background:#f5f5f5;font-weight:600}
.gradcheck-report table.gc-table td.gc-text,.gradcheck-report table.gc-table th.gc-text{
 text-align:left}
.gradcheck-report .gc-variable{margin:12px 0 4px 0;padding:4px 0 0 0;border-top:1px solid #eee}
.gradcheck-report .gc-variable h4{margin:4px 0;font-size:14px}
.gradcheck-report .gc-panels{display:flex;flex-wrap:wrap;gap:6px 22px;align-items:flex-start}
.gradcheck-report figure{margin:0}
.gradcheck-report figcaption{font-weight:600;font-size:12px;margin:2px 0 2px 0}
.gradcheck-report .gc-note{color:#555;font-size:12px;font-style:italic}
.gradcheck-report .gc-meta{color:#666;font-size:12px}
.gradcheck-report ul{margin:4px 0;padding-left:18px}
"""


def _table(columns: list[str], rows: list[list[str]], failing: list[bool], text: set[int]) -> str:
    def cell(tag: str, i: int, value: str) -> str:
        css = ' class="gc-text"' if i in text else ""
        return f"<{tag}{css}>{escape(value)}</{tag}>"

    head = "".join(cell("th", i, name) for i, name in enumerate(columns))
    body = []
    for row, fails in zip(rows, failing, strict=True):
        attrs = f' class="gc-fail" style="{_FAILED_ROW}"' if fails else ""
        body.append(f"<tr{attrs}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    return f'<table class="gc-table"><tr>{head}</tr>{"".join(body)}</table>'


def _pictures_html(var: VariableReport) -> str:
    # Pictures of passing gradients are folded away; small ones keep the page light.
    found = pictures(var, max_cells=MAX_CELLS if not var.passed else _PASSING_CELLS)
    figures = [
        f'<figure data-kind="{panel.kind}"><figcaption>{escape(panel.title)}</figcaption>'
        f"{panel.svg}<div>{panel.legend}</div></figure>"
        for panel in found.panels
    ]
    note = f'<p class="gc-note">{escape(found.note)}</p>' if found.note else ""
    return f'<div class="gc-panels">{"".join(figures)}</div>{note}'


def _variable_html(var: VariableReport) -> str:
    role = " (parameter)" if var.role == "parameter" else ""
    note = var.screening_note()
    screened = f'<p class="gc-note">{escape(note)}</p>' if note else ""
    if var.passed:
        title = f"✓ {var.name}{role}: {var.headline()}" + (
            f" ({var.kinks} kinks skipped)" if var.kinks else ""
        )
        return (
            f'<details class="gc-variable" data-variable="{escape(var.name)}">'
            f"<summary>{escape(title)} — pictures</summary>{screened}"
            f"{_pictures_html(var)}</details>"
        )
    title = f"{var.verdict.mark} {var.name}{role}: {var.headline()}"
    colour = "#b71c1c" if var.mismatches else "#8d6e00"
    parts = [
        f'<section class="gc-variable" data-variable="{escape(var.name)}">',
        f'<h4 style="color:{colour}">{escape(title)}</h4>',
        screened,
    ]
    if var.diagnosis:
        parts.append(f"<p>{escape(var.diagnosis)}</p>")
    parts.append(_pictures_html(var))
    if var.worst:
        parts.append(_table(WORST_COLUMNS, worst_rows(var), [False] * len(var.worst), {0}))
        hidden = var.shown_count - len(var.worst)
        if hidden > 0:
            what = "wrong" if var.mismatches else "unresolved"
            parts.append(f'<p class="gc-note">… and {hidden} more {what} elements.</p>')
    parts.append("</section>")
    return "".join(parts)


def render_html(report: Record, *, style: bool = True) -> str:
    """One report as a self-contained HTML fragment (what ``report._repr_html_`` shows).

    Parameters
    ----------
    report : Report or NetworkReport
        The result of :func:`gradcheck.check` or :func:`gradcheck.check_network`.
    style : bool, optional
        Include the ``<style>`` element (default). A page holding several reports
        includes it once instead.

    Returns
    -------
    str
        A ``<div class="gradcheck-report">``. For a check: verdict, conclusion,
        diagnoses, a table of every input and parameter (failures highlighted), and for
        each failing one an error heatmap next to the analytic and numerical gradients,
        mismatches outlined. For a network: verdict, conclusion and hints, a table of
        every layer (the failing one highlighted), then the guilty layer's fragment.
    """
    if isinstance(report, NetworkRecord):
        return _network_html(report, style)
    return _check_html(report, style)


def _opening(report: Record, style: bool, css: str) -> list[str]:
    """The report's ``<div>``, its style, the verdict line and the conclusion."""
    verdict = report.verdict
    head_style = {
        Verdict.PASSED: _PASSED_HEAD,
        Verdict.FAILED: _FAILED_HEAD,
        Verdict.INCOMPLETE: _DOUBT_HEAD,
    }[verdict]
    parts = [
        f'<div class="{css}" data-passed="{str(report.passed).lower()}" data-verdict="{verdict}">'
    ]
    if style:
        parts.append(f"<style>{STYLE}</style>")
    parts.append(
        f'<div class="gc-head" style="{head_style}">{verdict.mark} <b>gradcheck '
        f"{escape(report.target)}</b> ({escape(report.kind)}): <b>{verdict}</b></div>"
    )
    if report.conclusion:
        parts.append(f'<p class="gc-conclusion">→ {escape(report.conclusion)}</p>')
    return parts


def _meta(lines: list[str]) -> str:
    return "".join(f'<p class="gc-meta">{escape(line)}</p>' for line in lines)


def _check_html(report: CheckRecord, style: bool) -> str:
    parts = _opening(report, style, "gradcheck-report")
    if report.diagnostics:
        items = "".join(
            f"<li>{d.severity.mark} {escape(d.message)}</li>" for d in report.diagnostics
        )
        parts.append(f"<ul>{items}</ul>")
    if report.variables:
        columns, rows = summary_table(report)
        parts.append(_table(columns, rows, [not v.passed for v in report.variables], {0, 1, 3, 4}))
    parts += [_variable_html(var) for var in report.variables if not var.passed]
    parts += [_variable_html(var) for var in report.variables if var.passed]
    notes = [f"convention: {report.convention}"] if report.convention else []
    notes += [f"{c.name} treated as a constant: {c.reason}" for c in report.constants]
    notes += [f"note: {note}" for note in report.notes]
    method = report.options.get("method", "auto")
    notes.append(
        f"seed={report.seed}, method={method}, {report.evaluations} forward passes, "
        f"{report.seconds:.3g} s"
    )
    parts.append(_meta(notes))
    parts.append("</div>")
    return "".join(parts)


def _network_html(report: NetworkRecord, style: bool) -> str:
    parts = _opening(report, style, "gradcheck-report gc-network")
    if report.hints:
        parts.append("<ul>" + "".join(f"<li>{escape(h)}</li>" for h in report.hints) + "</ul>")
    rows = network_rows(report)
    parts.append(
        _table(
            NETWORK_COLUMNS,
            rows,
            [row_failed(row) for row in rows],
            set(range(len(NETWORK_COLUMNS))),
        )
    )
    notes = [f"note: {note}" for note in report.notes]
    parts.append(_meta([*notes, f"seed={report.seed}, {network_head(report)}"]))
    detail = report.detail()
    if detail is not None:
        parts.append(_check_html(detail, style=False))
    parts.append("</div>")
    return "".join(parts)


def to_html_page(reports: Record | Iterable[Record], title: str | None = None) -> str:
    """A complete standalone HTML page of one or several reports.

    Parameters
    ----------
    reports : Report, NetworkReport or an iterable of them
        What to show, in order; checks and networks may be mixed.
    title : str, optional
        The page title; default names the reports and how many failed.

    Returns
    -------
    str
        An HTML5 document with no external resources.
    """
    items = [reports] if isinstance(reports, CheckRecord | NetworkRecord) else list(reports)
    failed = sum(not r.passed for r in items)
    if title is None:
        names = ", ".join(r.target for r in items[:3]) + ("…" if len(items) > 3 else "")
        title = f"gradcheck: {names}" + (f" — {failed} failed" if failed else " — passed")
    summary = ""
    if len(items) > 1:
        summary = (
            f"<p>{len(items)} checks, <b>{failed} failed</b>.</p>"
            if failed
            else f"<p>{len(items)} checks, all passed.</p>"
        )
    body = "".join(render_html(r, style=False) for r in items)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>body{{margin:16px 20px;background:#fff}}"
        f"{STYLE}</style></head><body>{summary}{body}</body></html>\n"
    )


def write_html(reports: Record | Iterable[Record], path: str | Path) -> Path:
    """Write one standalone HTML page of ``reports`` to ``path`` (UTF-8).

    Parameters
    ----------
    reports : Report, NetworkReport or an iterable of them
        What to show, in order (``gradcheck check ... --html FILE`` passes every report).
    path : str or Path
        The file to write; its parent directories are created.

    Returns
    -------
    Path
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(to_html_page(reports), encoding="utf-8")
    return target
