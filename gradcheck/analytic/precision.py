"""Precision: how precisely the layer computes, and how much its backward rounds.

The numerical side runs in float64 whenever the layer computes in it, so it is far more
precise than a float32 layer. A layer may also compute in float32 *from* float64 input
(``np.empty(..., dtype='f')`` inside forward, as the sequel book's ``TimeRNN`` does):
then the output's dtype, not the input's, says how much every forward pass rounds, and
the tolerance follows that precision.

The analytic side's rounding is *measured*, per element: the same backward run in the
other precision gives the same formula with other rounding (a formula bug is in both
runs and cancels out). A float32 layer is run again in float64; a float64 layer in
float32, whose difference, scaled by the ratio of the two unit roundoffs, estimates the
float64 rounding. This covers gradients that are tiny next to the terms they sum (a
bias right before a BatchNorm, a softmax probability of almost exactly 1), where no
tolerance relative to the gradient itself can. For a float32 layer the difference is its
rounding, exactly. For a float64 layer the float32 run is a stand-in, and a floor of a few
unit roundoffs covers what it can miss (a sum that happens to be exact in float32): of the
size of each element's terms (:attr:`gradcheck.analytic.run.AnalyticPass.terms`), and at
least of the gradients flowing through the computation — a gradient that is 0 is
computed from quantities of that size.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import ANALYTIC_ROUNDING
from gradcheck.analytic.run import AnalyticPass
from gradcheck.conventions.target import Target, Variable
from gradcheck.vocabulary import Diagnostic, Severity

__all__ = ["Precision", "measure_precision"]

# float64 rounding from a float32 run: its difference times ε64/ε32, for both sides (the
# numerical derivative shares backward's sensitivity to the input's last bit), with a
# margin for a run whose inputs happened to round little.
_FLOAT64_MARGIN = 4.0
_NUDGE_SEED = 7_919


@dataclass(frozen=True)
class Precision:
    """How precisely one check's target computes.

    Attributes
    ----------
    real_dtype : dtype
        The dtype of the numerical side's real working copies.
    output_dtype : dtype
        The dtype the forward pass returns on those copies: how much ``L`` rounds.
    rounding : dict
        Per variable, each element's rounding allowance of the analytic side.
    terms : dict
        Per variable, the size of the terms each gradient element sums.
    notes : list of Diagnostic
        What the report should say about precision.
    """

    real_dtype: np.dtype
    output_dtype: np.dtype
    rounding: dict[str, NDArray] = field(default_factory=dict)
    terms: dict[str, NDArray] = field(default_factory=dict)
    notes: list[Diagnostic] = field(default_factory=list)

    @property
    def eps(self) -> float:
        """The unit roundoff of the numerical side's forward passes."""
        return float(np.finfo(self.output_dtype).eps)

    def compute_dtype(self, var: Variable) -> np.dtype:
        """The precision ``var``'s gradient is computed in: its own or the output's, the
        narrower (a float64 input to a layer that computes in float32 is float32)."""
        own = np.dtype(var.dtype)
        return own if own.itemsize <= self.output_dtype.itemsize else self.output_dtype


def _narrow(target: Target) -> list[str]:
    return [v.name for v in target.variables if np.dtype(v.dtype).itemsize < 8]


def _output_dtype(target: Target, dtype: type) -> np.dtype | None:
    """The dtype of the output when every variable is cast to ``dtype`` (None: it fails)."""
    try:
        return np.dtype(np.asarray(target.instantiate(dtype).forward()).dtype)
    except Exception:  # a layer that refuses another dtype keeps its own
        return None


def measure_precision(target: Target, analytic: AnalyticPass) -> Precision:
    """The numerical side's dtype, the analytic side's rounding, and notes for the report."""
    real_dtype = np.dtype(np.float64)
    output_dtype = np.dtype(analytic.output.real.dtype)
    notes: list[Diagnostic] = []
    if _narrow(target):
        wide_output = _output_dtype(target, np.float64)
        if wide_output == np.float64:
            output_dtype = wide_output
        else:
            real_dtype = np.dtype(target.variable(_narrow(target)[0]).dtype)
            notes.append(Diagnostic(
                "narrow-numerics", Severity.NOTE,
                f"{target.name} computes in {output_dtype} even for float64 input, so the "
                "numerical side runs in that precision; its error estimate widens the "
                "tolerance accordingly.",
            ))
    elif output_dtype.itemsize < 8:
        notes.append(Diagnostic(
            "narrow-compute", Severity.NOTE,
            f"{target.name} returns {output_dtype} for float64 input: it computes in "
            f"{output_dtype}, so tolerances and error estimates follow {output_dtype}.",
        ))
    precision = Precision(real_dtype, output_dtype, terms=dict(analytic.terms), notes=notes)
    return _with_rounding(target, analytic, precision)


def _with_rounding(target: Target, analytic: AnalyticPass, precision: Precision) -> Precision:
    measured = _measured_rounding(target, analytic, precision)
    rounding = {}
    direct = bool(_narrow(target)) and bool(measured)
    for var in target.variables:
        if direct:  # the float32 gradient against the float64 one: its rounding, exactly
            rounding[var.name] = measured[var.name]
            continue
        eps = float(np.finfo(precision.compute_dtype(var)).eps)
        terms = precision.terms.get(var.name, 0.0)
        rounding[var.name] = np.maximum(measured.get(var.name, 0.0),
                                        ANALYTIC_ROUNDING * eps * terms)
    return replace(precision, rounding=rounding)


def _measured_rounding(
    target: Target, analytic: AnalyticPass, precision: Precision
) -> dict[str, NDArray]:
    """Per variable, ``|gradient − gradient in the other precision|`` scaled to the own one.

    A float32 layer is compared with its float64 run; a float64 layer with its float32
    run, scaled by ``ε64/ε32``. A layer that computes in float32 whatever it is given has
    nothing to be compared with (its floor remains).
    """
    narrow = bool(_narrow(target))
    if precision.output_dtype.itemsize < 8:
        return {}  # computes in float32 whatever it is given: nothing to compare with
    other = np.float64 if narrow else np.float32
    scale = 1.0
    if not narrow:
        scale = _FLOAT64_MARGIN * float(np.finfo(np.float64).eps / np.finfo(np.float32).eps)
    instance = target.instantiate(other)
    instance.copy_inputs = analytic.inplace_forward
    if not narrow:
        _nudge_last_bits(instance.arrays)
    try:
        with np.errstate(all="ignore"):
            instance.forward()
            raw = instance.backward(analytic.dout.astype(other))
            again = {v.name: np.asarray(raw[v.name], dtype=np.float64) for v in target.variables}
    except Exception:  # the other precision is a refinement: without it, the floor
        return {}
    measured = {}
    for var in target.variables:
        own = np.asarray(analytic.gradients[var.name], dtype=np.float64)
        gradient = again[var.name]
        if gradient.shape == own.shape and np.all(np.isfinite(gradient)) and own.size:
            difference = np.abs(own - gradient)
            if not narrow:
                # A stand-in run can round an element exactly (a float32 sum of equal
                # terms) where float64 does not: every element of the variable is allowed
                # at least its largest measured rounding.
                difference = np.maximum(difference, float(np.max(difference)))
            measured[var.name] = scale * difference
    return measured


def _nudge_last_bits(arrays: dict[str, NDArray]) -> None:
    """Move every float32 working value by one unit in the last place, up or down.

    Rounding float64 inputs to float32 can happen to move an element very little (an
    input of exactly -0.5 stays put), and the run would then measure little rounding
    where the gradient is in fact sensitive to the input's last bit; one more ulp in a
    random direction makes every element move.
    """
    rng = np.random.default_rng(_NUDGE_SEED)
    for array in arrays.values():
        signs = rng.choice(np.array([-np.inf, np.inf], dtype=array.dtype), size=array.shape)
        np.copyto(array, np.nextafter(array, signs))
