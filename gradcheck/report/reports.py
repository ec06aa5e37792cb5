"""The report a user reads: what was checked, what is wrong, and where.

``str(report)`` is a short aligned table in the manner of a good pytest failure;
``report.to_dict()`` is JSON-ready. Diagnoses (in-place edits, non-determinism) come
first, then one row per input and parameter, then the worst elements of each failing one
with their index, analytic value, numerical value and error estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.report.formatting import SUMMARY_COLUMNS, WORST_COLUMNS, summary_rows, worst_rows
from gradcheck.vocabulary import Constant, Diagnostic, Severity

__all__ = ["ElementFinding", "Report", "VariableReport"]


@dataclass(frozen=True)
class ElementFinding:
    """One element worth showing: a mismatch (or a skipped kink)."""

    index: tuple[int, ...]
    analytic: float
    numerical: float
    error_estimate: float
    abs_error: float
    status: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "index": list(self.index),
            "analytic": self.analytic,
            "numerical": self.numerical,
            "error_estimate": self.error_estimate,
            "abs_error": self.abs_error,
            "status": self.status,
        }


@dataclass
class VariableReport:
    """The verdict on the gradient of one input or parameter.

    The full arrays (``analytic``, ``numerical``, ``error``, ``threshold``, ``status``)
    are kept for pictures and for users who want to look closer; ``to_dict`` leaves them
    out.
    """

    name: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    method: str
    numeric_dtype: str
    checked: int
    mismatches: int
    kinks: int
    undefined: int
    max_abs_error: float
    max_rel_error: float
    rtol: float
    atol: float
    worst: list[ElementFinding]
    diagnosis: str | None
    analytic: NDArray = field(repr=False)
    numerical: NDArray = field(repr=False)
    error: NDArray = field(repr=False)
    threshold: NDArray = field(repr=False)
    status: NDArray = field(repr=False)

    @property
    def passed(self) -> bool:
        """True when no element mismatches."""
        return self.mismatches == 0

    @property
    def label(self) -> str:
        """``dW`` for a parameter, ``dx`` for an input named ``x``."""
        return f"d{self.name}" if len(self.name) <= 3 else f"the gradient of {self.name}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the full arrays)."""
        return {
            "name": self.name,
            "role": self.role,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "method": self.method,
            "numeric_dtype": self.numeric_dtype,
            "checked": self.checked,
            "mismatches": self.mismatches,
            "kinks": self.kinks,
            "undefined": self.undefined,
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
            "rtol": self.rtol,
            "atol": self.atol,
            "passed": self.passed,
            "diagnosis": self.diagnosis,
            "worst": [finding.to_dict() for finding in self.worst],
        }


@dataclass
class Report:
    """The result of :func:`gradcheck.check`.

    Attributes
    ----------
    target : str
        The name of what was checked (a class or function name).
    kind : str
        ``"layer"``, ``"model"`` or ``"function"``.
    variables : list of VariableReport
        One per checked input and parameter.
    diagnostics : list of Diagnostic
        Findings about the target as a whole; those of severity ``"error"`` fail it.
    constants : list of Constant
        Inputs not differentiated, with the reason.
    notes : list of str
        How inputs were converted.
    seed : int
        The seed of the upstream gradient; the same seed gives the same verdict.
    options : dict
        The options in force.
    evaluations : int
        Forward passes used by the numerical side.
    conclusion : str or None
        One sentence saying what is wrong, when something is.
    """

    target: str
    kind: str
    variables: list[VariableReport]
    diagnostics: list[Diagnostic]
    constants: list[Constant]
    notes: list[str]
    seed: int
    options: dict[str, Any]
    evaluations: int
    seconds: float
    conclusion: str | None = None

    @property
    def passed(self) -> bool:
        """True when every gradient matches and no diagnosis is an error."""
        return all(v.passed for v in self.variables) and not any(
            d.severity == Severity.ERROR for d in self.diagnostics
        )

    def __bool__(self) -> bool:
        return self.passed

    def variable(self, name: str) -> VariableReport:
        """The report of the input or parameter called ``name``."""
        for var in self.variables:
            if var.name == name:
                return var
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the whole report."""
        return {
            "target": self.target,
            "kind": self.kind,
            "passed": self.passed,
            "conclusion": self.conclusion,
            "seed": self.seed,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "options": self.options,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "variables": [v.to_dict() for v in self.variables],
            "constants": [{"name": c.name, "reason": c.reason} for c in self.constants],
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """One line: target, verdict and what failed."""
        if self.passed:
            checked = sum(v.checked for v in self.variables)
            return f"{self.target}: passed ({checked} gradient elements checked)"
        parts = [f"{v.mismatches} wrong in {v.name}" for v in self.variables if not v.passed]
        parts += [d.kind for d in self.diagnostics if d.severity == Severity.ERROR]
        return f"{self.target}: FAILED ({'; '.join(parts)})"

    def __str__(self) -> str:
        return render_text(self)

    def _repr_html_(self) -> str:
        """Notebooks show the report as a table with heatmaps (:mod:`gradcheck.report.html`)."""
        from gradcheck.report.html import render_html

        return render_html(self)

    def _repr_markdown_(self) -> str:
        """Front ends without HTML show Markdown tables (:mod:`gradcheck.report.markdown`)."""
        from gradcheck.report.markdown import render_markdown

        return render_markdown(self)

    def to_html(self) -> str:
        """A complete standalone HTML page of this report (see :mod:`gradcheck.report.html`)."""
        from gradcheck.report.html import to_html_page

        return to_html_page(self)

    def plot(self, *, which: str = "auto") -> Any:
        """A matplotlib figure of the gradients (needs matplotlib; :mod:`gradcheck.report.plot`).

        ``which`` is ``"auto"`` (the failing gradients, or all when none fails),
        ``"failing"`` or ``"all"``.
        """
        from gradcheck.report.plot import plot_report

        return plot_report(self, which=which)


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


def render_text(report: Report) -> str:
    """The plain-text report (what ``str(report)`` returns)."""
    verdict = "passed" if report.passed else "FAILED"
    method = report.options.get("method", "auto")
    lines = [f"gradcheck {report.target} ({report.kind}): {verdict}   seed={report.seed}, "
             f"method={method}, {report.evaluations} forward passes, {report.seconds:.3g} s"]
    if report.conclusion:
        lines.append(f"  → {report.conclusion}")
    # Errors and warnings first; notes (how the check was done) go last.
    for diagnostic in report.diagnostics:
        if diagnostic.severity != Severity.NOTE:
            mark = "✗" if diagnostic.severity == Severity.ERROR else "!"
            lines.append(f"  {mark} {diagnostic.message}")
    if report.variables:
        rows = [SUMMARY_COLUMNS, *summary_rows(report)]
        lines += _table(rows, right={5, 6, 7, 8, 9, 10})
    for var in report.variables:
        if var.passed:
            continue
        lines.append("")
        lines.append(f"  {var.name}: {var.mismatches} of {var.checked} elements wrong")
        if var.diagnosis:
            lines.append(f"    {var.diagnosis}")
        rows = [WORST_COLUMNS, *worst_rows(var)]
        lines += ["  " + line for line in _table(rows, right={1, 2, 3, 4})]
        hidden = var.mismatches - len(var.worst)
        if hidden > 0:
            lines.append(f"      ... and {hidden} more")
    kinks = [v for v in report.variables if v.kinks]
    if kinks:
        text = ", ".join(f"{v.name}: {v.kinks}" for v in kinks)
        lines.append(f"  non-differentiable points skipped (kinks): {text}")
    for constant in report.constants:
        lines.append(f"  {constant.name} treated as a constant: {constant.reason}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    for diagnostic in report.diagnostics:
        if diagnostic.severity == Severity.NOTE:
            lines.append(f"  note: {diagnostic.message}")
    return "\n".join(lines)


def findings(
    analytic: NDArray,
    numerical: NDArray,
    error: NDArray,
    abs_error: NDArray,
    mask: NDArray[np.bool_],
    status: str,
    most: int = 5,
) -> list[ElementFinding]:
    """The ``most`` worst elements under ``mask``, worst first, with plain-int indices."""
    flat = np.flatnonzero(mask)
    order = flat[np.argsort(-abs_error.ravel()[flat], kind="stable")][:most]
    return [
        ElementFinding(
            index=tuple(int(i) for i in np.unravel_index(k, analytic.shape)),
            analytic=float(analytic.ravel()[k]),
            numerical=float(numerical.ravel()[k]),
            error_estimate=float(error.ravel()[k]),
            abs_error=float(abs_error.ravel()[k]),
            status=status,
        )
        for k in order
    ]
