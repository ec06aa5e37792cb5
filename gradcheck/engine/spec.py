"""What a numerical method is: one :class:`Engine` entry, used by every part of the check.

An engine says where it evaluates ``f`` (offsets in units of a step ``h``), how ``h`` is
chosen, and how a table of those evaluations becomes a derivative, a truncation-error
estimate and — when it has points on both sides — one-sided derivatives that reveal kinks.
The element-by-element stencils, the coloured passes, the directional tests of fast mode,
the cost model of ``mode="auto"``, the budget of ``max_evaluations`` and the ``method``
option all read the same entry, so a new method is one entry in :data:`ENGINES` (plus its
tests), as a new method is one parameter in ``scipy.differentiate``.

The entries
-----------
central
    ``D(h) = (f(x+h) − f(x−h)) / 2h`` with ``h = (ε·S)^(1/3)·max(|x|, 1)``, the classical
    optimum that balances truncation (∝ h²) against rounding (∝ ε/h). Truncation error from
    a second step: ``D(2h) − D(h) ≈ 3ch²``, so ``err ≈ |D(2h) − D(h)| / 3``. Four passes.
richardson
    ``R(h) = (4D(h) − D(2h)) / 3`` (error ∝ h⁴, so ``h = (ε·S)^(1/5)·max(|x|, 1)``), error
    from the next level, ``|R(h) − R(2h)| / 15``, as ``scipy.differentiate`` does. Six passes.
forward
    One-sided: ``F(h) = (−3f(x) + 4f(x+h) − f(x+2h)) / 2h`` (second order), error
    ``|F(2h) − F(h)| / 3``, with steps relative to ``|x|`` (floor ``√ε``). It never
    evaluates left of ``x``: for inputs near the edge of a function's domain (``sqrt`` or
    ``log`` of a variance near 0), where a central stencil steps outside it. Three passes
    beyond ``f(x)``; no kink detection (it has one side only).
complex
    The complex step ``Im f(x + ih) / h`` with ``h = 1e-20``: no subtractive cancellation,
    exact to rounding, for code that is analytic in its inputs. One pass.

Rounding
    A layer rounds more than one ulp per output element, so the rounding noise of ``f`` is
    taken as ``NOISE_FACTOR·ε·S`` (``S`` the size of the terms ``f`` sums); an engine's
    ``rounding_gain`` says how much its formula amplifies that noise relative to ``D(h)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "COMPLEX_STEP",
    "ENGINES",
    "NOISE_FACTOR",
    "Engine",
    "Stencil",
    "engine",
]

# Rounding in f is more than one ulp of its value: a layer does several operations per
# output element. This factor turns ε·|f| into a realistic noise level of f.
NOISE_FACTOR = 16.0
COMPLEX_STEP = 1e-20
_SQRT_EPS = 2.0**-26

# The formulas use arithmetic only (no numpy functions), so that reading the list of
# engines — the ``method`` option of the pytest plugin, loaded by every pytest run —
# costs no numpy import.
Table = Any


@dataclass(frozen=True)
class Stencil:
    """What a table of evaluations says about the derivative, per row.

    Attributes
    ----------
    estimate : ndarray
        The derivative (per unit of ``h``'s variable).
    truncation : ndarray
        Estimate of the truncation error of ``estimate``.
    left, right : ndarray or None
        Second-order one-sided derivatives, for engines with points on both sides. For
        smooth ``f`` they agree to O(h³) (their h² terms are equal), so a disagreement
        beyond rounding means a kink between ``x−2h`` and ``x+2h``.
    side_truncation : ndarray or None
        Estimate of the truncation error of their difference, for engines that can tell:
        at a kink the gap between the sides stays as the steps double, while a gap that
        is truncation grows eightfold. Steps too coarse for the function (Richardson's,
        in float32) then do not pass for kinks.
    unbounded : ndarray or None
        For engines that can tell: how far the estimates at the stencil's steps disagree
        where they do not converge as the expansion in ``h`` says (0 where they do). A
        step wider than the function's structure bounds nothing: where this exceeds the
        rounding noise, the estimate has no error bar.
    """

    estimate: NDArray[np.float64]
    truncation: NDArray[np.float64]
    left: NDArray[np.float64] | None = None
    right: NDArray[np.float64] | None = None
    side_truncation: NDArray[np.float64] | None = None
    unbounded: NDArray[np.float64] | None = None


Combine = Callable[[Any, Table, Any], Stencil]


@dataclass(frozen=True)
class Engine:
    """One numerical method.

    Attributes
    ----------
    name : str
        The value of the ``method`` option.
    summary : str
        One phrase for help texts.
    arithmetic : {"real", "complex"}
        Whether ``f`` is evaluated at real points or at complex ones.
    offsets : tuple of int
        Real engines: ``f`` is evaluated at ``x + k·h`` for each ``k`` (``f(x)`` itself
        once per array, not per element). Empty for the complex step.
    step_exponent, step_floor : float
        ``h = (ε·S)^step_exponent · max(|x|, step_floor)``: a step relative to the element,
        but never below ``step_floor`` times the optimum for ``|x| = 1``.
    rounding_gain : float
        How much the formula amplifies the rounding noise of ``f``, relative to ``D(h)``.
    combine : callable
        ``combine(f0, table, h)``: ``table[..., k]`` is ``f(x + offsets[k]·h)`` and ``f0``
        is ``f(x)`` (broadcast against the rows); returns a :class:`Stencil`.
    """

    name: str
    summary: str
    arithmetic: Literal["real", "complex"]
    offsets: tuple[int, ...]
    step_exponent: float
    step_floor: float
    rounding_gain: float
    combine: Combine

    @property
    def cost(self) -> int:
        """Forward passes per element (or per direction, or per colour)."""
        return len(self.offsets) if self.arithmetic == "real" else 1

    @property
    def two_sided(self) -> bool:
        """Whether the engine gives one-sided derivatives on both sides (kink detection)."""
        return any(k < 0 for k in self.offsets) and any(k > 0 for k in self.offsets)

    def noise_sample(self, f0: Any, table: Table) -> Any:
        """One draw of the rounding noise of ``f`` from its evaluations (see
        :mod:`gradcheck.engine.gradient`), or None when the engine cannot give one.

        A fourth difference of five equally spaced values, ``|Δ⁴f| / √70``, is noise plus
        ``h⁴f⁗``: negligible at central differences' steps. Richardson's larger steps make
        it curvature instead, so with ``f(x ± 4h)`` at hand its ``h⁴`` term is cancelled
        too: ``|16·Δ⁴_h − Δ⁴_2h| / √17094`` (the sum of the squared coefficients).
        """
        if self.offsets[:4] != (1, -1, 2, -2):
            return None
        plus1, minus1, plus2, minus2 = (table[..., k] for k in range(4))
        fourth = plus2 - 4 * plus1 + 6 * f0 - 4 * minus1 + minus2
        if self.offsets[4:6] != (4, -4):
            return abs(fourth) / 70**0.5
        wide = table[..., 4] - 4 * plus2 + 6 * f0 - 4 * minus2 + table[..., 5]
        return abs(16 * fourth - wide) / 17094**0.5


def _central_differences(table: Table, h: Any) -> tuple[Table, Table]:
    """``D(h)`` and ``D(2h)`` from columns ``(+1, −1, +2, −2)``."""
    plus1, minus1, plus2, minus2 = (table[..., k] for k in range(4))
    return (plus1 - minus1) / (2 * h), (plus2 - minus2) / (4 * h)


def _sides(f0: Any, table: Table, h: Any) -> tuple[Table, Table]:
    plus1, minus1, plus2, minus2 = (table[..., k] for k in range(4))
    right = (-3 * f0 + 4 * plus1 - plus2) / (2 * h)
    left = (3 * f0 - 4 * minus1 + minus2) / (2 * h)
    return left, right


def _central(f0: Any, table: Table, h: Any) -> Stencil:
    d1, d2 = _central_differences(table, h)
    # The truncation estimate of the sides is left out on purpose: a kink inside the
    # stencil inflates |d2 − d1| and would hide itself.
    return Stencil(d1, abs(d2 - d1) / 3, *_sides(f0, table, h))


def _richardson(f0: Any, table: Table, h: Any) -> Stencil:
    d1, d2 = _central_differences(table, h)
    d4 = (table[..., 4] - table[..., 5]) / (8 * h)
    estimate = (4 * d1 - d2) / 3
    coarse = (4 * d2 - d4) / 3
    left, right = _sides(f0, table, h)
    # The same sides from f(x ± 2h) and f(x ± 4h): for smooth f their gap is O(h³), so it
    # grows eightfold with the step; a kink's gap does not grow.
    wide_right = (-3 * f0 + 4 * table[..., 2] - table[..., 4]) / (4 * h)
    wide_left = (3 * f0 - 4 * table[..., 3] + table[..., 5]) / (4 * h)
    side_truncation = abs((wide_right - wide_left) - (right - left)) / 7
    truncation = abs(estimate - coarse) / 15
    # That is its error only where the expansion in h converges: the h⁴ term small beside
    # the h² term. A step wider than the function's structure (a saturating sigmoid, a
    # kink a few steps away) breaks it, and then nothing seen at these steps bounds the
    # derivative at the point.
    # (In the h² regime D(4h) − D(2h) is four times D(2h) − D(h); an error of order h — a
    # jump in f'' within the stencil, an ELU at 0 — makes it twice, and fools the h⁴ term's
    # estimate fifteenfold.)
    converging = abs(estimate - coarse) <= abs(d2 - d1) / 3
    unbounded = (1 - converging) * abs(d1 - d4)
    return Stencil(estimate, truncation, left, right, side_truncation, unbounded)


def _forward(f0: Any, table: Table, h: Any) -> Stencil:
    plus1, plus2, plus4 = (table[..., k] for k in range(3))
    near = (-3 * f0 + 4 * plus1 - plus2) / (2 * h)
    far = (-3 * f0 + 4 * plus2 - plus4) / (4 * h)
    return Stencil(near, abs(far - near) / 3)


def _not_tabulated(f0: Any, table: Table, h: Any) -> Stencil:
    raise TypeError("the complex step reads Im f(x + ih) / h directly; it has no table")


ENGINES: dict[str, Engine] = {
    entry.name: entry
    for entry in (
        Engine(
            "central",
            "central differences at two steps",
            "real",
            (1, -1, 2, -2),
            1 / 3,
            1.0,
            1.0,
            _central,
        ),
        Engine(
            "richardson",
            "Richardson extrapolation of central differences",
            "real",
            (1, -1, 2, -2, 4, -4),
            1 / 5,
            1.0,
            1.0,
            _richardson,
        ),
        Engine(
            "forward",
            "one-sided forward differences, for inputs at a domain's edge",
            "real",
            (1, 2, 4),
            1 / 3,
            _SQRT_EPS,
            4.0,
            _forward,
        ),
        Engine(
            "complex",
            "the complex step, exact to rounding for analytic code",
            "complex",
            (),
            0.0,
            1.0,
            1.0,
            _not_tabulated,
        ),
    )
}


def engine(name: str) -> Engine:
    """The engine called ``name``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.

    Examples
    --------
    >>> engine("central").cost, engine("complex").cost
    (4, 1)
    """
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(ENGINES)}") from None
