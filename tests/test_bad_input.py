"""The bad-input catalogue: what gradcheck says when it is handed something it cannot check.

Each row of :data:`REFUSED` is one mistake a user makes, the exception it must raise and a
regular expression its message must match. Every message is one line that names the
layer, the input (or gradient) at fault, and what to do. :data:`ACCEPTED` lists inputs that
look odd but are fine: they must be checked, pass, and come back untouched.

Decision on exceptions raised by the user's own ``forward``/``backward``: they propagate
*unchanged* (same type, same message, the user's traceback) with a PEP 678 note saying
which call raised and that gradcheck ran it on a private copy. Wrapping them in a
``CheckError`` would hide the type a user's test may expect and the line that failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck import CheckError
from reference_layers import (
    Affine,
    MeanSquaredError,
    MulLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    TwoLayerNet,
)

RNG_SEED = 0


def _x(shape: tuple[int, ...] = (3, 4)) -> np.ndarray:
    return np.random.default_rng(RNG_SEED).standard_normal(shape)


def _with(array: np.ndarray, index: tuple[int, ...], value: float) -> np.ndarray:
    out = array.copy()
    out[index] = value
    return out


# -- small layers, each with one defect ---------------------------------------------------


class Double:
    """A correct ``out = 2x`` layer; subclasses break one thing."""

    def forward(self, x: np.ndarray) -> Any:
        return 2 * x

    def backward(self, dout: np.ndarray) -> Any:
        return 2 * dout


class Log(Double):
    """``log(x)``: NaN and -Inf in forward's output for x <= 0."""

    def forward(self, x: np.ndarray) -> Any:
        self.x = x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    def backward(self, dout: np.ndarray) -> Any:
        with np.errstate(divide="ignore"):
            return dout / self.x


class NaNInBackward(Double):
    def backward(self, dout: np.ndarray) -> Any:
        return _with(2 * dout, (0, 1), np.nan)


class InfInBackward(Double):
    def backward(self, dout: np.ndarray) -> Any:
        return _with(2 * dout, (2, 3), np.inf)


class ForgetsReturn(Double):
    def backward(self, dout: np.ndarray) -> Any:
        _ = 2 * dout  # the bug under test: no return


class Transposes(Double):
    def backward(self, dout: np.ndarray) -> Any:
        return (2 * dout).T


class DropsColumn(Double):
    def backward(self, dout: np.ndarray) -> Any:
        return (2 * dout)[:, :2]


class IntegerGradient(Double):
    def backward(self, dout: np.ndarray) -> Any:
        return np.full(dout.shape, 2)


class MaskGradient(Double):
    def backward(self, dout: np.ndarray) -> Any:
        return dout > 0


class ComplexGradient(Double):
    def backward(self, dout: np.ndarray) -> Any:
        return (2 + 0j) * dout


class ListGradient(Double):
    def backward(self, dout: np.ndarray) -> Any:
        return list(2 * dout)


class ListOfGradientRows(Double):
    """One input, but backward returns a tuple of per-row gradients."""

    def backward(self, dout: np.ndarray) -> Any:
        return tuple(2 * dout)


class TwoGradientsForOneInput(Double):
    def backward(self, dout: np.ndarray) -> Any:
        return 2 * dout, dout


class SkipsFirstGradient(MulLayer):
    """Returns ``(None, dy)``: the gradient of x forgotten, not a constant."""

    def backward(self, dout: Any) -> Any:
        return None, dout * self.x


class ForwardReturnsList(Double):
    def forward(self, x: np.ndarray) -> Any:
        return list(2 * x)


class ForwardReturnsNone(Double):
    def forward(self, x: np.ndarray) -> Any:
        self.x = x


class ForwardReturnsIntegers(Double):
    def forward(self, x: np.ndarray) -> Any:
        return (x > 0).astype(np.int64)


class ForwardOnly:
    def forward(self, x: np.ndarray) -> Any:
        return 2 * x


class GradientNeverSet:
    """``dW`` is initialised to None and backward forgets to set it."""

    def __init__(self) -> None:
        self.W = np.ones((4, 2))
        self.dW = None

    def forward(self, x: np.ndarray) -> Any:
        self.x = x
        return x @ self.W

    def backward(self, dout: np.ndarray) -> Any:
        return dout @ self.W.T


class ParamsWithoutGrads:
    """The book's ``params``/``grads`` dicts, with ``grads['W']`` never filled."""

    def __init__(self) -> None:
        self.params = {"W": np.ones((4, 2))}
        self.grads: dict[str, Any] = {}

    def forward(self, x: np.ndarray) -> Any:
        return x @ self.params["W"]

    def backward(self, dout: np.ndarray) -> Any:
        return dout @ self.params["W"].T


class ObjectParameter(Affine):
    pass


class BoomError(Exception):
    """What the raising layers raise."""


class RaisesInForward(Double):
    def forward(self, x: np.ndarray) -> Any:
        raise BoomError("forward exploded")


class RaisesInBackward(Double):
    def backward(self, dout: np.ndarray) -> Any:
        raise BoomError("backward exploded")


def square(x: np.ndarray) -> Any:
    return x**2


# -- the catalogue ---------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """One bad input: how to build the call, and what gradcheck must say."""

    make: Callable[[], tuple[Any, tuple[Any, ...]]]
    message: str
    error: type[Exception] = CheckError
    options: dict[str, Any] = field(default_factory=dict)


REFUSED: dict[str, Refused] = {
    # Inputs
    # Integer inputs are constants (indices, labels); with nothing else, nothing is checked.
    "integer-input-only": Refused(
        lambda: (Sigmoid(), (np.arange(12).reshape(3, 4),)),
        r"^Sigmoid: nothing to differentiate: input x is an integer array \(int64\), and "
        r"integer and boolean inputs \(indices, labels\) are never differentiated; pass "
        r"floats, e\.g\. x\.astype\(np\.float64\), to check its gradient\.$",
    ),
    "integer-parameter-with-gradient": Refused(
        lambda: (Affine(np.ones((4, 3), dtype=np.int64), np.zeros(3)), (_x((5, 4)),)),
        r"^Affine: parameter W is an integer array \(int64\) but backward sets dW; make it "
        r"float \(e\.g\. W\.astype\(np\.float64\)\)",
    ),
    "empty-input": Refused(
        lambda: (Sigmoid(), (np.zeros((0, 4)),)),
        r"^Sigmoid: input x is empty \(shape \(0, 4\)\); nothing to check — pass an array",
    ),
    "empty-parameter": Refused(
        lambda: (Affine(np.zeros((4, 0)), np.zeros(0)), (_x((5, 4)),)),
        r"^Affine: parameter W is empty; nothing to check\.$",
    ),
    "nan-in-input": Refused(
        lambda: (Sigmoid(), (_with(_x(), (1, 2), np.nan),)),
        r"^Sigmoid: input x contains NaN or Inf at \(1, 2\); .*finite",
    ),
    "inf-in-input": Refused(
        lambda: (Sigmoid(), (_with(_with(_x(), (0, 0), np.inf), (2, 1), -np.inf),)),
        r"^Sigmoid: input x contains NaN or Inf at \(0, 0\), \(2, 1\);",
    ),
    "nan-in-second-input": Refused(
        lambda: (MulLayer(), (_x(), _with(_x(), (0, 3), np.nan))),
        r"^MulLayer: input y contains NaN or Inf at \(0, 3\);",
    ),
    "nan-in-parameter": Refused(
        lambda: (Affine(_with(_x((4, 3)), (2, 1), np.nan), np.zeros(3)), (_x((5, 4)),)),
        r"^Affine\.forward produced NaN or Inf at .* of its output",
    ),
    "object-array-input": Refused(
        lambda: (Sigmoid(), (_x().astype(object),)),
        r"^Sigmoid: input x is an object array \(dtype=object\); pass a float array",
    ),
    "complex-input": Refused(
        lambda: (Sigmoid(), (_x() + 1j,)),
        r"^Sigmoid: input x is complex \(complex128\); gradcheck checks real gradients",
    ),
    "ragged-list-input": Refused(
        lambda: (Sigmoid(), ([[0.1, 0.2], [0.3]],)),
        r"^Sigmoid: input x is a ragged list \(rows of different lengths\); pass a rectangular",
    ),
    "too-many-inputs": Refused(
        lambda: (Sigmoid(), (_x(), _x())),
        r"^Sigmoid\.forward\(x\) cannot be called with the 2 input\(s\) given to check "
        r"\(too many positional arguments\); pass forward's arguments after the layer",
    ),
    "no-inputs": Refused(
        lambda: (Sigmoid(), ()),
        r"^Sigmoid\.forward\(x\) cannot be called with the 0 input\(s\) .*'x'",
    ),
    "unknown-forward-keyword": Refused(
        lambda: (Sigmoid(), (_x(),)),
        r"^Sigmoid\.forward\(x\) cannot be called .*unexpected keyword argument 'train'.*"
        r"forward_kwargs",
        options={"forward_kwargs": {"train": True}},
    ),
    # What forward returns
    "nan-and-inf-from-forward": Refused(
        lambda: (Log(), (np.array([[1.0, -1.0], [2.0, 0.0]]),)),
        r"^Log\.forward produced NaN or Inf at \(0, 1\), \(1, 1\) of its output at the point "
        r"being checked; check at inputs where the output is finite\.$",
    ),
    "forward-returns-list": Refused(
        lambda: (ForwardReturnsList(), (_x(),)),
        r"^ForwardReturnsList\.forward returned list; expected a numpy array or a number\.$",
    ),
    "forward-returns-none": Refused(
        lambda: (ForwardReturnsNone(), (_x(),)),
        r"^ForwardReturnsNone\.forward returned NoneType; expected a numpy array",
    ),
    "forward-returns-integers": Refused(
        lambda: (ForwardReturnsIntegers(), (_x(),)),
        r"^ForwardReturnsIntegers\.forward returned an array of dtype int64; expected floats",
    ),
    # What backward returns
    "nan-from-backward": Refused(
        lambda: (NaNInBackward(), (_x(),)),
        r"^NaNInBackward\.backward: the gradient of x contains NaN or Inf at \(0, 1\) although "
        r"forward is finite there; look for a division by zero",
    ),
    "inf-from-backward": Refused(
        lambda: (InfInBackward(), (_x(),)),
        r"^InfInBackward\.backward: the gradient of x contains NaN or Inf at \(2, 3\)",
    ),
    "backward-returns-none": Refused(
        lambda: (ForgetsReturn(), (_x(),)),
        r"^ForgetsReturn\.backward returned None; expected the gradient of x, an array of "
        r"shape \(3, 4\)\. Did you forget `return dx`\?$",
    ),
    "backward-wrong-shape-transposed": Refused(
        lambda: (Transposes(), (_x(),)),
        r"^Transposes\.backward: the gradient of x has shape \(4, 3\); "
        r"expected \(3, 4\), the shape of x \(transposed\?\)\.$",
    ),
    "backward-wrong-shape": Refused(
        lambda: (DropsColumn(), (_x(),)),
        r"^DropsColumn\.backward: the gradient of x has shape \(3, 2\); expected \(3, 4\)",
    ),
    "backward-integer-dtype": Refused(
        lambda: (IntegerGradient(), (_x(),)),
        r"^IntegerGradient\.backward: the gradient of x has dtype int64; expected a float "
        r"array like x \(float64\) — return floats",
    ),
    "backward-boolean-mask": Refused(
        lambda: (MaskGradient(), (_x(),)),
        r"^MaskGradient\.backward: the gradient of x has dtype bool; .*dout \* mask",
    ),
    "backward-complex-dtype": Refused(
        lambda: (ComplexGradient(), (_x(),)),
        r"^ComplexGradient\.backward: the gradient of x has dtype complex128; expected a float",
    ),
    "backward-returns-list": Refused(
        lambda: (ListGradient(), (_x(),)),
        r"^ListGradient\.backward returned a list; return an array, or a tuple \(dx, dy, \.\.\.\)",
    ),
    "backward-returns-too-many-gradients": Refused(
        lambda: (TwoGradientsForOneInput(), (_x(),)),
        r"^TwoGradientsForOneInput\.backward returned 2 gradients, but forward takes 1 "
        r"input\(s\) \(x\); expected at most one gradient per input, in order\.$",
    ),
    "backward-skips-a-gradient": Refused(
        lambda: (SkipsFirstGradient(), (_x(), _x())),
        r"^SkipsFirstGradient\.backward returned None for x but a gradient for y after it; "
        r"expected the gradient of x, an array of shape \(3, 4\)\. Inputs without a gradient "
        r"\(targets, labels\) must come last in forward's arguments\.$",
    ),
    "backward-returns-tuple-of-rows": Refused(
        lambda: (ListOfGradientRows(), (_x(),)),
        r"^ListOfGradientRows\.backward returned 3 gradients, but forward takes 1 input",
    ),
    # The layer's shape
    "no-backward-method": Refused(
        lambda: (ForwardOnly(), (_x(),)),
        r"^ForwardOnly has forward but no backward method",
    ),
    "parameter-gradient-stays-none": Refused(
        lambda: (GradientNeverSet(), (_x(),)),
        r"^GradientNeverSet: parameter W has no gradient after backward; expected backward "
        r"to set dW, an array of shape \(4, 2\)\.$",
    ),
    "params-dict-without-grads": Refused(
        lambda: (ParamsWithoutGrads(), (_x(),)),
        r"^ParamsWithoutGrads: params\['W'\] has no gradient after backward; expected "
        r"backward to set grads\['W'\]",
    ),
    "function-without-vjp": Refused(
        lambda: (square, (_x(),)),
        r"^square returned an array of shape \(3, 4\); a function checked on its own must "
        r"return \(loss, gradients\.\.\.\).* pass vjp=g .* or grad=g",
    ),
    "not-checkable-at-all": Refused(
        lambda: (42, (_x(),)),
        r"^cannot check a int: expected a layer with forward and backward",
    ),
    # Options
    "unknown-option": Refused(
        lambda: (Sigmoid(), (_x(),)),
        r"^unknown option 'rtoll'; known options: ",
        error=gradcheck.OptionError,
        options={"rtoll": 1e-3},
    ),
    "negative-tolerance": Refused(
        lambda: (Sigmoid(), (_x(),)),
        r"^invalid value for option 'rtol': expected a finite number >= 0, got -1",
        error=gradcheck.OptionError,
        options={"rtol": -1},
    ),
    "wrt-unknown-name": Refused(
        lambda: (Affine(_x((4, 3)), np.zeros(3)), (_x((5, 4)),)),
        r"^Affine: wrt names V, which Affine does not have; its inputs and parameters are: "
        r"W, b, x\.$",
        options={"wrt": ["V"]},
        error=gradcheck.UsageError,
    ),
    "nothing-selected": Refused(
        lambda: (Affine(_x((4, 3)), np.zeros(3)), (_x((5, 4)),)),
        r"^Affine: nothing to check: wrt=\['W', 'b'\] names only parameters, and "
        r"params=False leaves them out\.$",
        options={"wrt": ["W", "b"], "params": False},
        error=gradcheck.UsageError,
    ),
    # Too big to check in full (mode="full" asked for): an estimate, with the number of
    # forward passes. A loss (one output that every element feeds) cannot be coloured:
    # one pass per element. The default mode, auto, checks such a variable in fast mode.
    "huge-input": Refused(
        lambda: (MeanSquaredError(), (np.zeros((1500, 1500)), np.ones((1500, 1500)))),
        r"^MeanSquaredError: a full check needs about 9,000,001 forward passes "
        r"\(~[\d.]+ (µs|ms|s|min|h) at [\d.]+ (µs|ms|s) each\), over "
        r"max_evaluations=2,000,000\. mode='fast' needs about [\d,]+ .*"
        r"Or check fewer elements \(wrt=\.\.\., smaller inputs\), or raise max_evaluations\.$",
        options={"mode": "full"},
        error=gradcheck.UsageError,
    ),
    "over-a-small-budget": Refused(
        lambda: (MeanSquaredError(), (_x((5, 4)), _x((5, 4)))),
        r"^MeanSquaredError: a full check needs about 81 forward passes .*max_evaluations=50\.",
        options={"max_evaluations": 50, "mode": "full"},
        error=gradcheck.UsageError,
    ),
}


def test_a_huge_input_is_checked_in_fast_mode_by_default() -> None:
    y, t = np.zeros((1500, 1500)), np.ones((1500, 1500))
    report = gradcheck.check(MeanSquaredError(), y, t)
    assert report.passed
    assert report.variable("y").method.startswith("fast")
    assert report.evaluations < 100


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_input_is_refused_with_a_clear_message(name: str) -> None:
    row = REFUSED[name]
    layer, inputs = row.make()
    with pytest.raises(row.error) as caught:
        gradcheck.check(layer, *inputs, **row.options)
    message = str(caught.value)
    assert re.search(row.message, message), message
    assert "\n" not in message, "messages are one line"
    assert "np.int64(" not in message and "np.float64(" not in message, message


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusal_leaves_the_inputs_untouched(name: str) -> None:
    row = REFUSED[name]
    layer, inputs = row.make()
    before = [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in inputs]
    with pytest.raises(row.error):
        gradcheck.check(layer, *inputs, **row.options)
    for old, new in zip(before, inputs, strict=True):
        if isinstance(old, np.ndarray):
            assert old.dtype == new.dtype
            np.testing.assert_array_equal(old, new)


# -- exceptions from the user's code ----------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "call", "text"),
    [
        (RaisesInForward(), "RaisesInForward.forward", "forward exploded"),
        (RaisesInBackward(), "RaisesInBackward.backward", "backward exploded"),
    ],
    ids=["forward", "backward"],
)
def test_exception_from_the_layer_propagates_unchanged_with_a_note(
    layer: Any, call: str, text: str
) -> None:
    x = _x()
    saved = x.copy()
    with pytest.raises(BoomError) as caught:
        gradcheck.check(layer, x)
    assert str(caught.value) == text
    notes = getattr(caught.value, "__notes__", [])
    assert len(notes) == 1
    assert re.search(
        rf"^\(raised in {re.escape(call)}, called by gradcheck on a private copy; "
        r"the arrays you passed are unchanged\)$",
        notes[0],
    ), notes
    np.testing.assert_array_equal(x, saved)


# -- odd but fine -----------------------------------------------------------------------


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


def _read_only_affine() -> tuple[Any, tuple[Any, ...]]:
    return Affine(_read_only(_x((4, 3))), _read_only(np.ones(3))), (_read_only(_x((5, 4))),)


ACCEPTED: dict[str, Callable[[], tuple[Any, tuple[Any, ...]]]] = {
    "zero-d-array": lambda: (Sigmoid(), (np.array(0.3),)),
    "python-float": lambda: (Sigmoid(), (0.3,)),
    "python-int": lambda: (Sigmoid(), (2,)),
    "python-numbers-apple-example": lambda: (MulLayer(), (100.0, 2.0)),
    "nested-list": lambda: (Sigmoid(), ([[0.1, -0.2], [0.3, 0.4]],)),
    "integer-labels-not-differentiated": lambda: (
        SoftmaxWithLoss(),
        (_x((4, 3)), np.array([0, 2, 1, 1])),
    ),
    "non-contiguous-slice": lambda: (Sigmoid(), (_x((6, 8))[::2, 1::3],)),
    "fortran-order": lambda: (Sigmoid(), (np.asfortranarray(_x()),)),
    "negative-strides": lambda: (Sigmoid(), (_x()[::-1, ::-1],)),
    "broadcast-stride-0": lambda: (Sigmoid(), (np.broadcast_to(np.linspace(-1, 1, 4), (3, 4)),)),
    "broadcast-stride-0-parameter": lambda: (
        Affine(np.broadcast_to(np.linspace(-1, 1, 3), (4, 3)), np.zeros(3)),
        (_x((5, 4)),),
    ),
    "read-only-input": lambda: (Sigmoid(), (_read_only(_x()),)),
    "read-only-input-and-parameters": _read_only_affine,
    "float32": lambda: (Sigmoid(), (_x().astype(np.float32),)),
    "float16": lambda: (Sigmoid(), (_x().astype(np.float16),)),
    "relu-read-only-input": lambda: (Relu(), (_read_only(np.array([[0.5, -0.5], [1.0, -2.0]])),)),
    "model-with-labels": lambda: TwoLayerNet.example(np.random.default_rng(RNG_SEED)),
}


def _snapshot(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return (value.copy(), value.strides, value.flags.writeable, value.dtype)
    return value


def _arrays_of(layer: Any) -> dict[str, np.ndarray]:
    found = {k: v for k, v in vars(layer).items() if isinstance(v, np.ndarray)}
    for key, value in getattr(layer, "params", {}).items():
        found[f"params[{key}]"] = value
    return found


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_odd_but_valid_input_is_checked_and_untouched(name: str) -> None:
    layer, inputs = ACCEPTED[name]()
    given = [_snapshot(x) for x in inputs]
    owned = {k: _snapshot(v) for k, v in _arrays_of(layer).items()}
    report = gradcheck.check(layer, *inputs)
    assert report.passed, str(report)
    assert sum(v.checked + v.screened for v in report.variables) > 0
    for before, value in zip(given, inputs, strict=True):
        if isinstance(value, np.ndarray):
            array, strides, writeable, dtype = before
            assert value.strides == strides and value.flags.writeable == writeable
            assert value.dtype == dtype
            np.testing.assert_array_equal(value, array, strict=True)
        else:
            assert value == before and type(value) is type(before)
    for key, value in _arrays_of(layer).items():
        array, strides, writeable, dtype = owned[key]
        assert value.strides == strides and value.flags.writeable == writeable, key
        np.testing.assert_array_equal(value, array, strict=True)


def test_python_scalar_conversion_is_noted() -> None:
    report = gradcheck.check(Sigmoid(), 0.3)
    assert report.notes == ["x: Python number converted to float64"]


def test_attribute_without_gradient_is_incomplete_not_passed() -> None:
    class ForgetsGradientAttribute:
        def __init__(self) -> None:
            self.W = np.ones((4, 2))

        def forward(self, x: np.ndarray) -> Any:
            return x @ self.W

        def backward(self, dout: np.ndarray) -> Any:
            return dout @ self.W.T

    report = gradcheck.check(ForgetsGradientAttribute(), _x())
    assert not report.passed and str(report.verdict) == "INCOMPLETE"
    [doubt] = [d for d in report.diagnostics if d.kind == "unchecked"]
    assert re.search(
        r"^ForgetsGradientAttribute: W changes the output but no gradient is "
        r"paired with it, so it was not checked \(W/dW attributes\)\. .*self\.dW",
        doubt.message,
    )
