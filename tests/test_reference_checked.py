"""Every reference layer passes gradcheck, through the plugin's fixture, on drawn inputs.

One sweep draws a layer, its parameters, its inputs and a dtype (float64 or float32) from
:func:`gradcheck.strategies.reference_cases`; the targeted tests below pin the cases the
sweep could reach only by luck.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from gradcheck.strategies import REFERENCE_NAMES, reference_cases
from reference_layers import Affine, Convolution, Pooling, Relu, SoftmaxWithLoss

DTYPES = [np.float64, np.float32]


@given(reference_cases())
def test_every_reference_layer_passes(gradcheck, case):
    gradcheck(case.layer, *case.inputs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_each_reference_layer_passes_in_each_dtype(gradcheck, name, dtype):
    # A few examples per layer and dtype (an eighth of the profile's), so that no layer
    # is left to the luck of the sweep above.
    @settings(max_examples=max(2, settings().max_examples // 8))
    @given(reference_cases(names=[name], dtypes=[dtype]))
    def sweep(case):
        report = gradcheck(case.layer, *case.inputs)
        assert all(v.dtype == np.dtype(dtype).name for v in report.variables)

    sweep()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_affine_flattens_image_batches(gradcheck, rng, dtype):
    x = rng.standard_normal((2, 3, 2, 2)).astype(dtype)
    layer = Affine(rng.standard_normal((12, 4)).astype(dtype), np.zeros(4, dtype))
    gradcheck(layer, x)


def test_affine_single_sample_batch(gradcheck, rng):
    gradcheck(
        Affine(rng.standard_normal((4, 3)), rng.standard_normal(3)), rng.standard_normal((1, 4))
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_with_loss_single_sample(gradcheck, rng, dtype):
    x = rng.standard_normal(4).astype(dtype)
    gradcheck(SoftmaxWithLoss(), x, np.array(2))
    gradcheck(SoftmaxWithLoss(), x, np.eye(4, dtype=dtype)[1])


def test_strided_padded_convolution(gradcheck, rng):
    layer = Convolution(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2), stride=2, pad=1)
    gradcheck(layer, rng.standard_normal((2, 3, 5, 5)))


def test_overlapping_pooling_windows(gradcheck, rng):
    x = rng.permutation(np.linspace(-2, 2, 2 * 2 * 5 * 5)).reshape(2, 2, 5, 5)
    gradcheck(Pooling(3, 3, stride=1), x)


@pytest.mark.gradcheck(method="richardson")
def test_relu_by_richardson_extrapolation(gradcheck, rng):
    x = rng.uniform(0.1, 2, (3, 4)) * rng.choice([-1, 1], (3, 4))
    assert gradcheck(Relu(), x).variables[0].method.startswith("richardson")
