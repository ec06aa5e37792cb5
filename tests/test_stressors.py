"""The stressors of tests/stressors.py are correct: the calibration benchmark's truth is
their own backward, so a wrong one would count gradcheck's right answers as errors.

Checked here against finite differences written here — never gradcheck — in
``np.longdouble`` (80-bit on x86-64), on the layer itself or, where it narrows to float32
(buffers, casts inside), on its truth twin:

* every sampled element's analytic gradient matches a Richardson difference taken at the
  step, among eight decades, where successive estimates agree best (the inputs sit at
  offsets of 1e6, columns at 1e-6, so no single step suits all);
* at a kink (exact zeros, ties) the analytic value lies between the one-sided
  derivatives, and at a tie the tied elements together get ``dout`` once: moving them
  all by ``t`` moves the maximum by ``t``;
* a twin computes what its layer computes, but for the float32 rounding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from stressors import STRESSORS, NarrowAffine, RowMax, stress_case

from reference_layers import Pooling

LONG = np.dtype(np.longdouble)
SEEDS = range(4)
# Elements checked per variable (a sample: every difference costs dozens of passes).
SAMPLED = 8
# Steps tried: decades from a tenth of the larger of an element's size and its variable's
# spread, to this fraction of the smaller (an input of 1e6 with a spread of 1 varies on the
# scale of the spread; a column at 1e-6 beside columns at 1e6, on its own).
FINEST = 1e-7
# The analytic value must match to this fraction of |g| + the variable's rms gradient.
RTOL = 1e-6

Path = tuple[tuple[str, Any], ...]

pytestmark = pytest.mark.skipif(
    bool(np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps),
    reason="no extended precision: longdouble is float64 here",
)


def _cast(obj: Any, dtype: np.dtype, memo: dict[int, Any] | None = None) -> Any:
    """A deep copy of ``obj`` with every float array in ``dtype`` (shared stays shared)."""
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    out: Any
    if isinstance(obj, np.ndarray):
        out = obj.astype(dtype) if obj.dtype.kind == "f" else obj.copy()
    elif isinstance(obj, dict):
        out = {}
        memo[id(obj)] = out
        out.update({k: _cast(v, dtype, memo) for k, v in obj.items()})
        return out
    elif isinstance(obj, list):
        out = []
        memo[id(obj)] = out
        out.extend(_cast(v, dtype, memo) for v in obj)
        return out
    elif type(obj) is tuple:  # a Chain's (owner, attribute) pairs must name the copies
        out = tuple(_cast(v, dtype, memo) for v in obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type | np.random.Generator):
        out = copy.copy(obj)
        memo[id(obj)] = out
        for key, value in vars(obj).items():
            setattr(out, key, _cast(value, dtype, memo))
        return out
    else:
        out = copy.deepcopy(obj)
    memo[id(obj)] = out
    return out


def _get(obj: Any, path: Path) -> Any:
    for kind, key in path:
        obj = getattr(obj, key) if kind == "attr" else obj[key]
    return obj


def _parameters(
    obj: Any, path: Path = (), seen: set[int] | None = None
) -> Iterator[tuple[Path, Path]]:
    """(where a parameter is, where its gradient is) for every float parameter of ``obj``
    after a backward: ``params``/``grads`` dicts or lists, ``W``/``dW`` attributes, and
    the same in sublayers (attributes with a backward, lists of them)."""
    seen = set() if seen is None else seen
    params, grads = getattr(obj, "params", None), getattr(obj, "grads", None)
    if isinstance(params, dict | list) and isinstance(grads, type(params)):
        keys = params.keys() if isinstance(params, dict) else range(len(params))
        for key in keys:
            if isinstance(params[key], np.ndarray) and id(params[key]) not in seen:
                seen.add(id(params[key]))
                yield (
                    (*path, ("attr", "params"), ("item", key)),
                    (*path, ("attr", "grads"), ("item", key)),
                )
    for name, value in vars(obj).items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            if isinstance(getattr(obj, "d" + name, None), np.ndarray) and id(value) not in seen:
                seen.add(id(value))
                yield (*path, ("attr", name)), (*path, ("attr", "d" + name))
        elif callable(getattr(value, "backward", None)):
            yield from _parameters(value, (*path, ("attr", name)), seen)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if callable(getattr(item, "backward", None)):
                    yield from _parameters(item, (*path, ("attr", name), ("item", i)), seen)


class Loss:
    """``L = Σ dout · layer(*inputs)`` in longdouble, at points moved one element at a
    time, with the randomness of every pass held fixed (a fresh copy of the layer, the
    global state reseeded)."""

    def __init__(self, layer: Any, inputs: tuple[Any, ...]) -> None:
        self.pristine = _cast(layer, LONG)  # its generators not yet advanced by a forward
        self.layer = copy.deepcopy(self.pristine)
        self.inputs = tuple(_cast(x, LONG) for x in inputs)
        output = np.asarray(self._forward(self.layer, self.inputs))
        rng = np.random.default_rng(1)
        self.dout: Any = 1.0 if output.ndim == 0 else rng.standard_normal(output.shape).astype(LONG)
        returned = self.layer.backward(self.dout)
        returned = returned if isinstance(returned, tuple) else (returned,)
        self.variables: dict[str, tuple[Callable[[Any, list[Any]], Any], Any]] = {}
        for i, x in enumerate(self.inputs):
            if isinstance(x, np.ndarray) and x.dtype.kind == "f" and i < len(returned):
                self.variables[f"input{i}"] = (self._input(i), np.asarray(returned[i]))
        for where, gradient in _parameters(self.layer):
            self.variables[".".join(str(k) for _, k in where)] = (
                self._parameter(where),
                np.asarray(_get(self.layer, gradient)),
            )
        # The size of the terms L rounds: a step must move L well above their rounding.
        self.terms = np.sum(np.abs(self.dout * output)) + sum(
            np.sum(np.abs(where(self.layer, list(self.inputs)) * g))
            for where, g in self.variables.values()
        )

    @staticmethod
    def _forward(layer: Any, inputs: tuple[Any, ...]) -> Any:
        state = np.random.get_state()  # noqa: NPY002 (the textbook's Dropout draws from it)
        np.random.seed(0)  # noqa: NPY002
        try:
            return layer.forward(*inputs)
        finally:
            np.random.set_state(state)  # noqa: NPY002

    @staticmethod
    def _input(i: int) -> Callable[[Any, list[Any]], Any]:
        return lambda layer, inputs: inputs[i]

    @staticmethod
    def _parameter(where: Path) -> Callable[[Any, list[Any]], Any]:
        return lambda layer, inputs: _get(layer, where)

    def at(self, name: str, flat: int, step: Any) -> Any:
        """``L`` with element ``flat`` of variable ``name`` moved by ``step``."""
        layer = copy.deepcopy(self.pristine)
        inputs = [x.copy() if isinstance(x, np.ndarray) else x for x in self.inputs]
        array = self.variables[name][0](layer, inputs)
        array.reshape(-1)[flat] += step
        return np.sum(self.dout * np.asarray(self._forward(layer, tuple(inputs))))


def _richardson(loss: Loss, name: str, flat: int, h: Any) -> Any:
    """``(4·D(h) − D(2h)) / 3`` of central differences: error O(h⁴)."""

    def central(step: Any) -> Any:
        return (loss.at(name, flat, step) - loss.at(name, flat, -step)) / (2 * step)

    return (4 * central(h) - central(2 * h)) / 3


def _derivative(loss: Loss, name: str, flat: int, large: float, finest: float) -> tuple[Any, Any]:
    """The Richardson difference at the step where three successive decades agree best,
    and their disagreement (its error).

    Steps run from a tenth of ``large`` down to ``finest`` (where the loss's rounding
    starts to matter) and stay a thousand ulps above the element (below, ``x + h``
    rounds).
    """
    top, bottom = np.floor(np.log10(0.1 * large)), np.floor(np.log10(finest))
    ulps = 1e3 * float(np.finfo(LONG).eps) * large
    exponents = [k for k in np.arange(top, min(bottom, top - 2) - 1, -1) if 10.0**k > ulps]
    estimates = [_richardson(loss, name, flat, LONG.type(10) ** LONG.type(k)) for k in exponents]
    gaps = [
        max(abs(a - b), abs(b - c))
        for a, b, c in zip(estimates, estimates[1:], estimates[2:], strict=False)
    ]
    best = int(np.argmin(gaps))
    return estimates[best + 1], gaps[best]


def _one_sided(loss: Loss, name: str, flat: int, h: Any) -> tuple[Any, Any]:
    at = loss.at(name, flat, LONG.type(0))
    return (at - loss.at(name, flat, -h)) / h, (loss.at(name, flat, h) - at) / h


def _verify(layer: Any, inputs: tuple[Any, ...], rng: np.random.Generator) -> tuple[int, int]:
    """Assert the analytic gradient of ``layer`` at ``inputs``; return (smooth, kinks)
    elements verified."""
    loss = Loss(layer, inputs)
    assert loss.variables, "nothing to differentiate"
    smooth = kinks = 0
    for name, (where, analytic) in loss.variables.items():
        value = where(loss.layer, list(loss.inputs)).reshape(-1)
        g = analytic.reshape(-1).astype(LONG)
        assert g.shape == value.shape, f"{name}: gradient of shape {analytic.shape}"
        rms = np.sqrt(np.mean(g * g)) if g.size else 0
        spread = float(np.std(value.astype(np.float64))) if value.size > 1 else 0.0
        for flat in rng.choice(value.size, size=min(SAMPLED, value.size), replace=False):
            own = abs(float(value[flat]))
            scales = [v for v in (own, spread) if v > 0] or [1.0]
            large, small = max(scales), min(scales)
            scale = RTOL * (abs(g[flat]) + rms) + LONG.type(1e-30)
            # A step below this moves L by less than a tenth of scale's worth of its own
            # rounding: differences there measure rounding, not slope.
            rounding = float(10 * np.finfo(LONG).eps * loss.terms / scale)
            left, right = _one_sided(loss, name, flat, LONG.type(max(1e-9 * small, rounding)))
            if abs(right - left) > 1e3 * scale + 1e-4 * (abs(right) + abs(left)):
                low, high = min(left, right), max(left, right)
                assert low - scale <= g[flat] <= high + scale, (
                    f"{name}[{flat}]: {g[flat]} outside the one-sided derivatives "
                    f"[{low}, {high}] at a kink"
                )
                kinks += 1
                continue
            estimate, gap = _derivative(loss, name, flat, large, max(FINEST * small, 10 * rounding))
            assert gap <= scale, f"{name}[{flat}]: no step resolves it (gap {gap:.3g})"
            assert abs(g[flat] - estimate) <= scale, (
                f"{name}[{flat}]: analytic {g[flat]} against {estimate} (±{gap:.2g})"
            )
            smooth += 1
    return smooth, kinks


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(STRESSORS))
def test_every_stressor_is_correct(name: str, seed: int) -> None:
    case = stress_case(np.random.default_rng(seed), name)
    twin = STRESSORS[name].truth
    subject = twin(case.layer) if twin is not None else case.layer
    smooth, kinks = _verify(subject, case.inputs, np.random.default_rng(seed))
    assert smooth + kinks > 0, str(case)


def test_the_finite_differences_here_see_a_wrong_backward() -> None:
    """The check above is no rubber stamp: a NarrowAffine with dW ×1.0001 fails it."""

    class Wrong(NarrowAffine):
        def backward(self, dout: Any) -> Any:
            dx = super().backward(dout)
            self.dW = self.dW * 1.0001
            return dx

    case = stress_case(np.random.default_rng(0), "float32-inside")
    twin = STRESSORS["float32-inside"].truth
    assert twin is not None
    wrong = Wrong.__new__(Wrong)
    wrong.__dict__.update(vars(twin(case.layer)))
    _verify(twin(case.layer), case.inputs, np.random.default_rng(0))
    with pytest.raises(AssertionError, match="analytic"):
        _verify(wrong, case.inputs, np.random.default_rng(0))


Windows = list[tuple[tuple[int, ...], list[tuple[int, ...]]]]


def _windows(layer: Any, x: np.ndarray) -> Windows:
    """Each output index of a row maximum or a pooling over disjoint windows, with the
    input indices that tie for its maximum."""
    if isinstance(layer, RowMax):
        return [
            (idx, [(*idx, int(j[0])) for j in np.argwhere(x[idx] == x[idx].max())])
            for idx in np.ndindex(x.shape[:-1])
        ]
    k = layer.pool_h
    found: Windows = []
    N, C, H, W = x.shape
    for n, c, i, j in np.ndindex(N, C, (H - k) // k + 1, (W - k) // k + 1):
        window = x[n, c, i * k : (i + 1) * k, j * k : (j + 1) * k]
        tied = np.argwhere(window == window.max())
        found.append(((n, c, i, j), [(n, c, i * k + a, j * k + b) for a, b in tied]))
    return found


def _tied_cases(kind: type, count: int) -> list[int]:
    """The first ``count`` seeds whose ``ties-zeros`` case is a ``kind`` over disjoint
    windows (a row maximum, or pooling with the stride of the window) with a tie."""
    found = []
    for seed in range(1000):
        case = stress_case(np.random.default_rng(seed), "ties-zeros")
        layer = case.layer
        if not isinstance(layer, kind) or (
            isinstance(layer, Pooling) and layer.stride != layer.pool_h
        ):
            continue
        if any(len(tied) > 1 for _, tied in _windows(layer, case.inputs[0])):
            found.append(seed)
            if len(found) == count:
                return found
    raise AssertionError(f"no {kind.__name__} with ties among the ties-zeros cases")


@pytest.mark.parametrize("seed", _tied_cases(RowMax, 6) + _tied_cases(Pooling, 6))
def test_tied_elements_get_dout_once(seed: int) -> None:
    """Moving all tied maxima of a window by ``t`` moves its maximum by ``t``: their
    gradients must add up to that window's ``dout`` (giving it to each is the bug)."""
    rng = np.random.default_rng(seed)
    case = stress_case(rng, "ties-zeros")
    layer = case.layer
    x = case.inputs[0].astype(np.float64)
    out = layer.forward(x)
    dout = rng.standard_normal(np.shape(out))
    dx = layer.backward(dout)
    for window, members in _windows(layer, x):
        moved = np.zeros_like(x)
        for member in members:
            moved[member] = 1.0
        t = 1e-3  # the others in a window are at least 1 lower: smooth along this line
        slope = (
            np.sum(dout * layer.forward(x + t * moved))
            - np.sum(dout * layer.forward(x - t * moved))
        ) / (2 * t)
        assert slope == pytest.approx(dout[window], rel=1e-9)
        assert sum(dx[m] for m in members) == pytest.approx(dout[window], rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", [n for n, s in STRESSORS.items() if s.truth is not None])
def test_a_twin_computes_what_its_layer_does_but_for_float32_rounding(name: str, seed: int) -> None:
    case = stress_case(np.random.default_rng(seed), name)
    twin = STRESSORS[name].truth
    assert twin is not None
    layer, other = copy.deepcopy(case.layer), twin(case.layer)
    out, expected = layer.forward(*case.inputs), other.forward(*case.inputs)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    got, want = layer.backward(dout), other.backward(dout)
    rms = float(np.sqrt(np.mean(np.square(want))))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * rms)
