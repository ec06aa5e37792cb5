"""Properties of the verdict, checked on random layers (tests/mutants.py).

* every random correct layer passes, and every detectable mutant fails;
* nothing the user owns changes, whether the check passes, fails or is interrupted by an
  exception from the layer at a random call — read-only arrays included;
* the same seed gives the same report, and other seeds the same verdict.

The budgets here are small (CI); ``benchmarks/bench_verdicts.py`` runs thousands of cases
and reports the measured false-alarm and miss rates.
"""

from __future__ import annotations

import contextlib
import copy
import json
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mutants import KINDS, Case, Chain, correct_case, mutant_case
from zoo import BROKEN

import gradcheck
import reference_layers
from reference_layers import Affine, LayerNorm, Relu

seeds = st.integers(min_value=0, max_value=2**32 - 1)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _verdict(case: Case) -> bool | None:
    """True/False for passed/failed, None when the checker refused (CheckError)."""
    try:
        return gradcheck.check(case.layer, *case.inputs).passed
    except gradcheck.CheckError:
        return None


def _explain(case: Case) -> str:
    try:
        return f"{case}\n{gradcheck.check(case.layer, *case.inputs)}"
    except gradcheck.CheckError as error:
        return f"{case}\nCheckError: {error}"


# -- verdicts ---------------------------------------------------------------------------


@FAST
@given(seed=seeds, near_kink=st.booleans())
def test_random_correct_float64_layer_passes(seed: int, near_kink: bool) -> None:
    case = correct_case(np.random.default_rng(seed), dtype=np.float64, near_kink=near_kink)
    assert _verdict(case) is True, _explain(case)


@FAST
@given(seed=seeds, near_kink=st.booleans())
def test_random_correct_float32_layer_passes(seed: int, near_kink: bool) -> None:
    case = correct_case(np.random.default_rng(seed), dtype=np.float32, near_kink=near_kink)
    assert _verdict(case) is True, _explain(case)


def test_float32_layernorm_of_two_features_passes() -> None:
    """A gradient tiny next to the terms it is computed from, in float32.

    With two features the normalised output is ±1 whatever x, so dx ≈ 2.6e-6 comes only
    from eps; float32 computes it from terms of size ~1, with a rounding error of ~4e-8
    (1.6 % of it), which no 1e-4 relative tolerance covers. The checker measures that
    rounding by running the same backward in float64.
    """
    layer = LayerNorm(
        np.array([1.086014, 1.3541656], np.float32), np.array([0.7857267, -0.46498144], np.float32)
    )
    x = np.array([[-1.7263578, -3.4157445]], np.float32)
    assert gradcheck.check(layer, x).passed


class AffineRelu:
    """A composite layer, Affine then ReLU, as a user writes one."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.affine = Affine(W, b)
        self.relu = Relu()

    def forward(self, x: np.ndarray) -> Any:
        return self.relu.forward(self.affine.forward(x))

    def backward(self, dout: np.ndarray) -> Any:
        return self.affine.backward(self.relu.backward(dout))


def _zero_sample() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4))
    x[0] = 0.0  # a zero-padded sample: with zero bias, every ReLU unit of it sits at 0
    return rng.standard_normal((4, 3)), x


def test_composite_relu_at_a_zero_sample_passes_after_looking_nearby() -> None:
    # Where several kinks meet, a valid subgradient can lie outside both one-sided
    # derivatives; the check looks at nearby points away from the kinks and says so.
    W, x = _zero_sample()
    report = gradcheck.check(AffineRelu(W, np.zeros(3)), x)
    assert report.passed, str(report)
    assert any(d.kind == "kinks-meet" for d in report.diagnostics)
    assert report.variable("x").kinks >= 1


def test_composite_relu_wrong_away_from_the_kinks_fails_at_a_zero_sample() -> None:
    class WrongAffineRelu(AffineRelu):
        def backward(self, dout: np.ndarray) -> Any:
            return 1.01 * super().backward(dout)

    W, x = _zero_sample()
    report = gradcheck.check(WrongAffineRelu(W, np.zeros(3)), x)
    assert not report.passed
    assert report.variable("x").mismatches > 0


@FAST
@given(seed=seeds, kind=st.sampled_from(KINDS), dtype=st.sampled_from([np.float64, np.float32]))
def test_random_mutant_fails(seed: int, kind: str, dtype: Any) -> None:
    case = mutant_case(np.random.default_rng(seed), kind=kind, dtype=dtype)
    assume(case is not None)
    assert case is not None
    assert _verdict(case) is not True, _explain(case)


# -- nothing changed, ever ----------------------------------------------------------------


class TrippedError(Exception):
    """Raised by a layer on its k-th call."""


class Tripwire:
    """A call counter shared by every copy of a layer (deepcopy returns it as is)."""

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.calls = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> Tripwire:
        return self

    def tick(self) -> None:
        self.calls += 1
        if self.calls == self.at:
            raise TrippedError(f"call {self.calls}")


class TrippingChain(Chain):
    """A chain whose forward and backward count their calls and raise on the k-th."""

    wire: Tripwire

    def forward(self, *inputs: Any) -> Any:
        self.wire.tick()
        return super().forward(*inputs)

    def backward(self, dout: Any = 1.0) -> Any:
        self.wire.tick()
        return super().backward(dout)


def _snapshot(value: Any, path: str = "", seen: dict[int, str] | None = None) -> list[Any]:
    """Everything reachable from ``value``, bit for bit (arrays with strides and flags)."""
    seen = {} if seen is None else seen
    if isinstance(value, np.ndarray):
        return [
            (
                path,
                value.dtype.str,
                value.shape,
                value.strides,
                value.flags.writeable,
                value.tobytes(),
            )
        ]
    if isinstance(value, bool | int | float | str | type(None) | np.generic):
        return [(path, repr(value))]
    if isinstance(value, Tripwire):
        return []  # the test's own instrument
    if id(value) in seen:
        return [(path, "same as", seen[id(value)])]
    seen[id(value)] = path
    if isinstance(value, np.random.Generator):
        return [(path, repr(value.bit_generator.state))]
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in _snapshot(v, f"{path}[{k!r}]", seen)]
    if isinstance(value, list | tuple):
        return [e for i, v in enumerate(value) for e in _snapshot(v, f"{path}[{i}]", seen)]
    if hasattr(value, "__dict__"):
        return [(path, type(value).__qualname__)] + [
            e for k, v in vars(value).items() for e in _snapshot(v, f"{path}.{k}", seen)
        ]
    return [(path, repr(value))]


def _read_only(case: Case) -> None:
    for x in case.inputs:
        if isinstance(x, np.ndarray):
            x.flags.writeable = False
    for array in getattr(case.layer, "params", {}).values():
        array.flags.writeable = False


def _trip_at(case: Case, at: int | None) -> Tripwire:
    wire = Tripwire(at)
    case.layer.__class__ = TrippingChain
    case.layer.wire = wire
    return wire


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=seeds,
    mutant=st.booleans(),
    read_only=st.booleans(),
    trip=st.floats(min_value=0, max_value=1) | st.none(),
)
def test_nothing_the_user_owns_changes(
    seed: int, mutant: bool, read_only: bool, trip: float | None
) -> None:
    rng = np.random.default_rng(seed)
    case = mutant_case(rng) if mutant else correct_case(rng)
    assume(case is not None)
    assert case is not None
    if read_only:
        _read_only(case)
    at = None
    if trip is not None:  # raise at call k, k anywhere in a full check
        counting = copy.deepcopy(case)
        wire = _trip_at(counting, None)
        with contextlib.suppress(gradcheck.CheckError):
            gradcheck.check(counting.layer, *counting.inputs)
        at = 1 + int(trip * (wire.calls - 1))
    _trip_at(case, at)
    before = _snapshot((case.layer, case.inputs))
    global_state = pickle.dumps(np.random.get_state())  # noqa: NPY002 (the state users share)
    with contextlib.suppress(TrippedError, gradcheck.CheckError):
        gradcheck.check(case.layer, *case.inputs)
    assert _snapshot((case.layer, case.inputs)) == before
    assert pickle.dumps(np.random.get_state()) == global_state  # noqa: NPY002


@settings(max_examples=15, deadline=None)
@given(seed=seeds, at=st.integers(min_value=1, max_value=40))
def test_exception_at_any_call_propagates_unchanged(seed: int, at: int) -> None:
    case = correct_case(np.random.default_rng(seed), dtype=np.float64)
    wire = _trip_at(case, at)
    try:
        report = gradcheck.check(case.layer, *case.inputs)
    except TrippedError as error:
        assert str(error) == f"call {at}"
        assert any("called by gradcheck on a private copy" in n for n in error.__notes__)
        return
    # Not raised: the k-th call never came, or it was one of the probes that take any
    # failure as "no" (the complex step on complex input, the sparsity probe on NaN input,
    # a second backward): the check carries on, and the verdict must not suffer.
    assert wire.calls < at or report.passed, str(report)


# -- determinism --------------------------------------------------------------------------


def _without_timing(report: gradcheck.Report) -> str:
    data = report.to_dict()
    data.pop("seconds")
    return json.dumps(data, sort_keys=True, default=repr)


def _cases() -> dict[str, tuple[Any, tuple[Any, ...]]]:
    found = dict(reference_layers.examples(np.random.default_rng(0)))
    for name in ("sigmoid-wrong-sign", "affine-one-wrong-element", "mul-swapped-gradients"):
        found[name] = BROKEN[name](np.random.default_rng(0))
    for seed in (1, 2):
        case = correct_case(np.random.default_rng(seed), dtype=np.float64)
        found[f"chain-{seed}"] = (case.layer, case.inputs)
    return found


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_gives_the_same_report(name: str) -> None:
    layer, inputs = CASES[name]
    first = gradcheck.check(layer, *inputs, seed=7)
    second = gradcheck.check(copy.deepcopy(layer), *copy.deepcopy(inputs), seed=7)
    assert _without_timing(first) == _without_timing(second)


@pytest.mark.parametrize("name", sorted(CASES))
def test_other_seeds_give_the_same_verdict(name: str) -> None:
    layer, inputs = CASES[name]
    verdicts = {gradcheck.check(layer, *inputs, seed=seed).passed for seed in range(4)}
    assert len(verdicts) == 1


def test_a_bug_confined_to_a_zero_sample_is_still_found_by_looking_nearby() -> None:
    class WrongFirstSample(AffineRelu):
        def backward(self, dout: np.ndarray) -> Any:
            dx = super().backward(dout)
            dx[0] *= 1.5  # wrong for the first sample, which sits where the kinks meet
            return dx

    W, x = _zero_sample()
    report = gradcheck.check(WrongFirstSample(W, np.zeros(3)), x)
    assert not report.passed
    assert any(d.kind == "kinks-meet" and d.severity == "error" for d in report.diagnostics)
