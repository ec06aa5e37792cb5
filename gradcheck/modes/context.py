"""What the modes share within one check: working copies, analytic gradients, options.

The numerical side never runs on the user's objects: it runs on working copies
(:class:`~gradcheck.conventions.target.Instance`) whose forward passes are counted
(:class:`~gradcheck.engine.passes.Runners`), in float64 (or the layer's own narrow dtype
when it will not compute in float64) and, for the complex step, in complex128.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.analytic.precision import Precision
from gradcheck.analytic.run import AnalyticPass
from gradcheck.conventions.target import Instance, Target, Variable
from gradcheck.engine.executors import executor_for
from gradcheck.engine.gradient import NumericalGradient
from gradcheck.engine.passes import Runners
from gradcheck.engine.spec import engine
from gradcheck.options import CheckOptions
from gradcheck.report.records import Screening
from gradcheck.verdict.compare import Comparison, Tolerance, default_tolerance
from gradcheck.vocabulary import Diagnostic

__all__ = ["Context", "Numerics", "Outcome", "make_numerics"]


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


@dataclass
class Numerics:
    """The working copies the numerical side runs on, and in which dtype."""

    real: Runners
    real_dtype: np.dtype
    complex: Runners | None

    @property
    def passes(self) -> int:
        """Forward passes of the numerical side so far."""
        return self.real.passes + (self.complex.passes if self.complex else 0)


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
    return Numerics(real, real_dtype, complex_runners)


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

    def terms(self, var: Variable) -> NDArray | None:
        """The size of the terms each element of ``var``'s gradient sums, if measured."""
        return self.precision.terms.get(var.name)

    def budget_left(self) -> int:
        """Forward passes left under ``max_evaluations``."""
        return self.options.max_evaluations - self.numerics.passes

    def runners(self, method: str) -> Runners:
        """The working copies an engine runs on (complex ones for the complex step)."""
        if engine(method).arithmetic == "complex":
            assert self.numerics.complex is not None
            return self.numerics.complex
        return self.numerics.real

    def tolerance(self, var: Variable) -> Tolerance:
        """The tolerance of ``var``'s elements: by the precision the layer computes in, and
        each element's measured rounding."""
        opts = self.options
        return default_tolerance(
            self.precision.compute_dtype(var), rtol=opts.rtol, atol=opts.atol,
            strict=opts.strict, rounding=self.precision.rounding.get(var.name, 0.0),
            floor=self.precision.floor, flow=self.precision.small_flow,
        )
