"""Full mode: every element's derivative, coloured where a verified pattern allows.

Elements that never meet in an output are moved together (:mod:`gradcheck.engine.coloring`),
so an elementwise layer costs one stencil whatever its size; the pattern is verified by
an extra pass and a refuted one falls back to element by element. A complex-step
mismatch is confirmed by a real stencil, which also recognises kinks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Variable
from gradcheck.engine.coloring import Colouring, candidates, coloured_gradient, nan_consistent
from gradcheck.engine.numeric import NumericalGradient, complex_step, stencil_derivatives
from gradcheck.engine.passes import TASKS, Runner, chunks
from gradcheck.engine.spec import engine
from gradcheck.modes.context import Context, Outcome
from gradcheck.modes.probe import confirming_engine
from gradcheck.verdict.compare import compare
from gradcheck.vocabulary import Diagnostic, Severity, Status

__all__ = ["colouring_for", "full_check", "full_cost", "some_elements"]

# Colour a variable only when that at least halves its passes; try at most this many
# patterns (a NaN probe of two passes each).
_COLOUR_GAIN = 2
_COLOUR_TRIES = 24
# Passes a coloured check needs beyond its stencils: f(x), the verification stencil.
_COLOUR_OVERHEAD = 6


def colouring_for(var: Variable, ctx: Context) -> Colouring | None:
    """A block pattern worth using for ``var`` that survives the NaN probe, if any."""
    output_shape = tuple(ctx.analytic.output.shape)
    worth = candidates(
        tuple(var.value.shape), output_shape,
        max_colours=var.value.size // _COLOUR_GAIN, limit=_COLOUR_TRIES,
    )
    for candidate in worth:
        if nan_consistent(ctx.numerics.real.main, var.name, candidate, ctx.rng):
            return candidate
    return None


def full_cost(var: Variable, method: str, colouring: Colouring | None) -> int:
    """Forward passes of a full check of ``var`` (coloured when a pattern is known)."""
    if colouring is None:
        return var.value.size * engine(method).cost + 1
    return colouring.colours * engine(method).cost + _COLOUR_OVERHEAD


@dataclass(frozen=True)
class _Elements:
    """Element-by-element derivatives of one variable (a module-level, picklable task)."""

    name: str
    method: str
    flat: NDArray[np.intp]
    dout: NDArray
    scale: float

    def run(self, runner: Runner, part: NDArray[np.intp]) -> NumericalGradient:
        """The derivatives of elements ``flat[part]`` on ``runner``'s working copy."""
        work = runner.arrays[self.name]
        loss = runner.loss(self.name, self.dout)
        if engine(self.method).arithmetic == "complex":
            return complex_step(loss, work, indices=self.flat[part])
        return stencil_derivatives(
            loss, work, method=self.method, indices=self.flat[part], scale=self.scale
        )


def _plain(
    var: Variable, ctx: Context, method: str, indices: NDArray | None
) -> NumericalGradient:
    """Element by element (``indices`` only, or all), in chunks when there is an executor."""
    runners = ctx.runners(method)
    flat = np.arange(var.value.size) if indices is None else np.asarray(indices, dtype=np.intp)
    pieces = chunks(flat.size, TASKS if runners.parallel else 1)
    task = _Elements(var.name, method, flat, ctx.dout, ctx.scale)
    parts = runners.map(task.run, pieces)
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.patched(part)
    return merged


def _whole(
    var: Variable, ctx: Context, method: str, colouring: Colouring | None
) -> tuple[NumericalGradient, str]:
    """Every element of ``var``: coloured when a pattern holds, else one by one."""
    if colouring is not None:
        coloured = coloured_gradient(
            ctx.runners(method), var.name, colouring, ctx.dout,
            method=method, scale=ctx.scale, rng=ctx.rng,
        )
        if coloured.numerical is not None:
            colours = colouring.colours
            plural = "" if colours == 1 else "s"
            return coloured.numerical, f"{method}, {colours} colour{plural} ({colouring.name})"
        ctx.diagnostics.append(Diagnostic(
            "colouring-refuted", Severity.NOTE,
            f"{var.name}: {coloured.reason}; checked element by element instead.",
        ))
    return _plain(var, ctx, method, None), method


def full_check(var: Variable, ctx: Context, method: str, colouring: Colouring | None) -> Outcome:
    """The numerical gradient of every element of ``var`` and its comparison."""
    numerical, label = _whole(var, ctx, method, colouring)
    return _judged(var, ctx, method, numerical, label, colouring, numerical.value)


def some_elements(var: Variable, ctx: Context, method: str, indices: NDArray) -> Outcome:
    """The numerical derivatives of ``indices`` of ``var`` only, and their comparison.

    A check of some elements sizes ``atol`` by the analytic gradient (it has no full
    numerical one).
    """
    numerical = _plain(var, ctx, method, indices)
    analytic = ctx.analytic.gradients[var.name]
    return _judged(var, ctx, method, numerical, method, None, analytic)


def _judged(
    var: Variable,
    ctx: Context,
    method: str,
    numerical: NumericalGradient,
    label: str,
    colouring: Colouring | None,
    sizing: NDArray,
) -> Outcome:
    """Compare; confirm complex-step mismatches with a real stencil (which sees kinks)."""
    analytic = ctx.analytic.gradients[var.name]
    tolerance = ctx.tolerance(var, sizing)
    result = compare(analytic, numerical, tolerance)
    suspects = np.flatnonzero(result.status == Status.MISMATCH)
    if engine(method).arithmetic != "complex" or not suspects.size:
        return Outcome(numerical, result, label)
    confirm = confirming_engine(ctx)
    if colouring is not None and colouring.colours < suspects.size:
        again, _ = _whole(var, ctx, confirm, colouring)
    else:
        again = _plain(var, ctx, confirm, suspects)
    mask = np.zeros(var.value.size, dtype=bool)
    mask[suspects] = True
    numerical = numerical.patched(
        replace(again, checked=again.checked & mask.reshape(var.value.shape))
    )
    result = compare(analytic, numerical, tolerance)
    return Outcome(numerical, result, f"{label}, +{suspects.size} {confirm}")
