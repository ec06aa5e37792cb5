"""Full mode: every element's derivative, coloured where a verified pattern allows.

Elements that never meet in an output are moved together (:mod:`gradcheck.engine.coloring`),
so an elementwise layer costs one stencil whatever its size; the pattern is verified by
an extra pass and a refuted one falls back to element by element. A complex-step
mismatch is confirmed by a real stencil, which also recognises kinks.

A variable no pattern colours (every parameter of a net behind one scalar loss) costs a
pass per element (or a stencil's passes, where the complex step is not used).

Doubtful elements then get their second looks here — at other steps, in extended
precision, fitted over many steps — so the module runs past 500 lines: each look reads
and patches the same outcome, and the order of the looks is the point of the module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Variable
from gradcheck.engine.coloring import Colouring, candidates, coloured_gradient, nan_consistent
from gradcheck.engine.fitted import FIT_STEPS, fitted, fitting_shrinks
from gradcheck.engine.gradient import NumericalGradient
from gradcheck.engine.numeric import complex_step, stencil_derivatives
from gradcheck.engine.passes import TASKS, Runner, chunks
from gradcheck.engine.spec import engine
from gradcheck.modes.context import EXTENDED_EPS, Context, Outcome, noise_key
from gradcheck.modes.ladder import MOST, Differentiate, Judge, Ladder, climb
from gradcheck.modes.noise import measure_noise
from gradcheck.modes.probe import confirming_engine, real_engine, rounds_like_float32
from gradcheck.verdict.compare import Comparison, compare
from gradcheck.vocabulary import Diagnostic, Severity, Status

__all__ = ["colouring_for", "full_check", "full_cost", "some_elements"]

# Colour a variable only when that at least halves its passes; try at most this many
# patterns (a NaN probe of two passes each).
_COLOUR_GAIN = 2
_COLOUR_TRIES = 24
# Passes a coloured check needs beyond its stencils: the NaN probe of its pattern, and
# the verification stencil (with f(x) for a real engine).
_NAN_PROBES = 2


def colouring_for(var: Variable, ctx: Context) -> Colouring | None:
    """A block pattern worth using for ``var`` that survives the NaN probe, if any."""
    output_shape = tuple(ctx.analytic.output.shape)
    worth = candidates(
        tuple(var.value.shape),
        output_shape,
        max_colours=var.value.size // _COLOUR_GAIN,
        limit=_COLOUR_TRIES,
    )
    for candidate in worth:
        if nan_consistent(ctx.numerics.real.main, var.name, candidate, ctx.rng):
            return candidate
    return None


def full_cost(var: Variable, method: str, colouring: Colouring | int | None) -> int:
    """Forward passes of a full check of ``var`` (coloured when a pattern, or a number of
    colours, is given)."""
    colours = colouring.colours if isinstance(colouring, Colouring) else colouring
    spec = engine(method)
    if colours is None or colours >= var.value.size:
        return var.value.size * spec.cost + 1
    return (colours + 1) * spec.cost + _NAN_PROBES + (spec.arithmetic == "real")


@dataclass(frozen=True)
class _Elements:
    """Element-by-element derivatives of one variable (a module-level, picklable task)."""

    name: str
    method: str
    flat: NDArray[np.intp]
    dout: NDArray
    scale: float
    eps: float
    terms: NDArray | None
    multiplier: NDArray | float = 1.0  # one per element of ``flat``, or for all
    lands_on: np.dtype | None = None  # the narrower dtype the steps' points are exact in

    def run(self, runner: Runner, part: NDArray[np.intp]) -> NumericalGradient:
        """The derivatives of elements ``flat[part]`` on ``runner``'s working copy."""
        work = runner.arrays[self.name]
        loss = runner.loss(self.name, self.dout)
        indices = self.flat[part]
        if engine(self.method).arithmetic == "complex":
            return complex_step(loss, work, indices=indices, terms=self.terms, eps=self.eps)
        multiplier = (
            self.multiplier[part] if isinstance(self.multiplier, np.ndarray) else self.multiplier
        )
        return stencil_derivatives(
            loss,
            work,
            method=self.method,
            indices=indices,
            scale=self.scale,
            eps=self.eps,
            multiplier=multiplier,
            lands_on=self.lands_on,
        )


def _plain(
    var: Variable,
    ctx: Context,
    method: str,
    indices: NDArray | None,
    *,
    multiplier: NDArray | float | None = None,
    extended: bool | None = None,
) -> NumericalGradient:
    """Element by element (``indices`` only, or all), in chunks when there is an executor,
    at the variable's measured steps unless ``multiplier`` says otherwise; ``extended``: on
    the working copies in extended precision (default: where ``var`` needs them,
    :meth:`~gradcheck.modes.context.Context.wide_real`)."""
    if extended is None:
        extended = engine(method).arithmetic == "real" and ctx.wide_real(var)
    runners = ctx.numerics.wide() if extended else ctx.runners(method, var)
    assert runners is not None
    eps = EXTENDED_EPS if extended else ctx.eps_of(method, var)
    flat = np.arange(var.value.size) if indices is None else np.asarray(indices, dtype=np.intp)
    pieces = chunks(flat.size, TASKS if runners.parallel else 1)
    if multiplier is None:
        multiplier = ctx.step_multiplier(var, method, extended=extended)[flat]
    task = _Elements(
        var.name,
        method,
        flat,
        ctx.dout,
        ctx.scale,
        eps,
        ctx.terms(var),
        multiplier,
        None if extended else ctx.lands_on(var),
    )
    parts = runners.map(task.run, pieces)
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.patched(part)
    return merged.with_noise(
        ctx.noise_ratios.get(noise_key(var, extended)), ctx.bar_floor(var, extended=extended)
    )


def _whole(
    var: Variable, ctx: Context, method: str, colouring: Colouring | None
) -> tuple[NumericalGradient, str]:
    """Every element of ``var``: coloured when a pattern holds, else one by one."""
    if colouring is not None:
        wide = engine(method).arithmetic == "real" and ctx.wide_real(var)
        runners = ctx.numerics.wide() if wide else ctx.runners(method, var)
        assert runners is not None
        key = noise_key(var, wide)
        coloured = coloured_gradient(
            runners,
            var.name,
            colouring,
            ctx.dout,
            method=method,
            scale=ctx.scale,
            rng=ctx.rng,
            eps=EXTENDED_EPS if wide else ctx.eps_of(method, var),
            terms=ctx.terms(var),
            multiplier=ctx.step_multiplier(var, method, extended=wide),
            noise_ratio=ctx.rounding_ratio(var, wide),
            lands_on=None if wide else ctx.lands_on(var),
        )
        if coloured.numerical is not None:
            coloured.numerical = coloured.numerical.with_noise(
                ctx.noise_ratios.get(key), ctx.bar_floor(var, extended=wide)
            )
            colours = colouring.colours
            plural = "" if colours == 1 else "s"
            return coloured.numerical, f"{method}, {colours} colour{plural} ({colouring.name})"
        ctx.diagnostics.append(
            Diagnostic(
                "colouring-refuted",
                Severity.NOTE,
                f"{var.name}: {coloured.reason}; checked element by element instead.",
            )
        )
    return _plain(var, ctx, method, None), method


def full_check(var: Variable, ctx: Context, method: str, colouring: Colouring | None) -> Outcome:
    """The numerical gradient of every element of ``var`` and its comparison."""
    if engine(method).arithmetic == "real":
        calibrate_steps(var, ctx, scale_with=method if colouring is None else None)
    numerical, label = _whole(var, ctx, method, colouring)
    return _judged(var, ctx, method, numerical, label, colouring)


def some_elements(var: Variable, ctx: Context, method: str, indices: NDArray) -> Outcome:
    """The numerical derivatives of ``indices`` of ``var`` only, and their comparison."""
    if engine(method).arithmetic == "real":  # a few elements' samples are no noise pool
        calibrate_steps(var, ctx)
    numerical = _plain(var, ctx, method, indices)
    return _judged(var, ctx, method, numerical, method, None)


# Elements of a variable whose steps are measured before its bulk is differentiated.
_STEP_SAMPLE = 4


def calibrate_steps(var: Variable, ctx: Context, *, scale_with: str | None = None) -> None:
    """Measure what ``var``'s steps need, once, and keep it in ``ctx``: its noise ratio
    (:mod:`gradcheck.modes.noise`), and — when ``scale_with`` names an engine about to
    differentiate its many elements one by one — the function's own scale, on a few of
    them by the ladder's rule (:mod:`gradcheck.modes.ladder`). Elsewhere (a few colours,
    a few elements) each doubtful element finds its step on its own."""
    if var.name not in ctx.noise_ratios:
        # The joint measurement moved this variable alone when it is the only one.
        alone = [v.name for v in ctx.target.variables] == [var.name]
        ctx.noise_ratios[var.name] = (
            ctx.noise
            if alone
            else measure_noise(ctx.numerics.real.main, [var.name], ctx.dout, ctx.rng, ctx.eps)
        ).ratio
    _measure_wide_noise(var, ctx)
    size = var.value.size
    if scale_with is None or var.name in ctx.multipliers or size <= _STEP_SAMPLE:
        return
    ctx.multipliers[var.name] = 1.0
    sample = np.sort(ctx.rng.choice(size, size=_STEP_SAMPLE, replace=False))
    start = _plain(var, ctx, scale_with, sample).pooled()
    mask = np.zeros(size, dtype=bool)
    mask[sample] = True
    judge = _judge(var, ctx)
    settled = climb(
        Ladder(start, np.ones(size)),
        mask,
        _differentiator(var, ctx, scale_with),
        judge,
        scale_with,
        until_settled=True,
    )
    # Elements that sit at a kink, found no bar, or that the output does not move at any
    # step (a unit dropout removed: its ladder climbs to any step) say nothing about the
    # function's scale.
    status = judge(settled.numerical)[0].ravel()[sample]
    value = settled.numerical.value.ravel()[sample]
    usable = sample[
        (status != Status.KINK)
        & (value != 0)
        & np.isfinite(settled.numerical.error.ravel()[sample])
    ]
    if usable.size:
        ctx.multipliers[var.name] = float(np.exp(np.median(np.log(settled.multiplier[usable]))))


def _measure_wide_noise(var: Variable, ctx: Context) -> None:
    """The noise ratio of ``var``'s working copy in extended precision, where it is used."""
    key = noise_key(var, True)
    if key in ctx.noise_ratios or not ctx.wide_real(var):
        return
    runners = ctx.numerics.wide()
    assert runners is not None
    ctx.noise_ratios[key] = measure_noise(
        runners.main, [var.name], ctx.dout, ctx.rng, EXTENDED_EPS
    ).ratio


def _differentiator(
    var: Variable, ctx: Context, method: str, *, extended: bool | None = None
) -> Differentiate:
    """The ladder's way to differentiate ``var``: ``multiplier`` relative to its steps."""
    wide = extended if extended is not None else ctx.wide_real(var)

    def differentiate(indices: NDArray[np.intp], multiplier: NDArray) -> NumericalGradient:
        base = ctx.step_multiplier(var, method, extended=wide)[indices]
        return _plain(var, ctx, method, indices, multiplier=base * multiplier, extended=wide)

    return differentiate


def _judge(var: Variable, ctx: Context) -> Judge:
    analytic, tolerance = ctx.analytic.gradients[var.name], ctx.tolerance(var)

    def judge(numerical: NumericalGradient) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
        result = compare(analytic, numerical, tolerance)
        with np.errstate(invalid="ignore"):  # no bar at all: no room either
            return result.status, result.threshold - numerical.error

    return judge


def _climbed(
    var: Variable, ctx: Context, outcome: Outcome, wanted: NDArray[np.bool_]
) -> tuple[Outcome, NDArray[np.bool_]]:
    """``outcome`` after the ``wanted`` elements' second looks at other steps, by the
    most accurate real stencil; and which elements it settled at far finer steps than
    their own (see :func:`_extended_looks`)."""
    finer = np.zeros(var.value.shape, dtype=bool)
    if not wanted.any():
        return outcome, finer
    method = confirming_engine(ctx)
    start = Ladder(outcome.numerical, np.ones(var.value.size))
    climbed = climb(
        start, wanted.ravel(), _differentiator(var, ctx, method), _judge(var, ctx), method
    )
    if not climbed.looks:
        return outcome, finer
    numerical = climbed.numerical
    result = compare(ctx.analytic.gradients[var.name], numerical, ctx.tolerance(var))
    finer = (climbed.multiplier < _FAR_FINER).reshape(var.value.shape)
    return (
        Outcome(numerical, result, f"{outcome.method}, {climbed.looks} looks at other steps"),
        finer,
    )


# An element settled at steps this much finer than its own is looked at again in extended
# precision: rounding that is alike at neighbouring points hides from the noise samples.
_FAR_FINER = 1e-3


def _doubtful(result: Comparison) -> NDArray[np.bool_]:
    status = result.status
    doubtful: NDArray[np.bool_] = (
        (status == Status.MISMATCH) | (status == Status.UNRESOLVED) | (status == Status.KINK)
    )
    return doubtful


# Elements still unresolved where forward passes round like float32 are fitted over many
# steps, this many at most, with steps up to 4 times larger than the stencil's own (less
# rounding, and the fit models the truncation), then 1 to 4, then 4 to 16 times smaller.
_FITTED_MOST = 16
_FIT_RANGES = (0.25, 1.0, 4.0)


def _in_units_of(run: NumericalGradient, reference: NumericalGradient) -> NumericalGradient:
    """``run`` with each element's rounding unit no larger than in ``reference``: one by
    one, a stencil counts every output's rounding, while a coloured check's verified blocks
    show which outputs an element cannot move (a column of ``tanh(x W)`` for ``W[i, j]``)."""
    if run.noise is None or reference.noise is None:
        return run
    known = reference.noise.unit > 0
    unit = np.where(known, np.minimum(run.noise.unit, reference.noise.unit), run.noise.unit)
    return replace(run, noise=replace(run.noise, unit=unit))


def _fitted_where_unresolved(var: Variable, ctx: Context, outcome: Outcome) -> Outcome:
    """Where a forward pass that rounds like float32 leaves elements unresolved, fit them
    over many steps (:mod:`gradcheck.engine.fitted`): an error bar from the scatter
    itself, far tighter than one stencil's worst-case bound."""
    if not rounds_like_float32(ctx, var):
        return outcome
    numerical, result, count = outcome.numerical, outcome.result, 0
    method = confirming_engine(ctx)
    for low in _FIT_RANGES:
        unresolved = np.flatnonzero(result.status == Status.UNRESOLVED)[:_FITTED_MOST]
        if not unresolved.size:
            break
        base = ctx.step_multiplier(var, method)[unresolved]
        fit = fitted(
            [
                _in_units_of(
                    _plain(var, ctx, method, unresolved, multiplier=base / shrink).pooled(),
                    numerical,
                )
                for shrink in fitting_shrinks(low=low)
            ],
            larger=low < 1,
        )
        # The fit averages rounding away, not the function's own: it differentiates the
        # function as computed, at inputs off by their rounding.
        floor = ctx.bar_floor(var)
        if floor is not None:
            fit = replace(fit, error=fit.error + floor)
        better = fit.checked & (fit.error < numerical.error)
        if better.any():
            numerical = numerical.patched(replace(fit, checked=better))
            result = compare(ctx.analytic.gradients[var.name], numerical, ctx.tolerance(var))
            count += int(better.sum())
    if not count:
        return outcome
    return Outcome(numerical, result, f"{outcome.method}, {count} fitted over {FIT_STEPS} steps")


def _extended_looks(
    var: Variable, ctx: Context, outcome: Outcome, looked_at: NDArray[np.bool_]
) -> Outcome:
    """What float64 leaves unresolved, accuses or calls a kink — and what it settled only
    at other steps (``looked_at``: far smaller steps than the function's scale, as near
    a kink, make rounding that is alike at neighbouring points invisible to the noise
    samples, and exp(x) − 1 at x = −1e-9 then has the wrong slope to 1e-7) —
    differentiated again in extended precision where the layer computes in it, the most
    accurate real engine there is, and looked at again at its own other steps."""
    status = outcome.result.status
    wanted = (status == Status.MISMATCH) | (status == Status.UNRESOLVED) | looked_at
    if not wanted.any() or ctx.numerics.wide() is None:
        return outcome
    if noise_key(var, True) not in ctx.noise_ratios:
        runners = ctx.numerics.wide()
        assert runners is not None
        ctx.noise_ratios[noise_key(var, True)] = measure_noise(
            runners.main, [var.name], ctx.dout, ctx.rng, EXTENDED_EPS
        ).ratio
    method = confirming_engine(ctx)
    indices = np.flatnonzero(wanted)[:MOST]
    fresh = _plain(var, ctx, method, indices, extended=True)
    # The wider precision's look replaces float64's: it sees the same function with a
    # two-thousandth of the rounding.
    numerical = outcome.numerical.settled().patched(fresh).pooled()
    looked = Outcome(
        numerical,
        compare(ctx.analytic.gradients[var.name], numerical, ctx.tolerance(var)),
        outcome.method,
    )
    climbed = climb(
        Ladder(numerical, np.ones(var.value.size)),
        wanted.ravel(),
        _differentiator(var, ctx, method, extended=True),
        _judge(var, ctx),
        method,
    )
    numerical = climbed.numerical
    result = compare(ctx.analytic.gradients[var.name], numerical, ctx.tolerance(var))
    count = indices.size
    return Outcome(
        numerical,
        result if climbed.looks else looked.result,
        f"{outcome.method}, {count} in extended precision",
    )


def _second_looks(var: Variable, ctx: Context, outcome: Outcome) -> Outcome:
    """What a real stencil accuses, calls a kink or leaves unresolved, looked at again at
    other steps, then in extended precision, and (where forward passes round like
    float32) fitted over many."""
    looked, finer = _climbed(var, ctx, outcome, _doubtful(outcome.result))
    return _fitted_where_unresolved(var, ctx, _extended_looks(var, ctx, looked, finer))


def _on_a_side(
    complex_step: NumericalGradient, real: NumericalGradient, threshold: NDArray
) -> NDArray[np.bool_]:
    """Where the complex step's value is one of the stencil's one-sided derivatives.

    At a real kink the complex step follows one branch, so it equals the derivative on
    one side; a stencil whose steps are too coarse for the layer (inputs of 1e5 around a
    spread of 1) crosses structure far from the point and calls it a kink, which it is
    not at the point — there the complex step's value matches neither side.
    """
    if real.left is None or real.right is None:
        return np.zeros(real.value.shape, dtype=bool)
    margin = threshold + (real.side_error if real.side_error is not None else 0)
    value = complex_step.value
    side: NDArray[np.bool_] = (np.abs(value - real.left) <= margin) | (
        np.abs(value - real.right) <= margin
    )
    return side


def _judged(
    var: Variable,
    ctx: Context,
    method: str,
    numerical: NumericalGradient,
    label: str,
    colouring: Colouring | None,
) -> Outcome:
    """Compare; have complex-step mismatches explained by a real stencil.

    The complex step is exact to rounding where the layer is analytic, so its mismatch
    stands (a less accurate method may explain, never overturn) unless the stencil sees a
    kink there, or finds the analytic value right where the complex step's value is out of
    its reach — the complex step is then not valid at that element (an ``abs`` that a
    probe along one direction did not notice). A stencil that disagrees with both sides
    (too coarse for the layer: inputs of 1e5 around a spread of 1) explains nothing.
    """
    analytic = ctx.analytic.gradients[var.name]
    tolerance = ctx.tolerance(var)
    numerical = numerical.pooled()
    result = compare(analytic, numerical, tolerance)
    if engine(method).arithmetic != "complex":
        return _second_looks(var, ctx, Outcome(numerical, result, label))
    suspects = result.status == Status.MISMATCH
    if not suspects.any():
        return Outcome(numerical, result, label)
    confirm = confirming_engine(ctx)
    calibrate_steps(var, ctx)
    count = int(suspects.sum())
    if colouring is not None and colouring.colours < count:
        again, _ = _whole(var, ctx, confirm, colouring)
    else:
        again = _plain(var, ctx, confirm, np.flatnonzero(suspects))
    real = replace(again, checked=again.checked & suspects).pooled()
    # The stencil's own doubts (a kink it claims, an accusation, a bar too wide) get their
    # second looks before it explains anything: a kink must stay at finer steps.
    looked, _ = _climbed(
        var,
        ctx,
        Outcome(real, compare(analytic, real, tolerance), confirm),
        _doubtful(compare(analytic, real, tolerance)) & suspects,
    )
    real, verdict = looked.numerical, looked.result
    agrees = np.abs(numerical.value - real.value) <= real.error
    kink = (verdict.status == Status.KINK) & _on_a_side(numerical, real, verdict.threshold)
    # Where the stencil finds the analytic value right, the complex step is not valid; nor
    # where it says exactly 0 and the stencil clearly not (the imaginary part vanished).
    vanished = (numerical.value == 0) & (np.abs(real.value) > real.error)
    invalid = suspects & (((verdict.status == Status.OK) & ~agrees) | vanished)
    if invalid.any():
        # Not valid at one element (an ``abs`` drops the imaginary part), it decides none
        # of the variable's: where it agreed with backward, both may have dropped the same
        # branch. Real stencils check the whole variable.
        ctx.without_complex_step[var.name] = (
            f"the complex step disagrees with real differences at {int(invalid.sum())} "
            "element(s) where backward agrees with them: the forward pass is not analytic "
            "there (abs, max or a cast to real?)"
        )
        outcome = full_check(var, ctx, real_engine(ctx), colouring)
        outcome.method = f"{outcome.method} (complex step invalid)"
        return outcome
    numerical = numerical.patched(replace(real, checked=suspects & kink)).pooled()
    status = np.where(suspects & kink, verdict.status, result.status).astype(np.int8)
    result = replace(compare(analytic, numerical, tolerance), status=status)
    return Outcome(numerical, result, f"{label}, +{count} {confirm}")
