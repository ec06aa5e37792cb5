"""Specification of gradcheck.strategies: what every draw guarantees, and bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

import reference_layers
from gradcheck.strategies import (
    REFERENCE_NAMES,
    affine_shapes,
    conv_shapes,
    indices,
    labels,
    one_hot,
    pooling_shapes,
    reference_cases,
    well_conditioned_arrays,
)

FLOAT_DTYPES = [np.float64, np.float32, np.float16]


def _kinks_and_margins() -> st.SearchStrategy[tuple[tuple[float, ...], float]]:
    kinks = st.lists(st.floats(-5, 5, allow_subnormal=False), max_size=3).map(tuple)
    return st.tuples(kinks, st.sampled_from([1e-3, 0.05, 0.3]))


# --------------------------------------------------------------------------- values


@given(
    st.sampled_from(FLOAT_DTYPES),
    _kinks_and_margins(),
    st.sampled_from([0.0, 1e-3, 0.5]),
    st.data(),
)
def test_values_are_never_near_a_kink(dtype, kinks_margin, min_magnitude, data):
    kinks, margin = kinks_margin
    x = data.draw(
        well_conditioned_arrays(
            shape=(4, 3),
            dtype=dtype,
            kinks=kinks,
            margin=margin,
            min_magnitude=min_magnitude,
            max_magnitude=10.0,
        )
    )
    wide = x.astype(np.float64)  # what the check sees: no rounding can move a value
    for kink in kinks:
        assert np.all(np.abs(wide - kink) >= margin)
    assert np.all((np.abs(wide) >= min_magnitude) & (np.abs(wide) <= 10.0))


@given(st.sampled_from(FLOAT_DTYPES), st.data())
def test_values_are_finite_normal_and_of_the_dtype(dtype, data):
    x = data.draw(well_conditioned_arrays(shape=(3, 5), dtype=dtype, min_magnitude=0.0))
    info = np.finfo(dtype)
    assert x.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(x))
    assert np.all((x == 0) | (np.abs(x) >= info.tiny))


@given(_kinks_and_margins(), st.data())
def test_float32_values_are_exact_and_keep_the_margin(kinks_margin, data):
    kinks, margin = kinks_margin
    x = data.draw(
        well_conditioned_arrays(
            shape=6, dtype=np.float32, kinks=kinks, margin=margin, max_magnitude=3.0
        )
    )
    assert x.dtype == np.float32
    wide = x.astype(np.float64)
    np.testing.assert_array_equal(wide.astype(np.float32), x)
    for kink in kinks:
        assert np.all(np.abs(wide - kink) >= margin)


def test_a_margin_that_rounds_into_the_kink_at_float32_is_still_kept():
    # 0.1 is not a float32: the nearest one is below it, inside the margin; the
    # strategy's bound rounds up instead.
    strategy = well_conditioned_arrays(
        shape=50, dtype=np.float32, kinks=(0.0,), margin=0.1, max_magnitude=0.2
    )

    @given(strategy)
    def check(x):
        assert np.all(np.abs(x.astype(np.float64)) >= 0.1)

    check()


@given(well_conditioned_arrays(shape=st.just((2, 2)), kinks=(), min_magnitude=0.0))
def test_shape_may_be_a_strategy(x):
    assert x.shape == (2, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": (2, -1)}, "shape"),
        ({"shape": "3"}, "shape"),
        ({"shape": 3, "dtype": np.int32}, "dtype"),
        ({"shape": 3, "dtype": "complex128"}, "dtype"),
        ({"shape": 3, "margin": 0}, "margin"),
        ({"shape": 3, "max_magnitude": math.inf}, "max_magnitude"),
        ({"shape": 3, "max_magnitude": 1e39, "dtype": np.float32}, "largest"),
        ({"shape": 3, "min_magnitude": 2.0, "max_magnitude": 1.0}, "min_magnitude"),
        ({"shape": 3, "min_magnitude": 1e-310}, "subnormal"),
        ({"shape": 3, "kinks": 0.0}, "kinks"),
        ({"shape": 3, "kinks": (math.nan,)}, "kinks"),
        ({"shape": 3, "kinks": (0.0,), "margin": 2.0, "max_magnitude": 1.0}, "no float64 value"),
    ],
)
def test_bad_value_arguments_say_what_to_change(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        well_conditioned_arrays(**kwargs)


# --------------------------------------------------------------------------- shapes


@given(affine_shapes(max_input_dims=3))
def test_affine_shapes_fit(shapes):
    x_shape, W_shape, b_shape = shapes
    assert x_shape[0] >= 1 and len(x_shape) >= 2
    assert (math.prod(x_shape[1:]), b_shape[0]) == W_shape


@given(affine_shapes())
def test_affine_shapes_run_through_affine(shapes):
    layer = reference_layers.Affine(np.ones(shapes.W), np.ones(shapes.b))
    assert layer.forward(np.ones(shapes.x)).shape == (shapes.x[0], shapes.b[0])


def test_affine_shapes_cover_a_single_sample_and_image_inputs():
    from hypothesis import find

    assert find(affine_shapes(), lambda s: s.x[0] == 1).x[0] == 1
    assert len(find(affine_shapes(), lambda s: len(s.x) > 2).x) == 3


@given(conv_shapes(max_kernel=4, max_stride=3, max_pad=2))
def test_conv_shapes_fit_and_the_output_is_never_empty(shapes):
    assert min(shapes.out) >= 1
    assert shapes.W[1] == shapes.x[1] and shapes.b == (shapes.W[0],)
    layer = reference_layers.Convolution(
        np.ones(shapes.W), np.ones(shapes.b), stride=shapes.stride, pad=shapes.pad
    )
    assert layer.forward(np.ones(shapes.x)).shape == shapes.out


@given(pooling_shapes(max_pad=1))
def test_pooling_shapes_fit_and_the_output_is_never_empty(shapes):
    assert min(shapes.out) >= 1
    layer = reference_layers.Pooling(
        shapes.pool_h, shapes.pool_w, stride=shapes.stride, pad=shapes.pad
    )
    assert layer.forward(np.ones(shapes.x)).shape == shapes.out


@pytest.mark.parametrize("make", [affine_shapes, conv_shapes, pooling_shapes])
@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_shape_bounds_are_rejected(make, bad):
    with pytest.raises(InvalidArgument, match="max_batch"):
        make(max_batch=bad)


# --------------------------------------------------------------------------- targets


@given(st.none() | st.integers(1, 5), st.integers(1, 6), st.data())
def test_labels_are_in_range_and_shaped_by_batch(batch, classes, data):
    t = data.draw(labels(batch, classes))
    assert t.shape == (() if batch is None else (batch,))
    assert np.issubdtype(t.dtype, np.integer)
    assert np.all((t >= 0) & (t < classes))


@given(st.none() | st.integers(1, 5), st.integers(1, 6), st.data())
def test_one_hot_rows_have_a_single_one(batch, classes, data):
    t = data.draw(one_hot(batch, classes, dtype=np.float32))
    assert t.shape == ((classes,) if batch is None else (batch, classes))
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.sum(axis=-1), 1)
    assert set(np.unique(t)) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((0, 3), {}, "batch_size"),
        ((2, 0), {}, "classes"),
        ((2, 3), {"dtype": np.float64}, "integer dtype"),
    ],
)
def test_bad_label_arguments_are_rejected(args, kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        labels(*args, **kwargs)


@given(
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), st.integers(1, 8), st.data()
)
def test_indices_are_in_range_and_repeat_an_index(shape, high, data):
    idx = data.draw(indices(shape, high))
    assert idx.shape == shape and np.issubdtype(idx.dtype, np.integer)
    assert np.all((idx >= 0) & (idx < high))
    if idx.size >= 2:
        assert len(np.unique(idx)) < idx.size


@given(st.data())
def test_indices_catch_the_embedding_that_drops_repeats(data):
    idx = data.draw(indices((2, 3), high=4))
    dout = np.ones((*idx.shape, 2))
    right, dropped = np.zeros((4, 2)), np.zeros((4, 2))
    np.add.at(right, idx, dout)
    dropped[idx] += dout
    assert not np.array_equal(right, dropped)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"high": 0}, "high"), ({"high": 3, "dtype": np.float32}, "integer")]
)
def test_bad_index_arguments_are_rejected(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        indices((2, 2), **kwargs)


# --------------------------------------------------------------------------- reference cases


def test_reference_cases_cover_every_reference_layer():
    assert set(REFERENCE_NAMES) == set(reference_layers.examples())


@given(reference_cases())
def test_reference_cases_apply_the_dtype_to_inputs_and_parameters(case):
    floats = [x for x in case.inputs if np.issubdtype(np.asarray(x).dtype, np.floating)]
    params = [v for v in vars(case.layer).values() if isinstance(v, np.ndarray)]
    params += list(getattr(case.layer, "params", {}).values())
    assert floats
    assert all(np.asarray(a).dtype == case.dtype for a in floats + params if a.dtype.kind == "f")


@given(reference_cases(names=["Relu", "LeakyRelu"], dtypes=[np.float32]))
def test_reference_relu_inputs_keep_off_the_kink(case):
    assert np.all(np.abs(case.inputs[0]) >= 0.05)


@given(reference_cases(names=["Pooling"]))
def test_reference_pooling_inputs_have_no_ties(case):
    (x,) = case.inputs
    assert np.unique(x).size == x.size


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ["Affine", "Nope"]}, "Nope"),
        ({"names": "Affine"}, "sequence"),
        ({"names": []}, "non-empty"),
        ({"dtypes": []}, "non-empty"),
        ({"dtypes": [np.int64]}, "dtype"),
    ],
)
def test_bad_reference_case_arguments_are_rejected(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        reference_cases(**kwargs)


def test_profiles_are_registered_on_import():
    from hypothesis import settings

    assert settings.get_profile("gradcheck").deadline is None
    assert settings.get_profile("gradcheck-ci").max_examples < (
        settings.get_profile("gradcheck").max_examples
    )


def test_one_name_given_as_a_string_is_refused_with_the_fix() -> None:
    from hypothesis.errors import InvalidArgument

    from gradcheck.strategies import reference_cases

    with pytest.raises(InvalidArgument, match=r"not one string: names=\['Affine'\]"):
        reference_cases(names="Affine")
