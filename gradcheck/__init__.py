"""gradcheck: numerical gradient checking for hand-written NumPy backpropagation.

>>> import numpy as np, gradcheck
>>> from reference_layers import Affine
>>> rng = np.random.default_rng(0)
>>> layer = Affine(rng.standard_normal((4, 3)), np.zeros(3))
>>> report = gradcheck.check(layer, rng.standard_normal((5, 4)))
>>> report.passed
True
"""

from gradcheck.checker import assert_gradients, check
from gradcheck.errors import CheckError, GradientCheckError, OptionError
from gradcheck.numeric import NumericalGradient, numerical_gradient
from gradcheck.options import CheckOptions
from gradcheck.report import ElementFinding, Report, VariableReport

__version__ = "0.1.0"

__all__ = [
    "CheckError",
    "CheckOptions",
    "ElementFinding",
    "GradientCheckError",
    "NumericalGradient",
    "OptionError",
    "Report",
    "VariableReport",
    "__version__",
    "assert_gradients",
    "check",
    "numerical_gradient",
]
