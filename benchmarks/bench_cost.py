"""Cost at the floor: what a check costs beside its peers and its floors, in one run.

Every figure comes from the same run, with the BLAS on one thread (threadpoolctl), so the
ratios are comparable; times are the best of ``--repeat`` runs (others may share the
cores). Sections:

net
    The chapter's TwoLayerNet(784, 50, 10), batch 100, float64: one backprop gradient,
    gradcheck ``fast`` and ``auto`` on the correct net, scipy's ``check_grad`` along one
    random direction, and — when installed, as optional columns — torch's
    ``gradcheck(fast_mode=True)`` and jax's ``check_grads`` (reverse mode, order 1) on the
    same net written in each; then one wrong ``dW1`` element (1e-3 of the RMS) under
    ``auto`` (passes, directional tests of W1, named?), and every gradient element ×1.01
    (FAILED, widespread?, cost over a fast check).
rtol
    One element of Affine 784→50's ``dW`` off by 1e-6 (relative), checked at
    ``rtol=1e-8`` in full: named by the complex step?
full
    ``mode="full"`` on the net against the textbook loop (two passes per element,
    h = 1e-4), interleaved, ``--full-repeat`` times (skipped with ``--no-full``).
growth
    Affine (batch 100, n → 50) and Sigmoid (100, n) for n in 49, 196, 784, 3136, each
    mode: time, passes, and the growth exponent (slope of log time on log n). ``full``
    on Affine at 3136 takes ~25 s and is left out unless ``--full-growth``.
overhead
    At n = 3136, the share of an ``auto`` check spent outside the layer's own forward and
    backward (direction vectors, probes, comparisons).
workers
    A convolution layer's full check serially, then with ``workers=1`` and ``workers=2``
    (processes): the speed-up.

Run:  python benchmarks/bench_cost.py [--repeat 3] [--no-full] [--full-repeat 1]
      [--full-growth] [--no-peers] [--sections net,rtol,full,growth,overhead,workers]
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy
import scipy.optimize
from threadpoolctl import threadpool_limits

import gradcheck
from reference_layers import Affine, Convolution, Sigmoid, TwoLayerNet
from reference_layers.functions import numerical_gradient as textbook_loop

SIZES = (49, 196, 784, 3136)


def best(run: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """The last result of ``run`` and its best time over ``repeat`` runs."""
    fastest, result = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        fastest = min(fastest, time.perf_counter() - started)
    return result, fastest


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (100, 784)), rng.integers(0, 10, size=100)


class OneWrong(TwoLayerNet):
    """``gradient`` off in one element of dW1 by 1e-3 of its RMS."""

    index = (111, 24)

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        grads = super().gradient(x, t)
        grads["W1"] = grads["W1"].copy()
        grads["W1"][self.index] += 1e-3 * float(np.sqrt(np.mean(np.square(grads["W1"]))))
        return grads


class Scaled(TwoLayerNet):
    """Every element of every gradient ×1.01."""

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        return {name: 1.01 * value for name, value in super().gradient(x, t).items()}


def _tests(method: str) -> int:
    """The directional tests in a variable's method label (``fast complex, 19 tests``)."""
    for part in method.split(","):
        if part.strip().endswith(" tests"):
            return int(part.split()[-2])
    return 0


def section_net(repeat: int, peers: bool) -> list[str]:
    x, t = _data()
    net = TwoLayerNet(784, 50, 10, seed=0)
    rows = ["| what | passes | time | / fast | note |", "|---|---:|---:|---:|---|"]
    _, backprop = best(lambda: net.gradient(x, t), repeat * 5)
    fast, fast_s = best(lambda: gradcheck.check(net, x, t, mode="fast"), repeat)
    auto, auto_s = best(lambda: gradcheck.check(net, x, t, mode="auto"), repeat)
    rows.append(f"| one backprop gradient | — | {ms(backprop)} | {backprop / fast_s:.2f}× | |")
    rows.append(
        f"| gradcheck fast | {fast.evaluations} | {ms(fast_s)} | 1× | "
        f"{'passed' if fast.passed else 'FAILED'} |"
    )
    methods = "; ".join(f"{v.name}: {v.method}" for v in auto.variables)
    rows.append(
        f"| gradcheck auto | {auto.evaluations} | {ms(auto_s)} | "
        f"{auto_s / fast_s:.2f}× | {methods} |"
    )
    rows.append(_scipy_random(net, x, t, repeat, fast_s))
    if peers:
        rows += _torch_row(net, x, t, repeat, fast_s) + _jax_row(net, x, t, repeat, fast_s)
    wrong, wrong_s = best(lambda: gradcheck.check(OneWrong(784, 50, 10, seed=0), x, t), repeat)
    w1 = wrong.variable("W1")
    named = w1.mismatches == 1 and w1.worst[0].index == OneWrong.index
    rows.append(
        f"| auto, one wrong dW1 element (1e-3) | {wrong.evaluations} | {ms(wrong_s)} | "
        f"{wrong_s / fast_s:.2f}× | {_tests(w1.method)} directional tests of W1; "
        f"{'named' if named else 'NOT NAMED'} |"
    )
    for mode in ("fast", "auto"):
        scaled, scaled_s = best(
            lambda m=mode: gradcheck.check(Scaled(784, 50, 10, seed=0), x, t, mode=m), repeat
        )
        widespread = "widespread" in (scaled.conclusion or "") or "nearly everywhere" in (
            scaled.conclusion or ""
        )
        rows.append(
            f"| {mode}, every element ×1.01 | {scaled.evaluations} | {ms(scaled_s)} | "
            f"{scaled_s / fast_s:.2f}× | {scaled.verdict}"
            f"{', widespread' if widespread else ''}: {scaled.conclusion} |"
        )
    return rows


def _flat_net(net: TwoLayerNet, x: Any, t: Any) -> tuple[Callable, Callable, np.ndarray]:
    names = list(net.params)
    shapes = [net.params[n].shape for n in names]
    ends = np.cumsum([math.prod(s) for s in shapes])

    def put(z: np.ndarray) -> None:
        for name, shape, end in zip(names, shapes, ends, strict=True):
            net.params[name][...] = z[end - math.prod(shape) : end].reshape(shape)

    def func(z: np.ndarray) -> float:
        put(z)
        return float(net.loss(x, t))

    def grad(z: np.ndarray) -> np.ndarray:
        put(z)
        grads = net.gradient(x, t)
        return np.concatenate([grads[n].ravel() for n in names])

    return func, grad, np.concatenate([net.params[n].ravel() for n in names])


def _scipy_random(net: TwoLayerNet, x: Any, t: Any, repeat: int, fast_s: float) -> str:
    copy = TwoLayerNet(784, 50, 10, seed=0)
    func, grad, z0 = _flat_net(copy, x, t)
    _, seconds = best(
        lambda: scipy.optimize.check_grad(func, grad, z0, direction="random", seed=0), repeat
    )
    return (
        f"| scipy check_grad(direction='random') | 3 | {ms(seconds)} | "
        f"{seconds / fast_s:.2f}× | one scalar along one direction, names no element |"
    )


def _torch_row(net: TwoLayerNet, x: Any, t: Any, repeat: int, fast_s: float) -> list[str]:
    try:
        import torch
    except ImportError:
        return ["| torch gradcheck fast_mode | — | — | — | not installed (optional) |"]
    torch.set_num_threads(1)
    xt, tt = torch.tensor(x), torch.tensor(t)
    params = tuple(
        torch.tensor(net.params[n], requires_grad=True) for n in ("W1", "b1", "W2", "b2")
    )

    def loss(W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
        hidden = torch.relu(torch.addmm(b1, xt, W1))
        return torch.nn.functional.cross_entropy(torch.addmm(b2, hidden, W2), tt)

    passed, seconds = best(
        lambda: torch.autograd.gradcheck(loss, params, fast_mode=True, raise_exception=False),
        repeat,
    )
    return [
        f"| torch gradcheck fast_mode ({torch.__version__}) | — | {ms(seconds)} | "
        f"{seconds / fast_s:.2f}× | {'passed' if passed else 'FAILED'}; one projection "
        "per input, names no element |"
    ]


def _jax_row(net: TwoLayerNet, x: Any, t: Any, repeat: int, fast_s: float) -> list[str]:
    try:
        import jax
        import jax.numpy as jnp
        from jax.test_util import check_grads
    except ImportError:
        return ["| jax check_grads | — | — | — | not installed (optional) |"]
    jax.config.update("jax_enable_x64", True)
    labels = jnp.asarray(t)

    def loss(params: dict[str, Any]) -> Any:
        hidden = jax.nn.relu(x @ params["W1"] + params["b1"])
        logits = hidden @ params["W2"] + params["b2"]
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(labels.size), labels])

    params = {n: jnp.asarray(v) for n, v in net.params.items()}

    def run() -> str:
        try:
            check_grads(loss, (params,), order=1, modes=["rev"])
        except AssertionError as error:  # the net is correct: a false alarm
            return "FAILED on the correct net: " + " ".join(str(error).split()[:12])
        return "passed"

    run()  # compile once
    outcome, seconds = best(run, repeat)
    return [
        f"| jax check_grads ({jax.__version__}), rev, order 1 | — | {ms(seconds)} | "
        f"{seconds / fast_s:.2f}× | {outcome}; random directions, names no element |"
    ]


class OffByAMillionth(Affine):
    def backward(self, dout: Any) -> Any:
        dx = super().backward(dout)
        self.dW[561, 21] *= 1 + 1e-6
        return dx


def section_rtol(repeat: int) -> list[str]:
    rng = np.random.default_rng(0)
    layer = OffByAMillionth(0.05 * rng.standard_normal((784, 50)), 0.1 * rng.standard_normal(50))
    x = rng.standard_normal((100, 784))
    report, seconds = best(lambda: gradcheck.check(layer, x, rtol=1e-8, mode="full"), 1)
    weights = report.variable("W")
    named = weights.mismatches == 1 and weights.worst[0].index == (561, 21)
    return [
        f"Affine 784→50, batch 100, dW[561, 21] ×(1 + 1e-6), rtol=1e-8, mode='full': "
        f"{report.verdict}, {'named' if named else 'NOT NAMED'} by `{weights.method}`, "
        f"{report.evaluations} passes, {ms(seconds)}."
    ]


def section_full(repeat: int) -> list[str]:
    x, t = _data()
    rows = [
        "| run | textbook loop | gradcheck full | full / textbook | passes (full, loop) |",
        "|---|---:|---:|---:|---|",
    ]
    loops, checks = [], []
    for k in range(repeat):
        net = TwoLayerNet(784, 50, 10, seed=0)
        calls = {"n": 0}

        def f(*_: Any, net: TwoLayerNet = net, calls: dict[str, int] = calls) -> float:
            calls["n"] += 1
            return float(net.loss(x, t))

        def run_loop(net: TwoLayerNet = net, f: Any = f) -> float:
            started = time.perf_counter()
            for array in net.params.values():
                textbook_loop(f, array)
            return time.perf_counter() - started

        def run_check() -> tuple[float, Any]:
            started = time.perf_counter()
            report = gradcheck.check(
                TwoLayerNet(784, 50, 10, seed=0), x, t, mode="full", max_evaluations=10**7
            )
            return time.perf_counter() - started, report

        # Alternate which goes first: a machine that slows down under 20 s of load would
        # otherwise always charge the second.
        if k % 2 == 0:
            loop = run_loop()
            ours, report = run_check()
        else:
            ours, report = run_check()
            loop = run_loop()
        methods = "; ".join(f"{v.name}: {v.method}" for v in report.variables)
        rows.append(
            f"| {k + 1} | {ms(loop)} | {ms(ours)} | {ours / loop:.3f}× | "
            f"{report.evaluations:,}, {calls['n']:,} ({methods}) |"
        )
        loops.append(loop)
        checks.append(ours)
    # The machine's noise (±5 % between runs) is larger than the difference measured:
    # the best of each, as timeit does, compares what each costs when undisturbed.
    rows.append(
        f"| best of {repeat} | {ms(min(loops))} | {ms(min(checks))} | "
        f"{min(checks) / min(loops):.3f}× | |"
    )
    return rows


def _growth_case(kind: str, n: int) -> tuple[Any, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, n))
    if kind == "Sigmoid":
        return Sigmoid(), x
    return Affine(0.05 * rng.standard_normal((n, 50)), 0.1 * rng.standard_normal(50)), x


def section_growth(repeat: int, full_growth: bool) -> list[str]:
    rows = [
        "| layer | mode | " + " | ".join(f"n={n}" for n in SIZES) + " | exponent |",
        "|---|---|" + "---:|" * (len(SIZES) + 1),
    ]
    for kind in ("Affine", "Sigmoid"):
        for mode in ("auto", "fast", "full"):
            times, cells = [], []
            for n in SIZES:
                if kind == "Affine" and mode == "full" and n > 784 and not full_growth:
                    cells.append("—")
                    continue
                layer, x = _growth_case(kind, n)
                report, seconds = best(
                    lambda layer=layer, x=x, m=mode: gradcheck.check(layer, x, mode=m),
                    1 if mode == "full" and kind == "Affine" else repeat,
                )
                times.append((n, seconds))
                cells.append(f"{ms(seconds)} ({report.evaluations})")
            ns, ts = np.log([p[0] for p in times]), np.log([p[1] for p in times])
            slope = float(np.polyfit(ns, ts, 1)[0]) if len(times) >= 2 else float("nan")
            rows.append(f"| {kind} | {mode} | " + " | ".join(cells) + f" | {slope:.2f} |")
    return rows


def _timed_layer(cls: type, spent: dict[str, float]) -> type:
    def wrap(name: str) -> Callable:
        original = getattr(cls, name)

        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                spent["layer"] += time.perf_counter() - started

        return timed

    return type(
        f"Timed{cls.__name__}", (cls,), {"forward": wrap("forward"), "backward": wrap("backward")}
    )


def section_overhead(repeat: int) -> list[str]:
    rows = [
        "| layer (n=3136) | mode | time | in forward/backward | outside the layer |",
        "|---|---|---:|---:|---:|",
    ]
    for kind in ("Affine", "Sigmoid"):
        for mode in ("auto", "fast"):
            spent = {"layer": 0.0}
            layer, x = _growth_case(kind, 3136)
            timed = _timed_layer(type(layer), spent)
            copy = timed.__new__(timed)
            copy.__dict__.update(layer.__dict__)
            gradcheck.check(copy, x, mode=mode)
            fastest, inside = math.inf, 0.0
            for _ in range(repeat):
                spent["layer"] = 0.0
                started = time.perf_counter()
                gradcheck.check(copy, x, mode=mode)
                total = time.perf_counter() - started
                if total < fastest:
                    fastest, inside = total, spent["layer"]
            rows.append(
                f"| {kind} | {mode} | {ms(fastest)} | {ms(inside)} | {1 - inside / fastest:.0%} |"
            )
    return rows


def section_workers() -> list[str]:
    rng = np.random.default_rng(0)
    layer = Convolution(
        0.3 * rng.standard_normal((8, 4, 3, 3)), 0.1 * rng.standard_normal(8), stride=1, pad=1
    )
    x = rng.standard_normal((16, 4, 24, 24))
    rows = [
        "| Convolution 8×4×3×3 on 16 images 4×24×24, mode='full' | time | speed-up | passes |",
        "|---|---:|---:|---:|",
    ]
    serial = None
    for label, options in (
        ("serial", {}),
        ("workers=1", {"workers": 1}),
        ("workers=2", {"workers": 2}),
    ):
        gradcheck.check(layer, x[:2], mode="full", **options)  # start the pool
        started = time.perf_counter()
        report = gradcheck.check(layer, x, mode="full", **options)
        seconds = time.perf_counter() - started
        serial = serial or seconds
        rows.append(
            f"| {label} | {ms(seconds)} | {serial / seconds:.2f}× | {report.evaluations:,} |"
        )
        assert report.passed, str(report)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full-repeat", type=int, default=1)
    parser.add_argument("--no-full", action="store_true")
    parser.add_argument("--full-growth", action="store_true")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--sections", default="net,rtol,full,growth,overhead,workers")
    args = parser.parse_args()
    wanted = args.sections.split(",")
    started = time.perf_counter()
    with threadpool_limits(1):
        for name, run in (
            ("net", lambda: section_net(args.repeat, not args.no_peers)),
            ("rtol", lambda: section_rtol(args.repeat)),
            ("full", lambda: [] if args.no_full else section_full(args.full_repeat)),
            ("growth", lambda: section_growth(args.repeat, args.full_growth)),
            ("overhead", lambda: section_overhead(args.repeat)),
            ("workers", section_workers),
        ):
            if name in wanted:
                print(f"### {name}\n\n" + "\n".join(run()) + "\n", flush=True)
    print(
        f"measured in {time.perf_counter() - started:.0f} s; Python "
        f"{platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}; "
        "BLAS on one thread"
    )


if __name__ == "__main__":
    main()
