"""Accuracy of the numerical engines against the exact gradient, on smooth layers.

For each layer, L(x) = Σ dout ⊙ forward(x) with a seeded dout; the exact gradient is the
reference layer's backward (exact up to float64 rounding). For every method we report the
median and the maximum relative error |n − g| / |g| over the elements (elements whose
exact gradient is below 1e-8 of the gradient's size are left out: their relative error
measures cancellation, not the engine).

Run:  python benchmarks/bench_accuracy.py [--seeds 5]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

import gradcheck
from reference_layers import Affine, Sigmoid, Softmax, Tanh
from reference_layers.functions import numerical_gradient as textbook_loop

METHODS = ("textbook h=1e-4", "central", "richardson", "complex", "auto")


def _cases(rng: np.random.Generator) -> dict[str, tuple[Any, NDArray, str]]:
    """(layer, point, variable) — Affine is checked with respect to W and to x."""
    affine = Affine(rng.standard_normal((20, 10)), rng.standard_normal(10))
    return {
        "Sigmoid (8, 16)": (Sigmoid(), rng.standard_normal((8, 16)) * 2, "x"),
        "Tanh (8, 16)": (Tanh(), rng.standard_normal((8, 16)), "x"),
        "Softmax (8, 10)": (Softmax(), rng.standard_normal((8, 10)) * 2, "x"),
        "Affine x (8, 20)": (affine, rng.standard_normal((8, 20)), "x"),
        "Affine W (20, 10)": (affine, rng.standard_normal((8, 20)), "W"),
    }


def _scalar_function(layer: Any, x: NDArray, variable: str, dout: NDArray) -> Callable:
    if variable == "x":
        return lambda v: np.sum(dout * layer.forward(v))

    def of_weights(w: NDArray) -> Any:
        saved, layer.W = layer.W, w
        try:
            return np.sum(dout * layer.forward(x))
        finally:
            layer.W = saved

    return of_weights


def _relative_errors(numerical: NDArray, exact: NDArray) -> NDArray:
    size = float(np.sqrt(np.mean(exact**2)))
    keep = np.abs(exact) > 1e-8 * size
    return np.abs(numerical - exact)[keep] / np.abs(exact)[keep]


def measure(seeds: int) -> dict[str, dict[str, list[float]]]:
    """Relative errors per layer and method, pooled over seeds."""
    results: dict[str, dict[str, list[float]]] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for name, (layer, x, variable) in _cases(rng).items():
            dout = rng.standard_normal(layer.forward(x).shape)
            layer.forward(x)
            dx = layer.backward(dout)
            exact = dx if variable == "x" else layer.dW.copy()
            point = x if variable == "x" else layer.W.copy()
            f = _scalar_function(layer, x, variable, dout)
            scale = float(np.sum(np.abs(dout * layer.forward(x))))  # as the checker does
            pooled = results.setdefault(name, {m: [] for m in METHODS})
            for method in METHODS:
                if method.startswith("textbook"):
                    numerical = textbook_loop(f, point.copy())
                else:
                    numerical = gradcheck.numerical_gradient(
                        f, point, method=method, scale=scale
                    ).value
                pooled[method].extend(_relative_errors(numerical, exact).tolist())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    results = measure(args.seeds)
    header = f"| layer | {' | '.join(METHODS)} |"
    print(f"Median / max relative error of the numerical gradient ({args.seeds} seeds, float64)")
    print()
    print(header)
    print("|" + "---|" * (len(METHODS) + 1))
    for name, by_method in results.items():
        cells = [f"{np.median(by_method[m]):.1e} / {np.max(by_method[m]):.1e}" for m in METHODS]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
