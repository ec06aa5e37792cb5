"""``gradcheck check``: check each target class and print a report per layer and a summary."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from gradcheck.faces.cli.inputs import prepare
from gradcheck.faces.cli.output import colorize, emit_json, isatty, one_line, use_color
from gradcheck.faces.cli.parser import option_flag
from gradcheck.faces.cli.progress import Progress
from gradcheck.faces.cli.status import EXIT_OK, EXIT_PROBLEM, UsageError
from gradcheck.faces.cli.targets import TargetClass, resolve_all
from gradcheck.faces.examples import Attempt


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
            data = {
                "target": self.name.rpartition(":")[2],
                "passed": None if self.status == "skipped" else False,
            }
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
            raise UsageError(f"{option_flag(name)}: {error}") from None
    return options


def _user_frame(tb: TracebackType | None) -> str:
    """``file.py:12 in backward`` for the innermost frame outside gradcheck and numpy."""
    package = str(Path(__file__).resolve().parents[2])  # gradcheck/
    location = ""
    for frame in traceback.extract_tb(tb):
        filename = str(Path(frame.filename).resolve())
        if filename.startswith(package) or f"{os.sep}numpy{os.sep}" in filename:
            continue
        location = f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"
    return location


def _run_one(item: TargetClass, args: argparse.Namespace, options: dict[str, Any]) -> _Outcome:
    """Prepare and check one candidate; user-code exceptions become an ``error`` outcome.

    Made-up inputs may come with a second guess (integer labels after one-hot targets):
    it is tried when the check raises on the first, whose error is reported if both do.
    """
    from gradcheck.errors import CheckError

    seed = options.get("seed", 0)
    candidate, name = item.candidate, item.display
    try:
        prepared = prepare(item, args, seed)
    except UsageError:
        raise
    except CheckError as error:  # example() returned something malformed
        return _Outcome(name, "error", message=str(error))
    except Exception as error:
        return _raised(name, f"{candidate.name}.example", error, args)
    if isinstance(prepared, str):
        hint = "" if candidate.is_function else "; name it with --shape (and --param/--kwargs)"
        return _Outcome(name, "skipped", message=prepared + hint)
    outcomes = []
    for attempt in prepared:
        outcomes.append(_check_attempt(item, attempt, args, options))
        if outcomes[-1].status != "error":
            return outcomes[-1]
    return outcomes[0]


def _check_attempt(
    item: TargetClass, attempt: Attempt, args: argparse.Namespace, options: dict[str, Any]
) -> _Outcome:
    """Check one attempt; what a user's code raises becomes an ``error`` outcome."""
    import gradcheck
    from gradcheck.errors import CheckError, OptionError
    from gradcheck.errors import UsageError as CallError
    from gradcheck.network import exposes_layers

    name = item.display
    # A model that exposes its layers is checked layer by layer, to name the guilty one.
    check = gradcheck.check_network if exposes_layers(attempt.obj) else gradcheck.check
    try:
        report = check(attempt.obj, *attempt.inputs, **options)
    except OptionError as error:
        raise UsageError(str(error)) from None
    except CallError as error:  # the call does not fit this layer (e.g. --wrt, --shape)
        if item.named:
            raise UsageError(str(error)) from None
        return _Outcome(name, "skipped", message=str(error))
    except CheckError as error:  # a malformed layer: a problem found, not a usage error
        return _Outcome(name, "error", message=str(error))
    except Exception as error:
        return _raised(name, item.candidate.name, error, args)
    if attempt.note:
        report.notes.append(attempt.note)
    return _Outcome(name, "passed" if report.passed else "failed", report)


def _raised(name: str, where: str, error: Exception, args: argparse.Namespace) -> _Outcome:
    """The outcome of user code that raised: one line, the traceback only if asked."""
    _show_traceback(args, error)
    hint = "" if args.traceback else "; --traceback shows the traceback"
    return _Outcome(
        name,
        "error",
        message=f"{where} raised {type(error).__name__}: {error}"
        f"{_user_frame(error.__traceback__)}{hint}",
    )


def _show_traceback(args: argparse.Namespace, error: BaseException) -> None:
    if getattr(args, "traceback", False):
        sys.stderr.write("".join(traceback.format_exception(error)))


def _html_reports(outcomes: Sequence[_Outcome]) -> list[Any]:
    """Every report of the run, for ``--html`` (a network's shows its guilty layer)."""
    return [outcome.report for outcome in outcomes if outcome.report is not None]


def _outcome_text(outcome: _Outcome, quiet: bool) -> str:
    if outcome.status == "skipped":
        return f"- {outcome.name}: skipped: {outcome.message}"
    if outcome.status == "error":
        return f"✗ {outcome.name}: ERROR: {one_line(outcome.message or '')}"
    if quiet and outcome.status == "passed":
        return f"✓ {outcome.report.summary()}"
    return str(outcome.report)


def _summary_line(outcomes: Sequence[_Outcome]) -> str:
    counts = {
        s: sum(o.status == s for o in outcomes) for s in ("passed", "failed", "error", "skipped")
    }
    line = f"{counts['passed']} passed, {counts['failed'] + counts['error']} failed"
    if counts["error"]:
        line += f" ({counts['error']} with errors)"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    return line


def _check_each(
    candidates: Sequence[TargetClass],
    args: argparse.Namespace,
    options: dict[str, Any],
    color: bool,
) -> list[_Outcome]:
    """Check the classes in order, printing each outcome as it comes (unless ``--json``)."""
    progress = Progress(sys.stderr, isatty(sys.stderr))
    outcomes: list[_Outcome] = []
    try:
        for number, item in enumerate(candidates, start=1):
            progress.update(f"checking {item.candidate.name} ({number}/{len(candidates)})...")
            outcome = _run_one(item, args, options)
            progress.clear()
            outcomes.append(outcome)
            if not args.json:
                text = _outcome_text(outcome, args.quiet)
                print(colorize(text) if color else text, flush=True)
                if "\n" in text:
                    print()
    finally:
        progress.clear()
    return outcomes


def _json_document(outcomes: Sequence[_Outcome], status: int, summary: str) -> dict[str, Any]:
    """The ``--json`` document: every report, then the counts and the exit status."""
    from gradcheck import __version__

    return {
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
    }


def run_check(args: argparse.Namespace) -> int:
    """Run ``gradcheck check`` with its parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From the ``check`` subparser of :func:`~gradcheck.faces.cli.parser.build_parser`.

    Returns
    -------
    int
        0 when every class checked passed, 1 when one failed or raised.

    Raises
    ------
    UsageError
        Bad options or targets, or nothing to check.
    """
    options = _check_options(args)
    candidates = resolve_all(args.targets)
    if args.shape and len(candidates) > 1:
        raise UsageError(
            f"--shape gives the inputs of one layer, but the targets hold {len(candidates)} "
            "classes; name one class, e.g. module:Name"
        )
    color = not args.json and use_color(args.color, sys.stdout)
    outcomes = _check_each(candidates, args, options, color)
    checked = [o for o in outcomes if o.status != "skipped"]
    if not checked:
        raise UsageError(
            "nothing to check: no class or function pair in the targets could be given "
            "inputs; name one with its inputs, e.g. module:Name --shape 5,4"
        )
    status = EXIT_OK if all(o.status == "passed" for o in checked) else EXIT_PROBLEM
    summary = _summary_line(outcomes)
    if args.html is not None:
        from gradcheck.report.html import write_html

        written = write_html(_html_reports(outcomes), args.html)
        print(f"wrote {written}", file=sys.stderr)
    if args.json:
        emit_json(_json_document(outcomes, status, summary))
    else:
        print(colorize(summary) if color else summary)
    return status
