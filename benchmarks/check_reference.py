"""Check every reference layer (float64 examples) with gradcheck or with the textbook loop.

Two oracles for the mutation-testing yardstick (benchmarks/RESULTS.md, "Mutation testing"):

``gradcheck``
    ``gradcheck.check(layer, *inputs).passed`` for every example.
``textbook``
    The book's loop: ``numerical_gradient`` (central differences, fixed ``h = 1e-4``) of
    ``L = Σ dout ⊙ forward(...)`` for every float input and parameter, compared with
    backward's gradient by the relative error CS231n and the book's readers use,
    ``max |a − n| / max(|a| + |n|, 1e-8) < 1e-5`` (the "suspicious" end of the
    1e-7 … 1e-5 range; anything tighter fails correct layers at h = 1e-4).

Exit status 1 when any layer fails. ``python benchmarks/check_reference.py textbook``
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import gradcheck
import reference_layers

RTOL = 1e-5


def _textbook_numerical_gradient(f: Callable[[], float], x: np.ndarray) -> np.ndarray:
    """The book's loop, verbatim in spirit: perturb x in place, h = 1e-4, restore."""
    h = 1e-4
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + h
        plus = f()
        x[idx] = saved - h
        minus = f()
        x[idx] = saved
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def _relative_error(a: np.ndarray, n: np.ndarray) -> float:
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    if a.shape != n.shape:
        return float("inf")
    return float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), 1e-8), initial=0.0))


def _textbook_model(model: Any, inputs: tuple[Any, ...]) -> bool:
    analytic = model.gradient(*inputs)
    for key in model.params:
        pristine = copy.deepcopy(model)

        def loss(model: Any = pristine) -> float:
            return float(copy.deepcopy(model).loss(*inputs))

        numerical = _textbook_numerical_gradient(loss, pristine.params[key])
        if _relative_error(analytic[key], numerical) >= RTOL:
            return False
    return True


def _textbook_layer(layer: Any, inputs: tuple[Any, ...]) -> bool:
    pristine = copy.deepcopy(layer)  # every forward of the loop starts from this state
    inputs = tuple(np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in inputs)
    out = np.asarray(layer.forward(*inputs))
    dout = np.random.default_rng(0).standard_normal(out.shape) if out.ndim else np.float64(1.0)
    returned = layer.backward(dout)
    grads = returned if isinstance(returned, tuple) else (returned,)

    def loss() -> float:
        return float(np.sum(dout * copy.deepcopy(pristine).forward(*inputs)))

    checks: list[tuple[Any, np.ndarray]] = [
        (g, x)
        for g, x in zip(grads, inputs, strict=False)
        if g is not None and isinstance(x, np.ndarray) and x.dtype.kind == "f"
    ]
    for name, value in vars(pristine).items():
        gradient = getattr(layer, "d" + name, None)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and gradient is not None:
            checks.append((gradient, value))
    for key, value in getattr(pristine, "params", {}).items():
        checks.append((layer.grads[key], value))
    return all(_relative_error(g, _textbook_numerical_gradient(loss, x)) < RTOL for g, x in checks)


def textbook_passes(obj: Any, inputs: tuple[Any, ...]) -> bool:
    """The textbook oracle's verdict on one example."""
    if hasattr(obj, "forward"):
        return _textbook_layer(obj, inputs)
    return _textbook_model(obj, inputs)


def gradcheck_passes(obj: Any, inputs: tuple[Any, ...]) -> bool:
    """gradcheck's verdict on one example."""
    return gradcheck.check(obj, *inputs).passed


ORACLES = {"gradcheck": gradcheck_passes, "textbook": textbook_passes}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    oracle = ORACLES[args[0] if args else "gradcheck"]
    failed = [
        name
        for name, (obj, inputs) in reference_layers.examples(np.random.default_rng(0)).items()
        if not oracle(obj, inputs)
    ]
    print("failed:", ", ".join(failed) if failed else "none")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
