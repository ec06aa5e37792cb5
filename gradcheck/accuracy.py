"""Every accuracy constant of the check, in one table, with what justifies it.

An error bar is a promise: ``|numerical − true| ≤ bar`` for all but fewer than one element
in ten thousand, in every family of layer (``benchmarks/bench_calibration.py`` measures
it). The constants below turn measured quantities (a truncation estimate, samples of the
rounding noise, the size of a gradient's terms) into bars and tolerances. Each says what
it multiplies and why that factor; the calibration benchmark is the measurement that keeps
them honest — change one, run it, and quote its table.

Nothing here is a tolerance a user would tune: those are the ``rtol``/``atol`` options.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ANALYTIC_ROUNDING",
    "COMPLEX_ROUNDING",
    "CONDITION_ROUNDING",
    "DEFAULT_RTOL",
    "FLOAT32_ROUNDING",
    "LINEARITY_ROUNDING",
    "LOSS_RESOLUTION",
    "LOSS_ROUNDING",
    "NARROW_RTOL",
    "NOISE_POOL_QUANTILE",
    "NOISE_SIGMAS",
    "REPRESENTATION_ROUNDING",
    "STRICT_FACTOR",
    "TRUNCATION_SAFETY",
    "WIDER_ROUNDING",
]

# -- tolerances ------------------------------------------------------------------------
#: Relative tolerance by the precision a gradient is computed in. float64: a correct
#: backward rounds far below 1e-5, and ×1.001 is a hundred times above it. float32
#: (ε ≈ 1.2e-7): the worst correct element of the reference layers, Affine 784→50,
#: Convolution 6→8 and BatchNorm over 100 samples used at most 3 % of 1e-4 (60 seeds).
DEFAULT_RTOL = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-4, np.dtype(np.float16): 1e-2}
#: The relative tolerance of a layer that computes in float32 whatever it is given (a
#: float32 buffer, a cast inside): the numerical side cannot compute it in float64
#: either, and resolves at best ε32^(4/5) ≈ 3e-6 of a gradient's terms, while a saturated
#: tanh's ``1 − y²`` from a float32 ``y`` leaves the analytic side 1e-4 off. ×1.01 is
#: still ten tolerances.
NARROW_RTOL = 1e-3
#: ``strict=True`` divides the relative tolerance by ten.
STRICT_FACTOR = 0.1
#: The absolute tolerance by default: an error that moves the loss by less than this many
#: units in the last place of its terms when the variable moves by its own spread
#: (``atol = LOSS_RESOLUTION · ε · Σ|dout ⊙ f| / spread``). Below it no forward pass in
#: the loss's precision can tell the difference, whatever the step; it is scaled by the
#: loss and the inputs, so gradients of 1e-12 and of 1e12 are judged alike, and it is
#: never set by the variable's other elements (a row of dW a million times smaller than
#: the rest is judged by its own size).
LOSS_RESOLUTION = 64.0
#: The analytic side's own rounding: this many unit roundoffs of the size of the terms
#: each gradient element sums (a few operations per term, and the sum), times how many
#: times larger than their spread the inputs are (inputs of 1000 ± 1 hold three digits
#: fewer of what any formula computes with).
ANALYTIC_ROUNDING = 16.0
#: Backward's own rounding: this many times how far the gradients of two random sign
#: flips of ``dout`` are from adding up to the gradient of their sum plus that of
#: ``dout = 0`` (the larger of two pairs): a sample of a sum of four roundings, for
#: rounding that may be larger.
LINEARITY_ROUNDING = 4.0
#: What rounding did to the gradient, measured as its difference from the same backward
#: in a wider precision, is allowed this many times over (the difference is one sample,
#: and the numerical value sits anywhere within its own bar), up to the loss resolution;
#: beyond that (and ``ANALYTIC_ROUNDING``'s bound) it is precision damage (a cancelling
#: ``E[x²] − E[x]²`` in float32).
WIDER_ROUNDING = 2.0
#: A float32 layer's rounding where a quantity crosses a kink or a tie: this many times
#: the change of its float64 gradient when every input moves by one float32 unit in the
#: last place.
CONDITION_ROUNDING = 16.0

# -- error bars ------------------------------------------------------------------------
#: A rounding error is within this many measured noise levels. The noise of ``f`` is
#: estimated from fourth differences; a central difference's noise has a standard
#: deviation of 0.7 σ/h, so 16 of them is over twenty standard deviations — margin for a
#: noise level measured from few samples.
NOISE_SIGMAS = 16.0
#: Rounding samples are pooled by this quantile of their ratio to each element's unit: a
#: lower quantile, so that elements whose stencil straddles a kink (their fourth
#: difference is the kink, not noise) cannot set the level unless they are most of them.
NOISE_POOL_QUANTILE = 0.25
#: A truncation estimate from two steps (``|D(2h) − D(h)| / 3``) is exact only in the
#: asymptotic regime; this factor covers the next term of the expansion.
TRUNCATION_SAFETY = 4.0
#: The complex step's rounding: this many unit roundoffs of the derivative's terms
#: (its own size and the terms it sums, times the forward pass's measured noise ratio).
#: Thirty-two left a complex-step value 32 times outside its bar beside an outlier of 1e4
#: in a BatchNorm (a gradient of 6e-5 off by 2e-16); the bar stays far below any
#: tolerance (1e-13 of the terms).
COMPLEX_ROUNDING = 1024.0
#: A real stencil differentiates the function as computed: at inputs off by their
#: rounding, through float32 casts and buffers. Its bar is at least this many unit
#: roundoffs of the gradient's size and terms, times the forward pass's measured noise
#: ratio (the effective precision of the computation).
REPRESENTATION_ROUNDING = 64.0
#: A forward pass whose measured noise is this large relative to its outputs (a float32
#: cast inside a float64 layer: 1e-7) computes in float32, and its gradients are judged
#: at float32's tolerance; offsets of up to 1e7 around a spread of 1 stay below it.
FLOAT32_ROUNDING = 1e-8
#: ... and the complex step's at least this many times the loss's noise per unit of the
#: element's scale: a
#: saturated softmax cancels terms of that size to nothing, and their rounding does not
#: cancel. Well below ``LOSS_RESOLUTION``, so the complex step resolves what matters.
LOSS_ROUNDING = 4.0
