"""The teaching notebook runs from top to bottom, so it can never go stale."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "backprop_tour.ipynb"
_MISSING = [
    name for name in ("nbformat", "nbclient", "ipykernel") if importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"executing the notebook needs {', '.join(_MISSING)} "
    "(pip install nbformat nbclient ipykernel)",
)


def test_notebook_is_committed_without_outputs() -> None:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


def test_notebook_matches_its_generator() -> None:
    import nbformat

    spec = importlib.util.spec_from_file_location(
        "make_tour", NOTEBOOK.with_name("make_backprop_tour.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert nbformat.writes(module.build()) == NOTEBOOK.read_text(encoding="utf-8").rstrip("\n")


def test_notebook_runs_and_shows_its_pictures(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    html = [out["data"]["text/html"] for out in outputs if "text/html" in out.get("data", {})]
    assert any('data-status="mismatch"' in page for page in html)
    text = "".join(out.get("text", "") for out in outputs)
    assert "mul_apple_layer (MulLayer)  forward(apple=100, apple_num=2) -> 200" in text
