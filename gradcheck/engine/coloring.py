"""Coloured full checks: move many elements at once when their outputs do not overlap.

Most layers are sparse in a simple way. Row ``k`` of an Affine output depends only on row
``k`` of its input (per-sample), ``Sigmoid`` maps element to element, column ``j`` of
``W`` only reaches output column ``j``. When elements ``i`` and ``j`` affect disjoint sets
of outputs, one forward pass with both perturbed yields both derivatives: the derivative
of ``L = Σ dout ⊙ f`` for ``i`` is read from the outputs only ``i`` affects,
``Σ_{o ∈ S_i} dout_o Δf_o``. Grouping elements into *colours* of mutually independent
elements (Curtis, Powell & Reid 1974; scipy's ``approx_derivative(sparsity=...)``) turns
``n`` stencils into one per colour: an elementwise layer needs one colour whatever its
size, a per-sample layer one per feature.

Patterns
    A pattern pairs some axes of the variable with equally long axes of the output
    (:class:`Colouring`): element ``i`` may affect output ``o`` only if their indices
    agree along every paired axis. A *block* is one value of the paired indices; each
    colour holds exactly one element of every block. Elementwise pairs every axis with
    itself; per-sample pairs axis 0 with axis 0; ``W (D, M)`` of Affine pairs its axis 1
    with the output's axis 1.

Never trusted unverified
    :func:`candidates` lists the patterns the shapes allow, fewest colours first. A cheap
    NaN probe (:func:`nan_consistent`: NaN in a random half of the blocks must not reach
    the other half's outputs) discards the obviously wrong ones — BatchNorm in training
    mode mixes rows through the batch mean, so it is never coloured per sample. The
    pattern that survives is then *verified* by :func:`coloured_gradient` itself: every
    colour pass also accumulates the Jacobian-vector product along a random direction
    ``u`` that the pattern predicts (each output change credited to its block's element),
    and one extra directional pass measures it. A hidden dependency of output ``o`` on
    an element outside its block changes the measurement but not the prediction, so the
    two disagree beyond their error estimates and the caller falls back to the plain
    element-by-element path. A wrong grouping costs time, never a wrong verdict.

The module runs past 500 lines because the patterns, their NaN probe, the coloured
stencils and their verification share one data model (:class:`Colouring`) and its private
helpers; apart, they would only import each other.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from gradcheck.engine.numeric import (
    NumericalGradient,
    complex_from_values,
    random_direction,
    stencil_from_table,
)
from gradcheck.engine.passes import TASKS, Runner, Runners, chunks
from gradcheck.engine.spec import COMPLEX_STEP, NOISE_FACTOR, Engine, Stencil, engine
from gradcheck.engine.steps import step_sizes

__all__ = [
    "Coloured",
    "Colouring",
    "candidates",
    "coloured_gradient",
    "fewest_colours",
    "nan_consistent",
]

# Verification slack beyond the error estimates, relative to the terms' size: far below
# any gradient tolerance (1e-5), far above rounding. Patterns pair at most _MAX_RANK axes.
_VERIFY_RELATIVE, _MAX_RANK = 1e-9, 6


@dataclass(frozen=True)
class Colouring:
    """A block pattern between a variable and the output, and its colours.

    Attributes
    ----------
    pairs : tuple of (int, int)
        ``(variable axis, output axis)`` pairs of equal length.
    element_block, output_block : ndarray of intp
        The block of every element of the variable and of every output element (flat).
    order : ndarray of intp
        Flat element indices sorted by colour, then block: colour ``c`` is
        ``order[c * blocks:(c + 1) * blocks]``, its ``b``-th element in block ``b``.
    blocks, colours : int
        How many blocks (elements per colour) and colours (passes per stencil offset).
    """

    pairs: tuple[tuple[int, int], ...]
    element_block: NDArray[np.intp]
    output_block: NDArray[np.intp]
    order: NDArray[np.intp]
    blocks: int
    colours: int

    @property
    def name(self) -> str:
        """How reports call the pattern."""
        if all(a == b for a, b in self.pairs) and self.colours == 1:
            return "elementwise"
        if self.pairs == ((0, 0),):
            return "per-sample"
        # Elements that differ along these axes of the variable never meet in an output.
        axes = ",".join(str(a) for a, _ in self.pairs)
        return f"by axis {axes}" if len(self.pairs) == 1 else f"by axes {axes}"

    def members(self, colour: int) -> NDArray[np.intp]:
        """Flat indices of the elements of ``colour``, the ``b``-th in block ``b``."""
        return self.order[colour * self.blocks : (colour + 1) * self.blocks]


def _block_ids(shape: tuple[int, ...], axes: Sequence[int]) -> NDArray[np.intp]:
    """For every flat element of ``shape``, the flat index of its ``axes`` coordinates."""
    if not axes:
        return np.zeros(math.prod(shape), dtype=np.intp)
    grids = np.indices(shape).reshape(len(shape), -1)
    return np.ravel_multi_index(
        tuple(grids[a] for a in axes), tuple(shape[a] for a in axes)
    ).astype(np.intp)


def _make(
    var_shape: tuple[int, ...], out_shape: tuple[int, ...], pairs: tuple[tuple[int, int], ...]
) -> Colouring:
    var_axes = [a for a, _ in pairs]
    rest = [a for a in range(len(var_shape)) if a not in var_axes]
    element_block = _block_ids(var_shape, var_axes)
    element_colour = _block_ids(var_shape, rest)
    blocks = math.prod(var_shape[a] for a in var_axes)
    colours = math.prod(var_shape[a] for a in rest)
    return Colouring(
        pairs=pairs,
        element_block=element_block,
        output_block=_block_ids(out_shape, [b for _, b in pairs]),
        order=np.lexsort((element_block, element_colour)).astype(np.intp),
        blocks=blocks,
        colours=colours,
    )


def _pairings(
    var_shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> list[tuple[tuple[int, int], ...]]:
    """Every non-empty injective pairing of variable axes with equally long output axes."""
    options = [
        [b for b, length in enumerate(out_shape) if length == size and size >= 2]
        for size in var_shape
    ]
    found = []
    for choice in itertools.product(*[[None, *axes] for axes in options]):
        chosen = [b for b in choice if b is not None]
        if chosen and len(set(chosen)) == len(chosen):
            found.append(tuple((a, b) for a, b in enumerate(choice) if b is not None))
    return found


def candidates(
    var_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    *,
    max_colours: int | None = None,
    limit: int | None = None,
) -> list[Colouring]:
    """Block patterns the shapes allow, fewest colours first (unverified!).

    Ties prefer pairing an axis with the same axis of the output (per-sample before
    anything exotic). A scalar output allows none. Only patterns of at most
    ``max_colours`` colours are kept, and only the first ``limit`` are built.
    """
    if not out_shape or len(var_shape) > _MAX_RANK or len(out_shape) > _MAX_RANK:
        return []
    size = math.prod(var_shape)
    ranked = []
    for pairs in _pairings(var_shape, out_shape):
        colours = size // math.prod(var_shape[a] for a, _ in pairs)
        if max_colours is None or colours <= max_colours:
            crossed = sum(a != b for a, b in pairs)
            ranked.append((colours, crossed, -len(pairs), pairs))
    ranked.sort()
    return [_make(var_shape, out_shape, pairs) for *_, pairs in ranked[:limit]]


def fewest_colours(var_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """The colours of the best pattern the shapes allow (the size when none): a bound."""
    size = math.prod(var_shape)
    if not out_shape or len(var_shape) > _MAX_RANK or len(out_shape) > _MAX_RANK:
        return size
    return min(
        [
            size // math.prod(var_shape[a] for a, _ in pairs)
            for pairs in _pairings(var_shape, out_shape)
        ]
        + [size]
    )


def nan_consistent(
    runner: Runner, name: str, colouring: Colouring, rng: np.random.Generator, probes: int = 2
) -> bool:
    """Whether NaN in a random half of the blocks stays in those blocks' outputs.

    A cheap filter (one pass per probe) that rejects patterns a layer plainly violates;
    it can miss a dependency (a NaN swallowed by ``np.where``), which is why
    :func:`coloured_gradient` verifies the pattern it uses. A layer that fails on NaN
    gets no colouring.
    """
    work = runner.arrays[name]
    saved = work.copy()
    view = work.reshape(-1)
    for _ in range(probes):
        chosen = rng.random(colouring.blocks) < 0.5
        if colouring.blocks >= 2:
            chosen[rng.integers(colouring.blocks)] = True
            chosen[rng.integers(colouring.blocks)] = False
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                view[chosen[colouring.element_block]] = np.nan
                output = runner.output()
        except Exception:  # a layer that cannot run on NaN is simply not coloured
            return False
        finally:
            np.copyto(work, saved)
        if output.size != colouring.output_block.size:
            return False
        reached = ~np.isfinite(output).ravel()
        if np.any(reached & ~chosen[colouring.output_block]):
            return False
    return True


@dataclass
class Coloured:
    """The outcome of a coloured pass over one variable.

    ``numerical`` is None when the verification refuted the pattern; ``reason`` says how.
    """

    numerical: NumericalGradient | None
    reason: str


@dataclass
class _Partial:
    """What one task returns: its table rows and its share of the predicted JVP.

    ``predicted[:, k]`` sums, over the task's colours, the output's change at stencil
    offset ``k`` weighted by the random direction's entry of the element that owns each
    output's block. The engine's formula turns them into the JVP the pattern predicts (it
    is linear in its table).
    """

    rows: NDArray
    predicted: NDArray
    magnitude: NDArray
    weight_sum: NDArray


def coloured_gradient(
    runners: Runners,
    name: str,
    colouring: Colouring,
    weights: NDArray,
    *,
    method: str,
    scale: float,
    rng: np.random.Generator,
    eps: float | None = None,
    terms: NDArray | None = None,
    multiplier: NDArray | float = 1.0,
    noise_ratio: float = 1.0,
    lands_on: np.dtype | None = None,
) -> Coloured:
    """The gradient of ``L = Σ weights ⊙ f`` for every element, one stencil per colour.

    ``method`` names an engine of :data:`gradcheck.engine.spec.ENGINES`: a real one
    (real working copies) or ``"complex"`` (complex ones). The numbers equal those of the
    element-by-element engines (same steps, same error estimates, one-sided derivatives
    for kinks) as long as the pattern holds — which the extra directional pass verifies.
    ``eps`` (unit roundoff of ``f``'s computation) and ``terms`` (size of each element's
    chain-rule terms, shaped like the variable) refine the error bars as they do for the
    element engines; ``multiplier`` scales the steps as it does theirs, and ``noise_ratio``
    (the forward pass's measured rounding in units of its last place) widens what the
    verification allows for rounding.
    """
    x = runners.main.arrays[name]
    w = weights.astype(np.float64).ravel()
    r = random_direction(rng, x.size)
    if eps is None:
        eps = float(np.finfo(x.real.dtype).eps)
    rounds = eps * max(noise_ratio, 1.0)
    if engine(method).arithmetic == "complex":
        return _complex(runners, name, colouring, w, r, eps, terms, rounds)
    return _real(runners, name, colouring, w, r, method, eps, multiplier, rounds, lands_on)


def _block_sums(colouring: Colouring, values: NDArray) -> NDArray:
    return np.bincount(colouring.output_block, weights=values, minlength=colouring.blocks)


@dataclass(frozen=True)
class _RealPass:
    """The fixed inputs of the real colour passes of one variable."""

    name: str
    colouring: Colouring
    spec: Engine
    w: NDArray
    r: NDArray
    h: NDArray
    base: NDArray  # the output at the point, in the precision the layer computes in
    eps: float

    def changes(self, runner: Runner) -> NDArray:
        """The output's change from the point, in float64: subtracted in the layer's own
        precision first, so that a wider precision's digits are not rounded away."""
        change: NDArray = (runner.output().ravel() - self.base).astype(np.float64)
        return change

    def run(self, runner: Runner, colours: NDArray[np.intp]) -> _Partial:
        """One stencil per colour in ``colours``: table rows and the predicted JVP."""
        work = runner.arrays[self.name].reshape(-1)
        saved = work.copy()
        blocks, offsets = self.colouring.blocks, self.spec.offsets
        rows = np.empty((colours.size * blocks, len(offsets)))
        predicted = np.zeros((self.w.size, len(offsets)))
        magnitude, weight_sum = np.zeros(self.w.size), np.zeros(self.w.size)
        for k, colour in enumerate(colours):
            members = self.colouring.members(int(colour))
            owner_r = self.r[members][self.colouring.output_block]
            outputs = np.empty((self.w.size, len(offsets)))
            try:
                for col, offset in enumerate(offsets):
                    work[members] = saved[members] + offset * self.h[members]
                    outputs[:, col] = self.changes(runner)
            finally:
                work[members] = saved[members]
            rows[k * blocks : (k + 1) * blocks] = np.stack(
                [
                    _block_sums(self.colouring, self.w * outputs[:, col])
                    for col in range(len(offsets))
                ],
                axis=1,
            )
            predicted += owner_r[:, None] * outputs
            magnitude += np.abs(owner_r * self.spec.combine(0.0, outputs, 1.0).estimate)
            weight_sum += np.abs(owner_r)
        return _Partial(rows, predicted, magnitude, weight_sum)

    def measure(self, runner: Runner) -> Stencil:
        """The JVP along ``u = r ⊙ h`` itself: one more stencil, all elements moved."""
        work = runner.arrays[self.name].reshape(-1)
        saved = work.copy()
        outputs = np.empty((self.w.size, len(self.spec.offsets)))
        try:
            for col, offset in enumerate(self.spec.offsets):
                work[:] = saved + offset * (self.r * self.h)
                outputs[:, col] = self.changes(runner)
        finally:
            work[:] = saved
        return self.spec.combine(0.0, outputs, 1.0)


def _real(
    runners: Runners,
    name: str,
    colouring: Colouring,
    w: NDArray,
    r: NDArray,
    method: str,
    eps: float,
    multiplier: NDArray | float,
    rounds: float,
    lands_on: np.dtype | None,
) -> Coloured:
    main = runners.main
    x = main.arrays[name]
    before = runners.passes
    native = main.output().ravel()
    base = native.astype(np.float64)
    h = step_sizes(x, method=method, eps=eps, multiplier=multiplier, lands_on=lands_on)
    plan = _RealPass(name, colouring, engine(method), w, r, h, native, rounds)
    parts = runners.map(plan.run, _colour_chunks(runners, colouring))
    predicted = plan.spec.combine(0.0, _total([p.predicted for p in parts]), 1.0)
    measured = plan.measure(main)
    refuted = _refutation(
        colouring,
        predicted.estimate,
        measured.estimate,
        _real_slack(
            plan,
            predicted,
            measured,
            _total([p.magnitude for p in parts]),
            _total([p.weight_sum for p in parts]),
        ),
    )
    if refuted:
        return Coloured(None, refuted)
    flat = colouring.order
    blocks = colouring.element_block[flat]
    # A row's rounding is that of its block's outputs, whatever the others do.
    magnitude = np.sqrt(_block_sums(colouring, np.square(w * base)))[blocks]
    table = np.concatenate([p.rows for p in parts])  # each row's change from the point
    numerical = stencil_from_table(
        x,
        flat,
        method,
        runners.passes - before,
        0.0,
        table,
        h[flat],
        eps=eps,
        magnitude=np.maximum(magnitude, np.max(np.abs(table), axis=1)),
    )
    if numerical.noise is not None:  # a block's elements move its outputs: they round alike
        numerical = replace(
            numerical,
            noise=replace(numerical.noise, group=colouring.element_block.reshape(x.shape)),
        )
    return Coloured(numerical, "")


def _real_slack(
    plan: _RealPass,
    predicted: Stencil,
    measured: Stencil,
    magnitude: NDArray,
    weight_sum: NDArray,
) -> NDArray:
    """How far prediction and measurement may differ while the pattern holds."""
    eps = plan.eps
    base = plan.base.astype(np.float64)
    typical = float(np.sqrt(np.mean(np.square(base)))) if base.size else 0.0
    rounding = (
        plan.spec.rounding_gain * NOISE_FACTOR * eps * (np.abs(base) + typical) * (weight_sum + 1)
    )
    truncation = predicted.truncation + measured.truncation
    slack = _VERIFY_RELATIVE * (magnitude + np.abs(measured.estimate))
    result: NDArray = 4 * truncation + 2 * rounding + slack
    return result


@dataclass(frozen=True)
class _ComplexPass:
    """The fixed inputs of the complex-step colour passes of one variable."""

    name: str
    colouring: Colouring
    w: NDArray
    r: NDArray

    def run(self, runner: Runner, colours: NDArray[np.intp]) -> _Partial:
        """One complex step per colour in ``colours``: derivatives and predicted JVP."""
        work = runner.arrays[self.name].reshape(-1)
        saved = work.copy()
        blocks = self.colouring.blocks
        rows = np.empty((colours.size * blocks, 1))
        predicted, magnitude = np.zeros(self.w.size), np.zeros(self.w.size)
        for k, colour in enumerate(colours):
            members = self.colouring.members(int(colour))
            owner_r = self.r[members][self.colouring.output_block]
            try:
                work[members] = saved[members] + 1j * COMPLEX_STEP
                change = runner.output().ravel().imag.astype(np.float64) / COMPLEX_STEP
            finally:
                work[members] = saved[members]
            rows[k * blocks : (k + 1) * blocks, 0] = _block_sums(self.colouring, self.w * change)
            predicted += owner_r * change
            magnitude += np.abs(owner_r * change)
        return _Partial(rows, predicted[:, None], magnitude, magnitude)

    def measure(self, runner: Runner) -> NDArray:
        """The JVP along ``r`` itself, by one complex step of every element."""
        work = runner.arrays[self.name].reshape(-1)
        saved = work.copy()
        try:
            work[:] = saved + 1j * COMPLEX_STEP * self.r
            measured: NDArray = runner.output().ravel().imag.astype(np.float64) / COMPLEX_STEP
        finally:
            work[:] = saved
        return measured


def _complex(
    runners: Runners,
    name: str,
    colouring: Colouring,
    w: NDArray,
    r: NDArray,
    eps: float,
    terms: NDArray | None,
    rounds: float,
) -> Coloured:
    main = runners.main
    x = main.arrays[name]
    before = runners.passes
    plan = _ComplexPass(name, colouring, w, r)
    parts = runners.map(plan.run, _colour_chunks(runners, colouring))
    values = np.concatenate([p.rows[:, 0] for p in parts])
    predicted = _total([p.predicted[:, 0] for p in parts])
    magnitude = _total([p.magnitude for p in parts])
    measured = plan.measure(main)
    typical = float(np.mean(magnitude)) if magnitude.size else 0.0
    slack = (_VERIFY_RELATIVE + NOISE_FACTOR * rounds) * (magnitude + np.abs(measured) + typical)
    refuted = _refutation(colouring, predicted, measured, slack)
    if refuted:
        return Coloured(None, refuted)
    numerical = complex_from_values(
        x, colouring.order, values, runners.passes - before, terms=terms, eps=eps
    )
    return Coloured(numerical, "")


def _refutation(
    colouring: Colouring, predicted: NDArray, measured: NDArray, threshold: NDArray
) -> str:
    """Why the pattern is wrong, or "" when prediction and measurement agree."""
    off = np.abs(predicted - measured) > threshold
    if not off.any():
        return ""
    worst = int(np.argmax(np.abs(predicted - measured) - threshold))
    return (
        f"the {colouring.name} pattern does not hold: output element {worst} (flat) "
        f"responds {measured[worst]:.6g} to a random direction where the pattern predicts "
        f"{predicted[worst]:.6g}"
    )


def _total(parts: list[NDArray]) -> NDArray:
    return np.sum(np.stack(parts), axis=0)


def _colour_chunks(runners: Runners, colouring: Colouring) -> list[NDArray[np.intp]]:
    return chunks(colouring.colours, TASKS if runners.parallel else 1)
