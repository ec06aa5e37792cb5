"""The speed comparison as a log-log plot of time per gradient against parameters.

Needs matplotlib (the ``plot`` extra); it is imported only when a plot is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# (label, SizeResult attribute, colour, marker) of each method drawn.
_SERIES = [
    ("textbook numerical_gradient", "textbook", "tab:red", "o"),
    ("gradcheck engine (central)", "engine", "tab:orange", "s"),
    ("gradcheck.check (full)", "check_full", "tab:purple", "D"),
    ("gradcheck.check (fast)", "check_fast", "tab:green", "v"),
    ("backprop (net.gradient)", "backprop", "tab:blue", "^"),
]


def write_speed_plot(comparison: Any, path: Path) -> None:
    """Log-log plot of time per gradient against the number of parameters (Agg backend).

    Parameters
    ----------
    comparison : gradcheck.teaching.speed.SpeedComparison
    path : Path
        The PNG file to write; its folder is created if missing.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), layout="constrained")
    _plot_methods(axes, comparison.results)
    _plot_guides(axes, comparison.results)
    _annotate_textbook_net(axes, comparison.results)
    _label(axes, comparison.config)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_methods(axes: Any, results: list[Any]) -> None:
    """One line per method that was timed; dashed with hollow markers if extrapolated."""
    params = [r.parameters for r in results]
    for label, method, color, marker in _SERIES:
        timings = [getattr(r, method) for r in results]
        points = [(p, t) for p, t in zip(params, timings, strict=True) if t.seconds is not None]
        if not points:
            continue
        extrapolated = any(t.extrapolated for _, t in points)
        axes.plot(
            [p for p, _ in points],
            [t.seconds for _, t in points],
            color=color,
            marker=marker,
            linestyle="--" if extrapolated else "-",
            markerfacecolor="none" if extrapolated else color,
            label=label + (" (extrapolated)" if extrapolated else ""),
        )


def _plot_guides(axes: Any, results: list[Any]) -> None:
    """Guides: a numerical gradient costs n forward passes of a cost ∝ n, so ∝ n²; backprop ∝ n."""
    if len(results) <= 1:
        return
    first = results[0]
    span = np.array([first.parameters, results[-1].parameters], dtype=float)
    for timing, power, label in ((first.textbook, 2, "∝ n²"), (first.backprop, 1, "∝ n")):
        if timing.seconds is not None:
            guide = timing.seconds * (span / span[0]) ** power
            axes.plot(span, guide, color="gray", linestyle=":", linewidth=1)
            axes.annotate(
                label,
                (span[-1], guide[-1]),
                fontsize=8,
                color="gray",
                textcoords="offset points",
                xytext=(-28, 6),
            )


def _annotate_textbook_net(axes: Any, results: list[Any]) -> None:
    for r in results:
        if r.is_textbook_size and r.ratio is not None:
            axes.annotate(
                f"784-50-10 net: ×{r.ratio:,.0f}",
                (r.parameters, r.textbook.seconds),
                textcoords="offset points",
                xytext=(-150, 8),
                fontsize=9,
            )


def _label(axes: Any, config: Any) -> None:
    """Log scales, axis names, the title (the net's sizes), grid and legend."""
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("number of parameters")
    axes.set_ylabel("seconds per gradient")
    axes.set_title(
        f"Numerical gradient vs backprop: TwoLayerNet({config.input_size}, hidden, "
        f"{config.output_size}), batch {config.batch_size}"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
