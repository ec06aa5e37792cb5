"""The ``gradcheck`` fixture: check gradients with the running test's options and assert."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gradcheck.faces.pytest_plugin.settings import as_kwargs, current, failure
from gradcheck.options import CheckOptions, resolve_options

if TYPE_CHECKING:
    from gradcheck.report.reports import Report


class GradcheckFixture:
    """The ``gradcheck`` fixture: check gradients and fail the test on a mismatch.

    Stateless and session-scoped, so it is safe inside ``@hypothesis.given`` tests. The
    options of the running test (configuration, then markers) and its seed are looked up
    when it is called, from the configuration frozen at start-up and the test's id.

    Examples
    --------
    >>> def test_affine(gradcheck):                        # doctest: +SKIP
    ...     layer, (x,) = Affine.example(np.random.default_rng(0))
    ...     gradcheck(layer, x)
    ...     gradcheck(layer, x, rtol=1e-6, wrt="W")
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "<gradcheck fixture: gradcheck(obj, *inputs, **options) checks and asserts>"

    def __call__(
        self,
        obj: Any,
        *inputs: Any,
        vjp: Any = None,
        grad: Any = None,
        **options: Any,
    ) -> Report:
        """Check ``obj`` at ``inputs``; raise :class:`GradientCheckError` if it fails.

        Parameters
        ----------
        obj, *inputs, vjp, grad
            As for :func:`gradcheck.check`.
        **options
            Overrides for this call (``rtol=1e-4``, ``seed=3``, ``wrt=("W",)``, ...).

        Returns
        -------
        Report
            The passing report.

        Raises
        ------
        GradientCheckError
            An ``AssertionError`` whose message is the report, its seed and how to
            reproduce it.
        """
        __tracebackhide__ = True
        report = self.check(obj, *inputs, vjp=vjp, grad=grad, **options)
        if not report.passed:
            raise failure(report, current(), seed_given="seed" in options)
        return report

    def check(
        self,
        obj: Any,
        *inputs: Any,
        vjp: Any = None,
        grad: Any = None,
        **options: Any,
    ) -> Report:
        """Like calling the fixture, but return the report instead of asserting.

        For tests that expect a failure: ``assert not gradcheck.check(bad, x).passed``.

        A :class:`~gradcheck.CheckError` (the object cannot be checked as given) is raised
        as a fresh exception with the same message, so the test fails at its own line like
        an assertion instead of in a traceback through gradcheck's internals.
        """
        __tracebackhide__ = True
        from gradcheck.checker import check
        from gradcheck.errors import CheckError

        resolved = resolve_options(self.options, **options)
        try:
            return check(obj, *inputs, vjp=vjp, grad=grad, **as_kwargs(resolved))
        except CheckError as error:
            raise _without_internals(error) from None

    @property
    def options(self) -> CheckOptions:
        """The running test's options, its seed included."""
        return current().options

    @property
    def seed(self) -> int:
        """The running test's seed (see :func:`derive_seed`)."""
        return self.options.seed


def _without_internals(error: Exception) -> Exception:
    """The same error, message and notes, without the frames it was raised through."""
    try:
        clean = type(error)(str(error))
    except Exception:  # a subclass with another constructor: keep it as it is
        return error.with_traceback(None)
    for note in getattr(error, "__notes__", []):
        clean.add_note(note)
    return clean


@pytest.fixture(scope="session")
def gradcheck() -> GradcheckFixture:
    """Check gradients: ``gradcheck(layer, x, **options)`` fails the test on a mismatch.

    Returns the :class:`~gradcheck.Report` on success. Options come from the command
    line and ini file, then ``@pytest.mark.gradcheck(...)``, then the call; the seed is
    derived from the test id.
    """
    return GradcheckFixture()
