"""The reports a user reads: :class:`Report` (one check) and :class:`NetworkReport`.

Each is its record (:mod:`gradcheck.report.records`: the fields, the verdict,
``to_dict``) plus the ways to show it: ``str(report)`` is a short aligned table in the
manner of a good pytest failure (:mod:`~gradcheck.report.text`); notebooks show HTML
with heatmaps (:mod:`~gradcheck.report.html`) or Markdown
(:mod:`~gradcheck.report.markdown`); ``report.plot()`` draws a matplotlib figure
(:mod:`~gradcheck.report.plot`).

>>> import numpy as np, gradcheck
>>> from reference_layers import TwoLayerNet
>>> net, (x, t) = TwoLayerNet.example(np.random.default_rng(0))
>>> report = gradcheck.check_network(net, x, t)
>>> report._repr_markdown_().splitlines()[0]
'**gradcheck TwoLayerNet** (network): **passed ✓**'
>>> 'class="gradcheck-report gc-network"' in report.to_html()
True
"""

from __future__ import annotations

from typing import Any, cast

from gradcheck.report.html import render_html, to_html_page
from gradcheck.report.markdown import render_markdown
from gradcheck.report.plot import plot_report
from gradcheck.report.records import CheckRecord, NetworkRecord, Record
from gradcheck.report.text import render_text

__all__ = ["NetworkReport", "Report"]


class _Shown:
    """The ways to show a record; each hands the record to its renderer."""

    def _record(self) -> Record:
        return cast("Record", self)

    def __str__(self) -> str:
        return render_text(self._record())

    def _repr_html_(self) -> str:
        """Notebooks show the report as tables with heatmaps (:mod:`gradcheck.report.html`)."""
        return render_html(self._record())

    def _repr_markdown_(self) -> str:
        """Front ends without HTML show Markdown tables (:mod:`gradcheck.report.markdown`)."""
        return render_markdown(self._record())

    def to_html(self) -> str:
        """A complete standalone HTML page of this report (see :mod:`gradcheck.report.html`)."""
        return to_html_page(self._record())

    def plot(self, *, which: str = "auto") -> Any:
        """A matplotlib figure of the gradients (needs matplotlib; :mod:`gradcheck.report.plot`).

        ``which`` is ``"auto"`` (the failing gradients, or all when none fails),
        ``"failing"`` or ``"all"``. A network draws its guilty layer's gradients.
        """
        return plot_report(self._record(), which=which)


class Report(_Shown, CheckRecord):
    """The result of :func:`gradcheck.check`: a :class:`~gradcheck.report.records.CheckRecord`
    (its attributes are listed there) that shows itself as text, HTML, Markdown or a plot.
    """


class NetworkReport(_Shown, NetworkRecord[Report]):
    """The result of :func:`gradcheck.check_network`: a
    :class:`~gradcheck.report.records.NetworkRecord` (its attributes are listed there) that
    shows itself as text, HTML, Markdown or its guilty layer's plot.
    """
