"""The catalogue of layer families (tests/catalogue.py) is itself right.

Every family's correct backward is checked against an independent finite difference
written here (not gradcheck), in float64: central differences where the layer is smooth,
and, at a kink (ELU at 0, a ReLU bias at an all-zero sample), the one-sided derivatives,
between which a valid gradient must lie. Every named bug must give a detectable mutant,
and the bug must be the only difference from the correct layer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from catalogue import FAMILIES, Gelu, TimeRNN, family_case, family_mutant
from mutants import gradients

from gradcheck.analytic.run import draw_dout
from gradcheck.conventions.randomness import seeded_global_state

SEEDS = range(3)


def one_sided(f: Callable[[np.ndarray], float], x: np.ndarray, step: float | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left, right and central differences of the scalar ``f`` at ``x``, per element.

    The step is ``step`` if given, else ``1e-5·max(1, |x|)``; each difference divides by
    the step actually taken (rounding can change it).
    """
    x = np.array(x, dtype=np.float64)
    left, right, central = (np.empty_like(x) for _ in range(3))
    at_x = f(x)
    for idx in np.ndindex(x.shape):
        h = step if step is not None else 1e-5 * max(1.0, abs(x[idx]))
        plus, minus = x.copy(), x.copy()
        plus[idx] += h
        minus[idx] -= h
        f_plus, f_minus = f(plus), f(minus)
        right[idx] = (f_plus - at_x) / (plus[idx] - x[idx])
        left[idx] = (at_x - f_minus) / (x[idx] - minus[idx])
        central[idx] = (f_plus - f_minus) / (plus[idx] - minus[idx])
    return left, right, central


def _assert_matches(analytic: np.ndarray, f: Callable[[np.ndarray], float], x: np.ndarray,
                    step: float | None, what: str) -> int:
    """Assert ``analytic`` is the derivative of ``f`` at ``x``; return how many kinks."""
    left, right, central = one_sided(f, x, step)
    # One-sided differences are accurate to O(h) ≈ 1e-5; a kink jumps by O(1).
    kink = np.abs(right - left) > 1e-3 * (1 + np.abs(central))
    smooth = ~kink
    np.testing.assert_allclose(analytic[smooth], central[smooth], rtol=1e-6, atol=1e-8,
                               err_msg=what)
    low, high = np.minimum(left, right), np.maximum(left, right)
    assert np.all((analytic[kink] >= low[kink] - 1e-6) & (analytic[kink] <= high[kink] + 1e-6)), (
        f"{what}: a value outside the one-sided derivatives at a kink")
    return int(kink.sum())


def _checkable_point(family: str, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """Where a finite difference can check the family's formula, if not at ``inputs``.

    * ``zero-sample-relu``: at an all-zero sample every ReLU unit of the sample sits at
      its kink at once, and the mask ``z > 0`` gives a value that need not lie between
      the one-sided derivatives; the formula is the same a little away (the zero samples
      moved by 1e-2), and the zero rows of ``dx`` have their own test.
    * ``offset-normalisation``: a difference quotient at 1e5 loses 11 of its 16 digits
      to the offset; both normalisations are invariant to the shift, so the gradient is
      the same at ``x - 1e5`` (and backward agrees at both points, in its own test).
    """
    if family == "offset-normalisation":
        return (inputs[0] - 1e5,)
    if family != "zero-sample-relu":
        return inputs
    x = inputs[0].copy()
    zero = ~x.any(axis=1)
    x[zero] = 1e-2 * np.random.default_rng(0).standard_normal((int(zero.sum()), x.shape[1]))
    return (x,)


# Steps other than 1e-5·max(1, |x|). An Affine of a feature ~3e6 has a loss ~1e6, whose
# rounding over a step of 1e-5 is ~1e-5 of the derivative; it is linear, so a step of 1
# is exact.
STEPS = {"unnormalised-feature": 1.0}


def _loss(layer: Any, inputs: tuple[Any, ...], dout: Any) -> Callable[..., float]:
    """``L = sum(dout · forward(*inputs))``, with the global ``np.random`` state the checker
    sets for seed 0 before every forward (the textbook Dropout draws its mask from it)."""

    def loss(*args: Any) -> float:
        state = np.random.get_state()  # noqa: NPY002
        np.random.set_state(seeded_global_state(0))  # noqa: NPY002
        try:
            return float(np.sum(dout * layer.forward(*args)))
        finally:
            np.random.set_state(state)  # noqa: NPY002

    return loss


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_backward_matches_finite_differences(family: str, seed: int) -> None:
    case = family_case(np.random.default_rng(seed), family, dtype=np.float64)
    layer, inputs = copy.deepcopy(case.layer), _checkable_point(family, case.inputs)
    if isinstance(layer, TimeRNN):
        layer.buffer = None  # float32 buffers only round: see the test below
    analytic = gradients(layer, inputs)
    assert analytic, "the layer reports no gradient at all"
    dout = draw_dout(np.asarray(layer.forward(*inputs)), 0)
    loss = _loss(layer, inputs, dout)
    step = STEPS.get(family)
    kinks = 0
    for key, expected in analytic.items():
        if key.startswith("input"):
            i = int(key.removeprefix("input"))

            def at_input(v: np.ndarray, i: int = i) -> float:
                return loss(*inputs[:i], v, *inputs[i + 1 :])

            kinks += _assert_matches(expected, at_input, inputs[i], step, key)
        else:
            name = key.removeprefix("d")
            original = getattr(layer, name)

            def at_parameter(v: np.ndarray, name: str = name) -> float:
                setattr(layer, name, v)
                return loss(*inputs)

            kinks += _assert_matches(expected, at_parameter, original, step, key)
            setattr(layer, name, original)
    assert kinks == 0 or family == "elu", "a kink where the family has none"


PARAMETERS = {
    "embedding": {"W"}, "conv-stride-pad": {"W", "b"}, "avg-pool": set(),
    "rnn": {"Wx", "Wh", "b"}, "rnn-float32-buffers": {"Wx", "Wh", "b"}, "attention": set(),
    "gelu": set(), "swish": set(), "elu": set(), "l2-decay": {"W", "b"},
    "shared-affine": {"W", "b"}, "unnormalised-feature": {"W", "b"},
    "offset-normalisation": {"gamma", "beta"}, "mean-loss-inplace": set(),
    "textbook-dropout": set(), "zero-sample-relu": {"W", "b"},
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_finite_difference_test_sees_every_float_input_and_parameter(family: str) -> None:
    case = family_case(np.random.default_rng(0), family, dtype=np.float64)
    floats = {f"input{i}" for i, x in enumerate(case.inputs)
              if isinstance(x, np.ndarray) and x.dtype.kind == "f"}
    assert set(gradients(case.layer, case.inputs)) == floats | {
        "d" + p for p in PARAMETERS[family]}


def test_float32_buffers_round_the_float64_computation_and_nothing_else() -> None:
    case = family_case(np.random.default_rng(1), "rnn-float32-buffers")
    wide = copy.deepcopy(case.layer)
    wide.buffer = None
    narrow = case.layer.forward(*case.inputs)
    assert narrow.dtype == np.float32 and case.inputs[0].dtype == np.float64
    np.testing.assert_array_equal(narrow, wide.forward(*case.inputs).astype(np.float32))


def test_offset_normalisations_give_the_same_gradients_with_and_without_the_offset() -> None:
    for seed in SEEDS:
        case = family_case(np.random.default_rng(seed), "offset-normalisation", dtype=np.float64)
        offset = gradients(case.layer, case.inputs)
        plain = gradients(case.layer, _checkable_point("offset-normalisation", case.inputs))
        for key, value in plain.items():
            np.testing.assert_allclose(offset[key], value, rtol=1e-6, atol=1e-9, err_msg=key)


def test_an_all_zero_sample_gets_the_masks_gradient_zero() -> None:
    case = family_case(np.random.default_rng(0), "zero-sample-relu", dtype=np.float64)
    (x,) = case.inputs
    zero = ~x.any(axis=1)
    assert zero.any() and not zero.all()
    dx = gradients(case.layer, case.inputs)["input0"]
    assert np.all(dx[zero] == 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_cases_come_in_the_dtype_asked_for(family: str, dtype: Any) -> None:
    case = family_case(np.random.default_rng(5), family, dtype=dtype)
    wanted = np.float64 if family == "rnn-float32-buffers" else dtype
    assert case.dtype == wanted
    arrays = [x for x in case.inputs if isinstance(x, np.ndarray) and x.dtype.kind == "f"]
    arrays += [v for v in vars(case.layer).values()
               if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    assert arrays and {a.dtype for a in arrays} == {np.dtype(wanted)}


SUB_THRESHOLD = {("gelu", "erf-derivative")}
BUGS = [(f, b) for f, family in FAMILIES.items() for b in family.bugs
        if (f, b) not in SUB_THRESHOLD]


@pytest.mark.parametrize(("family", "bug"), BUGS)
def test_every_bug_gives_a_detectable_mutant_that_differs_only_by_its_bug(
    family: str, bug: str
) -> None:
    mutant = family_mutant(np.random.default_rng(0), family, bug=bug)
    assert mutant is not None and mutant.bug == bug and mutant.layer.bug == bug
    correct = copy.deepcopy(mutant.layer)
    correct.bug = None
    right, wrong = gradients(correct, mutant.inputs), gradients(mutant.layer, mutant.inputs)
    assert right.keys() == wrong.keys()
    assert any(not np.allclose(right[k], wrong[k], rtol=0.02, atol=0) for k in right)


def test_gelus_erf_derivative_is_off_by_less_than_a_detectable_margin() -> None:
    """The numpy-ml bug is real but small (≤ 8.7e-4): detectable at 2 % only where every
    gradient element is about 0, so the benchmark almost never counts it."""
    x = np.linspace(-6, 6, 2001)
    right, wrong = Gelu(), Gelu(bug="erf-derivative")
    gap = np.abs(right.derivative(x) - wrong.derivative(x))
    assert 8e-4 < gap.max() < 8.7e-4
    assert family_mutant(np.random.default_rng(0), "gelu", bug="erf-derivative") is None


def test_unknown_family_or_bug_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown family"):
        family_case(np.random.default_rng(0), "lstm")
    with pytest.raises(ValueError, match="has no bug"):
        family_mutant(np.random.default_rng(0), "rnn", bug="sign")


def test_the_same_seed_gives_the_same_case() -> None:
    first = family_mutant(np.random.default_rng(3), "conv-stride-pad")
    again = family_mutant(np.random.default_rng(3), "conv-stride-pad")
    assert first is not None and again is not None and str(first) == str(again)
    for a, b in zip(first.inputs, again.inputs, strict=True):
        np.testing.assert_array_equal(a, b)
