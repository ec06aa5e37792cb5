"""Whether gradcheck's error bars are true: every numerical value against the true gradient.

A numerical value's error bar is a promise: for every element gradcheck differentiates
numerically, ``|numerical − true| ≤ error bar`` (issue 19; target: fewer than 1 element in
10,000 outside, in every family of layer, for every engine). This module measures that
promise on *correct* layers, where the true gradient is known:

* the check is ``gradcheck.check(layer, *inputs, seed=seed, **options)``;
* the upstream gradient is the one the check used, drawn by gradcheck's own code — the
  same target (``make_target``) and analytic pass (``analytic_pass(...).dout``) — so the
  measurement follows the core wherever it changes how ``dout`` is drawn;
* the truth is the correct layer's own backward, run on a working copy whose variables
  are ``np.longdouble`` (80-bit on x86-64: ε ≈ 1.1e-19, 2,048 times finer than float64's).
  A layer that cannot compute in it (``scipy.special``, float32 buffers) is computed by its
  family's ``truth`` twin when it has one, else in float64, and the case says which
  (``truth_dtype``); when nothing works the case is skipped, and counted.

Only elements the check differentiated numerically are compared: a finite numerical value
whose status is not UNCHECKED. Fast mode sees most elements through random directions only
(their numerical value is NaN); they are counted as *excluded*. Elements the check skipped
as kinks are counted apart: there the true gradient is a subgradient, not a derivative, and
a numerical value need not be near it.

An element is *outside its bar* when ``true_error > bar`` (``bar`` is the report's
``error``), and it is counted at twice the bar too, to show how far a broken promise
goes.

The module runs past 500 lines because it holds the whole measurement — the sources of
cases, the truth, the per-element comparison and the tallies — that both the benchmark
(``benchmarks/bench_calibration.py``) and the quick test (``tests/test_calibration.py``)
read; split, each would import half of one idea from several places.
"""

from __future__ import annotations

import copy
import heapq
import re
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from catalogue import FAMILIES, family_case
from mutants import Case, correct_case
from numpy.typing import NDArray
from stressors import STRESSORS, stress_case

import gradcheck
from gradcheck.analytic.run import analytic_pass
from gradcheck.conventions.randomness import global_random_state_kept
from gradcheck.conventions.registry import make_target
from gradcheck.conventions.target import Target, TargetRequest
from gradcheck.engine.spec import ENGINES
from gradcheck.report.records import VariableReport
from gradcheck.vocabulary import Status

__all__ = [
    "CHAINS",
    "EXTENDED",
    "TRUTH_DTYPE",
    "CaseResult",
    "NoTruthError",
    "Source",
    "Tally",
    "Truth",
    "VariableElements",
    "compare_report",
    "engine_name",
    "measure",
    "sources",
    "true_gradients",
]

CHAINS = "chains"

#: The precision the truth is computed in: ``np.longdouble`` where it is wider than
#: float64 (80-bit x87 on x86-64), else float64 (``EXTENDED`` is then False and the
#: truth rounds like the numerical values it judges: a warning says so).
EXTENDED = bool(np.finfo(np.longdouble).eps < np.finfo(np.float64).eps)
TRUTH_DTYPE: np.dtype = np.dtype(np.longdouble if EXTENDED else np.float64)
if not EXTENDED:
    warnings.warn(
        "np.longdouble is float64 on this machine: the truth is computed in "
        "float64 and rounds as much as the complex step it judges",
        stacklevel=1,
    )

STATUS_NAMES = {
    Status.OK: "match",
    Status.MISMATCH: "mismatch",
    Status.KINK: "kink",
    Status.UNCHECKED: "unchecked",
    Status.UNRESOLVED: "unresolved",
}

Array = NDArray[Any]


def describe_dtype(dtype: np.dtype) -> str:
    """``float128 (80-bit extended, eps 1.1e-19)``: what a dtype really holds (a
    ``float128`` on x86-64 is the x87's 80 bits, padded)."""
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    bits = {np.finfo(np.float32).nmant: 32, np.finfo(np.float64).nmant: 64}.get(info.nmant)
    if bits is None:
        bits = 80 if info.nmant == 63 else 1 + info.nexp + info.nmant
    precision = "extended" if bits == 80 else ("double" if bits == 64 else "")
    held = f"{bits}-bit {precision}".strip()
    return f"{dtype.name} ({held}, eps {float(info.eps):.1e})"


# ---------------------------------------------------------------------------------------
# Where cases come from


@dataclass(frozen=True)
class Source:
    """A family of correct cases: ``draw(rng)`` gives one; ``truth(layer)`` (optional) a
    twin computing the same mathematics without narrowing to float32."""

    name: str
    draw: Callable[[np.random.Generator], Case]
    truth: Callable[[Any], Any] | None = None


def _unbuffered_rnn(layer: Any) -> Any:
    """``rnn-float32-buffers``' twin, until the catalogue's family carries one: the same
    TimeRNN with no float32 buffers."""
    twin = copy.deepcopy(layer)
    twin.buffer = None
    return twin


# Twins for catalogue families that need one and do not (yet) carry a ``truth`` field.
_INTERIM_TRUTH: dict[str, Callable[[Any], Any]] = {"rnn-float32-buffers": _unbuffered_rnn}


def _family_draw(name: str) -> Callable[[np.random.Generator], Case]:
    return lambda rng: family_case(rng, name)


def _stress_draw(name: str) -> Callable[[np.random.Generator], Case]:
    return lambda rng: stress_case(rng, name)


def sources() -> dict[str, Source]:
    """Every family there is: the catalogue's (whatever it holds when this runs), the
    chains of ``mutants.py``, and the stressors of ``stressors.py``."""
    found: dict[str, Source] = {}
    for name, family in FAMILIES.items():
        truth = getattr(family, "truth", None) or _INTERIM_TRUTH.get(name)
        found[name] = Source(name, _family_draw(name), truth)
    found[CHAINS] = Source(CHAINS, correct_case)
    for name, stressor in STRESSORS.items():
        # A catalogue family of the same name keeps it: the stressor is told apart.
        shown = name if name not in found else f"stress-{name}"
        found[shown] = Source(shown, _stress_draw(name), stressor.truth)
    return found


def draw(source: Source, seed: int) -> Case:
    """Case ``seed`` of ``source``, drawn from ``np.random.default_rng(seed)``."""
    return source.draw(np.random.default_rng(seed))


# ---------------------------------------------------------------------------------------
# The truth


class NoTruthError(Exception):
    """No trustworthy true gradient for a case (the reason is the message)."""


@dataclass
class Truth:
    """The true gradients of one case, by variable name, in ``dtype``.

    ``via`` is ``"layer"`` (the layer's own backward) or ``"twin"`` (its family's truth
    hook); ``dout`` is the upstream gradient the check used. ``uncertainty`` bounds each
    element's own error (see :func:`true_gradients`); None where it could not be measured.
    """

    gradients: dict[str, Array]
    dtype: np.dtype
    via: str
    dout: Array
    uncertainty: dict[str, Array] | None = None


# The next narrower precision, whose run estimates the truth's own rounding.
_NARROWER: dict[np.dtype, np.dtype] = {
    np.dtype(np.longdouble): np.dtype(np.float64),
    np.dtype(np.float64): np.dtype(np.float32),
}
# How many times the measured rounding, scaled to the finer precision, the truth may be
# off: rounding errors grow with ε, but not exactly in proportion.
_UNCERTAINTY_MARGIN = 8.0


def _finer(dtype: np.dtype, than: np.dtype) -> bool:
    """Whether ``dtype`` holds at least ``than``'s precision (narrowing shows here)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "fc":
        return False
    return bool(np.finfo(dtype).eps <= np.finfo(than).eps)


def _run_in(
    target: Target, names: Mapping[str, tuple[int, ...]], dtype: np.dtype, dout: Array
) -> dict[str, Array]:
    """Forward and backward on a working copy of ``target`` whose variables are ``dtype``.

    Raises :class:`NoTruthError` when the copy cannot run in ``dtype``, narrows its output or a
    gradient to a coarser dtype, or returns something that is not the gradient asked for.
    """
    try:
        instance = target.instantiate(dtype)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            output = np.asarray(instance.forward())
            raw = instance.backward(np.asarray(dout).astype(dtype))
    except Exception as error:  # a function with no loop for this dtype (scipy.special)
        raise NoTruthError(f"{dtype.name}: {type(error).__name__}: {error}") from error
    if output.shape != np.shape(dout):
        raise NoTruthError(f"{dtype.name}: output of shape {output.shape}, dout {np.shape(dout)}")
    if output.size and not _finer(output.dtype, dtype):
        raise NoTruthError(f"{dtype.name}: the output came back as {output.dtype}")
    found: dict[str, Array] = {}
    for name, shape in names.items():
        value = raw.get(name)
        if value is None:
            raise NoTruthError(f"{dtype.name}: no gradient for {name}")
        gradient = np.asarray(value)
        if gradient.shape != shape:
            if gradient.size != int(np.prod(shape)) or gradient.size != 1:
                raise NoTruthError(f"{dtype.name}: {name} came back of shape {gradient.shape}")
            gradient = gradient.reshape(shape)
        if gradient.size and not _finer(gradient.dtype, dtype):
            raise NoTruthError(
                f"{dtype.name}: the gradient of {name} came back as {gradient.dtype}"
            )
        if not np.all(np.isfinite(gradient)):
            raise NoTruthError(f"{dtype.name}: the gradient of {name} is not finite")
        found[name] = gradient.astype(dtype)
    return found


def true_gradients(
    layer: Any, inputs: tuple[Any, ...], seed: int, twin: Callable[[Any], Any] | None = None
) -> Truth:
    """The true gradients of ``layer`` at ``inputs`` for the ``dout`` a check with
    ``seed`` uses.

    In :data:`TRUTH_DTYPE`, else float64; computed by ``twin(layer)`` instead of the
    layer when a twin is given (a layer with float32 buffers would narrow the truth
    without saying so). The global ``np.random`` state is left as it was.

    Raises
    ------
    NoTruthError
        When neither precision gives a gradient (reasons in the message).
    gradcheck.CheckError
        When gradcheck cannot make a target of ``layer`` (the check refuses it too).
    """
    with global_random_state_kept():
        target = make_target(TargetRequest(layer, inputs, seed=seed))
        dout = analytic_pass(target, seed=seed, allow_inplace=True).dout
        names = {var.name: tuple(var.value.shape) for var in target.variables}
        subject, via = target, "layer"
        if twin is not None:
            subject, via = make_target(TargetRequest(twin(layer), inputs, seed=seed)), "twin"
            twinned = {var.name: tuple(var.value.shape) for var in subject.variables}
            if twinned != names:
                raise NoTruthError(f"the twin's variables {twinned} are not the layer's {names}")
        reasons = []
        precisions: list[np.dtype] = [TRUTH_DTYPE, np.dtype(np.float64)]
        for dtype in dict.fromkeys(precisions):
            try:
                gradients = _run_in(subject, names, dtype, dout)
            except NoTruthError as error:
                reasons.append(str(error))
                continue
            return Truth(
                gradients, dtype, via, dout, _uncertainty(subject, names, dtype, dout, gradients)
            )
    raise NoTruthError("; ".join(reasons))


def _uncertainty(
    subject: Target,
    names: Mapping[str, tuple[int, ...]],
    dtype: np.dtype,
    dout: Array,
    gradients: Mapping[str, Array],
) -> dict[str, Array] | None:
    """How far the truth computed in ``dtype`` may be from the exact gradient.

    The same computation in the next narrower precision rounds ``ε_narrow / ε`` times as
    much; its distance from the truth, scaled back (with a margin), bounds the truth's own
    rounding. Where offsets or cancellation cost the truth digits too (a LayerNorm at 1e6),
    this says so, and an element only counts as outside its bar beyond it. None when the
    narrower run is impossible.
    """
    narrower = _NARROWER.get(np.dtype(dtype))
    if narrower is None:
        return None
    try:
        coarse = _run_in(subject, names, narrower, dout)
    except NoTruthError:
        return None
    scale = _UNCERTAINTY_MARGIN * float(np.finfo(dtype).eps) / float(np.finfo(narrower).eps)
    return {
        name: (np.abs(gradients[name] - coarse[name].astype(dtype)) * scale).astype(np.float64)
        for name in names
    }


# ---------------------------------------------------------------------------------------
# One report against the truth

# Words of a method label that name an engine: gradcheck's engines, and the fit over
# several steps (engine/fitted.py), which is an estimate of its own.
_ENGINE_WORDS = (*ENGINES, "fitted")
_WORD = re.compile(r"[a-z]+")


def engine_name(method: str) -> str:
    """The engines a variable's method label names, in order: ``complex``, or
    ``complex+richardson`` when several took part (``"complex, 6 colours (per-sample),
    +19 richardson"``); ``unknown`` when it names none."""
    named = [w for w in _WORD.findall(method.lower()) if w in _ENGINE_WORDS]
    return "+".join(dict.fromkeys(named)) or "unknown"


def mode_name(method: str) -> str:
    """How a variable was covered, read from its label: ``fast`` (directions, elements
    named by group testing), ``floor`` (central differences at one step with sampled error
    bars) or ``full``."""
    if method.startswith("fast") and "→ full" not in method:
        return "fast"
    return "floor" if "at one step" in method else "full"


def element_engines(report: VariableReport) -> Array:
    """Each element's engine: the report's own per-element ``engines`` when it has them,
    else the one read from the variable's method label for every element."""
    engines = getattr(report, "engines", None)
    size = int(np.prod(report.shape))
    if engines is not None:
        labels = np.asarray(engines, dtype=str).reshape(-1)
        if labels.size == size:
            return np.array([engine_name(str(e)) if e else "unknown" for e in labels])
    return np.full(size, engine_name(report.method))


@dataclass
class VariableElements:
    """One variable's elements, flat, against the truth.

    ``differentiated``: checked, with a finite numerical value and error bar;
    ``compared``: those of them not skipped as kinks (at a kink the truth is a
    subgradient, which a numerical value need not be near); ``excluded``: checked or
    screened with no numerical value (fast mode's directions). ``true_error`` and ``ratio``
    (``true_error / bar``; 0 where both are 0) are computed in the truth's precision;
    ``uncertainty`` is the truth's own (0 where unmeasured).
    """

    name: str
    shape: tuple[int, ...]
    method: str
    engines: Array
    numerical: Array
    truth: Array
    analytic: Array
    bar: Array
    status: Array
    differentiated: NDArray[np.bool_]
    compared: NDArray[np.bool_]
    excluded: NDArray[np.bool_]
    true_error: Array
    ratio: Array
    uncertainty: Array

    def outside(self, weight: float = 1.0, *, kinks: bool = False) -> NDArray[np.bool_]:
        """Compared elements (or, with ``kinks``, the kinks) whose true error exceeds
        ``weight`` error bars, by more than the truth's own uncertainty."""
        chosen = self.differentiated & (self.status == Status.KINK) if kinks else self.compared
        with np.errstate(invalid="ignore"):
            beyond = self.true_error > weight * self.bar + self.uncertainty
        found: NDArray[np.bool_] = chosen & beyond
        return found

    def coarse_truth(self) -> NDArray[np.bool_]:
        """Compared elements whose truth is not ten times finer than their bar."""
        coarse: NDArray[np.bool_] = self.compared & (self.uncertainty > 0.1 * self.bar)
        return coarse

    def index(self, flat: int) -> tuple[int, ...]:
        """The element's index in the variable's shape."""
        return tuple(int(i) for i in np.unravel_index(flat, self.shape))


def compare_variable(
    report: VariableReport, truth: Array, uncertainty: Array | None = None
) -> VariableElements:
    """Every element of one variable's report against its true gradient.

    Raises :class:`NoTruthError` when the truth is not shaped like the variable (comparing a
    transposed or flattened array would measure nothing).
    """
    shape = tuple(report.shape)
    if tuple(np.shape(truth)) != shape:
        raise NoTruthError(f"the truth of {report.name} has shape {np.shape(truth)}, not {shape}")
    exact = np.asarray(truth).reshape(-1)
    numerical = np.asarray(report.numerical, dtype=np.float64).reshape(-1)
    bar = np.asarray(report.error, dtype=np.float64).reshape(-1)
    status = np.asarray(report.status).reshape(-1)
    checked = status != Status.UNCHECKED
    # Fast mode's elements are screened through directions, not checked: no value of theirs.
    seen = checked | (report.screening is not None)
    finite = np.isfinite(numerical)
    differentiated = checked & finite & ~np.isnan(bar)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        error = np.abs(numerical.astype(exact.dtype) - exact)
        ratio = np.where(error == 0, 0.0, error / bar.astype(exact.dtype))
    own = (
        np.zeros(exact.shape)
        if uncertainty is None
        else np.nan_to_num(np.asarray(uncertainty, dtype=np.float64).reshape(-1))
    )
    return VariableElements(
        name=report.name,
        shape=shape,
        method=report.method,
        engines=element_engines(report),
        numerical=numerical,
        truth=exact,
        analytic=np.asarray(report.analytic, dtype=np.float64).reshape(-1),
        bar=bar,
        status=status,
        differentiated=differentiated,
        compared=differentiated & (status != Status.KINK),
        excluded=seen & ~finite,
        true_error=np.where(differentiated, error, np.nan).astype(np.float64),
        ratio=np.where(differentiated, ratio, np.nan).astype(np.float64),
        uncertainty=own,
    )


def compare_report(report: gradcheck.Report, truth: Truth) -> list[VariableElements]:
    """Every checked variable of ``report`` against ``truth``, paired by name."""
    missing = [v.name for v in report.variables if v.name not in truth.gradients]
    if missing:
        raise NoTruthError(f"no truth for {', '.join(missing)}")
    own = truth.uncertainty or {}
    return [compare_variable(v, truth.gradients[v.name], own.get(v.name)) for v in report.variables]


# ---------------------------------------------------------------------------------------
# One case


@dataclass
class CaseResult:
    """One case measured: its variables' elements, or why it was skipped."""

    family: str
    seed: int
    dtype: str
    description: str
    truth_dtype: str = ""
    via: str = ""
    variables: list[VariableElements] = field(default_factory=list)
    skipped: str | None = None
    verdict: str = ""


def measure(source: Source, seed: int, **options: Any) -> CaseResult:
    """Check case ``seed`` of ``source`` (with ``options``) and compare it with the truth."""
    case = draw(source, seed)
    result = CaseResult(source.name, seed, str(case.dtype), case.description)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = gradcheck.check(case.layer, *case.inputs, seed=seed, **options)
        truth = true_gradients(case.layer, case.inputs, seed, source.truth)
        result.variables = compare_report(report, truth)
    except gradcheck.CheckError as error:
        result.skipped = f"refused: {type(error).__name__}"
        return result
    except NoTruthError as error:
        result.skipped = f"no truth: {error}"
        return result
    except Exception as error:  # a crash on a correct layer: counted, and shown by --show
        result.skipped = f"crashed: {type(error).__name__}: {error}"
        return result
    result.truth_dtype, result.via, result.verdict = (
        truth.dtype.name,
        truth.via,
        str(report.verdict),
    )
    return result


# ---------------------------------------------------------------------------------------
# Tallies


@dataclass(order=True)
class Worst:
    """One element far outside its bar, with what reproduces it."""

    ratio: float
    family: str = field(compare=False)
    seed: int = field(compare=False)
    dtype: str = field(compare=False)
    variable: str = field(compare=False)
    index: tuple[int, ...] = field(compare=False)
    status: str = field(compare=False)
    numerical: float = field(compare=False)
    truth: float = field(compare=False)
    analytic: float = field(compare=False)
    bar: float = field(compare=False)
    uncertainty: float = field(compare=False)
    engine: str = field(compare=False)
    method: str = field(compare=False)


@dataclass
class Group:
    """Counts of one group of elements (a family, an engine...)."""

    checked: int = 0
    compared: int = 0
    outside1: int = 0
    outside2: int = 0
    unresolved: int = 0
    excluded: int = 0
    kinks: int = 0
    kinks_outside1: int = 0
    coarse: int = 0
    ratios: list[Array] = field(default_factory=list)

    def ratio_quantiles(self) -> tuple[float, float]:
        """Median and maximum of ``true_error / bar`` over the compared elements."""
        values = np.concatenate(self.ratios) if self.ratios else np.empty(0)
        if not values.size:
            return float("nan"), float("nan")
        return float(np.median(values)), float(np.max(values))


class Tally:
    """Elements counted by family, family × dtype, engine, mode and status; the worst
    elements; the cases by truth precision, and the skipped ones by reason."""

    # The worst elements kept per family: each variable of a case gives at most its worst
    # one, so that one case's many elements do not hide the other causes.
    KEEP = 4

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], Group] = defaultdict(Group)
        self.worst: dict[str, list[Worst]] = defaultdict(list)
        self.truths: Counter[tuple[str, str]] = Counter()
        self.skipped: Counter[tuple[str, str]] = Counter()
        self.cases: Counter[str] = Counter()
        self.verdicts: Counter[tuple[str, str]] = Counter()

    def add(self, result: CaseResult) -> None:
        """Count one case."""
        self.cases[result.family] += 1
        if result.skipped is not None:
            self.skipped[result.family, result.skipped.split(":")[0]] += 1
            return
        self.truths[result.family, f"{result.truth_dtype} ({result.via})"] += 1
        self.verdicts[result.family, result.verdict] += 1
        for var in result.variables:
            modes = mode_name(var.method)
            for engine in dict.fromkeys(var.engines.tolist()):
                mine = var.engines == engine
                labels = [
                    ("all", "all"),
                    ("family", result.family),
                    ("family×dtype", f"{result.family} {result.dtype}"),
                    ("engine", engine),
                    ("mode", modes),
                    ("truth", result.truth_dtype),
                ]
                for label in labels:
                    self._count(self.groups[label], var, mine)
                for code in np.unique(var.status[mine]):
                    name = STATUS_NAMES.get(Status(int(code)), str(code))
                    self._count(self.groups["status", name], var, mine & (var.status == code))
            self._keep_worst(result, var)

    @staticmethod
    def _count(group: Group, var: VariableElements, mask: NDArray[np.bool_]) -> None:
        compared = mask & var.compared
        group.checked += int((mask & (var.status != Status.UNCHECKED)).sum())
        group.compared += int(compared.sum())
        group.outside1 += int((var.outside(1.0) & mask).sum())
        group.outside2 += int((var.outside(2.0) & mask).sum())
        group.unresolved += int((mask & (var.status == Status.UNRESOLVED)).sum())
        group.excluded += int((mask & var.excluded).sum())
        group.kinks += int((mask & (var.status == Status.KINK)).sum())
        group.kinks_outside1 += int((var.outside(1.0, kinks=True) & mask).sum())
        group.coarse += int((var.coarse_truth() & mask).sum())
        group.ratios.append(var.ratio[compared])

    def _keep_worst(self, result: CaseResult, var: VariableElements) -> None:
        beyond = np.flatnonzero(var.outside(1.0))
        if not beyond.size:
            return
        flat = int(beyond[np.argmax(var.ratio[beyond])])
        worst = Worst(
            float(var.ratio[flat]),
            result.family,
            result.seed,
            result.dtype,
            var.name,
            var.index(flat),
            STATUS_NAMES.get(Status(int(var.status[flat])), "?"),
            float(var.numerical[flat]),
            float(var.truth[flat]),
            float(var.analytic[flat]),
            float(var.bar[flat]),
            float(var.uncertainty[flat]),
            str(var.engines[flat]),
            var.method,
        )
        kept = self.worst[result.family]
        if len(kept) < self.KEEP:
            heapq.heappush(kept, worst)
        else:
            heapq.heappushpop(kept, worst)

    def labels(self, kind: str) -> list[str]:
        """The labels of one kind of group, sorted."""
        return sorted(label for k, label in self.groups if k == kind)

    def worst_first(self) -> list[Worst]:
        """The worst elements kept, by family, largest ratio first within each."""
        return [
            w for family in sorted(self.worst) for w in sorted(self.worst[family], reverse=True)
        ]


def run(chosen: Iterable[Source], seeds: Iterable[int], **options: Any) -> tuple[Tally, float]:
    """Measure every seed of every source; return the tally and the seconds it took."""
    tally = Tally()
    started = time.perf_counter()
    seeds = list(seeds)
    for source in chosen:
        for seed in seeds:
            tally.add(measure(source, seed, **options))
    return tally, time.perf_counter() - started
