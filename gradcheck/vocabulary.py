"""The words every room of gradcheck shares: statuses, severities, roles, kinds, modes.

These are plain value types with no behaviour beyond formatting, so that the conventions,
the engine, the verdict and the report can all use them without importing each other:
the report formats a :class:`Status` it is given; it never needs the comparison that
produced it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Literal, Protocol

__all__ = [
    "Constant",
    "Diagnostic",
    "Kind",
    "Mode",
    "Result",
    "Role",
    "Severity",
    "Status",
    "Verdict",
    "sentence",
]

#: What a differentiated array is to the checked object.
Role = Literal["input", "parameter"]
#: What was checked: one layer, a model with a loss, a function, or a whole network.
Kind = Literal["layer", "model", "function", "network"]
#: How the elements of a variable are covered (see :mod:`gradcheck.modes`).
Mode = Literal["auto", "full", "fast"]


def sentence(text: str) -> str:
    """``text`` ending as a sentence does: a full stop unless it has one (or ? ! …).

    Messages quote exceptions and reasons that may end anywhere; a report must not.
    """
    text = text.rstrip()
    return text if text.endswith((".", "?", "!", "…")) else text + "."


class Status(IntEnum):
    """The verdict of one element.

    ``UNRESOLVED``: no mismatch was seen, but the numerical side's error estimate is wider
    than the tolerance, so a mismatch of the tolerance's size could not have been seen
    either — the element is not verified (never reported as a match).
    """

    OK = 0
    MISMATCH = 1
    KINK = 2
    UNCHECKED = 3
    UNRESOLVED = 4


class Verdict(StrEnum):
    """The verdict of a variable, a check or a network.

    ``INCOMPLETE`` means nothing wrong was found but something could not be verified (an
    element the numerics cannot resolve, an array the output depends on that no
    convention paired with a gradient): never a plain pass.
    """

    PASSED = "passed"
    FAILED = "FAILED"
    INCOMPLETE = "INCOMPLETE"

    @property
    def mark(self) -> str:
        """``✓``, ``✗`` or ``?``."""
        return {"passed": "✓", "FAILED": "✗", "INCOMPLETE": "?"}[self.value]

    @classmethod
    def worst(cls, verdicts: Iterable[Verdict]) -> Verdict:
        """FAILED if any failed, else INCOMPLETE if any is, else PASSED."""
        found = set(verdicts)
        for verdict in (cls.FAILED, cls.INCOMPLETE):
            if verdict in found:
                return verdict
        return cls.PASSED


class Severity(StrEnum):
    """How much a :class:`Diagnostic` weighs.

    ``ERROR`` fails the check; ``INCOMPLETE`` means something was not verified, so the
    check cannot pass (its verdict is :attr:`Verdict.INCOMPLETE`); ``WARNING`` is worth
    reading but the check may pass; ``NOTE`` says how the check was done.
    """

    ERROR = "error"
    INCOMPLETE = "incomplete"
    WARNING = "warning"
    NOTE = "note"

    @property
    def verdict(self) -> Verdict:
        """The verdict a diagnostic of this severity gives its check."""
        if self is Severity.ERROR:
            return Verdict.FAILED
        if self is Severity.INCOMPLETE:
            return Verdict.INCOMPLETE
        return Verdict.PASSED

    @property
    def mark(self) -> str:
        """How text reports mark it: ``✗``, ``?``, ``!`` or ``·``."""
        return {"error": "✗", "incomplete": "?", "warning": "!", "note": "·"}[self.value]


@dataclass(frozen=True)
class Diagnostic:
    """A finding about the target as a whole (not about one element).

    ``kind`` is a short stable tag (``"inplace-backward"``, ``"nondeterministic"``, ...)
    for tools; ``message`` is the sentence for people.
    """

    kind: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"kind": self.kind, "severity": str(self.severity), "message": self.message}


@dataclass(frozen=True)
class Constant:
    """An input or attribute that is not differentiated, and why."""

    name: str
    reason: str


class Result(Protocol):
    """What every report offers, a layer's or a network's: a verdict and its words."""

    @property
    def passed(self) -> bool:
        """True when nothing is wrong and everything was verified."""

    def summary(self) -> str:
        """One line: what was checked and the verdict."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
