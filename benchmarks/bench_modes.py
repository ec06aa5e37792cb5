"""Modes side by side: the textbook loop, scipy's check_grad, and gradcheck full / fast.

For each case (Sigmoid (100, 784); Affine 784→50, batch 100; Convolution on a small image
batch; the textbook's TwoLayerNet 784→50→10, batch 100) and each way of checking it, the
forward passes used (counted by a subclass that wraps ``forward`` — ``loss`` for the net)
and the wall time, in one run:

textbook loop
    ``reference_layers.functions.numerical_gradient`` on every input and parameter (two
    passes per element, h = 1e-4). When that would take longer than ``--max-seconds``, a
    random sample of elements goes through the very same loop body and the time is
    extrapolated to all elements (marked ``~``).
scipy check_grad
    ``scipy.optimize.check_grad`` per variable (forward differences: one pass per element
    plus one); extrapolated the same way. ``check_grad(direction="random")`` is shown too:
    one scalar along one random direction, no element named.
gradcheck full
    ``gradcheck.check(..., mode="full")``: every element's derivative, coloured where a
    verified pattern allows.
gradcheck fast
    ``mode="fast"``: random directions.
fast, planted bug
    ``mode="fast"`` on a copy whose backward is wrong in one element (by 1e-3 of the
    gradient's typical size): the time to find it, and whether the report names it.
torch gradcheck (optional)
    ``torch.autograd.gradcheck`` on the equivalent torch function (float64, CPU): slow mode
    (a dense numerical Jacobian, two calls per input element, and a dense analytical one)
    and ``fast_mode=True`` (one projected scalar per input). Calls of the function passed
    are counted. Slow mode is not run when its dense Jacobians would not fit in half the
    RAM or its forward calls alone would take longer than ``--torch-max-seconds``; it is
    then run on the parameters only (x held fixed) if that fits. For Affine, a
    ``torch.autograd.Function`` with the same one-element bug in ``dW`` shows what torch's
    fast mode reports. PyTorch is not a dependency: imported here lazily, and the rows are
    left out (with a note) when it is not installed.

Run:  python benchmarks/bench_modes.py [--max-seconds 20] [--cases sigmoid,affine,conv,net]
      [--torch-max-seconds 60] [--torch-only] [--no-torch]
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy
import scipy.optimize
from numpy.typing import NDArray

import gradcheck
from reference_layers import Affine, Convolution, Sigmoid, TwoLayerNet
from reference_layers.functions import numerical_gradient as textbook_loop

PASSES = {"count": 0}
PLANT_SIZE = 1e-3
SAMPLE = 200


def counting(cls: type, call: str = "forward") -> type:
    """A subclass of ``cls`` whose ``call`` adds one to ``PASSES['count']``."""
    original = getattr(cls, call)

    @functools.wraps(original)  # keeps the signature: gradcheck names inputs after it
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        PASSES["count"] += 1
        return original(self, *args, **kwargs)

    return type(f"Counting{cls.__name__}", (cls,), {call: counted})


def planted(cls: type, variable: str, index: tuple[int, ...], model: bool) -> type:
    """A subclass whose gradient of ``variable`` is off by 1e-3 (relative) at ``index``."""

    def bump(gradient: NDArray) -> NDArray:
        gradient = gradient.copy()
        gradient[index] += PLANT_SIZE * float(np.sqrt(np.mean(np.square(gradient))))
        return gradient

    if model:

        def gradient(self: Any, x: Any, t: Any) -> Any:
            grads = cls.gradient(self, x, t)
            grads[variable] = bump(grads[variable])
            return grads

        return type(f"Planted{cls.__name__}", (cls,), {"gradient": gradient})

    def backward(self: Any, dout: Any) -> Any:
        dx = cls.backward(self, dout)
        if variable == "x":
            return bump(dx)
        setattr(self, "d" + variable, bump(getattr(self, "d" + variable)))
        return dx

    return type(f"Planted{cls.__name__}", (cls,), {"backward": backward})


@dataclass
class Case:
    """One thing to check: how to build it, and its variables for the loop baselines."""

    name: str
    cls: type
    build: Callable[[type, np.random.Generator], tuple[Any, tuple[Any, ...]]]
    model: bool = False


def _cases() -> list[Case]:
    def sigmoid(cls: type, rng: np.random.Generator) -> Any:
        return cls(), (rng.standard_normal((100, 784)),)

    def affine(cls: type, rng: np.random.Generator) -> Any:
        layer = cls(0.05 * rng.standard_normal((784, 50)), 0.1 * rng.standard_normal(50))
        return layer, (rng.standard_normal((100, 784)),)

    def conv(cls: type, rng: np.random.Generator) -> Any:
        layer = cls(
            0.3 * rng.standard_normal((8, 3, 3, 3)), 0.1 * rng.standard_normal(8), stride=1, pad=1
        )
        return layer, (rng.standard_normal((10, 3, 16, 16)),)

    def net(cls: type, rng: np.random.Generator) -> Any:
        model = cls(784, 50, 10, seed=0)
        return model, (rng.uniform(0, 1, (100, 784)), rng.integers(0, 10, size=100))

    return [
        Case("sigmoid", Sigmoid, sigmoid),
        Case("affine", Affine, affine),
        Case("conv", Convolution, conv),
        Case("net", TwoLayerNet, net, model=True),
    ]


def _variables(case: Case, obj: Any, inputs: tuple[Any, ...]) -> dict[str, NDArray]:
    """The arrays a loop baseline perturbs in place (the ones the layer reads)."""
    if case.model:
        return dict(obj.params)
    found = {"x": inputs[0]}
    for name in ("W", "b"):
        if isinstance(getattr(obj, name, None), np.ndarray):
            found[name] = getattr(obj, name)
    return found


def _scalar(case: Case, obj: Any, inputs: tuple[Any, ...], dout: NDArray | None) -> Callable:
    """``L()`` = the loss, or Σ dout ⊙ forward, reading the arrays in place."""
    if case.model:
        return lambda *_: float(obj.loss(*inputs))
    assert dout is not None
    return lambda *_: float(np.sum(dout * obj.forward(*inputs)))


@dataclass
class Row:
    method: str
    passes: float
    seconds: float
    estimated: bool = False
    note: str = ""
    shown: str = ""  # replaces the time (and the time ratio) when the method was not run


def _loop_baseline(
    label: str,
    per_element: float,
    extra: float,
    total: int,
    run_all: Callable[[], None],
    run_sample: Callable[[NDArray], None],
    max_seconds: float,
    rng: np.random.Generator,
) -> Row:
    """Run ``run_all`` when cheap enough, else time a sample and extrapolate."""
    # Timed in pieces; the fastest piece is what an idle machine does (others may be
    # running on the same cores).
    sample = rng.choice(total, size=min(SAMPLE, total), replace=False)
    pieces = np.array_split(sample, 4)
    per = float("inf")
    for piece in pieces:
        started = time.perf_counter()
        run_sample(piece)
        per = min(per, (time.perf_counter() - started) / max(piece.size, 1))
    if per * total <= max_seconds:
        PASSES["count"] = 0
        started = time.perf_counter()
        run_all()
        return Row(label, PASSES["count"], time.perf_counter() - started)
    return Row(label, per_element * total + extra, per * total, estimated=True)


def _textbook(case: Case, rng: np.random.Generator, max_seconds: float) -> Row:
    obj, inputs = case.build(counting(case.cls, "loss" if case.model else "forward"), rng)
    dout = (
        None
        if case.model
        else np.random.default_rng(1).standard_normal(np.shape(obj.forward(*inputs)))
    )
    f = _scalar(case, obj, inputs, dout)
    arrays = _variables(case, obj, inputs)
    sizes = [a.size for a in arrays.values()]
    total = sum(sizes)

    def run_all() -> None:
        for array in arrays.values():
            textbook_loop(f, array)

    def run_sample(flat: NDArray) -> None:
        # The very loop body of the textbook's numerical_gradient, on sampled elements.
        h = 1e-4
        ends = np.cumsum(sizes)
        for k in flat:
            which = int(np.searchsorted(ends, k, side="right"))
            array = list(arrays.values())[which]
            idx = np.unravel_index(int(k - (ends[which] - sizes[which])), array.shape)
            saved = array[idx]
            array[idx] = saved + h
            plus = f(array)
            array[idx] = saved - h
            minus = f(array)
            array[idx] = saved
            _ = (plus - minus) / (2 * h)

    return _loop_baseline("textbook loop", 2, 0, total, run_all, run_sample, max_seconds, rng)


def _scipy(case: Case, rng: np.random.Generator, max_seconds: float) -> list[Row]:
    obj, inputs = case.build(counting(case.cls, "loss" if case.model else "forward"), rng)
    dout = (
        None
        if case.model
        else np.random.default_rng(1).standard_normal(np.shape(obj.forward(*inputs)))
    )
    f = _scalar(case, obj, inputs, dout)
    arrays = _variables(case, obj, inputs)

    def gradient_of(name: str) -> NDArray:
        if case.model:
            return np.asarray(obj.gradient(*inputs)[name])
        obj.forward(*inputs)
        dx = obj.backward(dout)
        return np.asarray(dx if name == "x" else getattr(obj, "d" + name))

    def functions(name: str) -> tuple[Callable, Callable, NDArray]:
        array = arrays[name]

        def func(z: NDArray) -> float:
            array[...] = z.reshape(array.shape)
            return f()

        def grad(z: NDArray) -> NDArray:
            array[...] = z.reshape(array.shape)
            return gradient_of(name).ravel()

        return func, grad, array.ravel().copy()

    def run_all() -> None:
        for name in arrays:
            func, grad, x0 = functions(name)
            scipy.optimize.check_grad(func, grad, x0)
            func(x0)

    def run_sample(flat: NDArray) -> None:
        # check_grad's forward differences cost one pass per element: time that many.
        func, _, x0 = functions(next(iter(arrays)))
        for _ in flat:
            func(x0)

    total = sum(a.size for a in arrays.values())
    rows = [
        _loop_baseline(
            "scipy check_grad", 1, len(arrays), total, run_all, run_sample, max_seconds, rng
        )
    ]
    PASSES["count"] = 0
    started = time.perf_counter()
    for name in arrays:
        func, grad, x0 = functions(name)
        scipy.optimize.check_grad(func, grad, x0, direction="random", seed=0)
        func(x0)
    rows.append(
        Row(
            'check_grad(direction="random")',
            PASSES["count"],
            time.perf_counter() - started,
            note="one scalar, names no element",
        )
    )
    return rows


def _ours(case: Case, rng: np.random.Generator, mode: str) -> Row:
    obj, inputs = case.build(counting(case.cls, "loss" if case.model else "forward"), rng)
    PASSES["count"] = 0
    started = time.perf_counter()
    report = gradcheck.check(obj, *inputs, mode=mode, max_evaluations=10**7)
    seconds = time.perf_counter() - started
    assert report.passed, str(report)
    methods = "; ".join(f"{v.name}: {v.method}" for v in report.variables)
    return Row(
        f"gradcheck {mode}",
        PASSES["count"],
        seconds,
        note=f"report.evaluations={report.evaluations:,}; {methods}",
    )


def _planted(case: Case, rng: np.random.Generator) -> Row:
    obj, inputs = case.build(case.cls, np.random.default_rng(0))
    name = "W1" if case.model else ("W" if hasattr(obj, "W") else "x")
    shape = (
        obj.params[name] if case.model else (getattr(obj, name) if name != "x" else inputs[0])
    ).shape
    index = tuple(int(rng.integers(n)) for n in shape)
    cls = counting(planted(case.cls, name, index, case.model), "loss" if case.model else "forward")
    obj, inputs = case.build(cls, np.random.default_rng(0))
    PASSES["count"] = 0
    started = time.perf_counter()
    report = gradcheck.check(obj, *inputs, mode="fast", max_evaluations=10**7)
    seconds = time.perf_counter() - started
    found = report.variable(name)
    named = found.mismatches == 1 and found.worst[0].index == index
    return Row(
        "fast, planted bug",
        PASSES["count"],
        seconds,
        note=f"d{name}{list(index)} off by 1e-3: {'named' if named else 'NOT NAMED'}",
    )


def _torch() -> Any:
    """``torch``, imported lazily (PyTorch is no dependency of gradcheck), or None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_function(
    case: Case, obj: Any, inputs: tuple[Any, ...], torch: Any
) -> tuple[Callable, dict[str, Any]]:
    """The torch equivalent of ``case`` (float64) and its variables, by name."""
    functional = torch.nn.functional

    def tensor(array: NDArray) -> Any:
        return torch.tensor(np.asarray(array), dtype=torch.float64, requires_grad=True)

    if case.model:
        x = torch.tensor(inputs[0], dtype=torch.float64)
        t = torch.tensor(inputs[1], dtype=torch.int64)

        def net(W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
            hidden = torch.relu(torch.addmm(b1, x, W1))
            return functional.cross_entropy(torch.addmm(b2, hidden, W2), t)

        return net, {name: tensor(obj.params[name]) for name in ("W1", "b1", "W2", "b2")}
    variables = {"x": tensor(inputs[0])}
    if case.name == "sigmoid":
        return torch.sigmoid, variables
    variables |= {"W": tensor(obj.W), "b": tensor(obj.b)}
    if case.name == "affine":
        return lambda x, W, b: torch.addmm(b, x, W), variables
    return (
        lambda x, W, b: functional.conv2d(x, W, b, stride=obj.stride, padding=obj.pad),
        variables,
    )


def _torch_counted(function: Callable) -> Callable:
    def counted(*args: Any) -> Any:
        PASSES["count"] += 1
        return function(*args)

    return counted


def _torch_slow(
    function: Callable, variables: dict[str, Any], torch: Any, max_seconds: float
) -> Row:
    """Slow mode on every variable; else on the parameters only; else not run."""
    with torch.no_grad():
        values = [v.detach() for v in variables.values()]
        n_out = function(*values).numel()
        per_call = float("inf")
        for _ in range(20):
            started = time.perf_counter()
            function(*values)
            per_call = min(per_call, time.perf_counter() - started)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

    def cost(names: list[str]) -> tuple[int, float, float]:
        n_in = sum(variables[n].numel() for n in names)
        # one numerical and two analytical (reentrancy check) dense n_in × n_out Jacobians
        return n_in, 3 * 8 * n_in * n_out, 2 * n_in * per_call

    def fits(names: list[str]) -> bool:
        _, memory, seconds = cost(names)
        return bool(names) and memory <= ram / 2 and seconds <= max_seconds

    every = list(variables)
    n_all, memory_all, seconds_all = cost(every)
    why = (
        f"dense Jacobians 3 × {n_all:,} × {n_out:,} float64 = {memory_all / 1e9:,.3g} GB, "
        f"{ram / 1e9:.0f} GB RAM"
        if memory_all > ram / 2
        else f"its {2 * n_all:,} forward calls alone ≈ {seconds_all:.3g} s"
    )
    names = every if fits(every) else [n for n in every if n != "x"]
    if not fits(names):
        return Row(
            "torch gradcheck (slow)",
            2 * n_all + 2,
            float("nan"),
            estimated=True,
            shown=f"> {max_seconds:.0f} s (not run)" if memory_all <= ram / 2 else "not run",
            note=f"not run: {why}",
        )
    for name, value in variables.items():
        value.requires_grad_(name in names)
    PASSES["count"] = 0
    started = time.perf_counter()
    passed = torch.autograd.gradcheck(
        _torch_counted(function), tuple(variables.values()), raise_exception=False
    )
    seconds = time.perf_counter() - started
    for value in variables.values():
        value.requires_grad_(True)
    note = "passed" if passed else "FAILED"
    if names == every:
        return Row("torch gradcheck (slow)", PASSES["count"], seconds, note=note)
    return Row(
        f"torch gradcheck (slow), {', '.join(names)} only",
        PASSES["count"],
        seconds,
        note=f"{note}; x held fixed — all variables not run: {why}",
    )


def _torch_rows(case: Case, rng: np.random.Generator, max_seconds: float, torch: Any) -> list[Row]:
    obj, inputs = case.build(case.cls, rng)
    function, variables = _torch_function(case, obj, inputs, torch)
    rows = [_torch_slow(function, variables, torch, max_seconds)]
    PASSES["count"] = 0
    started = time.perf_counter()
    passed = torch.autograd.gradcheck(
        _torch_counted(function), tuple(variables.values()), fast_mode=True, raise_exception=False
    )
    rows.append(
        Row(
            "torch gradcheck fast_mode",
            PASSES["count"],
            time.perf_counter() - started,
            note=f"{'passed' if passed else 'FAILED'}; one projected scalar (vᵀJu) "
            "per input, names no element",
        )
    )
    if case.name == "affine":
        index = tuple(int(rng.integers(n)) for n in variables["W"].shape)
        rows += [
            _torch_planted(variables, index, PLANT_SIZE, torch),
            _torch_planted(variables, index, 1.0, torch),
        ]
    return rows


def _torch_planted(
    variables: dict[str, Any], index: tuple[int, ...], size: float, torch: Any
) -> Row:
    """Fast mode on a Linear whose backward is off by ``size`` × RMS in one element of dW."""

    class PlantedLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, W: Any, b: Any) -> Any:
            ctx.save_for_backward(x, W)
            return torch.addmm(b, x, W)

        @staticmethod
        def backward(ctx: Any, dout: Any) -> Any:
            x, W = ctx.saved_tensors
            dW = x.T @ dout
            dW[index] += size * dW.square().mean().sqrt()
            return dout @ W.T, dW, dout.sum(0)

    PASSES["count"] = 0
    started = time.perf_counter()
    try:
        torch.autograd.gradcheck(
            _torch_counted(PlantedLinear.apply), tuple(variables.values()), fast_mode=True
        )
        outcome = "passed: the bug is not detected"
    except torch.autograd.gradcheck.GradcheckError as error:
        first = str(error).strip().splitlines()[0]
        outcome = f"detected, element not named (torch: “{first}”)"
    label = "torch fast_mode, planted bug"
    if size != PLANT_SIZE:
        label += f" × {size / PLANT_SIZE:,.0f}"
    return Row(
        label,
        PASSES["count"],
        time.perf_counter() - started,
        note=f"dW{list(index)} off by {size:g} × RMS: {outcome}",
    )


def _format(case: Case, rows: list[Row]) -> list[str]:
    base = rows[0]
    lines = [
        f"### {case.name}",
        "",
        "| method | forward passes | time | textbook time / time | textbook passes / passes "
        "| note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        mark = "~" if row.estimated else ""
        ratio = base.seconds / row.seconds if row.seconds else float("inf")
        passes = base.passes / row.passes if row.passes else float("inf")
        time_cell = row.shown or f"{mark}{_seconds(row.seconds)}"
        lines.append(
            f"| {row.method} | {mark}{row.passes:,.0f} | {time_cell} | "
            f"{'—' if row.shown else _ratio(ratio)} | {_ratio(passes)} | {row.note} |"
        )
    return [*lines, ""]


def _ratio(value: float) -> str:
    return f"{value:,.0f}×" if value >= 10 else f"{value:.2g}×"


def _seconds(value: float) -> str:
    return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--cases", default="sigmoid,affine,conv,net")
    parser.add_argument(
        "--torch-max-seconds",
        type=float,
        default=60.0,
        help="run torch's slow mode only below this (estimated) time",
    )
    parser.add_argument(
        "--torch-only",
        action="store_true",
        help="the textbook loop, gradcheck full/fast and the torch rows only",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave the torch rows out")
    args = parser.parse_args()
    wanted = args.cases.split(",")
    torch = None if args.no_torch else _torch()
    if torch is not None:  # warm up (first-call set-up is not part of any check)
        torch.autograd.gradcheck(
            torch.sigmoid, (torch.ones(2, dtype=torch.float64, requires_grad=True),)
        )
    started = time.perf_counter()
    for case in _cases():
        if case.name not in wanted:
            continue
        rng = np.random.default_rng(0)
        rows = [_textbook(case, rng, args.max_seconds)]
        if not args.torch_only:
            rows += _scipy(case, rng, args.max_seconds)
        rows += [_ours(case, rng, "full"), _ours(case, rng, "fast")]
        if not args.torch_only:
            rows.append(_planted(case, rng))
        if torch is not None:
            rows += _torch_rows(case, rng, args.torch_max_seconds, torch)
        print("\n".join(_format(case, rows)), flush=True)
    versions = f"NumPy {np.__version__}, SciPy {scipy.__version__}"
    if torch is not None:
        versions += f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    print(
        f"measured in {time.perf_counter() - started:.0f} s; Python "
        f"{platform.python_version()}, {versions}; "
        "~ = extrapolated from a sample of elements (torch slow mode: 2 calls per element + 2)"
    )
    if torch is None and not args.no_torch:
        print("torch gradcheck rows omitted: PyTorch is not installed (optional).")


if __name__ == "__main__":
    main()
