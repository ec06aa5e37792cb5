"""What a speed comparison takes and gives: its configuration, timings and results.

Plain frozen dataclasses with a ``to_dict`` for JSON; the faces read their fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

#: A face's progress callback: called with a short message before each step.
Progress = Callable[[str], None]

#: Hidden width of the textbook's two-layer net (input 784, output 10, batch 100).
TEXTBOOK_HIDDEN = 50


@dataclass(frozen=True)
class SpeedConfig:
    """What to measure.

    Parameters
    ----------
    input_size, output_size, batch_size : int
        The net's input width, number of classes, and the batch the gradient is taken on.
    hidden_sizes : tuple of int
        The sweep: one two-layer net per hidden width.
    seed : int
        Seeds the weights and the synthetic data.
    quick : bool
        Time ``samples`` elements of each numerical method and extrapolate.
    samples : int
        Elements timed per method and size in quick mode.
    min_backprop_seconds : float
        Backprop is repeated until this much time has passed; the fastest call is kept.
    blas_threads : int or None
        Threads the BLAS may use while measuring (needs ``threadpoolctl``; None leaves the
        BLAS alone). One thread by default: the matrices are small, and a multithreaded
        BLAS sharing a core with another busy process slows down erratically (tenfold),
        which would make the numbers meaningless on a shared machine.
    """

    input_size: int = 784
    hidden_sizes: tuple[int, ...] = (5, 10, 20, 50, 100)
    output_size: int = 10
    batch_size: int = 100
    seed: int = 0
    quick: bool = False
    samples: int = 200
    min_backprop_seconds: float = 0.2
    blas_threads: int | None = 1

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size", "batch_size", "samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be widths >= 1, got {self.hidden_sizes}")


@dataclass(frozen=True)
class Timing:
    """Time for one full gradient of every parameter by one method.

    Attributes
    ----------
    seconds : float or None
        None when the method is not available (see ``note``).
    forward_passes : int or None
        Forward passes (calls of the loss) that one full gradient needs.
    extrapolated : bool
        True when measured on a sample of elements and scaled up.
    note : str or None
        Why the method is not available, or how it was measured.
    """

    seconds: float | None
    forward_passes: int | None = None
    extrapolated: bool = False
    note: str | None = None


@dataclass(frozen=True)
class SizeResult:
    """All methods on one net size."""

    input_size: int
    hidden_size: int
    output_size: int
    batch_size: int
    parameters: int
    textbook: Timing
    engine: Timing
    check_full: Timing
    check_fast: Timing
    backprop: Timing
    textbook_max_diff: float
    engine_max_diff: float
    gradient_scale: float
    compared_elements: int

    @property
    def is_textbook_size(self) -> bool:
        """Whether this is the chapter's ``784 -> 50 -> 10`` net, batch 100."""
        return (self.input_size, self.hidden_size, self.output_size, self.batch_size) == (
            784,
            TEXTBOOK_HIDDEN,
            10,
            100,
        )

    @property
    def diff_sampled(self) -> bool:
        """True when the gradient differences were taken over a sample of elements."""
        return self.compared_elements < self.parameters

    @property
    def ratio(self) -> float | None:
        """Textbook numerical gradient time / backprop time."""
        return _ratio(self.textbook.seconds, self.backprop.seconds)

    @property
    def engine_ratio(self) -> float | None:
        """gradcheck engine time / backprop time."""
        return _ratio(self.engine.seconds, self.backprop.seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out.update(
            ratio=self.ratio,
            engine_ratio=self.engine_ratio,
            diff_sampled=self.diff_sampled,
            textbook_size=self.is_textbook_size,
        )
        return out


@dataclass(frozen=True)
class FastModeSupport:
    """Whether ``check(..., mode="fast")`` really is faster than a full check."""

    available: bool
    reason: str


@dataclass(frozen=True)
class SpeedComparison:
    """The result of :func:`compare_speed`."""

    config: SpeedConfig
    results: list[SizeResult]
    fast_mode: FastModeSupport
    seconds: float
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "config": asdict(self.config),
            "fast_mode": asdict(self.fast_mode),
            "seconds": self.seconds,
            "machine": self.machine,
            "results": [r.to_dict() for r in self.results],
        }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
