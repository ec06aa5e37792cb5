"""Step 2 of a check: the user's own forward and backward, run once on a copy.

:mod:`~gradcheck.analytic.run` draws the upstream gradient, runs forward twice and
backward twice, validates what comes back and diagnoses what makes a comparison
meaningless or hides bugs (in-place edits, non-determinism, accumulation), and measures
the size of each gradient element's terms. :mod:`~gradcheck.analytic.precision` decides
the precision the numerical side runs in and measures the analytic side's rounding per
element; :mod:`~gradcheck.analytic.attributes` looks for float attributes that move the
output but get no gradient.
"""
