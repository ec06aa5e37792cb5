"""Step 3 of a check, the numbers: derivatives by finite differences and the complex step.

:mod:`~gradcheck.engine.spec` lists the numerical methods (one :class:`Engine` entry
each); :mod:`~gradcheck.engine.numeric` differentiates element by element,
:mod:`~gradcheck.engine.directional` along a direction, :mod:`~gradcheck.engine.coloring`
many independent elements per pass; :mod:`~gradcheck.engine.gradient` holds the result
with its error estimate (measured rounding noise included); :mod:`~gradcheck.engine.passes`
counts forward passes and hands independent work to an executor. Nothing here knows
about layers, tolerances or reports.
"""
