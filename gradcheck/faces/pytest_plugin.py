"""pytest plugin for gradcheck: a fixture, a marker, options, and opt-in layer collection.

Registered through the ``pytest11`` entry point, so installing gradcheck is enough::

    def test_affine(gradcheck):
        layer, (x,) = Affine.example(np.random.default_rng(0))
        gradcheck(layer, x)                    # raises GradientCheckError on a mismatch

* The ``gradcheck`` fixture checks and asserts; per-call options override everything
  (``gradcheck(layer, x, rtol=1e-4)``).
* ``@pytest.mark.gradcheck(**options)`` overrides options for one test (or a class or
  module, through ``pytestmark``); unknown names stop the run with a usage error.
* Every option of :data:`gradcheck.options.OPTIONS` that can be written as text is a
  flag (``--gradcheck-rtol=1e-6``) and an ini key (``gradcheck_rtol = 1e-6``); the
  command line wins over the ini file.
* ``--gradcheck-layers=MODULE[,MODULE]`` (ini: ``gradcheck_layers``) adds one test per
  class offering ``example(rng, dtype)``, in float64 and float32.

Precedence, weakest first: defaults, ini file, command line, marker, call.

Seeds: each test gets ``crc32("<configured seed>:<test id>")``, a pure function of the
configured seed and the test id, so a test draws the same upstream gradient alone, in a
full run and on any pytest-xdist worker. A seed given to the marker or the call is used
as is. The plugin holds no mutable state: the configuration is computed once in
``pytest_configure`` and frozen; the running test is known through a context variable
set around each test's protocol.

Importing this module is cheap: the checker, numpy-heavy discovery and hypothesis are
imported inside the hooks and fixtures that need them.
"""

from __future__ import annotations

import argparse
import contextvars
import dataclasses
import inspect
import shlex
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gradcheck.errors import CheckError, GradientCheckError, OptionError
from gradcheck.options import OPTIONS, CheckOptions, OptionSpec, resolve_options

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from gradcheck.conventions.discovery import Candidate
    from gradcheck.report.reports import NetworkReport, Report

__all__ = ["GradcheckFixture", "LayerItem", "derive_seed"]

_MARKER = "gradcheck"
_LAYER_DTYPES = ("float64", "float32")


# --------------------------------------------------------------------------- configuration


def _flag(name: str) -> str:
    return "--gradcheck-" + name.replace("_", "-")


def _negated_flag(name: str) -> str:
    return "--no-gradcheck-" + name.replace("_", "-")


def _key(name: str) -> str:
    """The ini key, which is also the ``dest`` of the flag."""
    return f"gradcheck_{name}"


def _is_flag(spec: OptionSpec) -> bool:
    return isinstance(spec.default, bool)


def _textual() -> list[OptionSpec]:
    return [spec for spec in OPTIONS.values() if spec.textual]


@dataclasses.dataclass(frozen=True)
class _Configuration:
    """What the command line and ini file say, validated once per session."""

    options: CheckOptions
    explicit: tuple[str, ...]  # options given on the command line or in the ini file
    layers: tuple[str, ...]

    @property
    def used(self) -> bool:
        return bool(self.explicit or self.layers)


_CONFIG_KEY = pytest.StashKey[_Configuration]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """One flag and one ini key per textual option of :data:`gradcheck.options.OPTIONS`."""
    group = parser.getgroup("gradcheck", "gradient checking (gradcheck)")
    for spec in _textual():
        help_text = spec.help
        if spec.choices and not all(choice in help_text for choice in spec.choices):
            help_text += f" (one of: {', '.join(spec.choices)})"
        if spec.name == "seed":
            help_text += "; each test mixes it with its test id"
        if _is_flag(spec):
            group.addoption(
                _flag(spec.name),
                dest=_key(spec.name),
                action="store_true",
                default=None,
                help=f"{help_text} (default: {str(spec.default).lower()}; "
                f"{_negated_flag(spec.name)} to turn off)",
            )
            group.addoption(
                _negated_flag(spec.name),
                dest=_key(spec.name),
                action="store_false",
                default=None,
                help=argparse.SUPPRESS,
            )
        else:
            if "default" not in help_text:
                help_text += f" (default: {spec.default})"
            group.addoption(
                _flag(spec.name),
                dest=_key(spec.name),
                metavar=spec.metavar,
                default=None,
                help=help_text,
            )
        parser.addini(_key(spec.name), f"gradcheck: {spec.help}", default="")
    group.addoption(
        "--gradcheck-layers",
        dest="gradcheck_layers",
        metavar="MODULE[,MODULE]",
        default=None,
        help="collect one gradient check per class with example(rng, dtype) in these "
        "modules (or .py files), in float64 and float32",
    )
    parser.addini(
        "gradcheck_layers",
        "gradcheck: modules whose example-bearing layer classes become tests",
        default="",
    )


def _read_configuration(config: pytest.Config) -> _Configuration:
    values: dict[str, Any] = {}
    explicit: list[str] = []
    for spec in _textual():
        given = config.getoption(_key(spec.name))
        ini_text = str(config.getini(_key(spec.name)) or "").strip()
        if given is not None:
            where = _flag(spec.name)
            value = given if _is_flag(spec) else _parse(spec, str(given), f"{where}={given}")
        elif ini_text:
            where = f"ini option {_key(spec.name)}"
            if config.inipath is not None:
                where += f" in {config.inipath.name}"
            value = _parse(spec, ini_text, where)
        else:
            continue
        values[spec.name] = value
        explicit.append(spec.name)
    layers_text = config.getoption("gradcheck_layers") or config.getini("gradcheck_layers") or ""
    layers = tuple(part for part in str(layers_text).replace(",", " ").split() if part)
    return _Configuration(resolve_options(**values), tuple(explicit), layers)


def _parse(spec: OptionSpec, text: str, where: str) -> Any:
    try:
        return spec.from_text(text)
    except OptionError as error:
        raise pytest.UsageError(f"gradcheck: {where}: {error}") from None


def pytest_configure(config: pytest.Config) -> None:
    """Validate the options once (usage error on a bad value) and register the marker."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): gradcheck options for this test, overriding the command "
        f"line and ini file; known options: {', '.join(OPTIONS)}",
    )
    config.stash[_CONFIG_KEY] = _read_configuration(config)


def _configuration(config: pytest.Config) -> _Configuration:
    return config.stash[_CONFIG_KEY]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """One line with the active settings, when options or layers were given (or -v)."""
    configuration = _configuration(config)
    if not configuration.used and config.get_verbosity() <= 0:
        return []
    options = configuration.options
    parts = []
    for spec in _textual():
        value = getattr(options, spec.name)
        if spec.name in ("wrt", "max_evaluations") and spec.name not in configuration.explicit:
            continue
        shown = "auto" if value is None else ",".join(value) if isinstance(value, tuple) else value
        parts.append(f"{spec.name}={shown}")
    line = "gradcheck: " + ", ".join(parts) + " (seeds per test: crc32 of seed and test id)"
    if configuration.layers:
        line += f"; layers: {', '.join(configuration.layers)}"
    return [line]


# --------------------------------------------------------------------------- per-test settings


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
class _TestSettings:
    """The options of one test: configuration, then its markers; the seed resolved."""

    nodeid: str
    options: CheckOptions
    base_seed: int
    seed_from_marker: bool
    reproduce: tuple[str, ...]  # arguments to pytest that rerun this test alone


class _MarkerError(Exception):
    """A ``@pytest.mark.gradcheck`` with a bad argument; the message names test and key."""


def _marker_overrides(item: pytest.Item) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    # iter_markers yields the closest marker first; apply the farthest first.
    for mark in reversed(list(item.iter_markers(_MARKER))):
        if mark.args:
            raise _MarkerError(
                f"{item.nodeid}: @pytest.mark.{_MARKER} takes keyword arguments only "
                f"(e.g. @pytest.mark.{_MARKER}(rtol=1e-4)); got positional {mark.args!r}"
            )
        overrides.update(mark.kwargs)
    return overrides


def _settings_for(item: pytest.Item) -> _TestSettings:
    """The item's settings: a pure function of the configuration, markers and test id."""
    configuration = _configuration(item.config)
    overrides = _marker_overrides(item)
    base = configuration.options
    try:
        options = resolve_options(base, **overrides)
    except OptionError as error:
        raise _MarkerError(f"{item.nodeid}: @pytest.mark.{_MARKER}: {error}") from None
    from_marker = "seed" in overrides
    if not from_marker:
        options = dataclasses.replace(options, seed=derive_seed(base.seed, item.nodeid))
    if isinstance(item, LayerItem):  # not a file: select it by keyword
        select = [f"--gradcheck-layers={item.parent.name if item.parent else ''}", "-k",
                  item.name]
    else:
        select = [item.nodeid]
    select.append(f"--gradcheck-seed={base.seed}")
    select += [_as_flag(name, getattr(base, name)) for name in configuration.explicit
               if name != "seed"]
    return _TestSettings(item.nodeid, options, base.seed, from_marker, tuple(select))


def _as_flag(name: str, value: Any) -> str:
    """The command-line flag that sets option ``name`` to ``value``."""
    if isinstance(value, bool):
        return _flag(name) if value else _negated_flag(name)
    if value is None:
        return f"{_flag(name)}=auto"
    if isinstance(value, tuple):
        return f"{_flag(name)}={','.join(value)}"
    return f"{_flag(name)}={value}"


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
            except _MarkerError as error:
                raise collector.CollectError(str(error)) from None
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the layer items (``tryfirst``, so that ``-k`` and ``-m`` see them too)."""
    layers = _configuration(config).layers
    if layers:
        items.extend(_layer_items(session, layers))


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


def _current() -> _TestSettings:
    try:
        item = _CURRENT.get()
    except LookupError:
        raise RuntimeError(
            "the gradcheck fixture was called outside a running test (from another thread?); "
            "call it from the test itself, or pass gradcheck.options to gradcheck.check"
        ) from None
    try:
        return _settings_for(item)
    except _MarkerError as error:
        raise pytest.UsageError(str(error)) from None


def _failure(
    report: Report | NetworkReport, settings: _TestSettings, seed_given: bool
) -> GradientCheckError:
    """A GradientCheckError for ``report``, with a note on its seed and how to rerun it."""
    error = GradientCheckError(report)
    if seed_given:
        how = f"seed {report.seed} was given by the test; it gives the same verdict on rerun"
    elif settings.seed_from_marker:
        how = f"seed {report.seed} comes from @pytest.mark.{_MARKER}(seed=...)"
    else:
        how = (f"seed {report.seed} = crc32 of --gradcheck-seed={settings.base_seed} and the "
               "test id")
    command = shlex.join(["pytest", *settings.reproduce])
    # A note (PEP 678), so that str(error) stays the report itself; pytest shows notes.
    error.add_note(
        f"\n  {how}\n  reproduce: {command}\n"
        f"  or in Python: gradcheck.check(..., seed={report.seed})"
    )
    return error


def _as_kwargs(options: CheckOptions) -> dict[str, Any]:
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}


# --------------------------------------------------------------------------- the fixture


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
            raise _failure(report, _current(), seed_given="seed" in options)
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
        """
        from gradcheck.checker import check

        resolved = resolve_options(self.options, **options)
        return check(obj, *inputs, vjp=vjp, grad=grad, **_as_kwargs(resolved))

    @property
    def options(self) -> CheckOptions:
        """The running test's options, its seed included."""
        return _current().options

    @property
    def seed(self) -> int:
        """The running test's seed (see :func:`derive_seed`)."""
        return self.options.seed


@pytest.fixture(scope="session")
def gradcheck() -> GradcheckFixture:
    """Check gradients: ``gradcheck(layer, x, **options)`` fails the test on a mismatch.

    Returns the :class:`~gradcheck.Report` on success. Options come from the command
    line and ini file, then ``@pytest.mark.gradcheck(...)``, then the call; the seed is
    derived from the test id.
    """
    return GradcheckFixture()


# --------------------------------------------------------------------------- layer collection


class LayerModule(pytest.Collector):
    """The example-bearing classes of one module (or ``.py`` file), as :class:`LayerItem` s."""

    def collect(self) -> list[pytest.Item]:
        """Two items per class, float64 then float32, in the module's order."""
        from gradcheck.conventions.discovery import LoadError, resolve

        try:
            found = resolve(self.name)
        except LoadError as error:
            raise self.CollectError(f"gradcheck: --gradcheck-layers: {error}") from None
        with_example = [c for c in found if c.has_example]
        if not with_example:
            raise self.CollectError(
                f"gradcheck: --gradcheck-layers: {self.name} has no class with an "
                "example(rng, dtype) classmethod; add one, or check its layers with the "
                "gradcheck fixture"
            )
        return [
            LayerItem.from_parent(
                self,
                name=f"{candidate.name}[{dtype}]",
                nodeid=f"{self.nodeid}::{candidate.name}[{dtype}]",
                candidate=candidate,
                dtype=dtype,
            )
            for candidate in with_example
            for dtype in _LAYER_DTYPES
        ]


class LayerItem(pytest.Item):
    """Check one class's ``example(rng, dtype)`` with the configured options."""

    def __init__(self, *, candidate: Candidate, dtype: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.candidate = candidate
        self.dtype = dtype
        self.add_marker(_MARKER)

    def runtest(self) -> None:
        """Make the example (its rng seeded with the test's seed) and check it."""
        import numpy as np

        from gradcheck.checker import check
        from gradcheck.network import check_network, exposes_layers

        settings = _current()
        rng = np.random.default_rng(settings.options.seed)
        layer, inputs = self.candidate.example(rng, np.dtype(self.dtype))
        # A net that exposes its layers is checked layer by layer, to name the guilty one.
        run = check_network if exposes_layers(layer) else check
        report = run(layer, *inputs, **_as_kwargs(settings.options))
        if not report.passed:
            raise _failure(report, settings, seed_given=False)

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        """The report alone for a failed check; a traceback for anything else."""
        if isinstance(excinfo.value, GradientCheckError | CheckError):
            return "\n".join([str(excinfo.value), *getattr(excinfo.value, "__notes__", [])])
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the class is defined; the test id names it in reports."""
        cls = self.candidate.cls
        try:
            path = Path(inspect.getsourcefile(cls) or self.path)
            line: int | None = inspect.getsourcelines(cls)[1] - 1
        except (OSError, TypeError):
            path, line = self.path, None
        return path, line, self.nodeid


def _layer_items(session: pytest.Session, specs: tuple[str, ...]) -> Iterator[pytest.Item]:
    # Through genitems, so that the collection is reported (counts, errors, --co) like
    # any other: a module that cannot be imported is a collection error.
    for spec in specs:
        yield from session.genitems(LayerModule.from_parent(session, name=spec, nodeid=spec))
