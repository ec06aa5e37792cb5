"""Which engine each variable gets: the complex step where the layer supports it.

``method="auto"`` (and ``"complex"``) probe the layer: the complex step is exact to
rounding, but only for code that is analytic in its inputs (no ``abs``, ``np.maximum``,
comparisons or casts to real on the way), so it decides only where real differences with
an honest, tight error bar agree with it along a random direction
(:mod:`gradcheck.engine.validity`). One probe covers all variables at once; when it
fails, each variable is probed on its own, because a layer may be analytic in some inputs
and not in others. A variable whose probe fails — or cannot tell — is differentiated by
real stencils, and the report says why.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Variable
from gradcheck.engine.numeric import random_direction
from gradcheck.engine.passes import Runner
from gradcheck.engine.validity import Verification, verify_complex_step
from gradcheck.errors import UsageError
from gradcheck.modes.context import Context
from gradcheck.vocabulary import Diagnostic, Severity, sentence

__all__ = [
    "PROBE_COST",
    "complex_step_notes",
    "confirming_engine",
    "engine_for",
    "joint_complex_probe",
    "real_engine",
    "rounds_like_float32",
]

# Passes of the complex-step probe when its first real estimate is tight enough (one
# complex, one real at the point, six for a Richardson table along a direction).
PROBE_COST = 8
# Forward passes that round more than this (float32 and narrower) need Richardson.
_WIDE_EPS = 1e-10


def joint_complex_probe(chosen: list[Variable], ctx: Context) -> bool:
    """One complex-step probe for all chosen variables at once."""
    if ctx.options.method not in ("auto", "complex") or len(chosen) < 2:
        return False
    return _probe(chosen, ctx).valid is True


def _probe(chosen: list[Variable], ctx: Context) -> Verification:
    """The complex step along a random direction over ``chosen`` against real differences
    (:mod:`gradcheck.engine.validity`), on the working copies, which are restored."""
    complex_runner = ctx.runners("complex").main
    real_runner = ctx.numerics.real.main
    saved = {v.name: real_runner.arrays[v.name].copy() for v in chosen}
    sizes = [v.value.size for v in chosen]
    ends = np.cumsum(sizes)

    def on(runner: Runner) -> Callable[[NDArray], complex | float]:
        loss = runner.loss(chosen[0].name, ctx.dout)

        def joint(z: NDArray) -> complex | float:
            for var, end, size in zip(chosen, ends, sizes, strict=True):
                np.copyto(
                    runner.arrays[var.name],
                    z[end - size : end].reshape(var.value.shape),
                    casting="unsafe",
                )
            return loss(runner.arrays[chosen[0].name])

        return joint

    point = np.concatenate([saved[v.name].real.astype(np.float64).ravel() for v in chosen])
    units = np.concatenate([ctx.step_units(v).ravel() for v in chosen])
    direction = random_direction(ctx.rng, point.size) * units
    gradient = np.concatenate(
        [np.asarray(ctx.analytic.gradients[v.name], dtype=np.float64).ravel() for v in chosen]
    )
    terms = np.concatenate(
        [
            np.broadcast_to(ctx.precision.terms.get(v.name, 0.0), v.value.shape).ravel()
            for v in chosen
        ]
    )
    real_f = on(real_runner) if _computes_in_float64(real_runner) else on(complex_runner)
    try:
        return verify_complex_step(
            on(complex_runner),
            real_f,
            point,
            direction,
            eps=ctx.eps,
            sigma=ctx.noise.sigma,
            scale=float(np.sum(np.abs((gradient + terms) * direction))),
            resolution=min(ctx.tolerance(v).rtol for v in chosen),
            noise_ratio=ctx.noise.ratio,
        )
    finally:
        for var in chosen:
            np.copyto(complex_runner.arrays[var.name], saved[var.name])
            np.copyto(real_runner.arrays[var.name], saved[var.name])


def _computes_in_float64(runner: Runner) -> bool:
    """Whether the real working copy computes in float64: the probe's real points run
    there (a float32-only layer's real copy would round more than the probe allows, and
    its complex copy's real part is then the better real function)."""
    dtype = next(iter(runner.arrays.values())).dtype if runner.arrays else None
    return bool(dtype == np.float64)


def engine_for(var: Variable, ctx: Context) -> str:
    """The engine for ``var``: the complex step where it is shown valid, else a stencil.

    Raises
    ------
    UsageError
        When ``method="complex"`` was asked for and the layer does not support it.
    """
    method = ctx.options.method
    if method not in ("auto", "complex"):
        return method
    if ctx.complex_for_all:
        return "complex"
    verification = _probe([var], ctx)
    if verification.valid:
        return "complex"
    reason = (
        verification.reason
        if verification.valid is False
        else f"it could not be verified at this point: {verification.reason}"
    )
    if method == "complex":
        raise UsageError(f"{var.name}: method='complex' cannot be used: {reason}.")
    ctx.without_complex_step[var.name] = reason
    return real_engine(ctx)


def complex_step_notes(ctx: Context) -> list[Diagnostic]:
    """One note per reason the complex step was not used, naming every variable it
    concerns (not one note per variable)."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in ctx.without_complex_step.items():
        by_reason.setdefault(reason, []).append(name)
    return [
        Diagnostic(
            "no-complex-step",
            Severity.NOTE,
            sentence(f"complex step not used for {', '.join(names)}: {reason}"),
        )
        for reason, names in by_reason.items()
    ]


def rounds_like_float32(ctx: Context, var: Variable) -> bool:
    """Whether the forward passes round like float32 or coarser where ``var`` moves
    (numerics in float32, or a cast to float32 inside)."""
    return ctx.eps > _WIDE_EPS or ctx.compute_dtype(var).itemsize < 8


def real_engine(ctx: Context) -> str:
    """The real stencil of ``method="auto"``: Richardson extrapolation. Its three levels
    of central differences tell whether the expansion in ``h`` converges at the step
    taken, so its error bar can be shown true; central differences' two levels cannot
    (a truncation estimate from ``D(2h) − D(h)`` alone was thirty times short beside a
    normalisation at an offset of 3e5), and in float32 they reach only ε^(2/3) ≈ 2e-5."""
    if ctx.options.method == "central":
        return "central"
    return "richardson"


def confirming_engine(ctx: Context) -> str:
    """The real stencil that explains complex-step mismatches and takes second looks:
    Richardson extrapolation, the most accurate real engine, with one-sided derivatives
    that recognise kinks (only suspects are checked with it, so its cost hardly matters)
    — but forward differences where they were asked for: the point sits at the edge of
    the domain, and a central stencil steps outside it."""
    return "forward" if ctx.options.method == "forward" else "richardson"
