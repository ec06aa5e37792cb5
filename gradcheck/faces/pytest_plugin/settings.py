"""The settings of the running test: its options, its seed, and how to rerun it.

A pure function of the session's configuration, the test's markers and its id; the
running test is known through a context variable set around each test's protocol.
Holds the hooks that validate markers at collection and set that variable, and the
:class:`~gradcheck.GradientCheckError` a failed check raises.
"""

from __future__ import annotations

import contextvars
import dataclasses
import shlex
import zlib
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from gradcheck.errors import GradientCheckError, OptionError
from gradcheck.faces.pytest_plugin.configuration import (
    MARKER,
    configuration,
    flag,
    negated_flag,
)
from gradcheck.options import CheckOptions, resolve_options

if TYPE_CHECKING:
    from gradcheck.report.reports import NetworkReport, Report

# The arguments that select an item not defined in a file (a layer item) again;
# an item without them is selected by its node id.
RESELECT = pytest.StashKey[list[str]]()


def derive_seed(base_seed: int, nodeid: str) -> int:
    """The seed of the test ``nodeid`` under the configured ``base_seed``.

    A stable 32-bit hash (CRC-32) of both, so the seed is the same in every process and
    run: alone, in a full suite, or on any pytest-xdist worker.

    Examples
    --------
    >>> derive_seed(0, "tests/test_layers.py::test_affine")
    1248256810
    """
    return zlib.crc32(f"{base_seed}:{nodeid}".encode())


@dataclasses.dataclass(frozen=True)
class ItemSettings:
    """The options of one test: configuration, then its markers; the seed resolved.

    Attributes
    ----------
    nodeid : str
    options : CheckOptions
        Its seed derived from the test id, unless a marker gave one.
    base_seed : int
        The configured ``--gradcheck-seed``.
    seed_from_marker : bool
    reproduce : tuple of str
        Arguments to pytest that rerun this test alone.
    """

    nodeid: str
    options: CheckOptions
    base_seed: int
    seed_from_marker: bool
    reproduce: tuple[str, ...]  # arguments to pytest that rerun this test alone


class MarkerError(Exception):
    """A ``@pytest.mark.gradcheck`` with a bad argument; the message names test and key."""


def _marker_overrides(item: pytest.Item) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    # iter_markers yields the closest marker first; apply the farthest first.
    for mark in reversed(list(item.iter_markers(MARKER))):
        if mark.args:
            raise MarkerError(
                f"{item.nodeid}: @pytest.mark.{MARKER} takes keyword arguments only "
                f"(e.g. @pytest.mark.{MARKER}(rtol=1e-4)); got positional {mark.args!r}"
            )
        overrides.update(mark.kwargs)
    return overrides


def _settings_for(item: pytest.Item) -> ItemSettings:
    """The item's settings: a pure function of the configuration, markers and test id."""
    session = configuration(item.config)
    overrides = _marker_overrides(item)
    base = session.options
    try:
        options = resolve_options(base, **overrides)
    except OptionError as error:
        raise MarkerError(f"{item.nodeid}: @pytest.mark.{MARKER}: {error}") from None
    from_marker = "seed" in overrides
    if not from_marker:
        options = dataclasses.replace(options, seed=derive_seed(base.seed, item.nodeid))
    reselect: list[str] = item.stash.get(RESELECT, [item.nodeid])
    select = [*reselect, f"--gradcheck-seed={base.seed}"]
    select += [_as_flag(name, getattr(base, name)) for name in session.explicit if name != "seed"]
    return ItemSettings(item.nodeid, options, base.seed, from_marker, tuple(select))


def _as_flag(name: str, value: Any) -> str:
    """The command-line flag that sets option ``name`` to ``value``."""
    if isinstance(value, bool):
        return flag(name) if value else negated_flag(name)
    if value is None:
        return f"{flag(name)}=auto"
    if isinstance(value, tuple):
        return f"{flag(name)}={','.join(value)}"
    return f"{flag(name)}={value}"


_CURRENT: contextvars.ContextVar[pytest.Item] = contextvars.ContextVar("gradcheck_item")


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, object, object]:
    """Validate the marker of every test function as it is collected.

    A bad marker is a collection error naming the test and the key (a usage error
    raised here would crash pytest-xdist workers).
    """
    result = yield
    collected = result if isinstance(result, list) else [result]
    for node in collected:
        if isinstance(node, pytest.Item):
            try:
                _settings_for(node)
            except MarkerError as error:
                raise collector.CollectError(str(error)) from None
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Make the running test visible to the session-scoped fixture."""
    token = _CURRENT.set(item)
    try:
        return (yield)
    finally:
        _CURRENT.reset(token)


def current() -> ItemSettings:
    """The settings of the running test.

    Returns
    -------
    ItemSettings

    Raises
    ------
    RuntimeError
        Outside a running test (for instance from another thread).
    pytest.UsageError
        The test's marker has a bad argument.
    """
    try:
        item = _CURRENT.get()
    except LookupError:
        raise RuntimeError(
            "the gradcheck fixture was called outside a running test (from another thread?); "
            "call it from the test itself, or pass gradcheck.options to gradcheck.check"
        ) from None
    try:
        return _settings_for(item)
    except MarkerError as error:
        raise pytest.UsageError(str(error)) from None


def failure(
    report: Report | NetworkReport, settings: ItemSettings, seed_given: bool
) -> GradientCheckError:
    """A GradientCheckError for ``report``, with a note on its seed and how to rerun it.

    Parameters
    ----------
    report : Report or NetworkReport
        The failed report.
    settings : ItemSettings
        The test's settings, for where its seed came from and how to rerun it.
    seed_given : bool
        Whether the call itself gave the seed.

    Returns
    -------
    GradientCheckError
        Its message is the report; the seed and the command come as a note (PEP 678).
    """
    error = GradientCheckError(report)
    if seed_given:
        how = f"seed {report.seed} was given by the test; it gives the same verdict on rerun"
    elif settings.seed_from_marker:
        how = f"seed {report.seed} comes from @pytest.mark.{MARKER}(seed=...)"
    else:
        how = f"seed {report.seed} = crc32 of --gradcheck-seed={settings.base_seed} and the test id"
    command = shlex.join(["pytest", *settings.reproduce])
    # A note (PEP 678), so that str(error) stays the report itself; pytest shows notes.
    error.add_note(
        f"\n  {how}\n  reproduce: {command}\n"
        f"  or in Python: gradcheck.check(..., seed={report.seed})"
    )
    return error


def as_kwargs(options: CheckOptions) -> dict[str, Any]:
    """``options`` as keyword arguments of :func:`gradcheck.check`.

    Parameters
    ----------
    options : CheckOptions

    Returns
    -------
    dict
        One entry per field.
    """
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
