"""README's examples run, and the report it shows is the one gradcheck prints."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)
_TIMING = re.compile(r"\d+(\.\d+)? s$", re.M)


def _run(code: str) -> str:
    if shutil.which("dot") is None:  # drawing needs Graphviz; the DOT text does not
        code = code.replace('graph.render("apple.svg")', "pass")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    return printed.getvalue()


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_every_python_example_in_the_readme_runs(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # what an example writes lands here
    _run(code)


def test_the_report_the_readme_shows_is_the_one_printed() -> None:
    first = README.index("## Checking a layer")
    code = re.search(r"```python\n(.*?)```", README[first:], re.S)
    shown = re.search(r"```text\n(.*?)```", README[first:], re.S)
    assert code is not None and shown is not None
    printed = _run(code.group(1))
    assert _TIMING.sub("T s", printed.split("\n", 1)[0]) == _TIMING.sub(
        "T s", shown.group(1).split("\n", 1)[0]
    )
    assert printed.split("\n", 1)[1].rstrip() == shown.group(1).split("\n", 1)[1].rstrip()
