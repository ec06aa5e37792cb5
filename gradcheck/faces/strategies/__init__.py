"""Hypothesis strategies for gradient checks: well-conditioned inputs, fitting shapes, cases.

In the manner of :mod:`hypothesis.extra.numpy`: keyword-only arguments, validated when the
strategy is made (an :class:`~hypothesis.errors.InvalidArgument` that says what to
change), short examples in every docstring.

* :func:`well_conditioned_arrays` (``arrays``) — finite, normal floats of bounded
  magnitude, kept a margin away from the points where a layer is not differentiable (ReLU
  at 0). Built from the allowed intervals directly, never by rejecting draws, and exact at
  float32.
* :func:`affine_shapes`, :func:`conv_shapes`, :func:`pooling_shapes` (``shapes``) — shapes
  that fit together (the output of a convolution is never empty).
* :func:`labels`, :func:`one_hot` (``targets``) — classification targets, batched or
  single-sample.
* :func:`indices` (``indices``) — integer index arrays, an Embedding's input, in which an
  index always repeats (the pattern ``dW[idx] += dout`` gets wrong).
* :func:`reference_cases` (``cases``, drawn by ``builders``) — a ready
  ``(name, layer, inputs, dtype)`` for every layer of :mod:`reference_layers`, so one
  ``@given`` test sweeps them all.

Settings profiles, registered when this package is imported:

``gradcheck``
    No deadline (a check runs many forward passes), 50 examples, the ``too_slow`` health
    check suppressed. ``settings.load_profile("gradcheck")``.
``gradcheck-ci``
    The same with 15 examples, derandomized and without the example database, so a CI run
    draws the same cases every time.

>>> from hypothesis import given
>>> @given(reference_cases())
... def test_reference_layers(gradcheck, case):     # with the pytest plugin's fixture
...     gradcheck(case.layer, *case.inputs)
"""

from hypothesis import HealthCheck, settings

from gradcheck.faces.strategies.arrays import well_conditioned_arrays
from gradcheck.faces.strategies.cases import REFERENCE_NAMES, ReferenceCase, reference_cases
from gradcheck.faces.strategies.indices import indices
from gradcheck.faces.strategies.shapes import (
    AffineShapes,
    ConvShapes,
    PoolingShapes,
    affine_shapes,
    conv_shapes,
    pooling_shapes,
)
from gradcheck.faces.strategies.targets import labels, one_hot

__all__ = [
    "REFERENCE_NAMES",
    "AffineShapes",
    "ConvShapes",
    "PoolingShapes",
    "ReferenceCase",
    "affine_shapes",
    "conv_shapes",
    "indices",
    "labels",
    "one_hot",
    "pooling_shapes",
    "reference_cases",
    "well_conditioned_arrays",
]

settings.register_profile(
    "gradcheck",
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "gradcheck-ci",
    settings.get_profile("gradcheck"),
    max_examples=15,
    derandomize=True,
    database=None,
)
