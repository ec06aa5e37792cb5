"""Exceptions raised by gradcheck.

Two families, kept apart on purpose:

* :class:`CheckError` — the target cannot be checked at all (``backward`` returned
  ``None``, a gradient of the wrong shape, an integer array to differentiate, ...).
  The message names the layer, the input and what was expected. Its subclass
  :class:`UsageError` (and :class:`OptionError`) means the call was wrong, not the layer.
* :class:`GradientCheckError` — the check ran and found a problem. It is an
  ``AssertionError`` so that test runners show it as a failure, not an error.
"""

from __future__ import annotations

from gradcheck.vocabulary import Result

__all__ = ["CheckError", "GradientCheckError", "OptionError", "UsageError"]


class CheckError(Exception):
    """The target cannot be checked as given; the message says what to change."""


class UsageError(CheckError):
    """The call is wrong, not the target: an unknown ``wrt`` name, inputs that ``forward``
    cannot take, nothing selected to check, a check over ``max_evaluations``.

    The CLI exits with status 2 for these (a usage error) and 1 for other CheckErrors
    (a problem found in the user's layer).
    """


class OptionError(UsageError, ValueError):
    """An option has an invalid value (unknown name, wrong type, out of range)."""


class GradientCheckError(AssertionError):
    """A gradient check found a problem; ``str(error)`` is the full report.

    Attributes
    ----------
    report : Report or NetworkReport
        The report of the failed check.
    """

    def __init__(self, report: Result) -> None:
        super().__init__(str(report))
        self.report = report
