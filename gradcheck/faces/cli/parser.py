"""The ``gradcheck`` argument parser: its commands, their options and help texts.

The check options (``--method``, ``--rtol``, ``--strict``, ...) are generated from
:data:`gradcheck.options.OPTIONS` and kept as text; the check command parses them with
:meth:`OptionSpec.from_text`, so the command line accepts and rejects exactly what the
library and the pytest plugin do. The argument types below keep their names: argparse
names a type in its message when the type fails with a ``ValueError``.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any, NoReturn

from gradcheck.faces.cli.status import EXIT_USAGE

CHECK_EXAMPLES = """\
examples:
  gradcheck check reference_layers                    every layer that has example inputs
  gradcheck check reference_layers:Sigmoid --shape 5,4
  gradcheck check my_layers.py:Affine --shape 5,4 --param W=4,3 --param b=3
  gradcheck check my_layers.py:LeakyRelu --shape 5,4 --kwargs '{"alpha": 0.1}'
  gradcheck check mypkg.layers --method richardson --strict --json > report.json

inputs:
  A layer's inputs come from its classmethod example(rng, dtype). Otherwise give one
  --shape per forward input (standard normal data drawn from --seed, in --dtype).
  Constructor arguments: --kwargs JSON (plain values) and --param NAME=SHAPE (a random
  standard normal array of that shape); with neither, a class with example() keeps the
  example's instance, and one without is built with no arguments.

exit status: 0 all passed, 1 a gradient problem found, 2 usage or load error.
"""

LIST_EXAMPLES = """\
examples:
  gradcheck list                        the reference layers
  gradcheck list mypkg.layers my_file.py --json
"""

SPEED_EXAMPLES = """\
examples:
  gradcheck speed --quick                         about 10 s: samples the slow loops
  gradcheck speed                                 measures everything (minutes)
  gradcheck speed --quick --plot docs/speed.png   log-log plot (needs the 'plot' extra)
  gradcheck speed --quick --csv > speed.csv
  gradcheck speed --quick --train                 train on sklearn's digits (extra 'digits')

A cell marked ~ is extrapolated: --quick times a sample of elements and scales by n/k.
"""

MAIN_EXAMPLES = """\
examples:
  gradcheck check reference_layers
  gradcheck check path/to/layers.py:MyLayer --shape 5,4
  gradcheck list
  gradcheck speed --quick

Run 'gradcheck COMMAND --help' for the options of a command.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``gradcheck check: error: ... (see --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --- argument types ---------------------------------------------------------------------------


def _shape(text: str) -> tuple[int, ...]:
    """``"5,4"`` → ``(5, 4)``; ``"()"`` or ``"scalar"`` → ``()``."""
    stripped = text.strip().strip("()[]").strip()
    if stripped in ("", "scalar"):
        return ()
    try:
        dims = tuple(int(part) for part in stripped.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid shape {text!r}: expected sizes separated by commas, like 5,4"
        ) from None
    if any(d < 0 for d in dims):
        raise argparse.ArgumentTypeError(f"invalid shape {text!r}: sizes must be >= 0")
    return dims


def _named_shape(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, shape = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(
            f"invalid --param {text!r}: expected NAME=SHAPE, like W=4,3"
        )
    return name.strip(), _shape(shape)


def _json_kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"invalid JSON {_short(text)}: {error.msg}") from None
    except (RecursionError, ValueError) as error:  # nesting too deep, a number too long
        raise argparse.ArgumentTypeError(
            f"cannot read {_short(text)} as JSON keyword arguments: {error}"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object of keyword arguments like '{{\"alpha\": 0.1}}', got {text!r}"
        )
    return value


def _short(text: str, most: int = 60) -> str:
    """``text`` quoted, shortened for a one-line error."""
    return repr(text if len(text) <= most else text[: most - 1] + "…")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(_positive_int(part) for part in text.split(",") if part.strip()) or ()
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"invalid sizes {text!r}: expected whole numbers >= 1 separated by commas"
        ) from None


# --- the parser -------------------------------------------------------------------------------


def option_flag(name: str) -> str:
    """The command-line flag of a check option: ``max_evaluations`` → ``--max-evaluations``."""
    return "--" + name.replace("_", "-")


def _add_command(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    summary: str,
    description: str,
    examples: str,
) -> _Parser:
    """A subcommand: ``summary`` in the main help, its description wrapped, its examples."""
    return commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, width=88),
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``gradcheck`` argument parser (subcommands ``check``, ``list``, ``speed``).

    Returns
    -------
    argparse.ArgumentParser
        Its errors exit with status 2 and one line on stderr.
    """
    from gradcheck import __version__

    parser = _Parser(
        prog="gradcheck",
        description="Numerical gradient checking for hand-written NumPy backprop layers.",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gradcheck {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_check_command(commands)
    _add_list_command(commands)
    _add_speed_command(commands)
    return parser


# --- check ------------------------------------------------------------------------------------


def _add_check_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    check = _add_command(
        commands,
        "check",
        "check the gradients of layers (exit 1 on a problem)",
        "Compare each layer's backward() with numerical gradients, element by element, and "
        "print a report table per layer.",
        CHECK_EXAMPLES,
    )
    check.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="module:Name, path/to/file.py:Name, or a module or file (every "
        "layer in it that offers example inputs)",
    )
    _add_input_options(check)
    _add_check_options(check)
    _add_check_output_options(check)


def _add_input_options(check: argparse.ArgumentParser) -> None:
    """How the inputs and constructor arguments of a layer without example() are made."""
    inputs = check.add_argument_group("inputs")
    inputs.add_argument(
        "--shape",
        action="append",
        type=_shape,
        default=[],
        metavar="SHAPE",
        help="shape of one forward input, e.g. 5,4; repeat per input",
    )
    inputs.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float64",
        help="dtype of the inputs and parameters (default: float64)",
    )
    inputs.add_argument(
        "--kwargs",
        type=_json_kwargs,
        default=None,
        metavar="JSON",
        help="constructor keyword arguments as a JSON object, e.g. '{\"alpha\": 0.1}'",
    )
    inputs.add_argument(
        "--param",
        action="append",
        type=_named_shape,
        default=[],
        metavar="NAME=SHAPE",
        help="a constructor argument that is a random array, e.g. W=4,3; repeatable",
    )


def _add_check_options(parser: argparse.ArgumentParser) -> None:
    """One flag per textual option of :data:`gradcheck.options.OPTIONS` (stored as text)."""
    from gradcheck.options import OPTIONS

    group = parser.add_argument_group(
        "check options", "the same options as gradcheck.check() and the pytest plugin"
    )
    for spec in OPTIONS.values():
        if not spec.textual:
            continue
        dest = f"option_{spec.name}"
        help_text = spec.help
        if spec.name == "seed":
            help_text += "; also seeds the example and --shape inputs"
        if isinstance(spec.default, bool):
            on, off = option_flag(spec.name), "--no-" + spec.name.replace("_", "-")
            group.add_argument(
                on,
                dest=dest,
                action="store_const",
                const="true",
                help=help_text + ("" if not spec.default else " (default)"),
            )
            group.add_argument(
                off,
                dest=dest,
                action="store_const",
                const="false",
                help=f"the opposite of {on}" + (" (default)" if not spec.default else ""),
            )
            continue
        metavar = "{" + ",".join(spec.choices) + "}" if spec.choices else spec.metavar
        if spec.default is not None:
            help_text += f" (default: {spec.default})"
        group.add_argument(option_flag(spec.name), dest=dest, metavar=metavar, help=help_text)


def _add_check_output_options(check: argparse.ArgumentParser) -> None:
    output = check.add_argument_group("output")
    output.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout instead of text"
    )
    color = output.add_mutually_exclusive_group()
    color.add_argument(
        "--color",
        dest="color",
        action="store_const",
        const=True,
        default=None,
        help="colour the output even when stdout is not a terminal",
    )
    color.add_argument(
        "--no-color",
        dest="color",
        action="store_const",
        const=False,
        help="never colour (colour is off anyway when NO_COLOR is set)",
    )
    output.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="one line per passing layer; full reports only for failures",
    )
    output.add_argument(
        "--traceback", action="store_true", help="show the traceback when a layer raises"
    )
    output.add_argument(
        "--html",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write one HTML page with every report and its error heatmaps",
    )


# --- list -------------------------------------------------------------------------------------


def _add_list_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    listing = _add_command(
        commands,
        "list",
        "list the checkable layers and their example inputs",
        "List the layers found in modules or files, one line each: example inputs (shape, "
        "dtype) and parameters.",
        LIST_EXAMPLES,
    )
    listing.add_argument(
        "modules",
        nargs="*",
        default=["reference_layers"],
        metavar="MODULE",
        help="modules, files or module:Name (default: reference_layers)",
    )
    listing.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float64",
        help="dtype of the example inputs (default: float64)",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")


# --- speed ------------------------------------------------------------------------------------


def _add_speed_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    speed = _add_command(
        commands,
        "speed",
        "why backprop: numerical gradients vs backprop on the two-layer net",
        "Time one gradient of the chapter's two-layer net (784 -> 50 -> 10, batch 100, "
        "synthetic MNIST-like data) and of a sweep of hidden sizes, by the textbook's numerical "
        "loop, gradcheck's engine, gradcheck.check and backprop, with the largest difference "
        "between the gradients.",
        SPEED_EXAMPLES,
    )
    _add_measurement_options(speed)
    _add_speed_output_options(speed)
    _add_training_options(speed)


def _add_measurement_options(speed: argparse.ArgumentParser) -> None:
    """The nets measured, and how: sizes, sampling, seed, BLAS threads."""
    speed.add_argument(
        "--quick",
        action="store_true",
        help="time a sample of elements of the slow methods and extrapolate",
    )
    speed.add_argument(
        "--sizes",
        type=_sizes,
        default=(5, 10, 20, 50, 100),
        metavar="H,H,...",
        help="hidden sizes of the sweep (default: 5,10,20,50,100)",
    )
    speed.add_argument(
        "--input-size",
        type=_positive_int,
        default=784,
        metavar="N",
        help="input width (default: 784)",
    )
    speed.add_argument(
        "--output-size",
        type=_positive_int,
        default=10,
        metavar="N",
        help="number of classes (default: 10)",
    )
    speed.add_argument(
        "--batch", type=_positive_int, default=100, metavar="N", help="batch size (default: 100)"
    )
    speed.add_argument(
        "--samples",
        type=_positive_int,
        default=200,
        metavar="K",
        help="elements timed per method and size with --quick (default: 200)",
    )
    speed.add_argument("--seed", type=int, default=0, help="seed of weights and data (default: 0)")
    speed.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        metavar="N",
        help="BLAS threads while measuring, via threadpoolctl; 0 leaves the BLAS "
        "alone (default: 1, steady on a shared machine)",
    )


def _add_speed_output_options(speed: argparse.ArgumentParser) -> None:
    speed.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="write a log-log plot of time against parameters (needs matplotlib)",
    )
    speed_output = speed.add_mutually_exclusive_group()
    speed_output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    speed_output.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def _add_training_options(speed: argparse.ArgumentParser) -> None:
    speed.add_argument(
        "--train",
        action="store_true",
        help="also train the net on scikit-learn's digits with backprop and "
        "estimate the time with numerical gradients (needs scikit-learn)",
    )
    speed.add_argument(
        "--epochs",
        type=_positive_int,
        default=10,
        metavar="N",
        help="epochs for --train (default: 10)",
    )
