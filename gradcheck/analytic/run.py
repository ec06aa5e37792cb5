"""Guards around the analytic pass: in-place edits, non-determinism, repeatability.

These problems make a gradient comparison meaningless or hide real bugs, so they are
found first and reported in their own words (docs/design.md §3.4):

* ``forward`` editing an input, or ``backward`` editing ``dout``: harmless alone, a real
  bug in a graph where the array is shared (an ``AddLayer`` hands the same ``dout`` to
  both branches);
* ``forward`` giving different outputs at the same point: unseeded randomness;
* ``backward`` giving different gradients when called twice after one ``forward``, e.g. a
  parameter gradient that accumulates (``self.dW += ...`` with no reset);
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Instance, Target
from gradcheck.conventions.validation import as_gradient, check_output, format_indices
from gradcheck.vocabulary import Diagnostic, Severity

__all__ = [
    "AnalyticPass",
    "Diagnostic",
    "analytic_pass",
    "draw_dout",
    "same_output",
]

# Random sign flips of dout that measure the size of each gradient element's terms, and
# how many pairs of them measure backward's rounding.
_TERM_FLIPS = 3
_DEFECTS = 2
_TERM_SEED = 20_240_917

_SHARED_DOUT = (
    "In a graph, the same array is often handed to several layers (an AddLayer passes "
    "one dout to both branches), so an in-place edit silently corrupts another layer's "
    "gradient. Work on a copy (e.g. dx = dout.copy()) instead."
)


@dataclass
class AnalyticPass:
    """The outcome of running the target's own forward and backward."""

    output: NDArray
    dout: NDArray
    gradients: dict[str, NDArray]
    diagnostics: list[Diagnostic]
    forward_seconds: float
    inplace_forward: bool
    deterministic: bool
    terms: dict[str, NDArray] = field(default_factory=dict)
    # Per variable, how far backward is from linear in dout: its own rounding, measured.
    roundoff: dict[str, NDArray] = field(default_factory=dict)
    # Whether forward drew from the global np.random state (the textbook's Dropout does):
    # only then must every numerical pass start from the same global state (~50 µs each).
    draws_global_random: bool = True


def draw_dout(output: NDArray, seed: int) -> NDArray:
    """The upstream gradient: 1 for a scalar output, else seeded standard normals."""
    if output.ndim == 0:
        return np.ones((), dtype=output.dtype)
    rng = np.random.default_rng(seed)
    return rng.standard_normal(output.shape).astype(output.real.dtype)


def _changed(before: NDArray, after: NDArray) -> NDArray[np.bool_]:
    """Elements that differ bit for bit (NaN == NaN)."""
    return ~((before == after) | (np.isnan(before) & np.isnan(after)))


def analytic_pass(target: Target, *, seed: int, allow_inplace: bool) -> AnalyticPass:
    """Run forward (twice) and backward (twice) on a copy; validate and diagnose.

    Raises
    ------
    CheckError
        When forward or backward return malformed values.
    """
    instance = target.instantiate()
    diagnostics: list[Diagnostic] = []
    base = {name: array.copy() for name, array in instance.arrays.items()}
    severity = Severity.WARNING if allow_inplace else Severity.ERROR

    started = time.perf_counter()
    first = np.array(check_output(target.name, "forward", instance.forward()), copy=True)
    forward_seconds = time.perf_counter() - started
    draws_global_random = _moved_global_state(target.global_random_state)
    inplace_forward = False
    for var in target.variables:
        changed = _changed(base[var.name], instance.arrays[var.name])
        if var.role == "input" and changed.any():
            inplace_forward = True
            diagnostics.append(
                Diagnostic(
                    "inplace-forward",
                    severity,
                    f"{target.name}.forward modified its input {var.name} in place "
                    f"({int(changed.sum())} of {changed.size} elements changed, e.g. at "
                    f"{format_indices(changed, 3)}). The caller's array is corrupted, and so "
                    "is any other layer that reads it. Copy before writing (out = x.copy()).",
                )
            )
        np.copyto(instance.arrays[var.name], base[var.name])
    instance.copy_inputs = inplace_forward

    second = check_output(target.name, "forward", instance.forward())
    deterministic = same_output(first, second)
    if not deterministic:
        diagnostics.append(
            Diagnostic(
                "nondeterministic",
                Severity.ERROR,
                f"{target.name}.forward gave different outputs at the same point (max "
                f"difference {float(np.max(np.abs(first - second))):.3g}): it uses randomness "
                "that gradcheck cannot hold fixed — a generator created inside forward, the "
                "time, or the operating system's entropy. Draw from a generator made once, in "
                "__init__ (self.rng = np.random.default_rng(seed)), or from np.random: "
                "gradcheck resets both before every forward pass.",
            )
        )

    dout = draw_dout(first, seed)
    gradients = _run_backward(target, instance, dout, diagnostics, severity)
    repeatable = _check_repeatable(target, instance, dout, gradients, diagnostics)
    terms, roundoff = _term_sizes(target, instance, dout, gradients) if repeatable else ({}, {})
    return AnalyticPass(
        output=first,
        dout=dout,
        gradients=gradients,
        diagnostics=diagnostics,
        forward_seconds=forward_seconds,
        inplace_forward=inplace_forward,
        deterministic=deterministic,
        terms=terms,
        roundoff=roundoff,
        draws_global_random=draws_global_random,
    )


def _moved_global_state(start: Any) -> bool:
    """Whether the global ``np.random`` state is no longer ``start`` (the state the pass
    started from): forward drew from it."""
    if start is None:
        return False
    now: tuple[Any, ...] = tuple(np.random.get_state())  # noqa: NPY002 (the legacy state)
    return bool(
        now[0] != start[0] or now[2:] != tuple(start[2:]) or not np.array_equal(now[1], start[1])
    )


def _term_sizes(
    target: Target, instance: Instance, dout: NDArray, gradients: dict[str, NDArray]
) -> tuple[dict[str, NDArray], dict[str, NDArray]]:
    """The size of the terms each gradient element sums, ``√Σ_o (J_oi · dout_o)²``, and
    how far backward is from linear in ``dout`` — its own rounding.

    An element's gradient is ``Σ_o J_oi · dout_o`` over the outputs ``o``; flipping the
    signs of ``dout`` at random keeps each term's size and scrambles their signs, so the
    mean square of the gradient over a few flips is the sum of the squared terms. This is
    the scale of the element's rounding, whatever its own size after cancellation.

    Backward is affine in ``dout`` (linear, plus what does not depend on it: a weight
    decay), exactly, but for rounding: the gradients of two flips add up to the gradient
    of their sum plus that of ``dout = 0``, to within what backward rounds, at every
    element, whatever quantities inside it cancel (a BatchNorm of identical samples
    divides by ``√eps``). A wrong formula is affine too, so the defect never hides one.
    """
    squares = {name: np.square(g.astype(np.float64)) for name, g in gradients.items()}
    if dout.ndim == 0:  # one output: the gradient is its only term
        return {name: np.sqrt(square) for name, square in squares.items()}, {}
    rng = np.random.default_rng(_TERM_SEED)
    signs = [
        rng.choice(np.array([-1.0, 1.0], dtype=dout.dtype), size=dout.shape)
        for _ in range(_TERM_FLIPS)
    ]
    try:
        flipped = [_validated(target, instance.backward(dout * s)) for s in signs]
        summed = [
            _validated(target, instance.backward(dout * (signs[k] + signs[k + 1])))
            for k in range(_DEFECTS)
        ]
        constant = _validated(target, instance.backward(np.zeros_like(dout)))
    except Exception:  # a backward that cannot run again: its own size will do
        return {name: np.sqrt(square) for name, square in squares.items()}, {}
    defects: dict[str, NDArray] = {}
    for name in squares:
        for gradient in flipped:
            squares[name] += np.square(gradient[name].astype(np.float64))
        defects[name] = np.max(
            [
                np.abs(
                    flipped[k][name].astype(np.float64)
                    + flipped[k + 1][name]
                    - summed[k][name]
                    - constant[name]
                )
                for k in range(_DEFECTS)
            ],
            axis=0,
        )
    terms = {name: np.sqrt(square / (_TERM_FLIPS + 1)) for name, square in squares.items()}
    return terms, defects


def same_output(first: NDArray, second: NDArray) -> bool:
    if first.shape != second.shape:
        return False
    eps = float(np.finfo(first.real.dtype).eps)
    scale = float(np.max(np.abs(first))) if first.size else 0.0
    return bool(np.all(np.abs(first - second) <= 16 * eps * scale))


def _validated(target: Target, raw: Mapping[str, Any]) -> dict[str, NDArray]:
    return {
        var.name: as_gradient(target.name, target.backward_call, var.name, var.value, raw[var.name])
        for var in target.variables
    }


def _run_backward(
    target: Target,
    instance: Instance,
    dout: NDArray,
    diagnostics: list[Diagnostic],
    severity: Severity,
) -> dict[str, NDArray]:
    given = dout.copy()
    gradients = _validated(target, instance.backward(given))
    changed = _changed(dout, given)
    if changed.any():
        diagnostics.append(
            Diagnostic(
                "inplace-backward",
                severity,
                f"{target.name}.{target.backward_call} modified dout in place "
                f"({int(changed.sum())} of {changed.size} elements changed, e.g. at "
                f"{format_indices(changed, 3)}). " + _SHARED_DOUT,
            )
        )
    return gradients


def _check_repeatable(
    target: Target,
    instance: Instance,
    dout: NDArray,
    gradients: dict[str, NDArray],
    diagnostics: list[Diagnostic],
) -> bool:
    """Whether backward gives the same gradients when called again after one forward."""
    try:
        again = _validated(target, instance.backward(dout.copy()))
    except Exception as error:  # a backward that consumes its cache is unusual, not wrong
        diagnostics.append(
            Diagnostic(
                "backward-once",
                Severity.WARNING,
                f"{target.name}.{target.backward_call} failed when called a second time "
                f"after one forward ({type(error).__name__}: {error}); gradcheck could not "
                "test that it is repeatable.",
            )
        )
        return False
    repeatable = True
    for var in target.variables:
        first, second = gradients[var.name], again[var.name]
        if np.array_equal(first, second):
            continue
        repeatable = False
        doubled = np.allclose(second, 2 * first, rtol=1e-6, atol=0) and np.any(first != 0)
        grad_name = f"d{var.name}" if var.role == "parameter" else f"the gradient of {var.name}"
        if doubled:
            message = (
                f"{target.name}.{target.backward_call} accumulates {grad_name}: calling it "
                "twice after one forward doubled it. Assign the gradient (self.dW = ...) "
                "instead of adding to it, or reset it in forward; otherwise every training "
                "step uses a stale sum."
            )
            diagnostics.append(Diagnostic("accumulating", Severity.ERROR, message))
        else:
            worst = float(np.max(np.abs(second - first)))
            diagnostics.append(
                Diagnostic(
                    "not-repeatable",
                    Severity.ERROR,
                    f"{target.name}.{target.backward_call} returned {grad_name} differently when "
                    f"called again after the same forward (max difference {worst:.3g}): "
                    "backward must depend only on dout and what forward cached.",
                )
            )
    return repeatable
