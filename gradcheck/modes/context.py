"""What the modes share within one check: working copies, analytic gradients, options.

The numerical side never runs on the user's objects: it runs on working copies
(:class:`~gradcheck.conventions.target.Instance`) whose forward passes are counted
(:class:`~gradcheck.engine.passes.Runners`), in float64 (or the layer's own narrow dtype
when it will not compute in float64) and, for the complex step, in complex128.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import (
    COMPLEX_ROUNDING,
    FLOAT32_ROUNDING,
    LINEARITY_ROUNDING,
    LOSS_RESOLUTION,
    LOSS_ROUNDING,
    NARROW_RTOL,
    REPRESENTATION_ROUNDING,
    STRICT_FACTOR,
    WIDER_ROUNDING,
)
from gradcheck.analytic.precision import Precision
from gradcheck.analytic.run import AnalyticPass
from gradcheck.conventions.target import Instance, Target, Variable
from gradcheck.engine.executors import executor_for
from gradcheck.engine.gradient import NumericalGradient
from gradcheck.engine.passes import Runners
from gradcheck.engine.spec import engine
from gradcheck.engine.steps import step_units
from gradcheck.modes.noise import Noise, measure_noise
from gradcheck.options import CheckOptions
from gradcheck.report.records import Screening
from gradcheck.verdict.compare import Comparison, Tolerance, default_tolerance
from gradcheck.vocabulary import Diagnostic

__all__ = ["EXTENDED_EPS", "Context", "Numerics", "Outcome", "make_numerics", "noise_key"]


def _working_copy(target: Target, dtype: Any, copy_inputs: bool, global_random: bool) -> Instance:
    """A fresh instance for the numerical side (module level, so executors can ship it).

    ``global_random``: forward draws from the global ``np.random`` state, so every pass
    must start from the same one; when it does not, resetting it is skipped (it costs
    about 50 µs, a fifth of a pass of the chapter's net).
    """
    instance = target.instantiate(dtype)
    instance.copy_inputs = copy_inputs
    if not global_random:
        instance.global_random_state = None
    return instance


#: The unit roundoff of extended precision (``np.longdouble``).
EXTENDED_EPS = float(np.finfo(np.longdouble).eps)
#: Where the forward pass rounds by this many units in its last place or more, numerical
#: derivatives are taken in extended precision (where the layer computes in it).
WIDE_RATIO = 64.0


def noise_key(var: Variable, extended: bool = False) -> str:
    """Where a variable's measured noise ratio is kept (one per precision)."""
    return f"{var.name} (extended)" if extended else var.name


@dataclass
class Numerics:
    """The working copies the numerical side runs on, and in which dtype.

    ``make_wide`` makes working copies in extended precision (``np.longdouble``, 80 bits
    on x86-64, or its complex twin), for what float64 cannot resolve; built on first use,
    and only where the platform has such a type and the layer computes in it.
    """

    real: Runners
    real_dtype: np.dtype
    complex: Runners | None
    make_wide: Callable[[type], Runners] | None = None
    _wide: dict[bool, Runners | None] = field(default_factory=dict, init=False)

    @property
    def passes(self) -> int:
        """Forward passes of the numerical side so far."""
        runners = [self.real, self.complex, *self._wide.values()]
        return sum(r.passes for r in runners if r is not None)

    def wide(self, complex_step: bool = False) -> Runners | None:
        """Working copies in extended precision (complex ones for the complex step), or
        None where there are none: the platform's ``longdouble`` is no wider than float64,
        or the layer does not compute in it (a float32 buffer, a cast, scipy.special)."""
        if complex_step not in self._wide:
            self._wide[complex_step] = None
            dtype = np.clongdouble if complex_step else np.longdouble
            if self.make_wide is not None:
                try:
                    runners = self.make_wide(dtype)
                    with np.errstate(all="ignore"):
                        output = runners.main.output()
                    if output.dtype == dtype and np.all(np.isfinite(output)):
                        self._wide[complex_step] = runners
                except Exception:  # a layer that refuses longdouble has no such copies
                    pass
        return self._wide[complex_step]


def _wide_runners(target: Target, held: tuple[bool, bool], executor: Any, dtype: type) -> Runners:
    """Runners of working copies in ``dtype`` (module level, so executors can ship it)."""
    return Runners(partial(_working_copy, target, dtype, *held), executor)


def make_numerics(
    target: Target, options: CheckOptions, analytic: AnalyticPass, real_dtype: np.dtype
) -> Numerics:
    """Working copies in ``real_dtype`` (and complex ones when the complex step may be used).

    When the layer's forward writes into its inputs, every forward pass gets fresh copies
    of them; when it draws from the global ``np.random`` state, every pass starts from
    the same one.
    """
    dtype = None if real_dtype != np.float64 else np.float64
    executor = executor_for(options.executor, options.workers, options.scheduler)
    held = (analytic.inplace_forward, analytic.draws_global_random)
    real = Runners(partial(_working_copy, target, dtype, *held), executor)
    complex_runners = None
    if options.method in ("auto", "complex"):
        complex_runners = Runners(partial(_working_copy, target, np.complex128, *held), executor)
    make_wide = None
    if real_dtype == np.float64 and np.finfo(np.float64).eps > EXTENDED_EPS:
        make_wide = partial(_wide_runners, target, held, executor)
    return Numerics(real, real_dtype, complex_runners, make_wide)


@dataclass
class Outcome:
    """One variable's numerical gradient, its comparison, and how it was obtained."""

    numerical: NumericalGradient
    result: Comparison
    method: str
    # Replaces the diagnosis read from the elements' pattern, when the elements checked are
    # only a sample or a localisation that stopped short (see modes.fast).
    diagnosis: str | None = None
    # What random directions vouch for the elements not checked one by one (modes.fast).
    screening: Screening | None = None


@dataclass
class Context:
    """Everything the per-variable work shares within one check."""

    target: Target
    numerics: Numerics
    analytic: AnalyticPass
    precision: Precision
    options: CheckOptions
    scale: float
    rng: np.random.Generator
    diagnostics: list[Diagnostic]
    complex_for_all: bool = False
    # Variables the complex step could not be used for, and why (one note per reason).
    without_complex_step: dict[str, str] = field(default_factory=dict)
    # The noise of the loss, all variables moved together (see modes.noise).
    noise: Noise = field(default_factory=lambda: Noise(0.0, 0.0))
    # Per variable a real stencil differentiates: its noise ratio, and the factor its
    # steps need beyond what that ratio says (the function's own scale), once measured.
    noise_ratios: dict[str, float] = field(default_factory=dict)
    multipliers: dict[str, float] = field(default_factory=dict)
    _wide_noise: Noise | None = None

    def rounding_ratio(self, var: Variable, extended: bool = False) -> float:
        """How many units in its last place the computation around ``var`` rounds by, as
        measured: the loss's noise, and ``var``'s own — in extended precision, measured
        there (a float32 cast inside rounds like float32 whatever the working copy)."""
        joint = self.wide_noise().ratio if extended else self.noise.ratio
        return max(joint, self.noise_ratios.get(noise_key(var, extended), 1.0), 1.0)

    def wide_noise(self) -> Noise:
        """The loss's noise with every variable moved together, on the working copies in
        extended precision (measured on first use; where there are none, float64's noise
        in extended precision's units)."""
        if self._wide_noise is None:
            runners = self.numerics.wide()
            if runners is None:
                self._wide_noise = Noise(
                    self.noise.sigma, self.noise.unit * EXTENDED_EPS / self.eps
                )
            else:
                self._wide_noise = measure_noise(
                    runners.main,
                    [v.name for v in self.target.variables],
                    self.dout,
                    self.rng,
                    EXTENDED_EPS,
                )
        return self._wide_noise

    def gradient_size(self, var: Variable) -> NDArray:
        """Each element's analytic gradient and the terms it sums, in size."""
        analytic = np.abs(np.asarray(self.analytic.gradients[var.name], dtype=np.float64))
        terms = self.precision.terms.get(var.name, 0.0)
        size: NDArray = analytic + np.broadcast_to(terms, analytic.shape)
        return size

    def step_units(self, var: Variable) -> NDArray:
        """Each element's step for a relative step of 1: its own scale
        (:func:`~gradcheck.engine.steps.step_units`), but no more than the loss's terms
        over the element's gradient terms — the length over which the element would move
        the loss by its own size (a weight that multiplies a feature of 1e6 is a million
        times steeper than its neighbours, whatever its own size)."""
        units = step_units(var.value, "central").ravel()
        terms = np.asarray(self.precision.terms.get(var.name, 0.0), dtype=np.float64)
        steep = np.broadcast_to(terms, var.value.shape).ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            length = np.where(steep > 0, self.loss_terms / steep, np.inf)
        scaled: NDArray = np.minimum(units, length)
        return np.where(scaled > 0, scaled, units)

    def step_shape(self, var: Variable) -> NDArray:
        """:meth:`step_units` relative to the variable's own units (at most 1)."""
        units = step_units(var.value, "central").ravel()
        shape: NDArray = self.step_units(var) / units
        return shape

    def step_multiplier(self, var: Variable, method: str, *, extended: bool = False) -> NDArray:
        """Per element (flat), what the steps of ``var`` with engine ``method`` are
        multiplied by: its :meth:`step_shape`; a noise ``q`` times the dtype's balances
        truncation against rounding at ``q^exponent`` times the steps; and the function's
        own scale, measured on a few elements, may want more or less. ``extended``: in
        extended precision, whose noise is measured apart."""
        ratio = max(self.noise_ratios.get(noise_key(var, extended), 1.0), 1.0)
        measured = ratio ** engine(method).step_exponent * self.multipliers.get(var.name, 1.0)
        multiplier: NDArray = measured * self.step_shape(var)
        return multiplier

    @property
    def dout(self) -> NDArray:
        """The upstream gradient that reduces the output to ``L = Σ dout ⊙ f``."""
        return self.analytic.dout

    @property
    def eps(self) -> float:
        """The unit roundoff of the numerical side's forward passes."""
        return self.precision.eps

    @property
    def last_bit(self) -> float:
        """The unit roundoff of the loss the engines difference: the output's own for one
        number, float64's for an output summed in float64 (a float32 buffer's rounding is
        noise of the function, measured, not a floor)."""
        if np.size(self.analytic.output) == 1:
            return self.eps
        return float(np.finfo(np.float64).eps)

    @property
    def loss_terms(self) -> float:
        """``Σ|dout ⊙ f|``: the size of the terms the loss adds up."""
        return float(np.sum(np.abs(self.dout.astype(np.float64) * self.analytic.output)))

    @property
    def loss_noise(self) -> float:
        """What the loss can resolve: one unit in the last place of its terms, or its
        measured noise where that is more (a cancellation, an offset, float32 inside)."""
        return max(self.last_bit * self.loss_terms, self.noise.sigma)

    def resolution(self, var: Variable) -> NDArray:
        """The loss's resolution for each element of ``var``: a gradient error that moves
        the loss by less than :data:`~gradcheck.accuracy.LOSS_RESOLUTION` times its noise
        when the element moves by its own scale — the default ``atol``."""
        scale = step_units(var.value, "central").reshape(var.value.shape)
        resolution: NDArray = LOSS_RESOLUTION * self.loss_noise / scale
        return resolution

    def bar_floor(self, var: Variable, *, extended: bool = False) -> NDArray | None:
        """The least error bar of a real stencil's derivative of ``var``: it differentiates
        the function as computed, at inputs off by their rounding, not the exact one
        (:data:`~gradcheck.accuracy.REPRESENTATION_ROUNDING`). In extended precision, the
        same in its own unit roundoff and measured noise."""
        if var.name not in self.precision.terms:
            return None
        ratio = self.rounding_ratio(var, extended)
        # Never finer than the precision the layer computes ``var``'s outputs in (a cast
        # to float32 inside rounds the point itself, whatever noise its steps show) —
        # in extended precision only where that is narrower than float64: a float64
        # layer's working copy in extended precision computes in it.
        computes = self.compute_dtype(var)
        narrow = computes.itemsize < 8 or not extended
        rounds = max(
            (EXTENDED_EPS if extended else self.eps) * ratio,
            float(np.finfo(computes).eps) if narrow else 0.0,
        )
        # And no more accurate than the best any real stencil can do: Richardson
        # extrapolation at its optimal step reaches rounding^(4/5) of the function's scale;
        # an estimate that claims better has been lucky, once.
        floor: NDArray = max(REPRESENTATION_ROUNDING * rounds, rounds**0.8) * self.gradient_size(
            var
        )
        return floor

    def terms(self, var: Variable) -> NDArray | None:
        """The size of the terms each element of ``var``'s gradient sums, as the complex
        step's rounding sees them: the analytic terms, times the loss's measured noise in
        units of its last place (a forward pass at inputs of 1e6 around a spread of 1 is
        exact at a point off by ε·1e6, which the complex step differentiates), at least the
        loss's noise per unit of ``var`` (a saturated softmax cancels terms of that size
        down to nothing; its rounding does not cancel), and backward's measured rounding."""
        if var.name not in self.precision.terms:
            return None
        scale = step_units(var.value, "central").reshape(var.value.shape)
        floor = LOSS_ROUNDING / COMPLEX_ROUNDING * self.loss_noise / self.eps / scale
        # And the rounding backward shows — its departure from linearity, its float64
        # run against extended precision: quantities inside that cancel (a BatchNorm of
        # two samples divides by their tiny spread; 1 + tanh(u) in GELU's tail) round the
        # tangent the complex step carries as much as they round backward.
        internal = self.internal_rounding(var) / (COMPLEX_ROUNDING * self.eps)
        terms: NDArray = (
            self.rounding_ratio(var, self.wide_complex(var)) * self.gradient_size(var)
            + floor
            + internal
        )
        return terms

    def internal_rounding(self, var: Variable) -> NDArray:
        """What quantities cancelling inside the layer cost each element of ``var``'s
        derivative, in the numerical side's precision: as backward shows it — its
        departure from linearity, its float64 run against extended precision — scaled
        from the precision backward computes in. They round the tangent the complex step
        carries as much as they round backward (a BatchNorm of two samples divides by
        their tiny spread; GELU's tail computes 1 + tanh(u) ≈ 1e-14); a real stencil's
        noise measurement sees them already."""
        defect = np.asarray(self.analytic.roundoff.get(var.name, 0.0), dtype=np.float64)
        backward_eps = float(np.finfo(self.precision.compute_dtype(var)).eps)
        float64 = np.asarray(self.precision.float64_rounding.get(var.name, 0.0), dtype=np.float64)
        internal: NDArray = np.maximum(
            LINEARITY_ROUNDING * defect * self.eps / backward_eps,
            WIDER_ROUNDING * float64 * self.eps / float(np.finfo(np.float64).eps),
        )
        return np.broadcast_to(internal, var.value.shape)

    def budget_left(self) -> int:
        """Forward passes left under ``max_evaluations``."""
        return self.options.max_evaluations - self.numerics.passes

    def runners(self, method: str, var: Variable | None = None) -> Runners:
        """The working copies an engine runs on (complex ones for the complex step; in
        extended precision where ``var``'s forward pass rounds far worse than its dtype,
        :meth:`wide_complex`)."""
        if engine(method).arithmetic == "complex":
            if var is not None and self.wide_complex(var):
                wide = self.numerics.wide(complex_step=True)
                assert wide is not None
                return wide
            assert self.numerics.complex is not None
            return self.numerics.complex
        return self.numerics.real

    def wide_complex(self, var: Variable) -> bool:
        """Whether the complex step for ``var`` runs in extended precision: where the
        forward pass rounds far worse than its dtype (inputs of 1e5 around a spread of
        1e-3), the complex step differentiates the function at intermediates off by that
        rounding, and the wider precision shrinks it two thousand times."""
        return (
            self.rounding_ratio(var) >= WIDE_RATIO
            and self.numerics.wide(complex_step=True) is not None
        )

    def wide_real(self, var: Variable) -> bool:
        """Whether real stencils differentiate ``var`` in extended precision: where the
        forward pass rounds far worse than its dtype (a normalisation at an offset of 1e5)
        and the layer computes in the wider type, whose rounding is two thousand times
        smaller — rather than resting every bar on noise measured by a few samples."""
        return (
            self.rounding_ratio(var) >= WIDE_RATIO
            and self.numerics.wide(complex_step=False) is not None
        )

    def eps_of(self, method: str, var: Variable) -> float:
        """The unit roundoff an engine computes ``var``'s derivatives in."""
        if engine(method).arithmetic == "complex" and self.wide_complex(var):
            return EXTENDED_EPS
        return self.eps

    def compute_dtype(self, var: Variable) -> np.dtype:
        """The precision ``var``'s gradient is computed in: its dtype or the output's, the
        narrower — or float32 where the forward pass measurably rounds like it (a float32
        cast inside a layer that takes and returns float64)."""
        dtype = self.precision.compute_dtype(var)
        rounds = self.eps * self.rounding_ratio(var)
        if dtype.itemsize > 4 and rounds >= FLOAT32_ROUNDING:
            return np.dtype(np.float32)
        return dtype

    def lands_on(self, var: Variable) -> np.dtype | None:
        """The narrower dtype ``var``'s steps must land on: float32 where the forward pass
        rounds like it (a cast inside rounds each moved input to float32, and a step
        that is no float32 step moves it by a different amount)."""
        computes = self.compute_dtype(var)
        return computes if computes.itemsize < np.dtype(var.dtype).itemsize else None

    def tolerance(self, var: Variable) -> Tolerance:
        """The tolerance of ``var``'s elements: by the precision the layer computes in (and
        :data:`~gradcheck.accuracy.NARROW_RTOL` where the numerical side cannot compute
        in anything wider: a float32 buffer, a cast to float32 inside), and each
        element's measured rounding."""
        opts = self.options
        rtol = opts.rtol
        narrow = (
            self.numerics.real_dtype.itemsize < 8
            or self.eps * self.rounding_ratio(var) >= FLOAT32_ROUNDING
        )
        if rtol is None and narrow:
            rtol = NARROW_RTOL * (STRICT_FACTOR if opts.strict else 1.0)
        return default_tolerance(
            self.compute_dtype(var),
            rtol=rtol,
            atol=opts.atol,
            strict=opts.strict,
            rounding=self.precision.rounding.get(var.name, 0.0),
            resolution=self.resolution(var),
        )
