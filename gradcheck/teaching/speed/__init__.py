"""The teaching comparison: why backpropagation, and what a numerical check costs.

For the chapter's two-layer net (``784 -> 50 -> 10``, a batch of 100) and a sweep of
hidden sizes, :func:`compare_speed` times one full gradient of every parameter by

* the textbook's loop, :func:`reference_layers.functions.numerical_gradient` (two forward
  passes per element, fixed step ``h = 1e-4``), exactly as ``TwoLayerNet.numerical_gradient``
  calls it;
* gradcheck's engine, :func:`gradcheck.numerical_gradient` with ``method="central"``
  (four forward passes per element: the extra two buy an error estimate and kink detection);
* backpropagation, ``net.gradient(x, t)`` (one forward and one backward pass);
* the whole check, :func:`gradcheck.check` in full mode, and in fast mode when the library
  really has one (a mode that needs fewer forward passes than there are elements);

and measures how far each numerical gradient is from the backprop one. The cost of a
numerical gradient grows with the number of parameters *times* the cost of a forward pass,
which itself grows with the number of parameters: quadratic, against linear for backprop.

``quick=True`` times a sample of elements for the numerical methods and scales by
``n / k``; every such number is flagged ``extrapolated`` so a face can say so.

This package measures and returns data; it never prints. ``progress`` callbacks let a face
show where a long run is.

One module a step: :mod:`.sweep` (the sizes, :func:`compare_speed`),
:mod:`.methods` (each method timed), :mod:`.timing` (sampling and extrapolation),
:mod:`.training` (:func:`train_digits`), :mod:`.machine` (BLAS threads, machine facts) and
:mod:`.results` (the dataclasses the faces read).
"""

# _engine, _textbook and _sample_plan are measuring steps, not public: they are here for
# the tests that drive them one at a time.
from gradcheck.teaching.speed.methods import _engine as _engine
from gradcheck.teaching.speed.methods import _textbook as _textbook
from gradcheck.teaching.speed.results import (
    TEXTBOOK_HIDDEN,
    FastModeSupport,
    SizeResult,
    SpeedComparison,
    SpeedConfig,
    Timing,
)
from gradcheck.teaching.speed.sweep import compare_speed, fast_mode_support, synthetic_mnist
from gradcheck.teaching.speed.timing import _sample_plan as _sample_plan
from gradcheck.teaching.speed.training import TrainingConfig, TrainingResult, train_digits

__all__ = [
    "TEXTBOOK_HIDDEN",
    "FastModeSupport",
    "SizeResult",
    "SpeedComparison",
    "SpeedConfig",
    "Timing",
    "TrainingConfig",
    "TrainingResult",
    "compare_speed",
    "fast_mode_support",
    "synthetic_mnist",
    "train_digits",
]
