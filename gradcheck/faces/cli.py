"""The ``gradcheck`` command line: ``check``, ``list`` and ``speed``.

The check options (``--method``, ``--rtol``, ``--strict``, ...) are generated from
:data:`gradcheck.options.OPTIONS` and parsed with :meth:`OptionSpec.from_text`, so the
command line accepts and rejects exactly what the library and the pytest plugin do.

Exit status: 0 when every check passed, 1 when a gradient problem was found (a mismatch,
a malformed ``backward``, a layer that raised), 2 for a usage or load error — always
with one line on stderr, never a bare traceback for a user error.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import io
import json
import math
import os
import re
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn

import numpy as np

from gradcheck.report.formatting import format_duration

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
# Inputs made up for a layer that offers no example(rng, dtype): small, not square.
DEFAULT_SHAPE = (3, 4)

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


class UsageError(Exception):
    """A mistake on the command line or in a target; exit status 2 with one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``gradcheck check: error: ... (see --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --- colour and progress ------------------------------------------------------------------


def _use_color(choice: bool | None, stream: IO[str]) -> bool:
    """``--color``/``--no-color`` win; else colour a TTY unless NO_COLOR is set (no-color.org)."""
    if choice is not None:
        return choice
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_GREEN, _RED, _YELLOW, _BOLD, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[1m", "\033[0m"


def _colorize(text: str) -> str:
    text = re.sub(r"(?<=: )passed\b", f"{_GREEN}passed{_RESET}", text)
    text = re.sub(r"\bFAILED\b|\bERROR\b", lambda m: f"{_BOLD}{_RED}{m.group(0)}{_RESET}", text)
    text = text.replace("✓", f"{_GREEN}✓{_RESET}").replace("✗", f"{_RED}✗{_RESET}")
    return re.sub(r"\bskipped\b", f"{_YELLOW}skipped{_RESET}", text)


class _Progress:
    """A self-erasing status line on stderr, shown only for steps that take a moment.

    ``update`` starts a timer; if the step is still running after ``delay`` seconds the
    message appears (and later updates replace it at once). ``clear`` erases the line
    before anything else is printed. Disabled unless stderr is a terminal, so it never
    mixes with redirected output.
    """

    def __init__(self, stream: IO[str], enabled: bool, delay: float = 0.4) -> None:
        self.stream = stream
        self.enabled = enabled
        self.delay = delay
        self._lock = threading.Lock()
        self._message: str | None = None
        self._shown = False
        self._timer: threading.Timer | None = None

    def update(self, message: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._message = message
            if self._shown:
                self._write()
            elif self._timer is None:
                self._timer = threading.Timer(self.delay, self._show)
                self._timer.daemon = True
                self._timer.start()

    def _show(self) -> None:
        with self._lock:
            if self._message is not None:
                self._shown = True
                self._write()

    def _write(self) -> None:
        assert self._message is not None
        self.stream.write(f"\r\033[K{self._message}")
        self.stream.flush()

    def clear(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._shown:
                self.stream.write("\r\033[K")
                self.stream.flush()
            self._shown = False
            self._message = None


# --- shared argument types ------------------------------------------------------------------


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
        raise argparse.ArgumentTypeError(f"invalid JSON {text!r}: {error.msg}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object of keyword arguments like '{{\"alpha\": 0.1}}', got {text!r}"
        )
    return value


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


# --- the parser -----------------------------------------------------------------------------


def _option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


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
            on, off = _option_flag(spec.name), "--no-" + spec.name.replace("_", "-")
            group.add_argument(on, dest=dest, action="store_const", const="true",
                               help=help_text + ("" if not spec.default else " (default)"))
            group.add_argument(off, dest=dest, action="store_const", const="false",
                               help=f"the opposite of {on}" + (" (default)" if not spec.default
                                                               else ""))
            continue
        metavar = "{" + ",".join(spec.choices) + "}" if spec.choices else spec.metavar
        if spec.default is not None:
            help_text += f" (default: {spec.default})"
        group.add_argument(_option_flag(spec.name), dest=dest, metavar=metavar, help=help_text)


def _add_output_options(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout instead of text")
    color = parser.add_mutually_exclusive_group()
    color.add_argument("--color", dest="color", action="store_const", const=True, default=None,
                       help="colour the output even when stdout is not a terminal")
    color.add_argument("--no-color", dest="color", action="store_const", const=False,
                       help="never colour (colour is off anyway when NO_COLOR is set)")


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=88)


def build_parser() -> argparse.ArgumentParser:
    """The ``gradcheck`` argument parser (subcommands ``check``, ``list``, ``speed``)."""
    from gradcheck import __version__

    parser = _Parser(
        prog="gradcheck",
        description="Numerical gradient checking for hand-written NumPy backprop layers.",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gradcheck {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check", help="check the gradients of layers (exit 1 on a problem)",
        description=_wrap("Compare each layer's backward() with numerical gradients, element "
                          "by element, and print a report table per layer."),
        epilog=CHECK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("targets", nargs="+", metavar="TARGET",
                       help="module:Name, path/to/file.py:Name, or a module or file (every "
                            "layer in it that offers example inputs)")
    inputs = check.add_argument_group("inputs")
    inputs.add_argument("--shape", action="append", type=_shape, default=[], metavar="SHAPE",
                        help="shape of one forward input, e.g. 5,4; repeat per input")
    inputs.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                        help="dtype of the inputs and parameters (default: float64)")
    inputs.add_argument("--kwargs", type=_json_kwargs, default=None, metavar="JSON",
                        help="constructor keyword arguments as a JSON object, e.g. "
                             "'{\"alpha\": 0.1}'")
    inputs.add_argument("--param", action="append", type=_named_shape, default=[],
                        metavar="NAME=SHAPE",
                        help="a constructor argument that is a random array, e.g. W=4,3; "
                             "repeatable")
    _add_check_options(check)
    output = check.add_argument_group("output")
    _add_output_options(output)
    output.add_argument("-q", "--quiet", action="store_true",
                        help="one line per passing layer; full reports only for failures")
    output.add_argument("--traceback", action="store_true",
                        help="show the traceback when a layer raises")
    output.add_argument("--html", type=Path, default=None, metavar="FILE",
                        help="also write one HTML page with every report and its error "
                             "heatmaps")

    listing = commands.add_parser(
        "list", help="list the checkable layers and their example inputs",
        description=_wrap("List the layers found in modules or files, one line each: example "
                          "inputs (shape, dtype) and parameters."),
        epilog=LIST_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("modules", nargs="*", default=["reference_layers"], metavar="MODULE",
                         help="modules, files or module:Name (default: reference_layers)")
    listing.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                         help="dtype of the example inputs (default: float64)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")

    speed = commands.add_parser(
        "speed", help="why backprop: numerical gradients vs backprop on the two-layer net",
        description=_wrap("Time one gradient of the chapter's two-layer net (784 -> 50 -> 10, "
                          "batch 100, synthetic MNIST-like data) and of a sweep of hidden "
                          "sizes, by the textbook's numerical loop, gradcheck's engine, "
                          "gradcheck.check and backprop, with the largest difference between "
                          "the gradients."),
        epilog=SPEED_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    speed.add_argument("--quick", action="store_true",
                       help="time a sample of elements of the slow methods and extrapolate")
    speed.add_argument("--sizes", type=_sizes, default=(5, 10, 20, 50, 100), metavar="H,H,...",
                       help="hidden sizes of the sweep (default: 5,10,20,50,100)")
    speed.add_argument("--input-size", type=_positive_int, default=784, metavar="N",
                       help="input width (default: 784)")
    speed.add_argument("--output-size", type=_positive_int, default=10, metavar="N",
                       help="number of classes (default: 10)")
    speed.add_argument("--batch", type=_positive_int, default=100, metavar="N",
                       help="batch size (default: 100)")
    speed.add_argument("--samples", type=_positive_int, default=200, metavar="K",
                       help="elements timed per method and size with --quick (default: 200)")
    speed.add_argument("--seed", type=int, default=0, help="seed of weights and data (default: 0)")
    speed.add_argument("--blas-threads", type=int, default=1, metavar="N",
                       help="BLAS threads while measuring, via threadpoolctl; 0 leaves the BLAS "
                            "alone (default: 1, steady on a shared machine)")
    speed.add_argument("--plot", type=Path, metavar="FILE.png",
                       help="write a log-log plot of time against parameters (needs matplotlib)")
    speed_output = speed.add_mutually_exclusive_group()
    speed_output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    speed_output.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    speed.add_argument("--train", action="store_true",
                       help="also train the net on scikit-learn's digits with backprop and "
                            "estimate the time with numerical gradients (needs scikit-learn)")
    speed.add_argument("--epochs", type=_positive_int, default=10, metavar="N",
                       help="epochs for --train (default: 10)")
    return parser


# --- check ------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What happened to one target: passed, failed, error (raised) or skipped."""

    name: str
    status: str
    report: Any = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.report is not None:
            data = self.report.to_dict()
        else:
            data = {"target": self.name.rpartition(":")[2],
                    "passed": None if self.status == "skipped" else False}
        data.update(name=self.name, status=self.status)
        if self.message is not None:
            data["error" if self.status == "error" else "reason"] = self.message
        return data


def _check_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, parsed and validated by their specs."""
    from gradcheck.errors import OptionError
    from gradcheck.options import OPTIONS

    options = {}
    for name, spec in OPTIONS.items():
        text = getattr(args, f"option_{name}", None)
        if text is None:
            continue
        try:
            options[name] = spec.from_text(text)
        except OptionError as error:
            raise UsageError(f"{_option_flag(name)}: {error}") from None
    return options


def _is_named(target: str, candidates: Sequence[Any]) -> bool:
    """Whether ``target`` names one class explicitly (``module:Name``)."""
    return len(candidates) == 1 and target.endswith(f":{candidates[0].name}")


def _constructor_arguments(
    args: argparse.Namespace, rng: np.random.Generator, dtype: np.dtype
) -> dict[str, Any]:
    kwargs = dict(args.kwargs or {})
    for name, shape in args.param:
        kwargs[name] = rng.standard_normal(shape).astype(dtype)
    return kwargs


def _construct(candidate: Any, kwargs: dict[str, Any]) -> Any:
    try:
        return candidate.cls(**kwargs)
    except Exception as error:
        given = ", ".join(
            f"{k}=<array {v.shape}>" if isinstance(v, np.ndarray) else f"{k}={v!r}"
            for k, v in kwargs.items()
        )
        hint = "" if kwargs else "; give --kwargs JSON or --param NAME=SHAPE"
        raise UsageError(
            f"cannot construct {candidate.name}({given}): {type(error).__name__}: {error}{hint}"
        ) from None


def _prepare(
    candidate: Any, display: str, named: bool, args: argparse.Namespace, seed: int
) -> tuple[Any, tuple[Any, ...]] | str:
    """``(instance, inputs)`` for one candidate, or the reason it is skipped.

    Raises
    ------
    UsageError
        A named class that cannot be given inputs, or whose constructor refuses the
        arguments given.
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(args.dtype)
    has_arguments = bool(args.kwargs or args.param)
    if args.shape:
        inputs = tuple(rng.standard_normal(shape).astype(dtype) for shape in args.shape)
        if not has_arguments and candidate.has_example:
            instance, _ = candidate.example(np.random.default_rng(seed), dtype)
        else:
            instance = _construct(candidate, _constructor_arguments(args, rng, dtype))
        return instance, inputs
    if has_arguments:
        raise UsageError(
            f"{display}: --kwargs and --param need the inputs too: give one "
            "--shape per forward input"
        )
    if not candidate.has_example:
        guessed = _default_inputs(candidate, rng, dtype)
        if guessed is not None:
            return guessed
        reason = (
            "no example(rng, dtype) classmethod and no constructor without arguments; "
            "name it with --shape (and --param/--kwargs) to check it"
        )
        if named:
            raise UsageError(
                f"{display} has no example(rng, dtype) classmethod and needs constructor "
                "arguments: give --param NAME=SHAPE or --kwargs JSON, and its inputs with "
                "--shape (one per forward input), e.g. --shape 5,4"
            )
        return reason
    return candidate.example(rng, dtype)


def _default_inputs(
    candidate: Any, rng: np.random.Generator, dtype: np.dtype
) -> tuple[Any, tuple[Any, ...]] | None:
    """A student's layer without ``example``: construct it bare, feed standard normals.

    Works for the common case — a layer whose constructor needs nothing and whose
    forward takes arrays — so ``gradcheck check my_layers.py`` just works; the report
    notes the inputs it made up. None when the class needs constructor arguments.
    """
    try:
        instance = candidate.cls()
        parameters = inspect.signature(instance.forward).parameters.values()
    except Exception:  # needs arguments, or has no inspectable forward: not guessable
        return None
    required = [
        p for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if not required:
        return None
    inputs = tuple(rng.standard_normal(DEFAULT_SHAPE).astype(dtype) for _ in required)
    return instance, inputs


def _user_frame(tb: TracebackType | None) -> str:
    """``file.py:12 in backward`` for the innermost frame outside gradcheck and numpy."""
    package = str(Path(__file__).resolve().parent)
    location = ""
    for frame in traceback.extract_tb(tb):
        filename = str(Path(frame.filename).resolve())
        if filename.startswith(package) or f"{os.sep}numpy{os.sep}" in filename:
            continue
        location = f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"
    return location


def _run_one(item: _Item, args: argparse.Namespace, options: dict[str, Any]) -> _Outcome:
    """Prepare and check one candidate; user-code exceptions become an ``error`` outcome."""
    import gradcheck
    from gradcheck.errors import CheckError, OptionError
    from gradcheck.errors import UsageError as CallError

    seed = options.get("seed", 0)
    candidate, name = item.candidate, item.display
    try:
        prepared = _prepare(candidate, item.display, item.named, args, seed)
    except UsageError:
        raise
    except CheckError as error:  # example() returned something malformed
        return _Outcome(name, "error", message=str(error))
    except Exception as error:
        return _raised(name, f"{candidate.name}.example", error, args)
    if isinstance(prepared, str):
        return _Outcome(name, "skipped", message=prepared)
    instance, inputs = prepared
    # A model that exposes its layers is checked layer by layer, to name the guilty one.
    from gradcheck.network import exposes_layers

    check = gradcheck.check_network if exposes_layers(instance) else gradcheck.check
    try:
        report = check(instance, *inputs, **options)
    except OptionError as error:
        raise UsageError(str(error)) from None
    except CallError as error:  # the call does not fit this layer (e.g. --wrt, --shape)
        if item.named:
            raise UsageError(str(error)) from None
        return _Outcome(name, "skipped", message=str(error))
    except CheckError as error:  # a malformed layer: a problem found, not a usage error
        return _Outcome(name, "error", message=str(error))
    except Exception as error:
        return _raised(name, candidate.name, error, args)
    if not candidate.has_example and not args.shape and hasattr(report, "notes"):
        report.notes.append(
            f"inputs: standard normal arrays of shape {DEFAULT_SHAPE} (the class has no "
            "example(rng, dtype)); choose them with --shape"
        )
    return _Outcome(name, "passed" if report.passed else "failed", report)


def _raised(name: str, where: str, error: Exception, args: argparse.Namespace) -> _Outcome:
    """The outcome of user code that raised: one line, the traceback only if asked."""
    _show_traceback(args, error)
    hint = "" if args.traceback else "; --traceback shows the traceback"
    return _Outcome(
        name, "error",
        message=f"{where} raised {type(error).__name__}: {error}"
                f"{_user_frame(error.__traceback__)}{hint}",
    )


def _html_reports(outcomes: Sequence[_Outcome]) -> list[Any]:
    """Every report of the run, a network's layer by layer, for ``--html``."""
    reports: list[Any] = []
    for outcome in outcomes:
        report = outcome.report
        if report is None:
            continue
        if hasattr(report, "checks"):  # a NetworkReport
            reports += [check.report for check in report.checks if check.report is not None]
            if report.end_to_end is not None:
                reports.append(report.end_to_end)
        else:
            reports.append(report)
    return reports


def _show_traceback(args: argparse.Namespace, error: BaseException) -> None:
    if getattr(args, "traceback", False):
        sys.stderr.write("".join(traceback.format_exception(error)))


def _one_line(text: str) -> str:
    """Messages from user code may span lines; a status line must not."""
    return " ".join(text.split())


def _outcome_text(outcome: _Outcome, quiet: bool) -> str:
    if outcome.status == "skipped":
        return f"- {outcome.name}: skipped: {outcome.message}"
    if outcome.status == "error":
        return f"✗ {outcome.name}: ERROR: {_one_line(outcome.message or '')}"
    if quiet and outcome.status == "passed":
        return f"✓ {outcome.report.summary()}"
    return str(outcome.report)


def _summary_line(outcomes: Sequence[_Outcome]) -> str:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("passed", "failed", "error",
                                                                 "skipped")}
    line = f"{counts['passed']} passed, {counts['failed'] + counts['error']} failed"
    if counts["error"]:
        line += f" ({counts['error']} with errors)"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    return line


def _jsonable(value: Any) -> Any:
    """Plain JSON: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _emit_json(document: dict[str, Any]) -> None:
    json.dump(_jsonable(document), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


@dataclass(frozen=True)
class _Item:
    """A class to check: the discovery candidate, how to call it, whether it was named."""

    candidate: Any
    display: str
    named: bool


def _resolve_all(targets: Sequence[str]) -> list[_Item]:
    """Every candidate of every target, named as the user would write it.

    A class from a file is shown as ``path/to/file.py:Name`` (its module name is internal).
    """
    from gradcheck.conventions.discovery import LoadError, resolve

    found: list[_Item] = []
    for target in targets:
        try:
            candidates = resolve(target)
        except LoadError as error:
            raise UsageError(str(error)) from None
        named = _is_named(target, candidates)
        source = target.rpartition(":")[0] if named else target
        from_file = source.endswith(".py") or "/" in source or os.sep in source
        found += [
            _Item(c, f"{source}:{c.name}" if from_file else c.qualified, named)
            for c in candidates
        ]
    return found


def _cmd_check(args: argparse.Namespace) -> int:
    options = _check_options(args)
    candidates = _resolve_all(args.targets)
    if args.shape and len(candidates) > 1:
        raise UsageError(
            f"--shape gives the inputs of one layer, but the targets hold {len(candidates)} "
            "classes; name one class, e.g. module:Name"
        )
    color = not args.json and _use_color(args.color, sys.stdout)
    progress = _Progress(sys.stderr, _isatty(sys.stderr))
    outcomes: list[_Outcome] = []
    try:
        for number, item in enumerate(candidates, start=1):
            progress.update(f"checking {item.candidate.name} ({number}/{len(candidates)})...")
            outcome = _run_one(item, args, options)
            progress.clear()
            outcomes.append(outcome)
            if not args.json:
                text = _outcome_text(outcome, args.quiet)
                print(_colorize(text) if color else text, flush=True)
                if "\n" in text:
                    print()
    finally:
        progress.clear()
    checked = [o for o in outcomes if o.status != "skipped"]
    if not checked:
        raise UsageError(
            "nothing to check: no class in the targets offers example(rng, dtype); name one "
            "class with its inputs, e.g. module:Name --shape 5,4"
        )
    status = EXIT_OK if all(o.status == "passed" for o in checked) else EXIT_PROBLEM
    summary = _summary_line(outcomes)
    if args.html is not None:
        from gradcheck.report.html import write_html

        written = write_html(_html_reports(outcomes), args.html)
        print(f"wrote {written}", file=sys.stderr)
    if args.json:
        from gradcheck import __version__

        _emit_json({
            "gradcheck": __version__,
            "reports": [o.to_dict() for o in outcomes],
            "summary": {
                "passed": sum(o.status == "passed" for o in outcomes),
                "failed": sum(o.status in ("failed", "error") for o in outcomes),
                "errors": sum(o.status == "error" for o in outcomes),
                "skipped": sum(o.status == "skipped" for o in outcomes),
                "total": len(outcomes),
                "exit_status": status,
                "line": summary,
            },
        })
    else:
        print(_colorize(summary) if color else summary)
    return status


# --- list -------------------------------------------------------------------------------------


def _describe_array(value: Any) -> str:
    array = np.asarray(value)
    return f"{tuple(array.shape)} {array.dtype}"


def _list_entry(item: _Item, dtype: np.dtype) -> dict[str, Any]:
    from gradcheck.conventions.registry import make_target
    from gradcheck.conventions.target import TargetRequest

    candidate = item.candidate
    entry: dict[str, Any] = {"name": item.display, "checkable": candidate.has_example}
    if not candidate.has_example:
        entry["note"] = "no example(rng, dtype): check it with --shape"
        return entry
    try:
        instance, inputs = candidate.example(np.random.default_rng(0), dtype)
    except Exception as error:
        entry["note"] = f"example(rng, dtype) fails: {type(error).__name__}: {error}"
        return entry
    entry["inputs"] = [_describe_array(x) for x in inputs]
    try:
        # The adapter the checker uses: the same inputs and parameters, the same names.
        target = make_target(TargetRequest(instance, inputs))
    except Exception as error:
        entry["note"] = f"forward/backward fail on the example: {type(error).__name__}: {error}"
        return entry
    names = list(getattr(target, "input_names", None) or [c.name for c in target.constants])
    if len(names) == len(inputs):
        entry["inputs"] = [f"{n} {d}" for n, d in zip(names, entry["inputs"], strict=True)]
    entry["kind"] = target.kind
    entry["parameters"] = {
        v.name: list(v.value.shape) for v in target.variables if v.role == "parameter"
    }
    return entry


def _list_line(entry: dict[str, Any], width: int) -> str:
    name = entry["name"].ljust(width)
    if "inputs" not in entry:
        return f"{name}  ({entry['note']})"
    inputs = ", ".join(entry["inputs"]) or "none"
    params = ", ".join(f"{k} {tuple(v)}" for k, v in entry.get("parameters", {}).items())
    line = f"{name}  inputs {inputs}"
    if params:
        line += f"; params {params}"
    if "note" in entry:
        line += f"  ({entry['note']})"
    return line


def _cmd_list(args: argparse.Namespace) -> int:
    candidates = _resolve_all(args.modules)
    entries = [_list_entry(item, np.dtype(args.dtype)) for item in candidates]
    if args.json:
        _emit_json({"layers": entries})
        return EXIT_OK
    width = max(len(e["name"]) for e in entries)
    for entry in entries:
        print(_list_line(entry, width))
    checkable = sum(bool(e["checkable"]) for e in entries)
    line = f"{len(entries)} classes: {checkable} with example inputs"
    if checkable < len(entries):
        line += f", {len(entries) - checkable} without (check those with --shape)"
    print(line)
    return EXIT_OK


# --- speed ------------------------------------------------------------------------------------


def _mark(text: str, extrapolated: bool) -> str:
    return f"~{text}" if extrapolated and text != "n/a" else text


def _ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.3g}"


def speed_table(comparison: Any) -> str:
    """The text table of a :class:`gradcheck.teaching.speed.SpeedComparison`."""
    config = comparison.config
    header = ["", "hidden", "params", "passes", "textbook", "engine", "check full",
              "check fast", "backprop", "textbook/backprop", "|Δ| textbook", "|Δ| engine"]
    rows = [header]
    for r in comparison.results:
        sampled = r.diff_sampled
        rows.append([
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
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        f"Numerical gradient vs backprop: TwoLayerNet({config.input_size}, hidden, "
        f"{config.output_size}), batch {config.batch_size}, float64, synthetic MNIST-like data "
        f"(seed {config.seed}).",
        "Time for one gradient of every parameter.",
        "",
    ]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True)]
        lines.append(" ".join(cells).rstrip())
    first = comparison.results[0]
    legend = [
        ("passes", "forward passes of the textbook loop: 2 per parameter (engine: 4 per "
                   f"parameter, {first.engine.forward_passes:,} at hidden {first.hidden_size}; "
                   f"check full: {first.check_full.forward_passes:,}; backprop: 1 forward + "
                   "1 backward)"),
        ("textbook", "reference_layers.functions.numerical_gradient on each parameter, "
                     "h = 1e-4 (as TwoLayerNet.numerical_gradient)"),
        ("engine", "gradcheck.numerical_gradient(f, param, method='central'), with error "
                   "estimates"),
        ("check", "gradcheck.check(net, x, t, mode='full'): complex step where possible, "
                  "plus diagnostics"),
    ]
    if comparison.fast_mode.available:
        passes = ", ".join(f"{r.check_fast.forward_passes:,}" for r in comparison.results)
        legend.append(("check fast", "gradcheck.check(net, x, t, mode='fast'): random "
                                     f"directions; forward passes by size: {passes}"))
    else:
        legend.append(("check fast", f"n/a: {comparison.fast_mode.reason}"))
    legend += [
        ("backprop", "net.gradient(x, t), fastest of repeated calls"),
        ("|Δ|", "max |numerical − backprop| over the compared elements (largest gradient "
                f"element: {max(r.gradient_scale for r in comparison.results):.2g})"),
    ]
    if any(r.textbook.extrapolated for r in comparison.results):
        legend.append((
            "~", f"extrapolated (--quick): about {config.samples} sampled elements timed in "
                 "pieces; the fastest piece's time per element times n (what an idle machine "
                 "does); |Δ| over the sampled elements. Run without --quick to measure all."
        ))
    if any(r.is_textbook_size for r in comparison.results):
        legend.append(("*", "the chapter's net: 784 -> 50 -> 10, batch 100"))
    legend.append(("measured", f"in {comparison.seconds:.1f} s; "
                               f"{_machine_text(comparison.machine)}"))
    lines.append("")
    for key, text in legend:
        lines += textwrap.wrap(text, width=96, initial_indent=f"  {key:<11}",
                               subsequent_indent=" " * 13)
    return "\n".join(lines)


def _machine_text(machine: dict[str, Any]) -> str:
    return (f"Python {machine.get('python')}, NumPy {machine.get('numpy')}, "
            f"{machine.get('cpus')} CPUs, BLAS threads {machine.get('blas_threads')}, "
            f"{machine.get('platform')}")


def training_text(result: Any) -> str:
    """The text summary of a :class:`gradcheck.teaching.speed.TrainingResult`."""
    c = result.config
    step = result.numerical_step
    return "\n".join([
        f"Training TwoLayerNet(64, {c.hidden_size}, 10) on scikit-learn's 8x8 digits "
        f"({result.train_size} train / {result.test_size} test), {c.epochs} epochs, "
        f"{result.steps} SGD steps of batch {c.batch_size}, learning rate {c.learning_rate}:",
        f"  backprop:  {format_duration(result.backprop_seconds)} for all steps; accuracy "
        f"{result.train_accuracy:.1%} train, {result.test_accuracy:.1%} test",
        f"  numerical: {_mark(format_duration(step.seconds), step.extrapolated)} per step "
        f"({result.parameters:,} parameters, {step.forward_passes:,} forward passes), so "
        f"{_mark(format_duration(result.numerical_seconds), True)} for the same training",
    ])


def _speed_csv(comparison: Any) -> str:
    fields = ["hidden_size", "parameters", "input_size", "output_size", "batch_size",
              "textbook_seconds", "textbook_extrapolated", "textbook_forward_passes",
              "engine_seconds", "engine_extrapolated", "engine_forward_passes",
              "check_full_seconds", "check_full_extrapolated", "check_full_forward_passes",
              "check_fast_seconds", "backprop_seconds", "ratio", "textbook_max_diff",
              "engine_max_diff", "compared_elements"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for r in comparison.results:
        row: dict[str, Any] = {
            "hidden_size": r.hidden_size, "parameters": r.parameters,
            "input_size": r.input_size, "output_size": r.output_size,
            "batch_size": r.batch_size, "ratio": r.ratio,
            "backprop_seconds": r.backprop.seconds, "check_fast_seconds": r.check_fast.seconds,
            "textbook_max_diff": r.textbook_max_diff, "engine_max_diff": r.engine_max_diff,
            "compared_elements": r.compared_elements,
        }
        for method in ("textbook", "engine", "check_full"):
            timing = getattr(r, method)
            row[f"{method}_seconds"] = timing.seconds
            row[f"{method}_extrapolated"] = timing.extrapolated
            row[f"{method}_forward_passes"] = timing.forward_passes
        writer.writerow(["" if row[f] is None else row[f] for f in fields])
    return buffer.getvalue()


def _require(module: str, extra: str, purpose: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(
            f"{purpose} needs {module}, which is not installed: "
            f"pip install 'gradcheck[{extra}]'"
        )


def write_speed_plot(comparison: Any, path: Path) -> None:
    """Log-log plot of time per gradient against the number of parameters (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = comparison.results
    params = [r.parameters for r in results]
    series = [
        ("textbook numerical_gradient", "textbook", "tab:red", "o"),
        ("gradcheck engine (central)", "engine", "tab:orange", "s"),
        ("gradcheck.check (full)", "check_full", "tab:purple", "D"),
        ("gradcheck.check (fast)", "check_fast", "tab:green", "v"),
        ("backprop (net.gradient)", "backprop", "tab:blue", "^"),
    ]
    figure, axes = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for label, method, color, marker in series:
        timings = [getattr(r, method) for r in results]
        points = [(p, t) for p, t in zip(params, timings, strict=True) if t.seconds is not None]
        if not points:
            continue
        extrapolated = any(t.extrapolated for _, t in points)
        axes.plot([p for p, _ in points], [t.seconds for _, t in points], color=color,
                  marker=marker, linestyle="--" if extrapolated else "-",
                  markerfacecolor="none" if extrapolated else color,
                  label=label + (" (extrapolated)" if extrapolated else ""))
    # Guides: a numerical gradient costs n forward passes of a cost ∝ n, so ∝ n²; backprop ∝ n.
    if len(params) > 1:
        first, span = results[0], np.array([params[0], params[-1]], dtype=float)
        for timing, power, label in ((first.textbook, 2, "∝ n²"), (first.backprop, 1, "∝ n")):
            if timing.seconds is not None:
                guide = timing.seconds * (span / span[0]) ** power
                axes.plot(span, guide, color="gray", linestyle=":", linewidth=1)
                axes.annotate(label, (span[-1], guide[-1]), fontsize=8, color="gray",
                              textcoords="offset points", xytext=(-28, 6))
    for r in results:
        if r.is_textbook_size and r.ratio is not None:
            axes.annotate(f"784-50-10 net: ×{r.ratio:,.0f}", (r.parameters, r.textbook.seconds),
                          textcoords="offset points", xytext=(-150, 8), fontsize=9)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("number of parameters")
    axes.set_ylabel("seconds per gradient")
    c = comparison.config
    axes.set_title(f"Numerical gradient vs backprop: TwoLayerNet({c.input_size}, hidden, "
                   f"{c.output_size}), batch {c.batch_size}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _cmd_speed(args: argparse.Namespace) -> int:
    from gradcheck.teaching import speed

    if args.plot is not None:
        _require("matplotlib", "plot", "--plot")
        if args.plot.suffix.lower() != ".png":
            raise UsageError(f"--plot writes a PNG file; got {args.plot} (use a .png name)")
    if args.train:
        _require("sklearn", "digits", "--train (scikit-learn's digits dataset)")
    if not args.sizes:
        raise UsageError("--sizes needs at least one hidden size, e.g. --sizes 5,50")
    config = speed.SpeedConfig(
        input_size=args.input_size, hidden_sizes=args.sizes, output_size=args.output_size,
        batch_size=args.batch, seed=args.seed, quick=args.quick, samples=args.samples,
        blas_threads=args.blas_threads or None,
    )
    progress = _Progress(sys.stderr, _isatty(sys.stderr), delay=0.0)
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
    if args.json:
        document = comparison.to_dict()
        if training is not None:
            document["training"] = training.to_dict()
        _emit_json(document)
    elif args.csv:
        sys.stdout.write(_speed_csv(comparison))
    else:
        print(speed_table(comparison))
        if training is not None:
            print()
            print(training_text(training))
    if args.plot is not None:
        write_speed_plot(comparison, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return EXIT_OK


# --- entry point ------------------------------------------------------------------------------

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check": _cmd_check,
    "list": _cmd_list,
    "speed": _cmd_speed,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gradcheck`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 all passed, 1 a gradient problem found, 2 a usage or load error.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a one-line parser error
        return int(exit_.code) if isinstance(exit_.code, int) else EXIT_USAGE
    if args.command is None:
        print("gradcheck: error: choose a command: check, list or speed (see 'gradcheck --help')",
              file=sys.stderr)
        return EXIT_USAGE
    started = time.perf_counter()
    try:
        return _COMMANDS[args.command](args)
    except UsageError as error:
        print(f"gradcheck {args.command}: error: {_one_line(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        elapsed = time.perf_counter() - started
        print(f"\ngradcheck {args.command}: interrupted after {elapsed:.1f} s", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gradcheck ... | head`
        sys.stderr.close()
        return EXIT_OK
