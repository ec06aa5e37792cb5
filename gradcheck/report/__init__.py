"""Step 5: what a check found, and how it is shown.

:mod:`~gradcheck.report.records` holds the results as plain data (a layer's check, a
network's); :mod:`~gradcheck.report.reports` gives them their display methods
(:class:`gradcheck.Report`, :class:`gradcheck.NetworkReport`). The renderers — text,
Markdown, HTML with heatmaps (:mod:`~gradcheck.report.heatmap`,
:mod:`~gradcheck.report.colours`, :mod:`~gradcheck.report.mosaic`) and matplotlib plots —
take either kind of record and import nothing from the steps before them: they format
values they are given.
"""
