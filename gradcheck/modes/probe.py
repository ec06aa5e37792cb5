"""Which engine each variable gets: the complex step where the layer supports it.

``method="auto"`` (and ``"complex"``) probe the layer: the complex step is exact to
rounding, but only for code that is analytic in its inputs (no ``abs``, ``np.maximum``,
comparisons or casts to real on the way). One probe covers all variables at once; when it
fails, each variable is probed on its own, because a layer may be analytic in some inputs
and not in others. A variable whose probe fails is differentiated by central differences,
and the report says why.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Variable
from gradcheck.engine.numeric import supports_complex_step
from gradcheck.engine.passes import Runner
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

# Passes of the complex-step probe (one complex, four real — in real arithmetic where the
# layer computes in float64).
PROBE_COST = 5
# Forward passes that round more than this (float32 and narrower) need Richardson.
_WIDE_EPS = 1e-10


def joint_complex_probe(chosen: list[Variable], ctx: Context) -> bool:
    """One complex-step probe for all chosen variables at once (five passes in all)."""
    if ctx.options.method not in ("auto", "complex") or len(chosen) < 2:
        return False
    runner = ctx.runners("complex").main
    real_runner = ctx.numerics.real.main
    real = {v.name: real_runner.arrays[v.name].copy() for v in chosen}
    sizes = [real[v.name].size for v in chosen]
    ends = np.cumsum(sizes)

    def on(target: Runner) -> Callable[[NDArray], complex | float]:
        loss = target.loss(chosen[0].name, ctx.dout)

        def joint(z: NDArray) -> complex | float:
            for var, end, size in zip(chosen, ends, sizes, strict=True):
                np.copyto(target.arrays[var.name], z[end - size:end].reshape(var.value.shape))
            return loss(target.arrays[chosen[0].name])

        return joint

    point = np.concatenate([real[v.name].ravel() for v in chosen])
    try:
        usable, _ = supports_complex_step(on(runner), point, ctx.rng, real_pass=_real_only(
            on(real_runner), real_runner))
    finally:
        for var in chosen:
            np.copyto(runner.arrays[var.name], real[var.name])
            np.copyto(real_runner.arrays[var.name], real[var.name])
    return usable


def _real_only(
    f: Callable[[NDArray], complex | float], runner: Runner
) -> Callable[[NDArray], complex | float] | None:
    """``f`` on the real working copy, for the probe's real points — when that copy
    computes in float64 (a float32-only layer's real copy would round more than the
    probe's central differences allow)."""
    dtype = next(iter(runner.arrays.values())).dtype if runner.arrays else None
    return f if dtype == np.float64 else None


def engine_for(var: Variable, ctx: Context) -> str:
    """The engine for ``var``: the complex step when the layer supports it, else a stencil.

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
    complex_runners = ctx.runners("complex")
    real_runner = ctx.numerics.real.main
    real_work = real_runner.arrays[var.name]
    saved = real_work.copy()
    complex_loss = complex_runners.main.loss(var.name, ctx.dout)
    try:
        usable, reason = supports_complex_step(
            complex_loss, saved.copy(), ctx.rng,
            real_pass=_real_only(real_runner.loss(var.name, ctx.dout), real_runner))
    finally:
        np.copyto(complex_runners.main.arrays[var.name], saved)
        np.copyto(real_work, saved)
    if usable:
        return "complex"
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
        Diagnostic("no-complex-step", Severity.NOTE,
                   sentence(f"complex step not used for {', '.join(names)}: {reason}"))
        for reason, names in by_reason.items()
    ]


def rounds_like_float32(ctx: Context) -> bool:
    """Whether the forward passes round like float32 or coarser (numerics in float32)."""
    return ctx.eps > _WIDE_EPS


def real_engine(ctx: Context) -> str:
    """The real stencil of ``method="auto"``: central differences, or Richardson
    extrapolation when the forward passes round like float32 — central differences there
    are accurate to about ε^(2/3) ≈ 2e-5, not enough to resolve float32's tolerance of
    1e-4, while Richardson's larger steps reach about ε^(4/5) ≈ 3e-6."""
    if ctx.options.method == "richardson" or rounds_like_float32(ctx):
        return "richardson"
    return "central"


def confirming_engine(ctx: Context) -> str:
    """The real stencil that explains complex-step mismatches: Richardson extrapolation,
    the most accurate real engine, with one-sided derivatives that recognise kinks (only
    suspects are checked with it, so its cost hardly matters)."""
    return "richardson"
