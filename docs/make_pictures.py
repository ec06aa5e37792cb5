"""Rebuild the pictures in ``docs/``: the chapter's graphs and the HTML report screenshots.

Run ``python docs/make_pictures.py`` from the repository root. Graph pictures need
Graphviz's ``dot`` (``apt-get install graphviz``); screenshots need a headless Chromium
(``apt-get install chromium``); whatever is missing is skipped with a message. The reports
show two bugs of the test zoo (``tests/zoo.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import gradcheck
from gradcheck.report.html import write_html
from gradcheck.teaching.graph import Graph
from reference_layers import AddLayer, MulLayer

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "tests"))

from zoo import BROKEN  # noqa: E402 (the zoo lives with the tests)

SCREENSHOT_SIZE = "1200,900"


def apple_graph() -> Graph:
    """Figure 5-16: two apples with tax."""
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    with gradcheck.trace() as graph:
        apple_price = mul_apple_layer.forward(apple, apple_num)
        price = mul_tax_layer.forward(apple_price, tax)  # noqa: F841 (named in the picture)
        dapple_price, _ = mul_tax_layer.backward(1)
        mul_apple_layer.backward(dapple_price)
    return graph


def apple_orange_graph() -> Graph:
    """Figure 5-17: apples and oranges with tax."""
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()
    with gradcheck.trace() as graph:
        apple_price = mul_apple_layer.forward(apple, apple_num)
        orange_price = mul_orange_layer.forward(orange, orange_num)
        all_price = add_apple_orange_layer.forward(apple_price, orange_price)
        price = mul_tax_layer.forward(all_price, tax)  # noqa: F841 (named in the picture)
        dall_price, _ = mul_tax_layer.backward(1)
        dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
        mul_orange_layer.backward(dorange_price)
        mul_apple_layer.backward(dapple_price)
    return graph


def graphs() -> None:
    for name, graph in (("apple", apple_graph()), ("apple_orange", apple_orange_graph())):
        (DOCS / f"{name}.dot").write_text(graph.to_dot(), encoding="utf-8")
        if shutil.which("dot") is None:
            print(f"dot not found: wrote only docs/{name}.dot")
            continue
        for suffix in ("svg", "png"):
            print("wrote", graph.render(DOCS / f"{name}.{suffix}").relative_to(DOCS.parent))


def screenshot(page: Path, png: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print(f"chromium not found: no screenshot of {page.name}")
        return
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={SCREENSHOT_SIZE}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    print("wrote", png.relative_to(DOCS.parent))


def reports() -> None:
    for bug, name in (
        ("affine-one-wrong-element", "one-wrong-element"),
        ("affine-transposed-dW", "transposed-dW"),
    ):
        layer: Any
        layer, inputs = BROKEN[bug](np.random.default_rng(0))
        report = gradcheck.check(layer, *inputs)
        page = write_html(report, DOCS / f"report-{name}.html")
        print("wrote", page.relative_to(DOCS.parent))
        screenshot(page, DOCS / f"report-{name}.png")


if __name__ == "__main__":
    graphs()
    reports()
