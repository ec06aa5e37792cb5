"""``gradcheck speed``: time numerical gradients against backprop and show the comparison."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from gradcheck.faces.cli.output import emit_json, isatty
from gradcheck.faces.cli.progress import Progress
from gradcheck.faces.cli.speed_plot import write_speed_plot
from gradcheck.faces.cli.speed_text import speed_csv, speed_table, training_text
from gradcheck.faces.cli.status import EXIT_OK, UsageError

if TYPE_CHECKING:
    from gradcheck.teaching.speed import SpeedComparison, TrainingResult


def _require(module: str, extra: str, purpose: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(
            f"{purpose} needs {module}, which is not installed: pip install 'gradcheck[{extra}]'"
        )


def _check_arguments(args: argparse.Namespace) -> None:
    """Usage errors before measuring: a missing extra, a plot that is not PNG, no sizes."""
    if args.plot is not None:
        _require("matplotlib", "plot", "--plot")
        if args.plot.suffix.lower() != ".png":
            raise UsageError(f"--plot writes a PNG file; got {args.plot} (use a .png name)")
    if args.train:
        _require("sklearn", "digits", "--train (scikit-learn's digits dataset)")
    if not args.sizes:
        raise UsageError("--sizes needs at least one hidden size, e.g. --sizes 5,50")


def run_speed(args: argparse.Namespace) -> int:
    """Run ``gradcheck speed`` with its parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From the ``speed`` subparser of :func:`~gradcheck.faces.cli.parser.build_parser`.

    Returns
    -------
    int
        0; a missing extra or a bad argument raises :class:`UsageError` instead.
    """
    _check_arguments(args)
    comparison, training = _measure(args)
    if args.json:
        document = comparison.to_dict()
        if training is not None:
            document["training"] = training.to_dict()
        emit_json(document)
    elif args.csv:
        sys.stdout.write(speed_csv(comparison))
    else:
        print(speed_table(comparison))
        if training is not None:
            print()
            print(training_text(training))
    if args.plot is not None:
        write_speed_plot(comparison, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return EXIT_OK


def _measure(args: argparse.Namespace) -> tuple[SpeedComparison, TrainingResult | None]:
    """Time the nets (and train on the digits with ``--train``), showing progress."""
    from gradcheck.teaching import speed

    config = speed.SpeedConfig(
        input_size=args.input_size,
        hidden_sizes=args.sizes,
        output_size=args.output_size,
        batch_size=args.batch,
        seed=args.seed,
        quick=args.quick,
        samples=args.samples,
        blas_threads=args.blas_threads or None,
    )
    progress = Progress(sys.stderr, isatty(sys.stderr), delay=0.0)
    training = None
    try:
        comparison = speed.compare_speed(config, progress=progress.update)
        if args.train:
            training = speed.train_digits(
                speed.TrainingConfig(epochs=args.epochs, seed=args.seed),
                progress=lambda message: progress.update(f"training: {message}"),
            )
    finally:
        progress.clear()
    return comparison, training
