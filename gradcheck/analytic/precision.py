"""Precision: which dtype the numerical side runs in, and how much a narrow backward rounds.

A float32 layer is differentiated numerically in float64 when it accepts float64 input, so
the numerical side is far more precise than the layer. Its own float32 backward rounds,
though, and where a gradient is tiny next to the terms it sums (a bias right before a
BatchNorm) no tolerance relative to the gradient covers that rounding. It is *measured*
instead: the same backward run in float64 gives the same formula without the rounding, so
the difference is rounding alone (a formula bug is in both runs and cancels out).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradcheck.analytic.run import AnalyticPass
from gradcheck.conventions.target import Target
from gradcheck.vocabulary import Diagnostic, Severity

__all__ = ["analytic_rounding", "numeric_dtype"]


def _narrow(target: Target) -> list[str]:
    return [v.name for v in target.variables if np.dtype(v.dtype).itemsize < 8]


def numeric_dtype(target: Target) -> tuple[np.dtype, list[Diagnostic]]:
    """The real dtype of the numerical side: float64 whenever the layer computes in it.

    Returns the dtype and the notes to add to the report (a layer that computes in a
    narrow dtype even for float64 input keeps its own precision).
    """
    narrow = _narrow(target)
    if not narrow:
        return np.dtype(np.float64), []
    output = np.asarray(target.instantiate(np.float64).forward())
    if output.dtype == np.float64:
        return np.dtype(np.float64), []
    own = np.dtype(target.variable(narrow[0]).dtype)
    note = Diagnostic(
        "narrow-numerics", Severity.NOTE,
        f"{target.name} computes in {output.dtype} even for float64 input, so the numerical "
        "side runs in that precision; its error estimate widens the tolerance accordingly.",
    )
    return own, [note]


def analytic_rounding(
    target: Target, analytic: AnalyticPass, real_dtype: np.dtype
) -> dict[str, NDArray]:
    """How much a narrow (float32) backward rounds: its gradients minus float64 ones.

    Empty when nothing is narrow or the layer does not run in float64.
    """
    narrow = _narrow(target)
    if not narrow or real_dtype != np.float64:
        return {}
    instance = target.instantiate(np.float64)
    instance.copy_inputs = analytic.inplace_forward
    try:
        instance.forward()
        raw = instance.backward(analytic.dout.astype(np.float64))
        wide = {name: np.asarray(raw[name], dtype=np.float64) for name in narrow}
    except Exception:  # the float64 run is a refinement: without it, no allowance
        return {}
    return {
        name: np.abs(np.asarray(analytic.gradients[name], dtype=np.float64) - gradient)
        for name, gradient in wide.items()
        if gradient.shape == analytic.gradients[name].shape
    }
