"""Every report renders, reads in whole sentences, and never marks a failing figure ✓.

Reports are made the way users make them — ``gradcheck.check`` on random correct layers
and mutants (tests/mutants.py, tests/catalogue.py), broken layers of the zoo, odd layers
(unresolved elements, kinks that meet, a lambda, a non-repeatable backward), models in
fast mode, and ``gradcheck.check_network`` on the chapter's net with planted bugs — under
random options, and sometimes with a synthesised target name full of markup. Each must:

* render as text, Markdown, HTML (fragment and page) and JSON without error, the target
  escaped in the HTML;
* say every conclusion, diagnosis and hint as a whole sentence: ending in ``.``, ``?`` or
  ``)``, not in ``e.g.``, and on one line of the text report;
* mark a row ✓ only beside ``wrong`` 0, no unresolved element and ``err/tol`` ≤ 1, and ✗
  only beside ``wrong`` > 0 (text and Markdown), and a network row ✓ only when it passed.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from html.parser import HTMLParser
from typing import Any

import numpy as np
from catalogue import FAMILIES, AffineRelu, TimeRNN, family_case, family_mutant
from hypothesis import assume, given
from hypothesis import strategies as st
from mutants import correct_case, mutant_case
from test_network import PLANTED, AffineReturningNothing, MisreadNet, ResidualNet, WrongOrderNet
from zoo import BROKEN, TextbookRelu

import gradcheck
from gradcheck.report.formatting import network_rows
from reference_layers import TwoLayerNet

Report = gradcheck.Report | gradcheck.NetworkReport
ENDS = (".", "?", ")")


# ---------------------------------------------------------------------------------------
# Odd layers: each reaches a corner of the report.


class Drifting:
    """A backward that answers differently on every call."""

    def __init__(self) -> None:
        self.calls = [0]

    def forward(self, x: Any) -> Any:
        return 2 * x

    def backward(self, dout: Any) -> Any:
        self.calls[0] += 1
        return dout * (2 + self.calls[0])


class AbsSquare:
    """``|x|²``, which turns complex input real: no complex step."""

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.abs(x) ** 2

    def backward(self, dout: Any) -> Any:
        return dout * 2 * self.x


def _tanh_in_float16(x: Any) -> Any:
    return np.tanh(x.astype(np.float16)).astype(np.float64)


def _oddity(rng: np.random.Generator, which: int) -> Report:
    x = rng.standard_normal((2, 3))
    if which == 0:  # tanh through float16 at rtol=1e-6: the forward's quantum is wider
        return gradcheck.check(
            _tanh_in_float16,
            x,
            method="central",
            rtol=1e-6,
            vjp=lambda dout, v: dout * (1 - np.tanh(v) ** 2),
        )
    if which == 1:
        x[0] = 0.0  # an all-zero sample before a ReLU with zero bias: kinks meet
        return gradcheck.check(AffineRelu(rng.standard_normal((3, 2)), np.zeros(2)), x)
    if which == 2:
        return gradcheck.check(lambda v: np.sum(v**3), x, grad=lambda v: 3 * v * v * 1.1)
    if which == 3:
        return gradcheck.check(Drifting(), x)
    if which == 4:
        return gradcheck.check(AbsSquare(), x)
    if which == 5:  # float64 in, float32 buffers: unresolved elements, kinks of rounding
        layer = TimeRNN(
            rng.standard_normal((3, 2)),
            0.5 * rng.standard_normal((2, 2)),
            rng.standard_normal(2),
            buffer="f",
        )
        return gradcheck.check(layer, rng.standard_normal((1, 3, 3)), rng.standard_normal((1, 2)))
    net, (data, t) = TwoLayerNet.example(rng)  # a model, in fast mode: vouched elements
    if which == 7:
        net.params["W1"] = net.params["W1"] * 1  # unshared from its layer: a wrong gradient
    return gradcheck.check(net, data, t, mode="fast")


ODDITIES = 8


def _network(rng: np.random.Generator, which: int) -> gradcheck.NetworkReport:
    net = TwoLayerNet(4, 4, 4, weight_init_std=0.5, seed=rng)
    x, t = rng.standard_normal((3, 4)), rng.integers(0, 4, size=3)
    if which < len(PLANTED):
        PLANTED[list(PLANTED)[which]](net)
    elif which == 4:
        net = WrongOrderNet(4, 4, 4, weight_init_std=0.5, seed=rng)
    elif which == 5:
        net = MisreadNet(4, 4, 4, weight_init_std=0.5, seed=rng)
    elif which == 6:
        return gradcheck.check_network(
            ResidualNet(int(rng.integers(100)), accumulate=False), x, rng.integers(0, 3, size=3)
        )
    elif which == 7:
        net.layers["Affine2"] = AffineReturningNothing(net.params["W2"], net.params["b2"])
    elif which == 8:
        net.layers["Relu1"] = TextbookRelu()
    return gradcheck.check_network(net, x, t)


NETWORKS = 10  # the last one is the chapter's net, unchanged
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.sampled_from(["auto", "full", "fast"]),
        "method": st.sampled_from(["auto", "central", "richardson"]),
        "strict": st.booleans(),
        "seed": st.integers(0, 3),
    },
)
SOURCES = ("chain", "family", "zoo", "oddity", "network")


@st.composite
def reports(draw: st.DrawFn) -> Report | None:
    """A report of a random kind, or None when the checker refused (CheckError)."""
    source = draw(st.sampled_from(SOURCES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    options = draw(OPTIONS)
    mutant = draw(st.booleans())
    try:
        if source == "oddity":
            report: Report = _oddity(rng, draw(st.integers(0, ODDITIES - 1)))
        elif source == "network":
            report = _network(rng, draw(st.integers(0, NETWORKS - 1)))
        else:
            if source == "chain":
                case: Any = mutant_case(rng) if mutant else correct_case(rng)
            elif source == "family":
                family = draw(st.sampled_from(list(FAMILIES)))
                case = family_mutant(rng, family) if mutant else family_case(rng, family)
            else:
                case = None
                layer, inputs = BROKEN[draw(st.sampled_from(list(BROKEN)))](rng)
                report = gradcheck.check(layer, *inputs, **options)
            if case is not None:
                report = gradcheck.check(case.layer, *case.inputs, **options)
            elif source != "zoo":
                return None
    except gradcheck.CheckError:
        return None
    if draw(st.integers(0, 4)) == 0:  # a synthesised name: markup and table pipes
        report = dataclasses.replace(
            report,
            target=draw(
                st.text(alphabet=st.sampled_from("<>&|*_`\"' aZ→é"), min_size=1, max_size=12)
            ),
        )
    return report


# ---------------------------------------------------------------------------------------
# What every report must satisfy


def _checks(report: Report) -> list[gradcheck.Report]:
    if isinstance(report, gradcheck.NetworkReport):
        inner = [c.report for c in report.checks if c.report is not None]
        return inner + ([report.end_to_end] if report.end_to_end is not None else [])
    return [report]


def _sentences(report: Report) -> list[str]:
    """Every conclusion, diagnosis and hint the text report states (for a network: its
    own, and those of the one layer's report it shows in full)."""
    found = [report.conclusion] if report.conclusion else []
    if isinstance(report, gradcheck.NetworkReport):
        detail = report.detail()
        return found + report.hints + (_sentences(detail) if detail is not None else [])
    found += [d.message for d in report.diagnostics]
    return found + [v.diagnosis for v in report.variables if v.diagnosis]


def _assert_renders(report: Report) -> tuple[str, str]:
    text, markdown = str(report), report._repr_markdown_()
    # NaN stays NaN (an unresolved stencil); the CLI writes it as null.
    assert json.loads(json.dumps(report.to_dict()))["target"] == report.target
    fragment, page = report._repr_html_(), report.to_html()
    assert html.escape(report.target) in page and html.escape(report.target) in fragment
    HTMLParser().feed(page)
    return text, markdown


def _assert_whole_sentences(report: Report, text: str) -> None:
    lines = text.splitlines()
    for sentence in _sentences(report):
        assert sentence.endswith(ENDS) and not sentence.endswith(("e.g.", "i.e.")), sentence
        start = sentence[:40]
        shown = [line for line in lines if start in line]
        assert shown, f"not in the text: {sentence!r}"
        for line in shown:
            assert line.rstrip().endswith(ENDS), f"cut in the text: {line!r}"


def _assert_network_rows(report: gradcheck.NetworkReport) -> None:
    for mark, layer, verdict, _, diagnosis in network_rows(report):
        assert (mark == "✓") == (verdict == "passed"), (mark, layer, verdict)
        # The end-to-end row names the wrong parameters as a list ("wrong: W1, b2").
        listed = layer == "gradient() end to end" and diagnosis.startswith("wrong: ")
        if verdict != "passed" and not listed:
            assert diagnosis.endswith(ENDS), (layer, diagnosis)


def _rows(lines: list[str], header_at: int, markdown: bool) -> list[dict[str, str]]:
    """The rows of the summary table whose header is ``lines[header_at]``, by column."""
    if markdown:

        def split(line: str) -> list[str]:
            return [cell.strip().strip("*") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]

        columns, body = split(lines[header_at]), []
        for line in lines[header_at + 2 :]:
            if not line.startswith("|"):
                break
            body.append(dict(zip(columns, split(line), strict=True)))
        return body
    columns = lines[header_at].split()  # "max rel err" is three words, one column
    numeric = columns[columns.index("checked") :]
    numeric[numeric.index("max") : numeric.index("err", numeric.index("max")) + 1] = ["max rel"]
    rows = []
    for line in lines[header_at + 1 :]:
        words = line.split()
        if not words or words[0] not in "✓✗?":
            break
        rows.append({"": words[0], **dict(zip(numeric, words[-len(numeric) :], strict=True))})
    return rows


def _assert_marks(text: str, markdown: str) -> None:
    for rendered, is_markdown in ((text, False), (markdown, True)):
        lines = rendered.splitlines()
        headers = [i for i, line in enumerate(lines) if "err/tol" in line and "checked" in line]
        for at in headers:
            for row in _rows(lines, at, is_markdown):
                wrong, unresolved = int(row["wrong"]), int(row.get("unresolved", "0"))
                ratio = float("nan") if row["err/tol"] == "—" else float(row["err/tol"])
                if row[""] == "✓":
                    assert wrong == 0 and unresolved == 0 and not ratio > 1, row
                elif row[""] == "✗":
                    assert wrong > 0, row
                else:
                    assert wrong == 0 and unresolved > 0, row


@given(report=reports())
def test_every_report_renders_in_whole_sentences_with_honest_marks(report: Report | None) -> None:
    assume(report is not None)
    assert report is not None
    text, markdown = _assert_renders(report)
    _assert_whole_sentences(report, text)
    if isinstance(report, gradcheck.NetworkReport):
        _assert_network_rows(report)
    _assert_marks(text, markdown)


def test_the_fuzzed_reports_reach_every_verdict_and_corner() -> None:
    """The sources above do make FAILED, INCOMPLETE, kinks, vouched elements and networks."""
    rng = np.random.default_rng(0)
    verdicts = {str(_oddity(rng, i).verdict) for i in range(ODDITIES)}
    assert verdicts == {"passed", "FAILED", "INCOMPLETE"}
    assert _oddity(rng, 1).variable("x").kinks > 0
    fast = _oddity(rng, 6)
    assert fast.passed and any(not np.isfinite(v.numerical).all() for v in fast.variables)
    assert not _network(rng, 0).passed and _network(rng, NETWORKS - 1).passed


# ---------------------------------------------------------------------------------------
# Corners that once broke


def test_html_of_unresolved_elements_renders() -> None:
    report = _oddity(np.random.default_rng(0), 0)
    assert report.variable("x").unresolved >= 1
    assert "unresolved" in report.to_html()


def test_the_no_complex_step_note_is_a_whole_sentence() -> None:
    report = _oddity(np.random.default_rng(0), 4)
    notes = [d.message for d in report.diagnostics if d.kind == "no-complex-step"]
    assert notes and all(note.endswith(ENDS) for note in notes), notes


def test_the_row_of_a_gradient_that_raised_is_a_whole_sentence() -> None:
    report = _network(np.random.default_rng(0), 7)
    assert report.end_to_end_error is not None
    row = network_rows(report)[-1]
    assert row[2] == "ERROR" and row[4].endswith(ENDS), row
