"""Rich reports: HTML tables with SVG heatmaps that point at the bug, Markdown, figures."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from zoo import BROKEN

import gradcheck
from gradcheck.report.formatting import format_number, format_value
from gradcheck.report.html import render_html, write_html
from gradcheck.report.mosaic import MAX_SIDE, MAX_TILES, build_mosaic
from gradcheck.report.reports import Report
from reference_layers import Affine, Convolution, Sigmoid


class AffineWrongRow(Affine):
    """Every element of row 37 of ``dW`` has the wrong sign."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        dx = super().backward(dout)
        assert self.dW is not None
        self.dW = self.dW.copy()
        self.dW[37] *= -1
        return dx


class ConvWrongChannel(Convolution):
    """``dx`` of channel 1 is 1 % too large."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        dx = super().backward(dout).copy()
        dx[:, 1] *= 1.01
        return dx


class _Cells(HTMLParser):
    """Every heatmap cell: (variable, picture kind, index, status)."""

    def __init__(self) -> None:
        super().__init__()
        self.variable: str | None = None
        self.kind: str | None = None
        self.cells: list[tuple[str | None, str | None, tuple[int, ...], str]] = []
        self.outlines: list[tuple[str | None, str | None, tuple[int, ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-variable" in found:
            self.variable = found["data-variable"]
        if tag == "svg" and found.get("class") == "gc-heatmap":
            self.kind = found["data-kind"]
        if tag == "rect" and "data-index" in found:
            text = found["data-index"] or ""
            index = tuple(int(i) for i in text.split(",")) if text else ()
            if "outline" in (found.get("class") or ""):
                self.outlines.append((self.variable, self.kind, index))
            else:
                self.cells.append((self.variable, self.kind, index, found["data-status"] or ""))

    handle_startendtag = handle_starttag


def _cells(html: str) -> _Cells:
    parser = _Cells()
    parser.feed(html)
    return parser


def _mismatches(html: str, variable: str, kind: str = "error") -> set[tuple[int, ...]]:
    return {
        index
        for var, k, index, status in _cells(html).cells
        if var == variable and k == kind and status == "mismatch"
    }


def _broken(name: str) -> Report:
    layer, inputs = BROKEN[name](np.random.default_rng(0))
    return gradcheck.check(layer, *inputs)


@pytest.fixture(scope="module")
def one_wrong() -> Report:
    return _broken("affine-one-wrong-element")


@pytest.fixture(scope="module")
def transposed() -> Report:
    return _broken("affine-transposed-dW")


@pytest.fixture(scope="module")
def passing() -> Report:
    return gradcheck.check(Sigmoid(), np.linspace(-2, 2, 12).reshape(3, 4))


def test_html_has_the_table_and_svg_heatmaps(one_wrong: Report) -> None:
    html = render_html(one_wrong)
    assert '<table class="gc-table">' in html
    for column in ("name", "shape", "wrong", "err/tol"):
        assert f">{column}</th>" in html
    assert html.count('class="gc-heatmap"') >= 3
    assert 'data-kind="error"' in html and 'data-kind="analytic"' in html


def test_failing_row_is_highlighted(one_wrong: Report) -> None:
    html = render_html(one_wrong)
    assert html.count('class="gc-fail"') == 1
    row = html.split('class="gc-fail"')[1].split("</tr>")[0]
    assert "W (param)" in row


def test_one_wrong_element_is_marked_at_its_index(one_wrong: Report) -> None:
    html = render_html(one_wrong)
    for kind in ("error", "analytic", "numerical"):
        assert _mismatches(html, "W", kind) == {(2, 1)}
    outlined = {index for var, _, index in _cells(html).outlines if var == "W"}
    assert outlined == {(2, 1)}


def test_every_element_gets_a_cell_labelled_with_its_index(one_wrong: Report) -> None:
    cells = _cells(render_html(one_wrong)).cells
    shown = {index for var, kind, index, _ in cells if var == "W" and kind == "error"}
    assert shown == {(i, j) for i in range(4) for j in range(3)}


def test_transposed_dW_shows_a_symmetric_off_diagonal_pattern(transposed: Report) -> None:
    wrong = _mismatches(render_html(transposed), "W")
    assert wrong == {(i, j) for i in range(3) for j in range(3) if i != j}
    assert wrong == {(j, i) for i, j in wrong}


def test_transposed_dW_analytic_picture_is_the_mirror_of_the_numerical(
    transposed: Report,
) -> None:
    var = transposed.variable("W")
    np.testing.assert_allclose(var.analytic, var.numerical.T, rtol=1e-6)


def test_tooltips_give_the_values(one_wrong: Report) -> None:
    html = render_html(one_wrong)
    var = one_wrong.variable("W")
    assert f"W[2, 1]: analytic {format_number(var.analytic[2, 1])}" in html


def test_a_passing_report_marks_nothing(passing: Report) -> None:
    html = render_html(passing)
    assert _cells(html).outlines == []
    assert 'data-passed="true"' in html and "gc-fail" not in html


def test_repr_html_is_a_self_contained_fragment(one_wrong: Report) -> None:
    html = one_wrong._repr_html_()
    assert html.startswith('<div class="gradcheck-report"')
    assert "<style>" in html and "<html" not in html and "<script" not in html


def test_repr_markdown_has_the_tables(transposed: Report) -> None:
    text = transposed._repr_markdown_()
    assert "**FAILED ✗**" in text
    assert "| ✗ | **W (param)** |" in text
    assert "| (2, 0) |" in text


def test_to_html_is_a_standalone_page(one_wrong: Report) -> None:
    page = one_wrong.to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>gradcheck: AffineOneWrongElement — 1 failed</title>" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "src=" not in page and "<link" not in page


def test_write_html_puts_several_reports_on_one_page(
    one_wrong: Report, passing: Report, tmp_path: Path
) -> None:
    path = write_html([one_wrong, passing], tmp_path / "sub" / "report.html")
    page = path.read_text(encoding="utf-8")
    assert page.count('<div class="gradcheck-report"') == 2
    assert page.count("<style>") == 1
    assert "2 checks, <b>1 failed</b>" in page


def test_four_dimensional_gradients_are_tiled_per_sample_and_channel() -> None:
    rng = np.random.default_rng(0)
    layer = ConvWrongChannel(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2), pad=1)
    report = gradcheck.check(layer, rng.standard_normal((2, 3, 4, 4)))
    html = render_html(report)
    wrong = _mismatches(html, "x")
    assert wrong and {index[1] for index in wrong} == {1}
    assert all(len(index) == 4 for index in wrong)
    assert "[1, 2, :, :]" in html


def test_large_gradients_are_downsampled_by_their_worst_element() -> None:
    rng = np.random.default_rng(0)
    layer = AffineWrongRow(rng.standard_normal((100, 40)) * 0.1, np.zeros(40))
    report = gradcheck.check(layer, rng.standard_normal((4, 100)), wrt=["W"])
    html = render_html(report)
    assert "downsampled: each cell shows the worst element of a 4×2 block" in html
    wrong = _mismatches(html, "W")
    assert wrong and {row for row, _ in wrong} == {37}
    cells = [c for c in _cells(html).cells if c[0] == "W" and c[1] == "error"]
    assert len(cells) <= MAX_SIDE * MAX_SIDE


def test_mosaic_shows_slices_with_a_mismatch_first() -> None:
    priority = np.zeros((40, 3, 2, 2))
    priority[33, 2, 1, 0] = 3.5
    mosaic = build_mosaic(priority, urgent=3.0)
    assert len(mosaic.tiles) == MAX_TILES
    assert (33, 2) in [tile.lead for tile in mosaic.tiles]
    assert "showing 16 of 120 slices" in (mosaic.note() or "")


def test_scalar_and_vector_gradients_are_drawn() -> None:
    mosaic = build_mosaic(np.float64(1.0))
    assert mosaic.index(int(mosaic.tiles[0].cells[0, 0])) == ()
    mosaic = build_mosaic(np.arange(5.0))
    assert [mosaic.index(int(k)) for k in mosaic.tiles[0].cells.ravel()] == [(i,) for i in range(5)]


def test_plot_returns_a_figure_with_three_pictures_per_failing_gradient(
    transposed: Report,
) -> None:
    pytest.importorskip("matplotlib", reason="report.plot() needs the 'plot' extra")
    import matplotlib.pyplot as plt

    figure = transposed.plot()
    try:
        assert len(figure.axes) == 3
        assert "dW" in figure.axes[1].get_title()
        assert len(transposed.plot(which="all").axes) == 9
    finally:
        plt.close("all")


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_format_number_keeps_six_significant_digits(value: float) -> None:
    assert float(format_number(value)) == pytest.approx(value, rel=5e-6, abs=0)


def test_format_number_hides_rounding_noise() -> None:
    assert [format_number(v) for v in (1.1 * 200, 1.1 * 150, 3.3000000000000003, 2)] == [
        "220",
        "165",
        "3.3",
        "2",
    ]
    assert format_value(np.zeros((5, 4))) == "(5, 4) [0, 0, 0, …]"
