"""Precision: how precisely the layer computes, and how much its backward may round.

The numerical side runs in float64 whenever the layer computes in it, so it is far more
precise than a float32 layer. A layer may also compute in float32 *from* float64 input
(``np.empty(..., dtype='f')`` inside forward, as the sequel book's ``TimeRNN`` does):
then the output's dtype, not the input's, says how much every forward pass rounds, and
the tolerance follows that precision.

The analytic side is allowed what rounding *explains*, per element, and no more:

- a few unit roundoffs of the size of the terms each gradient element sums
  (:attr:`gradcheck.analytic.run.AnalyticPass.terms`), times how many times larger than
  their spread the inputs are (inputs of 1000 ± 1 hold three digits fewer);
- a few times backward's measured departure from linearity in ``dout``
  (:attr:`~gradcheck.analytic.run.AnalyticPass.roundoff`): its rounding, wherever
  quantities inside it cancel;
- for a float32 layer, the gradient's sensitivity to its inputs' last bits (the same
  backward run in float64 at the point and at the point moved by one float32 unit in
  the last place: a quantity within float32's rounding of a kink may take the other
  side), and what float32 did to the gradient — its difference from the same backward
  run in float64 — as far as float32's own loss could ever resolve it.

A float32 layer's float64 run is no allowance beyond that: it shares the formula, so a
cancelling one (``E[x²] − E[x]²`` at an offset of 1000) would be allowed its lost digits.
Where the float32 gradient is further from the float64 one, the difference is precision
damage, and the report says so (:attr:`Precision.wide`); a formula bug is in both runs
alike, and never allowed.
A float64 layer is run in float32 as a stand-in whose difference, scaled by the ratio of
the two unit roundoffs, estimates its float64 rounding (a bias right before a BatchNorm, a
softmax probability of almost exactly 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import (
    ANALYTIC_ROUNDING,
    CONDITION_ROUNDING,
    LINEARITY_ROUNDING,
    LOSS_RESOLUTION,
    WIDER_ROUNDING,
)
from gradcheck.analytic.run import AnalyticPass
from gradcheck.conventions.target import Target, Variable
from gradcheck.engine.steps import step_units
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
    wide : dict
        Per variable, the same backward's gradient run in a wider precision: where the
        layer's own is wrong and this one is right, rounding damaged it.
    float64_rounding : dict
        Per variable, how far the same backward in float64 is from it in extended
        precision: what quantities cancelling inside it cost in float64 — and the complex
        step's tangent, which runs through them too.
    notes : list of Diagnostic
        What the report should say about precision.
    """

    real_dtype: np.dtype
    output_dtype: np.dtype
    rounding: dict[str, NDArray] = field(default_factory=dict)
    terms: dict[str, NDArray] = field(default_factory=dict)
    wide: dict[str, NDArray] = field(default_factory=dict)
    float64_rounding: dict[str, NDArray] = field(default_factory=dict)
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
            notes.append(
                Diagnostic(
                    "narrow-numerics",
                    Severity.NOTE,
                    f"{target.name} computes in {output_dtype} even for float64 input, so the "
                    "numerical side runs in that precision; its error estimate widens the "
                    "tolerance accordingly.",
                )
            )
    elif output_dtype.itemsize < 8:
        notes.append(
            Diagnostic(
                "narrow-compute",
                Severity.NOTE,
                f"{target.name} returns {output_dtype} for float64 input: it computes in "
                f"{output_dtype}, so tolerances and error estimates follow {output_dtype}.",
            )
        )
    precision = Precision(real_dtype, output_dtype, terms=dict(analytic.terms), notes=notes)
    return _with_rounding(target, analytic, precision)


def _with_rounding(target: Target, analytic: AnalyticPass, precision: Precision) -> Precision:
    narrow = bool(_narrow(target)) and precision.output_dtype.itemsize == 8
    wider = _wider(precision, narrow)
    wide = _run(target, analytic, wider) if wider is not None else None
    if narrow and wide is not None:
        measured = _float32_sensitivity(target, analytic, wide)
    elif wide is None:
        measured = _stand_in_rounding(target, analytic, precision)
    else:
        measured = {}
    offset = _offset_ratio(target)
    loss_terms = float(np.sum(np.abs(analytic.dout.astype(np.float64) * analytic.output)))
    rounding = {}
    for var in target.variables:
        eps = float(np.finfo(precision.compute_dtype(var)).eps)
        terms = np.asarray(precision.terms.get(var.name, 0.0), dtype=np.float64)
        explained = ANALYTIC_ROUNDING * eps * offset
        defect = np.asarray(analytic.roundoff.get(var.name, 0.0), dtype=np.float64)
        rounding[var.name] = (
            explained * terms + measured.get(var.name, 0.0) + LINEARITY_ROUNDING * defect
        )
        if wide is not None:
            # What rounding did to the gradient — its difference from the same backward
            # in a wider precision — is allowed as far as the loss, in the layer's own
            # precision, could ever resolve it (a gradient that cancels far below its
            # neighbours, GELU's 1 + tanh(u) at u = −7, keeps its absolute error); beyond
            # that it is damage. A formula bug is in both runs alike, and never allowed.
            suffered = np.abs(
                np.asarray(analytic.gradients[var.name], dtype=np.float64) - wide[var.name]
            )
            resolvable = LOSS_RESOLUTION * eps * loss_terms / _units(var)
            rounding[var.name] = rounding[var.name] + np.minimum(
                WIDER_ROUNDING * suffered, resolvable
            )
    return replace(
        precision,
        rounding=rounding,
        wide=wide or {},
        float64_rounding=_float64_rounding(target, analytic, narrow, wide),
    )


def _float64_rounding(
    target: Target, analytic: AnalyticPass, narrow: bool, wide: dict[str, NDArray] | None
) -> dict[str, NDArray]:
    """Per variable, ``|backward in float64 − backward in extended precision|`` (empty
    where either cannot be run, or the platform has no wider type)."""
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        return {}
    if narrow:
        if wide is None:
            return {}
        in_float64, extended = wide, _run(target, analytic, np.longdouble)
    else:
        in_float64 = {
            name: np.asarray(g, dtype=np.float64) for name, g in analytic.gradients.items()
        }
        extended = wide
    if extended is None:
        return {}
    return {name: np.abs(in_float64[name] - extended[name]) for name in extended}


def _wider(precision: Precision, narrow: bool) -> type | None:
    """The precision to run backward in again, wider than the layer's own: float64 for a
    float32 layer that computes in float64 when given it, extended precision for a
    float64 one where the platform has it (None: a layer that computes in float32
    whatever it is given, or no wider type)."""
    if precision.output_dtype.itemsize < 8:
        return None
    if narrow:
        return np.float64
    extended = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps
    return np.longdouble if extended else None


def _units(var: Variable) -> NDArray:
    """Each element's own scale (:func:`~gradcheck.engine.steps.step_units`)."""
    value = np.asarray(var.value)
    units: NDArray = step_units(value, "central").reshape(value.shape)
    return units


def _offset_ratio(target: Target) -> float:
    """How many times larger than their spread the inputs are, at most (at least 1): inputs
    of 1000 around a spread of 1 hold three digits fewer of what the layer computes with,
    and any formula, the best one too, rounds that much more relative to its terms."""
    ratio = 1.0
    for var in target.variables:
        value = np.asarray(var.value)
        if value.size and np.issubdtype(value.dtype, np.floating):
            ratio = max(ratio, float(np.max(np.abs(value.astype(np.float64)) / _units(var))))
    return ratio


def _run(
    target: Target,
    analytic: AnalyticPass,
    dtype: type,
    nudge: bool = False,
    ulp_of: type | None = None,
) -> dict[str, NDArray] | None:
    """Every variable's gradient with the layer run in ``dtype`` (None: it fails there).

    ``nudge`` moves every input by one unit in the last place of ``ulp_of`` (default:
    ``dtype``), in random directions."""
    instance = target.instantiate(dtype)
    instance.copy_inputs = analytic.inplace_forward
    if nudge:
        _nudge_last_bits(instance.arrays, np.dtype(ulp_of or dtype))
    try:
        with np.errstate(all="ignore"):
            output = np.asarray(instance.forward())
            raw = instance.backward(analytic.dout.astype(dtype))
            gradients = {
                v.name: np.asarray(raw[v.name], dtype=np.float64) for v in target.variables
            }
    except Exception:  # the other precision is a refinement: without it, the floor
        return None
    if output.real.dtype.itemsize < np.dtype(dtype).itemsize and not nudge:
        return None  # does not compute in it (a float64 constant inside, a cast)
    for var in target.variables:
        own = analytic.gradients[var.name]
        gradient = gradients[var.name]
        if gradient.shape != np.shape(own) or not np.all(np.isfinite(gradient)):
            return None
    return gradients


def _float32_sensitivity(
    target: Target, analytic: AnalyticPass, at_point: dict[str, NDArray]
) -> dict[str, NDArray]:
    """Per variable of a float32 layer, :data:`CONDITION_ROUNDING` times how much its
    float64 gradient (``at_point``) moves when the inputs move by one float32 unit in
    the last place: where a quantity sits within float32's rounding of a kink or a tie,
    float32 may take the other side."""
    moved = _run(target, analytic, np.float64, nudge=True, ulp_of=np.float32)
    if moved is None:
        return {}
    return {name: CONDITION_ROUNDING * np.abs(moved[name] - at_point[name]) for name in at_point}


def _stand_in_rounding(
    target: Target, analytic: AnalyticPass, precision: Precision
) -> dict[str, NDArray]:
    """Per variable of a float64 layer, ``|gradient − gradient in float32|`` scaled by
    ``ε64/ε32``: its float64 rounding, estimated (nothing for a layer that computes in
    float32 whatever it is given: nothing to compare with)."""
    if precision.output_dtype.itemsize < 8:
        return {}
    again = _run(target, analytic, np.float32, nudge=True)
    if again is None:
        return {}
    scale = _FLOAT64_MARGIN * float(np.finfo(np.float64).eps / np.finfo(np.float32).eps)
    measured = {}
    for var in target.variables:
        difference = np.abs(
            np.asarray(analytic.gradients[var.name], dtype=np.float64) - again[var.name]
        )
        if difference.size:
            # A stand-in run can round an element exactly (a float32 sum of equal terms)
            # where float64 does not: every element of the variable is allowed at least
            # its largest measured rounding.
            measured[var.name] = scale * np.maximum(difference, float(np.max(difference)))
    return measured


def _nudge_last_bits(arrays: dict[str, NDArray], unit: np.dtype) -> None:
    """Move every working value by one unit in ``unit``'s last place, up or down.

    Rounding float64 inputs to float32 can happen to move an element very little (an
    input of exactly -0.5 stays put), and the run would then measure little rounding
    where the gradient is in fact sensitive to the input's last bit; one more ulp in a
    random direction makes every element move. Equal values move alike: rounding is
    deterministic, so inputs tied exactly (of a max, a sort) stay tied, and the run
    measures rounding, not which of them a broken tie would prefer; and an exact zero
    stays zero (rounding is relative: a pruned weight at 0 is not moved off |w|'s kink).
    """
    rng = np.random.default_rng(_NUDGE_SEED)
    for array in arrays.values():
        if not np.issubdtype(array.dtype, np.floating):
            continue
        values, where = np.unique(array, return_inverse=True)
        signs = rng.choice(np.array([-1.0, 1.0]), size=values.shape)[where].reshape(array.shape)
        ulp = np.where(array != 0, np.spacing(np.abs(array).astype(unit)), 0.0).astype(np.float64)
        np.copyto(array, array + signs * ulp, casting="unsafe")
