"""What a check found, as plain data: no rendering, no checking.

These records are what the checker and :func:`gradcheck.check_network` fill in and what
every renderer (:mod:`~gradcheck.report.text`, :mod:`~gradcheck.report.markdown`,
:mod:`~gradcheck.report.html`, :mod:`~gradcheck.report.plot`) reads. The public classes
:class:`gradcheck.Report` and :class:`gradcheck.NetworkReport`
(:mod:`gradcheck.report.reports`) are these records plus the methods that show them;
keeping the two apart is what lets the renderers import the records without the records
importing the renderers.

A renderer takes a :data:`Record`, one check's or a whole network's, and tells the two
apart with ``isinstance(record, NetworkRecord)`` (whose ``kind`` is ``"network"``).

The module runs past 500 lines because it holds every record a renderer reads — an
element's, a variable's, a check's, a layer's in a net, a net's — with the one-line
summaries they share; split, each renderer would import one concept from several places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from gradcheck.vocabulary import Constant, Diagnostic, Kind, Severity, Verdict

__all__ = [
    "WIRING",
    "CheckRecord",
    "ElementFinding",
    "LayerCheck",
    "NetworkRecord",
    "Record",
    "Screening",
    "VariableReport",
    "diagnosis_line",
    "findings",
    "worst_line",
]

#: What :attr:`NetworkRecord.guilty` says when every layer is right but the net is not.
WIRING = "wiring"


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


def findings(
    analytic: NDArray,
    numerical: NDArray,
    error: NDArray,
    abs_error: NDArray,
    mask: NDArray[np.bool_],
    status: str,
    most: int = 5,
) -> list[ElementFinding]:
    """The ``most`` worst elements under ``mask``, worst first, with plain-int indices.

    Parameters
    ----------
    analytic, numerical, error, abs_error : ndarray
        Per element, of one shape: the two gradients, the numerical side's error
        estimate and ``|analytic - numerical|``.
    mask : ndarray of bool
        The elements to choose from.
    status : str
        What they are (``"mismatch"``, ``"kink"``).
    most : int, optional
        How many to keep (default 5).

    Returns
    -------
    list of ElementFinding
        Largest ``abs_error`` first; ties keep index order.
    """
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


def _directions(count: int) -> str:
    return f"{count} random direction{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class Screening:
    """What random directions say about the elements of a variable seen only through them.

    Fast mode compares a few directional derivatives with ``⟨gradient, v⟩``; the elements
    it does not check one by one are *screened*, not checked. A passing direction bounds
    how wrong any one of them can be: an element off by ``δ`` moves the test by
    ``δ·v_i``, which its threshold would have seen beyond ``(|difference| + threshold) /
    |v_i|``.

    Attributes
    ----------
    elements : int
        Elements seen only through directions (none of them checked one by one).
    directions : int
        Random directions that screened them.
    sensitivity : float
        The smallest error of one element that the directions would surely have caught,
        the worst over the screened elements, relative to the variable's typical element.
        ``inf`` when no direction passed over them.
    promised : float
        The largest ``sensitivity`` that still counts as verified (a few ``rtol``).
    """

    elements: int
    directions: int
    sensitivity: float
    promised: float

    @property
    def sufficient(self) -> bool:
        """Whether the directions would have caught what a full check promises to."""
        return self.sensitivity <= self.promised

    def sentence(self) -> str:
        """``39,200 elements screened by 2 random directions (none of them checked one by one):
        would catch one element off by ≥ 6e-9 (relative to a typical element)``."""
        catch = (
            f"would catch one element off by ≥ {self.sensitivity:.1g} (relative to a "
            "typical element)"
            if np.isfinite(self.sensitivity)
            else "a direction over them fails, so they are not verified"
        )
        return (
            f"{self.elements:,} element{'s' if self.elements != 1 else ''} screened by "
            f"{_directions(self.directions)} (none of them checked one by one): {catch}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``sensitivity`` is None when infinite)."""
        return {
            "elements": self.elements,
            "directions": self.directions,
            "sensitivity": float(self.sensitivity) if np.isfinite(self.sensitivity) else None,
            "promised": self.promised,
            "sufficient": self.sufficient,
        }


@dataclass
class VariableReport:
    """The verdict on the gradient of one input or parameter.

    ``checked`` counts the elements compared one by one; in fast mode the others are
    only ``screening``'s (seen through random directions, status ``UNCHECKED``), and the
    variable passes only when those directions would have caught what a full check
    promises to (:attr:`Screening.sufficient`), else it is INCOMPLETE.
    ``max_rel_error`` is over the wrong elements and those whose tolerance is mostly
    relative (not those that cancel to about 0); ``worst_ratio`` is the largest
    ``|a − n|`` over its element's tolerance, at most 1 when the variable passes. The full
    arrays (``analytic``, ``numerical``, ``error``, ``threshold``, ``status``) are kept for
    pictures and for users who want to look closer; ``to_dict`` leaves them out.
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
    unresolved: int
    max_abs_error: float
    max_rel_error: float
    worst_ratio: float
    rtol: float
    atol: float
    worst: list[ElementFinding]
    diagnosis: str | None
    analytic: NDArray = field(repr=False)
    numerical: NDArray = field(repr=False)
    error: NDArray = field(repr=False)
    threshold: NDArray = field(repr=False)
    status: NDArray = field(repr=False)
    screening: Screening | None = None

    @property
    def verdict(self) -> Verdict:
        """FAILED when an element mismatches; INCOMPLETE when one is unresolved, or when
        the directions that screened the rest would miss what a full check catches."""
        if self.mismatches:
            return Verdict.FAILED
        if self.unresolved or self.screened_short:
            return Verdict.INCOMPLETE
        return Verdict.PASSED

    @property
    def passed(self) -> bool:
        """True when every element was verified and none mismatches."""
        return self.verdict is Verdict.PASSED

    @property
    def screened(self) -> int:
        """Elements seen only through random directions (not checked one by one)."""
        return self.screening.elements if self.screening is not None else 0

    @property
    def screened_short(self) -> bool:
        """True when screened elements could hide an error a full check would catch."""
        return self.screening is not None and not self.screening.sufficient

    def headline(self) -> str:
        """``3 of 12 elements wrong``, ``2 of 12 elements unresolved — ...``, ``all 12
        elements match``, or with fast mode how many were only screened: the words beside
        a variable's name. Elements seen through random directions are never counted as
        checked or matching (:meth:`screening_note` says what the directions showed)."""
        if self.screening is None:
            counted = f"{self.checked} elements"
        else:
            counted = f"{self.checked} checked one by one"
        more = ""
        if self.screening is not None:
            more = (
                f"; {self.screening.elements:,} more screened by "
                f"{_directions(self.screening.directions)}"
            )
        if self.verdict is Verdict.FAILED:
            return f"{self.mismatches} of {counted} wrong{more}"
        if self.unresolved:
            return (
                f"{self.unresolved} of {counted} unresolved — the numerical error "
                f"estimate is wider than the tolerance{more}"
            )
        if self.screening is None:
            return f"all {counted} match"
        if not self.checked:
            return (
                f"{self.screening.elements:,} elements screened by "
                f"{_directions(self.screening.directions)}, none checked one by one"
                + (" — not enough to count as checked" if self.screened_short else "")
            )
        return f"all {counted} match{more}" + (
            " — not enough to count as checked" if self.screened_short else ""
        )

    def screening_note(self) -> str | None:
        """What the random directions showed about the screened elements, and what checks
        each (None when every element was checked one by one)."""
        if self.screening is None:
            return None
        short = ""
        if self.screened_short and np.isfinite(self.screening.sensitivity):
            short = (
                f", above the {self.screening.promised:.1g} a check must catch: not "
                "enough to count as checked"
            )
        return f"{self.name}: {self.screening.sentence()}{short} — mode='full' checks each"

    @property
    def shown_count(self) -> int:
        """How many elements the worst-elements table is about (wrong, or unresolved)."""
        return self.mismatches if self.mismatches else self.unresolved

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
            "unresolved": self.unresolved,
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
            "worst_ratio": self.worst_ratio,
            "rtol": self.rtol,
            "atol": self.atol,
            "screened": self.screened,
            "screening": self.screening.to_dict() if self.screening is not None else None,
            "passed": self.passed,
            "verdict": str(self.verdict),
            "diagnosis": self.diagnosis,
            "worst": [finding.to_dict() for finding in self.worst],
        }


@dataclass
class CheckRecord:
    """What :func:`gradcheck.check` found (shown by :class:`gradcheck.Report`).

    Attributes
    ----------
    target : str
        The name of what was checked (a class or function name).
    kind : str
        ``"layer"``, ``"model"`` or ``"function"``.
    variables : list of VariableReport
        One per checked input and parameter.
    diagnostics : list of Diagnostic
        Findings about the target as a whole; those of severity ``"error"`` fail it,
        those of severity ``"incomplete"`` keep it from passing.
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
    convention : str or None
        The convention the object was read with (``"W/dW attributes"``, ...).
    unchecked : list of str
        Float arrays of the object that the output depends on but that no convention
        paired with a gradient: the check cannot pass while they are unchecked.
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
    convention: str | None = None
    unchecked: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """The worst of the variables' verdicts and the diagnostics' severities."""
        return Verdict.worst(
            [v.verdict for v in self.variables] + [d.severity.verdict for d in self.diagnostics]
        )

    @property
    def passed(self) -> bool:
        """True when every gradient was verified and matches, and nothing is in doubt."""
        return self.verdict is Verdict.PASSED

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
            "verdict": str(self.verdict),
            "conclusion": self.conclusion,
            "seed": self.seed,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "options": self.options,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "variables": [v.to_dict() for v in self.variables],
            "constants": [{"name": c.name, "reason": c.reason} for c in self.constants],
            "notes": list(self.notes),
            "convention": self.convention,
            "unchecked": list(self.unchecked),
        }

    def summary(self) -> str:
        """One line: target, verdict and what failed or was left unverified."""
        verdict = self.verdict
        if verdict is Verdict.PASSED:
            checked = sum(v.checked for v in self.variables)
            screened = sum(v.screened for v in self.variables)
            if not screened:
                return f"{self.target}: passed ({checked} gradient elements checked)"
            if not checked:
                return (
                    f"{self.target}: passed ({screened:,} gradient elements screened by "
                    "random directions, none checked one by one)"
                )
            return (
                f"{self.target}: passed ({checked} gradient elements checked one by one, "
                f"{screened:,} screened by random directions)"
            )
        if verdict is Verdict.FAILED:
            parts = [f"{v.mismatches} wrong in {v.name}" for v in self.variables if v.mismatches]
            parts += [d.kind for d in self.diagnostics if d.severity == Severity.ERROR]
        else:
            parts = [
                f"{v.unresolved} unresolved in {v.name}" for v in self.variables if v.unresolved
            ]
            parts += [
                f"{v.name} only screened"
                for v in self.variables
                if v.screened_short and not v.unresolved
            ]
            parts += [d.kind for d in self.diagnostics if d.severity == Severity.INCOMPLETE]
        return f"{self.target}: {verdict} ({'; '.join(parts)})"


def _first_failing(record: CheckRecord) -> VariableReport | None:
    return next((v for v in record.variables if v.mismatches), None)


# A sentence ends at . ? or ! followed by a capital letter, not at "e.g." or "i.e.".
_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)[.?!](?=\s+[A-Z])")


def _first_sentence(text: str) -> str:
    """The first sentence of ``text``, whole (``e.g. at (0, 1)`` does not end it)."""
    found = _SENTENCE_END.search(text)
    head = text if found is None else text[: found.end()]
    return head if head.endswith(("?", "!")) else head.rstrip(".") + "."


def worst_line(record: CheckRecord) -> str:
    """The worst element of a check, in a few words, for one row of a network's table.

    Parameters
    ----------
    record : CheckRecord
        A layer's check, or a net's end to end.

    Returns
    -------
    str
        ``"dW[2, 1]: -0.3567 vs -0.8567"`` for a failing check, the largest relative
        error for a passing one (over the elements checked one by one, with how many
        random directions only screened), ``""`` when nothing was differentiated.
    """
    var = _first_failing(record)
    if var is None:
        if not record.variables:
            return ""
        checked = sum(v.checked for v in record.variables)
        screened = sum(v.screened for v in record.variables)
        largest = f"max rel err {max(v.max_rel_error for v in record.variables):.1e}"
        if not screened:
            return largest
        if not checked:
            return f"{screened:,} elements screened, none checked one by one"
        return f"{largest} over {checked:,} checked; {screened:,} screened"
    if not var.worst:
        return f"{var.label} wrong"
    worst = var.worst[0]
    index = ", ".join(str(i) for i in worst.index)
    return f"d{var.name}[{index}]: {worst.analytic:.4g} vs {worst.numerical:.4g}"


def diagnosis_line(record: CheckRecord) -> str:
    """What is wrong with a check, in one sentence (``""`` when nothing is).

    That is the first error diagnostic's first sentence, else the first failing
    gradient's diagnosis or count of wrong elements, else how many kinks were skipped.
    """
    errors = [d for d in record.diagnostics if d.severity == Severity.ERROR]
    var = _first_failing(record)
    if errors:
        return _first_sentence(errors[0].message)
    if var is not None:
        if var.diagnosis:
            return var.diagnosis
        if var.screened:
            return (
                f"{var.mismatches} of the {var.checked} elements of {var.label} checked "
                f"one by one wrong ({var.screened:,} more screened)."
            )
        return f"{var.mismatches} of {var.checked} elements of {var.label} wrong."
    doubts = [d for d in record.diagnostics if d.severity == Severity.INCOMPLETE]
    if doubts:
        return _first_sentence(doubts[0].message)
    unresolved = next((v for v in record.variables if v.unresolved), None)
    if unresolved is not None:
        return (
            f"{unresolved.unresolved} of {unresolved.checked} elements of "
            f"{unresolved.label} unresolved."
        )
    short = next((v for v in record.variables if v.screened_short), None)
    if short is not None and short.screening is not None:
        return f"{short.name}: {short.screening.sentence()}."
    kinks = sum(v.kinks for v in record.variables)
    return f"{kinks} kink(s) skipped" if kinks else ""


#: The kind of check record a network holds: :class:`gradcheck.Report` in practice.
C = TypeVar("C", bound=CheckRecord)


@dataclass
class LayerCheck(Generic[C]):
    """One layer's verdict: its report, or why it could not be checked.

    Attributes
    ----------
    name : str
        The layer's name in the net (``"Affine1"``).
    kind : str
        Its class name.
    report : Report or None
        The check of its ``backward`` at the inputs it received; None when ``error`` says
        why there is none.
    error : str or None
        Why the layer was not checked (never called, or malformed ``backward``).
    failed : bool
        True when the layer is wrong (a failing report, or a malformed ``backward``).
    """

    name: str
    kind: str
    report: C | None = None
    error: str | None = None
    failed: bool = False

    def verdict(self) -> str:
        """``passed``, ``FAILED``, ``INCOMPLETE``, ``ERROR`` or ``not run``."""
        if self.report is not None:
            return str(self.report.verdict)
        return "ERROR" if self.failed else "not run"

    def diagnosis(self) -> str:
        """What is wrong with the layer in one sentence, or why it was not checked."""
        if self.report is None:
            return self.error or ""
        return diagnosis_line(self.report)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict(),
            "worst": worst_line(self.report) if self.report is not None else None,
            "diagnosis": self.diagnosis(),
            "error": self.error,
            "report": self.report.to_dict() if self.report is not None else None,
        }


@dataclass
class NetworkRecord(Generic[C]):
    """What :func:`gradcheck.check_network` found (shown by :class:`gradcheck.NetworkReport`).

    Attributes
    ----------
    target : str
        The net's class name.
    checks : list of LayerCheck
        One per layer, in forward order (the loss layer last).
    end_to_end : Report or None
        The check of ``net.gradient`` (None for a net without one, or when it raised).
    end_to_end_error : str or None
        Why the end-to-end check could not run (``gradient()`` raised).
    conclusion : str or None
        One sentence naming the guilty layer and its bug, or the wiring; None if passed.
    guilty : str or None
        The guilty layer's name, ``"wiring"``, or None.
    owners : dict
        ``params`` key -> ``"Layer.attribute"`` holding the same array object.
    hints : list of str
        What the trace shows about the wiring (backward order, accumulation, misread
        gradients), when the layers are right and the net is not.
    notes : list of str
        How the check was done (layers called twice, layers never called).
    seconds : float
        How long the whole check took.
    seed : int
        The seed of every layer's upstream gradient; the same seed gives the same verdict.
    """

    #: What was checked: always a whole network (a check's ``kind`` is never this).
    kind: ClassVar[Kind] = "network"

    target: str
    checks: list[LayerCheck[C]]
    end_to_end: C | None
    end_to_end_error: str | None
    conclusion: str | None
    guilty: str | None
    owners: dict[str, str]
    hints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    seed: int = 0

    @property
    def layers(self) -> list[tuple[str, C]]:
        """``(name, Report)`` of every layer that was checked, in forward order."""
        return [(c.name, c.report) for c in self.checks if c.report is not None]

    @property
    def verdict(self) -> Verdict:
        """FAILED when a layer or the end-to-end gradient is wrong (or could not run);
        INCOMPLETE when one of them could not be verified; else PASSED."""
        verdicts = [c.report.verdict for c in self.checks if c.report is not None]
        if any(c.failed for c in self.checks) or self.end_to_end_error is not None:
            verdicts.append(Verdict.FAILED)
        if self.end_to_end is not None:
            verdicts.append(self.end_to_end.verdict)
        return Verdict.worst(verdicts)

    @property
    def passed(self) -> bool:
        """True when every layer and the end-to-end gradient pass."""
        return self.verdict is Verdict.PASSED

    def __bool__(self) -> bool:
        return self.passed

    def layer(self, name: str) -> C:
        """The report of the layer called ``name``."""
        for check_ in self.checks:
            if check_.name == name and check_.report is not None:
                return check_.report
        raise KeyError(name)

    def detail(self) -> C | None:
        """The full report worth showing: the guilty layer's, or the end-to-end one."""
        if self.guilty == WIRING:
            return self.end_to_end
        for check_ in self.checks:
            if check_.name == self.guilty:
                return check_.report
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the whole report."""
        return {
            "target": self.target,
            "passed": self.passed,
            "verdict": str(self.verdict),
            "guilty": self.guilty,
            "conclusion": self.conclusion,
            "layers": [c.to_dict() for c in self.checks],
            "end_to_end": self.end_to_end.to_dict() if self.end_to_end is not None else None,
            "end_to_end_error": self.end_to_end_error,
            "owners": dict(self.owners),
            "hints": list(self.hints),
            "notes": list(self.notes),
            "seconds": self.seconds,
        }

    def summary(self) -> str:
        """One line: the net, its verdict and the guilty layer."""
        if self.passed:
            return (
                f"{self.target}: passed ({len(self.layers)} layers in place, and gradient() "
                "end to end)"
            )
        return f"{self.target}: {self.verdict} ({self.conclusion or 'see the report'})"


#: What every renderer takes: one check's record or a whole network's.
Record = CheckRecord | NetworkRecord[Any]
