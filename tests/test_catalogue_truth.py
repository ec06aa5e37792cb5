"""Every family's correct twin is right, and its ``truth`` computes it in longdouble.

The oracle here is not gradcheck: it is the derivative of ``L = Σ dout · forward(...)``
(``dout`` the checker's own, for seed 0) by central differences in ``np.longdouble`` on
the family's ``truth`` twin (the layer with its float32 narrowing removed), at steps of
``h, h/2, h/4`` combined by Richardson extrapolation, for ``h`` of 1e-2 or 1e-4.
Longdouble's 64-bit significand keeps about 1e-13 of an input offset by 1e6, so the
differences resolve the spread of ``1e6 + N(0, 1)`` to about 1e-9; the disagreement of
two extrapolations is the oracle's own error bar, and an element it cannot resolve well
inside the tolerance fails the test rather than pass unverified. Elements of large
variables are sampled.

* Where one-sided differences disagree the element is at a kink (ELU at 0, a tie of a
  max-pool or a sort, an exact zero under an L1 penalty): a valid gradient lies between
  them. Ties are also checked jointly: moving the tied elements together, the loss is
  smooth, and its derivative is the sum of their gradients.
* The correct twin's own backward, in its own precision, must match: to 1e-6 when it
  computes in float64, to float32's means when it computes in float32 (two-pass
  BatchNorm at an offset of 1000 keeps ~3e-4 of the gradient's rms, not more).
* The oracle is not blind: every named bug fails it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from catalogue import FAMILIES, Family, FamilyCase, family_case, family_mutant
from mutants import gradients, widened
from numpy.typing import NDArray

from gradcheck.analytic.run import draw_dout
from gradcheck.conventions.randomness import seeded_global_state

Array = NDArray[Any]
WIDE = np.longdouble
SEEDS = range(3)
STEPS = (1e-2, 1e-4)
KINK_STEP = 1e-6
MOST = 8  # elements checked of a variable larger than ALL (up to 15 longdouble forwards each)
ALL = 64

# Families whose layers have kinks, and those whose draws put elements on them on purpose.
KINKED = {"elu", "zero-sample-relu", "maxpool-ties", "sort-ties", "l1-exact-zeros"}
AT_KINKS = {"maxpool-ties", "sort-ties", "l1-exact-zeros"}
TIES = {"maxpool-ties", "sort-ties"}


@dataclass(frozen=True)
class Tolerance:
    """``|a − n| ≤ rtol·|n| + atol·rms`` (rms of the variable's checked derivatives)."""

    rtol: float
    atol: float

    def of(self, numerical: Any, rms: Any) -> Any:
        """The allowed ``|a − n|`` for the derivative ``numerical``."""
        return self.rtol * abs(numerical) + self.atol * rms


# A float64 backward at an offset of 1e6 keeps ~1e-10; one in float32 keeps ~1e-7, but
# float32's two-pass BatchNorm at 1000 only ~3e-4 of the rms. Per-element families judge
# each element by its own size: beside rows a million times larger, a small row's error
# must not hide under the rms.
FLOAT64 = Tolerance(1e-6, 1e-7)
FLOAT64_PER_ELEMENT = Tolerance(1e-6, 1e-10)
FLOAT32 = Tolerance(2e-3, 1e-3)


def _native_tolerance(family: Family, case: FamilyCase) -> Tolerance:
    """How close the twin's own backward must come: by the precision it computes in."""
    if case.dtype == np.float32 or family.truth is not None:
        return FLOAT32
    return FLOAT64_PER_ELEMENT if family.per_element else FLOAT64


def _checkable_point(family: str, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """At an all-zero sample every ReLU unit of ``zero-sample-relu`` sits at its kink at
    once, and the mask ``z > 0`` gives a value that need not lie between the one-sided
    derivatives; the formula is the same a little away (the zero samples moved by 1e-2),
    and the zero rows of ``dx`` have their own test (tests/test_catalogue.py)."""
    if family != "zero-sample-relu":
        return inputs
    x = inputs[0].copy()
    zero = ~x.any(axis=1)
    x[zero] = 1e-2 * np.random.default_rng(0).standard_normal((int(zero.sum()), x.shape[1]))
    return (x,)


# ---------------------------------------------------------------------------------------
# The loss as a function of one array, in longdouble


class Loss:
    """``L(v) = Σ dout · forward(...)`` with the array of ``key`` replaced by ``v``.

    ``key`` is a key of :func:`mutants.gradients`: ``input{i}``, ``d{name}`` for the
    attribute ``name``, ``grads[i]`` for ``params[i]``. The global ``np.random`` state is
    the checker's for seed 0 before every forward (the textbook Dropout draws from it).
    """

    def __init__(self, layer: Any, inputs: tuple[Any, ...], dout: Any) -> None:
        self.layer, self.inputs, self.dout = layer, inputs, dout

    def at(self, key: str) -> Array:
        if key.startswith("input"):
            return self.inputs[int(key.removeprefix("input"))]
        if key.startswith("grads["):
            return self.layer.params[int(key[6:-1])]
        return getattr(self.layer, key.removeprefix("d"))

    def __call__(self, key: str, value: Array) -> Any:
        inputs, layer = self.inputs, self.layer
        if key.startswith("input"):
            i = int(key.removeprefix("input"))
            inputs = (*inputs[:i], value, *inputs[i + 1 :])
        else:
            layer = copy.copy(layer)  # the parameter swapped on a shallow copy
            if key.startswith("grads["):
                layer.params = list(layer.params)
                layer.params[int(key[6:-1])] = value
            else:
                setattr(layer, key.removeprefix("d"), value)
        state = np.random.get_state()  # noqa: NPY002
        np.random.set_state(seeded_global_state(0))  # noqa: NPY002
        try:
            return np.sum(self.dout * np.asarray(layer.forward(*inputs)))
        finally:
            np.random.set_state(state)  # noqa: NPY002


@dataclass(frozen=True)
class Derivative:
    """One directional derivative: one-sided at ``KINK_STEP``, and extrapolated central.

    ``error`` is the disagreement of two extrapolations (at steps h, h/2 and h/2, h/4),
    ``floor`` a few ulps of the loss over the step: together, the oracle's error bar.
    """

    where: str
    left: Any
    right: Any
    central: Any
    error: Any
    floor: Any
    kink_floor: Any


def _ulps(f0: Any, h: float) -> Any:
    """A few longdouble ulps of the loss over the step: the oracle's error bar's floor."""
    return 8 * np.finfo(WIDE).eps * abs(f0) / h


def _extrapolated(
    f: Callable[[Array], Any], x: Array, direction: Array, h: float
) -> tuple[Any, Any]:
    """Richardson's extrapolation of central differences at ``h, h/2, h/4``, and the
    disagreement of its two estimates; each difference divides by the step actually taken
    (at an offset of 1e6, rounding changes a step of 1e-4 by ~1e-9 of itself)."""
    moving = direction != 0
    central = []
    for step in (h, h / 2, h / 4):
        up, down = x + WIDE(step) * direction, x - WIDE(step) * direction
        taken = np.mean((up - down)[moving] / direction[moving])
        central.append((f(up) - f(down)) / taken)
    first = central[1] + (central[1] - central[0]) / 3
    second = central[2] + (central[2] - central[1]) / 3
    return second, abs(second - first)


def derivative(f: Callable[[Array], Any], x: Array, direction: Array, where: str) -> Derivative:
    """The derivative of ``f`` at ``x`` along ``direction``, in longdouble.

    Steps from 1e-2 (exact for a linear loss, and beyond the noise of a loss of 1e7);
    where that one's extrapolations disagree, from 1e-4 too, keeping the better.
    """
    f0 = f(x)
    up, down = x + WIDE(KINK_STEP) * direction, x - WIDE(KINK_STEP) * direction
    moving = direction != 0
    right = (f(up) - f0) / np.mean((up - x)[moving] / direction[moving])
    left = (f0 - f(down)) / np.mean((x - down)[moving] / direction[moving])
    best = None
    for h in STEPS:
        central, error = _extrapolated(f, x, direction, h)
        if best is None or error + _ulps(f0, h) < best[1] + best[2]:
            best = (central, error, _ulps(f0, h))
        if error <= 1e-10 * abs(central) + _ulps(f0, h):
            break
    assert best is not None
    return Derivative(where, left, right, *best, kink_floor=_ulps(f0, KINK_STEP))


def _indices(
    shape: tuple[int, ...], rng: np.random.Generator, extra: Iterable[int] = ()
) -> list[int]:
    """Every flat index of a small variable; of a large one a sample, and ``extra``."""
    size = int(np.prod(shape))
    if size <= ALL:
        return list(range(size))
    return sorted({*rng.choice(size, size=MOST, replace=False).tolist(), *extra})


def derivatives(loss: Loss, key: str, extra: Iterable[int] = ()) -> dict[int, Derivative]:
    """Derivatives along each (sampled) element of ``key``'s array, by flat index."""
    x = loss.at(key)
    found = {}
    for k in _indices(x.shape, np.random.default_rng(len(key)), extra):
        direction = np.zeros(x.shape, dtype=WIDE)
        direction.flat[k] = 1
        index = [int(i) for i in np.unravel_index(k, x.shape)]
        found[k] = derivative(lambda v: loss(key, v), x, direction, f"{key}{index}")
    return found


def tie_groups(x: Array) -> list[Array]:
    """Masks of the elements of ``x`` that share one value (the ties a draw planted)."""
    values, counts = np.unique(x, return_counts=True)
    return [x == v for v, c in zip(values, counts, strict=True) if c > 1]


# ---------------------------------------------------------------------------------------
# Judging an analytic gradient against the oracle


@dataclass
class Judgement:
    """What the oracle found wrong with one variable, and how many kinks it met."""

    problems: list[str]
    kinks: int


def judge(
    analytic: Array, found: dict[int, Derivative], tolerance: Tolerance, *, kinked: bool
) -> Judgement:
    """Compare ``analytic`` with the oracle's derivatives of one variable.

    A kink is where the one-sided derivatives at 1e-6 part by more than their truncation
    (1e-3 of the gradient's size); there a valid value lies between them. In a ``kinked``
    family an element no step resolves lies just beside a kink (ELU's input at 1e-6 from
    0): the one-sided derivatives, which agree, judge it to their own 1e-3.
    """
    central = np.array([abs(d.central) for d in found.values()], dtype=WIDE)
    rms = np.sqrt(np.mean(central**2)) if central.size else WIDE(0)
    problems, kinks = [], 0
    for k, d in found.items():
        a = WIDE(analytic.flat[k])
        margin = 1e-3 * (abs(d.central) + rms) + 10 * d.kink_floor
        allowed = tolerance.of(d.central, rms) + d.floor
        low, high = min(d.left, d.right), max(d.left, d.right)
        if high - low > margin or (kinked and d.error > allowed / 2):
            kinks += 1
            if not low - margin <= a <= high + margin:
                problems.append(
                    f"{d.where}: {float(a):.6g} outside the one-sided derivatives "
                    f"[{float(low):.6g}, {float(high):.6g}]"
                )
        elif d.error > allowed / 2:
            problems.append(
                f"{d.where}: the oracle cannot resolve it (±{float(d.error):.2g} "
                f"against a tolerance of {float(allowed):.2g})"
            )
        elif abs(a - d.central) > allowed + 2 * d.error:
            problems.append(
                f"{d.where}: analytic {float(a):.10g}, numerical "
                f"{float(d.central):.10g} (tolerance {float(allowed):.2g})"
            )
    return Judgement(problems, kinks)


def judge_ties(analytic: Array, loss: Loss, key: str, tolerance: Tolerance) -> list[str]:
    """Along each group of tied elements moved together, the loss is smooth and its
    derivative is the sum of their gradients (dout once, not once per tied element)."""
    x = loss.at(key)
    problems = []
    for group in tie_groups(x):
        where = f"{key} tied at {np.argwhere(group).tolist()}"
        d = derivative(lambda v: loss(key, v), x, group.astype(WIDE), where)
        size = abs(d.central) + abs(d.right) + abs(d.left)
        if abs(d.right - d.left) > 1e-3 * size + 10 * d.kink_floor:
            problems.append(f"{where}: not smooth along the tie; the draw is no tie")
            continue
        total = np.sum(analytic[group], dtype=WIDE)
        if abs(total - d.central) > tolerance.of(d.central, size) + d.floor + 2 * d.error:
            problems.append(
                f"{where}: the gradients sum to {float(total):.6g}, moving them "
                f"together gives {float(d.central):.6g}"
            )
    return problems


@dataclass
class Setting:
    """A case made ready for the oracle: the native layer and its longdouble truth."""

    family: Family
    native: Any
    inputs: tuple[Any, ...]
    dout: Any
    wide: Loss


def setting(family: Family, layer: Any, inputs: tuple[Any, ...]) -> Setting:
    """``layer`` at ``inputs`` with the checker's ``dout``, and its correct twin's truth in
    longdouble (``layer`` may be a mutant: the oracle differentiates the correct one)."""
    inputs = _checkable_point(family.name, inputs)
    state = np.random.get_state()  # noqa: NPY002
    np.random.set_state(seeded_global_state(0))  # noqa: NPY002
    try:
        output = np.asarray(copy.deepcopy(layer).forward(*inputs))
    finally:
        np.random.set_state(state)  # noqa: NPY002
    dout = draw_dout(output, 0)
    correct = copy.deepcopy(layer)
    correct.bug = None
    truth = family.truth(correct) if family.truth is not None else correct
    wide_layer, wide_inputs = widened(truth, inputs, WIDE)
    return Setting(family, layer, inputs, dout, Loss(wide_layer, wide_inputs, WIDE(1) * dout))


def verify(
    s: Setting,
    analytic: dict[str, Array],
    tolerance: Tolerance,
    extra: dict[str, list[int]] | None = None,
) -> tuple[list[str], int]:
    """Every problem the oracle finds with ``analytic``, and how many kinks it met."""
    problems: list[str] = []
    kinks = 0
    for key, value in analytic.items():
        found = derivatives(s.wide, key, (extra or {}).get(key, ()))
        verdict = judge(value, found, tolerance, kinked=s.family.name in KINKED)
        problems += verdict.problems
        kinks += verdict.kinks
        if s.family.name in TIES and key == "input0":
            problems += judge_ties(value, s.wide, key, tolerance)
    return problems, kinks


# ---------------------------------------------------------------------------------------
# The tests


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_correct_twin_matches_an_independent_derivative(family: str, seed: int) -> None:
    chosen = FAMILIES[family]
    case = family_case(np.random.default_rng(seed), family, dtype=np.float64)
    s = setting(chosen, case.layer, case.inputs)
    native = gradients(case.layer, s.inputs, dout=s.dout)
    assert native, "the layer reports no gradient at all"
    problems, kinks = verify(s, native, _native_tolerance(chosen, case))
    assert not problems, f"{case}:\n" + "\n".join(problems)
    # The truth twin, run in longdouble, computes the same mathematics.
    wide = gradients(s.wide.layer, s.wide.inputs, dout=s.wide.dout, dtype=WIDE)
    tolerance = FLOAT64_PER_ELEMENT if chosen.per_element else FLOAT64
    problems, _ = verify(s, wide, tolerance)
    assert not problems, f"{case}, in longdouble:\n" + "\n".join(problems)
    if family in AT_KINKS:
        assert kinks > 0, "the draw planted no tie or exact zero"
    elif family not in KINKED:
        assert kinks == 0, "a kink where the family has none"


BUGS = [(f, b) for f, family in FAMILIES.items() for b in family.bugs]


@pytest.mark.parametrize(("family", "bug"), BUGS)
def test_the_oracle_sees_every_bug(family: str, bug: str) -> None:
    chosen = FAMILIES[family]
    mutant = family_mutant(np.random.default_rng(0), family, bug=bug, dtype=np.float64)
    if mutant is None:  # gelu's erf-derivative: never detectable (tests/test_catalogue.py)
        assert (family, bug) == ("gelu", "erf-derivative")
        return
    s = setting(chosen, mutant.layer, mutant.inputs)
    correct = copy.deepcopy(mutant.layer)
    correct.bug = None
    wrong = gradients(mutant.layer, s.inputs, dout=s.dout)
    right = gradients(correct, s.inputs, dout=s.dout)
    # Where the bug sits, so that sampling a large variable cannot miss a single element.
    extra = {k: np.argsort(-np.abs(wrong[k] - right[k]).ravel())[:3].tolist() for k in right}
    problems, _ = verify(s, wrong, _native_tolerance(chosen, mutant), extra)
    assert problems, f"the oracle passes {mutant}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_truth_computes_in_longdouble(family: str, dtype: Any) -> None:
    chosen = FAMILIES[family]
    case = family_case(np.random.default_rng(1), family, dtype=dtype)
    truth = chosen.truth(case.layer) if chosen.truth is not None else case.layer
    layer, inputs = widened(truth, case.inputs, WIDE)
    output = np.asarray(copy.deepcopy(layer).forward(*inputs))
    assert output.dtype == WIDE
    found = gradients(layer, inputs, dtype=None)
    assert found and {k: v.dtype for k, v in found.items()} == dict.fromkeys(found, WIDE)


@pytest.mark.parametrize(
    "family", [f for f, family in FAMILIES.items() if family.truth is not None]
)
def test_a_truth_changes_the_precision_and_nothing_else(family: str) -> None:
    chosen = FAMILIES[family]
    assert chosen.truth is not None
    for seed in SEEDS:
        case = family_case(np.random.default_rng(seed), family, dtype=np.float64)
        narrow = np.asarray(copy.deepcopy(case.layer).forward(*case.inputs))
        wide = np.asarray(chosen.truth(case.layer).forward(*case.inputs))
        assert wide.dtype == np.result_type(*[x for x in case.inputs if isinstance(x, np.ndarray)])
        # float32's rounding of the computation, and nothing the size of a formula's term.
        np.testing.assert_allclose(narrow, wide, rtol=1e-5, atol=1e-5 * np.max(np.abs(wide)))
        assert not np.array_equal(narrow, wide), "the truth narrows as the layer does"
