"""Every example in a docstring runs, and prints what it says it prints."""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import gradcheck
import reference_layers


def _modules() -> list[str]:
    names = []
    for package in (gradcheck, reference_layers):
        names.append(package.__name__)
        names += [
            m.name
            for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
            if not m.name.endswith(".__main__")
        ]  # importing it runs the command
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    output = io.StringIO()
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    for test in finder.find(module, name, globs={"np": np, **vars(module)}):
        runner.run(test, out=output.write)
    assert runner.failures == 0, output.getvalue()


def test_the_doctests_are_collected() -> None:
    assert {"gradcheck.checker", "gradcheck.engine.spec", "reference_layers"} <= set(_modules())


def test_the_one_page_check_runs() -> None:
    # docs/the-check-in-one-page.md: the whole idea in ~30 lines, a doctest like these.
    page = Path(__file__).resolve().parent.parent / "docs" / "the-check-in-one-page.md"
    result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
