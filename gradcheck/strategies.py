"""Hypothesis strategies for gradient checks: the public home of :mod:`gradcheck.faces.strategies`.

``from gradcheck.strategies import well_conditioned_arrays`` is the documented import; the
strategies themselves live with the other faces of the engine.
"""

from gradcheck.faces.strategies import *  # noqa: F403
from gradcheck.faces.strategies import __all__ as __all__
