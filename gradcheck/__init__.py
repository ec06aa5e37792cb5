"""gradcheck: numerical gradient checking for hand-written NumPy backpropagation.

>>> import numpy as np, gradcheck
>>> from reference_layers import Affine
>>> rng = np.random.default_rng(0)
>>> layer = Affine(rng.standard_normal((4, 3)), np.zeros(3))
>>> report = gradcheck.check(layer, rng.standard_normal((5, 4)))
>>> report.passed
True

The public names are imported on first use (PEP 562): pytest loads the plugin in every
run of every project that has gradcheck installed, and that must not cost a numpy import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradcheck.checker import assert_gradients, check
    from gradcheck.engine.gradient import NumericalGradient
    from gradcheck.engine.numeric import numerical_gradient
    from gradcheck.errors import CheckError, GradientCheckError, OptionError, UsageError
    from gradcheck.network import check_network
    from gradcheck.options import CheckOptions
    from gradcheck.report.records import ElementFinding, VariableReport
    from gradcheck.report.reports import NetworkReport, Report
    from gradcheck.teaching.graph import trace

__version__ = "0.1.0"

_WHERE = {
    "CheckError": "gradcheck.errors",
    "CheckOptions": "gradcheck.options",
    "ElementFinding": "gradcheck.report.records",
    "GradientCheckError": "gradcheck.errors",
    "NetworkReport": "gradcheck.report.reports",
    "NumericalGradient": "gradcheck.engine.gradient",
    "OptionError": "gradcheck.errors",
    "UsageError": "gradcheck.errors",
    "Report": "gradcheck.report.reports",
    "VariableReport": "gradcheck.report.records",
    "assert_gradients": "gradcheck.checker",
    "check": "gradcheck.checker",
    "check_network": "gradcheck.network",
    "numerical_gradient": "gradcheck.engine.numeric",
    "trace": "gradcheck.teaching.graph",
}

__all__ = [
    "CheckError",
    "CheckOptions",
    "ElementFinding",
    "GradientCheckError",
    "NetworkReport",
    "NumericalGradient",
    "OptionError",
    "Report",
    "UsageError",
    "VariableReport",
    "__version__",
    "assert_gradients",
    "check",
    "check_network",
    "numerical_gradient",
    "trace",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
