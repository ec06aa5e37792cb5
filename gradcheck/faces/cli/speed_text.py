"""The speed comparison as text: the table with its legend, the training summary, CSV.

A cell marked ``~`` is extrapolated from a sample of elements (``--quick``).
"""

from __future__ import annotations

import csv
import io
import textwrap
from typing import Any

from gradcheck.report.formatting import format_duration

_HEADER = [
    "",
    "hidden",
    "params",
    "passes",
    "textbook",
    "engine",
    "check full",
    "check fast",
    "backprop",
    "textbook/backprop",
    "|Δ| textbook",
    "|Δ| engine",
]

_CSV_FIELDS = [
    "hidden_size",
    "parameters",
    "input_size",
    "output_size",
    "batch_size",
    "textbook_seconds",
    "textbook_extrapolated",
    "textbook_forward_passes",
    "engine_seconds",
    "engine_extrapolated",
    "engine_forward_passes",
    "check_full_seconds",
    "check_full_extrapolated",
    "check_full_forward_passes",
    "check_fast_seconds",
    "backprop_seconds",
    "ratio",
    "textbook_max_diff",
    "engine_max_diff",
    "compared_elements",
]


def _mark(text: str, extrapolated: bool) -> str:
    return f"~{text}" if extrapolated and text != "n/a" else text


def _ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.3g}"


def speed_table(comparison: Any) -> str:
    """The text table of a :class:`gradcheck.teaching.speed.SpeedComparison`.

    Parameters
    ----------
    comparison : gradcheck.teaching.speed.SpeedComparison

    Returns
    -------
    str
        A title, one row per hidden size, and a legend of the columns and marks.
    """
    rows = [_HEADER] + [_size_row(r) for r in comparison.results]
    lines = [*_title(comparison.config), *_aligned(rows), ""]
    for key, text in _methods_legend(comparison) + _marks_legend(comparison):
        lines += textwrap.wrap(
            text, width=96, initial_indent=f"  {key:<11}", subsequent_indent=" " * 13
        )
    return "\n".join(lines)


def _title(config: Any) -> list[str]:
    return [
        f"Numerical gradient vs backprop: TwoLayerNet({config.input_size}, hidden, "
        f"{config.output_size}), batch {config.batch_size}, float64, synthetic MNIST-like data "
        f"(seed {config.seed}).",
        "Time for one gradient of every parameter.",
        "",
    ]


def _size_row(r: Any) -> list[str]:
    """The cells of one :class:`~gradcheck.teaching.speed.SizeResult`, in header order."""
    sampled = r.diff_sampled
    return [
        "*" if r.is_textbook_size else "",
        str(r.hidden_size),
        f"{r.parameters:,}",
        f"{r.textbook.forward_passes:,}",
        _mark(format_duration(r.textbook.seconds), r.textbook.extrapolated),
        _mark(format_duration(r.engine.seconds), r.engine.extrapolated),
        _mark(format_duration(r.check_full.seconds), r.check_full.extrapolated),
        _mark(format_duration(r.check_fast.seconds), r.check_fast.extrapolated),
        format_duration(r.backprop.seconds),
        _mark(_ratio_text(r.ratio), r.textbook.extrapolated),
        _mark(f"{r.textbook_max_diff:.1e}", sampled),
        _mark(f"{r.engine_max_diff:.1e}", sampled),
    ]


def _aligned(rows: list[list[str]]) -> list[str]:
    """The rows as lines of columns: the first column left-aligned, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append(" ".join(cells).rstrip())
    return lines


def _methods_legend(comparison: Any) -> list[tuple[str, str]]:
    """What each column measures."""
    first = comparison.results[0]
    return [
        (
            "passes",
            "forward passes of the textbook loop: 2 per parameter (engine: 4 per "
            f"parameter, {first.engine.forward_passes:,} at hidden {first.hidden_size}; "
            f"check full: {first.check_full.forward_passes:,}; backprop: 1 forward + "
            "1 backward)",
        ),
        (
            "textbook",
            "reference_layers.functions.numerical_gradient on each parameter, "
            "h = 1e-4 (as TwoLayerNet.numerical_gradient)",
        ),
        (
            "engine",
            "gradcheck.numerical_gradient(f, param, method='central'), with error estimates",
        ),
        (
            "check",
            "gradcheck.check(net, x, t, mode='full'): complex step where possible, "
            "plus diagnostics",
        ),
        ("check fast", _fast_mode_text(comparison)),
        ("backprop", "net.gradient(x, t), fastest of repeated calls"),
        (
            "|Δ|",
            "max |numerical − backprop| over the compared elements (largest gradient "
            f"element: {max(r.gradient_scale for r in comparison.results):.2g})",
        ),
    ]


def _fast_mode_text(comparison: Any) -> str:
    if not comparison.fast_mode.available:
        return f"n/a: {comparison.fast_mode.reason}"
    passes = ", ".join(f"{r.check_fast.forward_passes:,}" for r in comparison.results)
    return (
        "gradcheck.check(net, x, t, mode='fast'): random "
        f"directions; forward passes by size: {passes}"
    )


def _marks_legend(comparison: Any) -> list[tuple[str, str]]:
    """The marks that apply (``~`` extrapolated, ``*`` the chapter's net) and the machine."""
    legend = []
    if any(r.textbook.extrapolated for r in comparison.results):
        legend.append(
            (
                "~",
                f"extrapolated (--quick): about {comparison.config.samples} sampled elements "
                "timed in pieces; the fastest piece's time per element times n (what an idle "
                "machine does); |Δ| over the sampled elements. Run without --quick to measure "
                "all.",
            )
        )
    if any(r.is_textbook_size for r in comparison.results):
        legend.append(("*", "the chapter's net: 784 -> 50 -> 10, batch 100"))
    legend.append(
        ("measured", f"in {comparison.seconds:.1f} s; {_machine_text(comparison.machine)}")
    )
    return legend


def _machine_text(machine: dict[str, Any]) -> str:
    return (
        f"Python {machine.get('python')}, NumPy {machine.get('numpy')}, "
        f"{machine.get('cpus')} CPUs, BLAS threads {machine.get('blas_threads')}, "
        f"{machine.get('platform')}"
    )


def training_text(result: Any) -> str:
    """The text summary of a :class:`gradcheck.teaching.speed.TrainingResult`.

    Parameters
    ----------
    result : gradcheck.teaching.speed.TrainingResult

    Returns
    -------
    str
        Three lines: the training run, backprop's time and accuracy, the numerical estimate.
    """
    c = result.config
    step = result.numerical_step
    return "\n".join(
        [
            f"Training TwoLayerNet(64, {c.hidden_size}, 10) on scikit-learn's 8x8 digits "
            f"({result.train_size} train / {result.test_size} test), {c.epochs} epochs, "
            f"{result.steps} SGD steps of batch {c.batch_size}, learning rate {c.learning_rate}:",
            f"  backprop:  {format_duration(result.backprop_seconds)} for all steps; accuracy "
            f"{result.train_accuracy:.1%} train, {result.test_accuracy:.1%} test",
            f"  numerical: {_mark(format_duration(step.seconds), step.extrapolated)} per step "
            f"({result.parameters:,} parameters, {step.forward_passes:,} forward passes), so "
            f"{_mark(format_duration(result.numerical_seconds), True)} for the same training",
        ]
    )


def speed_csv(comparison: Any) -> str:
    """The comparison as CSV: a header, then one row per hidden size.

    Parameters
    ----------
    comparison : gradcheck.teaching.speed.SpeedComparison

    Returns
    -------
    str
        Missing values (a method not available) are empty cells.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for r in comparison.results:
        row: dict[str, Any] = {
            "hidden_size": r.hidden_size,
            "parameters": r.parameters,
            "input_size": r.input_size,
            "output_size": r.output_size,
            "batch_size": r.batch_size,
            "ratio": r.ratio,
            "backprop_seconds": r.backprop.seconds,
            "check_fast_seconds": r.check_fast.seconds,
            "textbook_max_diff": r.textbook_max_diff,
            "engine_max_diff": r.engine_max_diff,
            "compared_elements": r.compared_elements,
        }
        for method in ("textbook", "engine", "check_full"):
            timing = getattr(r, method)
            row[f"{method}_seconds"] = timing.seconds
            row[f"{method}_extrapolated"] = timing.extrapolated
            row[f"{method}_forward_passes"] = timing.forward_passes
        writer.writerow(["" if row[f] is None else row[f] for f in _CSV_FIELDS])
    return buffer.getvalue()
