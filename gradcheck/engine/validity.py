"""Whether the complex step is valid at a point: checked by real differences whose error
bar is honest and tight enough to see a wrong branch.

The complex step ``Im f(x + ih·v) / h`` is exact for code analytic in ``x``; ``abs``,
``np.var``, ``np.std``, ``np.linalg.norm`` (through ``conj``), comparisons and casts to
real drop or bend the imaginary part, and the complex step then differentiates another
function — one that a backward forgetting the same branch matches to the last digit. So
before it decides anything, its derivative along a random direction ``v`` is compared
with a real estimate along the same direction: Richardson extrapolation of central
differences, whose error bar is its truncation estimate plus the measured rounding noise
over the step, and which has no bar at all where its steps do not converge (steps wider
than the function's structure — inputs of 1e6 around a spread of 1 — prove nothing).

The real estimate must be tight enough to matter: its bar at most ``resolution`` times the
size of the directional derivative's terms. Where it is wider, the step moves (larger
where rounding dominates, smaller where truncation does or the steps diverge) for a few
rungs; where it never gets there, the complex step is *not verified* and decides nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradcheck.accuracy import COMPLEX_ROUNDING, NOISE_SIGMAS, TRUNCATION_SAFETY
from gradcheck.engine.spec import COMPLEX_STEP, engine

__all__ = ["Verification", "verify_complex_step"]

# Rungs of steps tried before the complex step counts as unverifiable, and how far a rung
# moves at most.
_RUNGS, _LEAP = 5, 1e4


@dataclass(frozen=True)
class Verification:
    """What the comparison found.

    ``valid`` is None when no real estimate tight enough was found (the complex step is
    then not verified); ``passes`` counts the forward passes it took.
    """

    valid: bool | None
    reason: str
    complex_value: float
    real_value: float
    bar: float
    passes: int


def verify_complex_step(
    complex_f: Callable[[NDArray], complex | float],
    real_f: Callable[[NDArray], complex | float],
    x: NDArray,
    direction: NDArray,
    *,
    eps: float,
    sigma: float | None = None,
    scale: float | None = None,
    resolution: float = 1e-6,
    noise_ratio: float = 1.0,
) -> Verification:
    """Compare the complex step along ``direction`` with real differences at ``x``.

    Parameters
    ----------
    complex_f, real_f : callable
        ``f`` on complex points, and on real ones (may be the same function).
    x : ndarray
        The real point; not modified.
    direction : ndarray
        The direction, in the units of each element's steps.
    eps : float
        Unit roundoff of ``f``'s computation.
    sigma : float, optional
        The rounding noise of ``f`` near ``x``, measured; default: from the real
        evaluations' own fourth differences.
    scale : float, optional
        The size of the directional derivative's terms (``Σ|∂f/∂x_i · v_i|``): what the
        real estimate must resolve to ``resolution`` of. Default: the larger of the two
        estimates.
    resolution : float
        The real bar must be at most this times ``scale``.
    noise_ratio : float
        The rounding noise of ``f`` in units of its last place (measured elsewhere): the
        complex step's own rounding grows with it.
    """
    point = np.asarray(x, dtype=np.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            value = complex_f(point + 1j * COMPLEX_STEP * direction)
    except Exception as error:  # any failure in complex arithmetic means "not supported"
        return Verification(
            False,
            f"forward failed on complex input ({type(error).__name__}: {error})",
            np.nan,
            np.nan,
            np.nan,
            1,
        )
    if not np.iscomplexobj(value):
        return Verification(
            False, "forward returned a real value for complex input", np.nan, np.nan, np.nan, 1
        )
    along = complex(value).imag / COMPLEX_STEP
    spec = engine("richardson")
    f0 = float(np.real(real_f(point)))
    t = (eps * max(noise_ratio, 1.0)) ** spec.step_exponent
    passes, real, bar = 2, np.nan, np.inf
    for _ in range(_RUNGS):
        table = np.array(
            [[float(np.real(real_f(point + k * t * direction))) for k in spec.offsets]]
        )
        passes += len(spec.offsets)
        stencil = spec.combine(f0, table, t)
        real = float(stencil.estimate[0])
        noise = sigma if sigma is not None else float(spec.noise_sample(f0, table)[0])
        noise = max(noise, eps * abs(f0))
        rounding = NOISE_SIGMAS * spec.rounding_gain * noise / t
        truncation = TRUNCATION_SAFETY * float(stencil.truncation[0])
        unbounded = stencil.unbounded is not None and float(stencil.unbounded[0]) > rounding
        bar = np.inf if unbounded else truncation + rounding
        size = scale if scale is not None else max(abs(along), abs(real))
        target = resolution * size
        if bar <= target:
            complex_bar = COMPLEX_ROUNDING * eps * max(noise_ratio, 1.0) * size
            if complex_bar > target:  # the complex step itself is no more precise than that
                return Verification(
                    None,
                    (
                        f"the forward pass rounds so much ({noise_ratio:.2g} units in its last "
                        "place) that the complex step itself is no more precise than the "
                        f"{resolution:g} of its size needed to see a wrong branch"
                    ),
                    along,
                    real,
                    bar,
                    passes,
                )
            return _decided(along, real, bar, complex_bar, passes)
        if unbounded or truncation >= rounding:
            t /= float(
                np.clip((truncation / max(target, 1e-300)) ** 0.25, 4.0, _LEAP)
                if not unbounded
                else 16.0
            )
        else:
            t *= float(np.clip(rounding / max(target, 1e-300), 4.0, _LEAP))
    return Verification(
        None,
        f"real differences along a direction resolve its derivative only to "
        f"{bar:.2g}, not the {resolution:g} of its size needed to see a wrong branch",
        along,
        real,
        bar,
        passes,
    )


def _decided(
    along: float, real: float, bar: float, complex_bar: float, passes: int
) -> Verification:
    """The verdict once the real estimate is tight enough."""
    if along == 0.0 and abs(real) > bar:
        return Verification(
            False,
            (
                f"the complex step's imaginary part vanished (0 against real differences' "
                f"{real:.6g}); the forward pass is not analytic (abs, max or a cast to real?)"
            ),
            along,
            real,
            bar,
            passes,
        )
    if abs(along - real) <= bar + complex_bar:
        return Verification(True, "", along, real, bar, passes)
    return Verification(
        False,
        (
            f"complex step ({along:.6g}) disagrees with real differences ({real:.6g} ± "
            f"{bar:.2g}); the forward pass is not analytic (abs, max or a cast to real?)"
        ),
        along,
        real,
        bar,
        passes,
    )
