"""``--gradcheck-layers``: one test per class and function pair of a module, per dtype.

Each is checked at what :mod:`gradcheck.faces.examples` offers, as by the ``gradcheck``
command: the class's ``example(rng, dtype)``, or made-up inputs (a test is skipped, with
the reason, when none can be made up).

Holds the ``pytest_collection_modifyitems`` hook that adds the items, the collector of
one module (:class:`LayerModule`) and the test of one class in one dtype
(:class:`LayerItem`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gradcheck.errors import CheckError, GradientCheckError
from gradcheck.faces.pytest_plugin.configuration import MARKER, configuration
from gradcheck.faces.pytest_plugin.settings import RESELECT, as_kwargs, current, failure

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from gradcheck.conventions.discovery import Candidate

_LAYER_DTYPES = ("float64", "float32")


class LayerModule(pytest.Collector):
    """The classes and function pairs of one module (or ``.py`` file), as
    :class:`LayerItem` s."""

    def collect(self) -> list[pytest.Item]:
        """Two items per class or function pair, float64 then float32, in module order."""
        from gradcheck.conventions.discovery import LoadError, resolve

        try:
            found = resolve(self.name)
        except LoadError as error:
            raise self.CollectError(f"gradcheck: --gradcheck-layers: {error}") from None
        return [
            LayerItem.from_parent(
                self,
                name=f"{candidate.name}[{dtype}]",
                nodeid=f"{self.nodeid}::{candidate.name}[{dtype}]",
                candidate=candidate,
                dtype=dtype,
            )
            for candidate in found
            for dtype in _LAYER_DTYPES
        ]


class LayerItem(pytest.Item):
    """Check one class or function pair, in one dtype, with the configured options."""

    def __init__(self, *, candidate: Candidate, dtype: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.candidate = candidate
        self.dtype = dtype
        self.add_marker(MARKER)
        # Not in a file: rerun it by its module and keyword.
        self.stash[RESELECT] = [
            f"--gradcheck-layers={self.parent.name if self.parent else ''}",
            "-k",
            self.name,
        ]

    def runtest(self) -> None:
        """Make the example or the inputs (seeded with the test's seed) and check them.

        Made-up inputs may come with a second guess (integer labels after one-hot
        targets), tried when the check raises on the first; if both raise, the first
        error is the test's.
        """
        import numpy as np

        from gradcheck.checker import check
        from gradcheck.faces.examples import attempts
        from gradcheck.network import check_network, exposes_layers

        settings = current()
        rng = np.random.default_rng(settings.options.seed)
        found = attempts(self.candidate, rng, np.dtype(self.dtype))
        if isinstance(found, str):
            pytest.skip(f"{self.candidate.name}: {found}")
        first: Exception | None = None
        for attempt in found:
            # A net that exposes its layers is checked layer by layer, to name the guilty one.
            run = check_network if exposes_layers(attempt.obj) else check
            try:
                report = run(attempt.obj, *attempt.inputs, **as_kwargs(settings.options))
            except Exception as error:
                first = first or error
                continue
            if attempt.note:
                report.notes.append(attempt.note)
            if not report.passed:
                raise failure(report, settings, seed_given=False)
            return
        assert first is not None
        raise first

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        """The report alone for a failed check; a traceback for anything else."""
        if isinstance(excinfo.value, GradientCheckError | CheckError):
            return "\n".join([str(excinfo.value), *getattr(excinfo.value, "__notes__", [])])
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the class is defined; the test id names it in reports."""
        candidate = self.candidate
        defined = candidate.obj[0] if candidate.is_pair else candidate.obj
        try:
            path = Path(inspect.getsourcefile(defined) or self.path)
            line: int | None = inspect.getsourcelines(defined)[1] - 1
        except (OSError, TypeError):
            path, line = self.path, None
        return path, line, self.nodeid


def _layer_items(session: pytest.Session, specs: tuple[str, ...]) -> Iterator[pytest.Item]:
    # Through genitems, so that the collection is reported (counts, errors, --co) like
    # any other: a module that cannot be imported is a collection error.
    for spec in specs:
        yield from session.genitems(LayerModule.from_parent(session, name=spec, nodeid=spec))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the layer items (``tryfirst``, so that ``-k`` and ``-m`` see them too)."""
    layers = configuration(config).layers
    if layers:
        items.extend(_layer_items(session, layers))
