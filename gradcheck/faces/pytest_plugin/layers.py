"""``--gradcheck-layers``: one test per example-bearing class of a module, per dtype.

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
        self.add_marker(MARKER)
        # Not in a file: rerun it by its module and keyword.
        self.stash[RESELECT] = [
            f"--gradcheck-layers={self.parent.name if self.parent else ''}", "-k", self.name
        ]

    def runtest(self) -> None:
        """Make the example (its rng seeded with the test's seed) and check it."""
        import numpy as np

        from gradcheck.checker import check
        from gradcheck.network import check_network, exposes_layers

        settings = current()
        rng = np.random.default_rng(settings.options.seed)
        layer, inputs = self.candidate.example(rng, np.dtype(self.dtype))
        # A net that exposes its layers is checked layer by layer, to name the guilty one.
        run = check_network if exposes_layers(layer) else check
        report = run(layer, *inputs, **as_kwargs(settings.options))
        if not report.passed:
            raise failure(report, settings, seed_given=False)

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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the layer items (``tryfirst``, so that ``-k`` and ``-m`` see them too)."""
    layers = configuration(config).layers
    if layers:
        items.extend(_layer_items(session, layers))
