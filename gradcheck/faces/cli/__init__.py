"""The ``gradcheck`` command line: ``check``, ``list`` and ``speed``.

Exit status: 0 when every check passed, 1 when a gradient problem was found (a mismatch,
a malformed ``backward``, a layer that raised), 2 for a usage or load error — always
with one line on stderr, never a bare traceback for a user error.

One module per command (:mod:`.check`, :mod:`.listing`, :mod:`.speed`) and one per
concern they share: :mod:`.parser` (the arguments), :mod:`.targets` and :mod:`.inputs`
(what is checked, at what), :mod:`.output` (colour, one-line messages, JSON),
:mod:`.progress` (the status line), :mod:`.status` (exit statuses, the usage error),
:mod:`.speed_text` and :mod:`.speed_plot` (the speed comparison shown).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from gradcheck.faces.cli.check import run_check
from gradcheck.faces.cli.listing import run_list
from gradcheck.faces.cli.output import one_line
from gradcheck.faces.cli.parser import build_parser
from gradcheck.faces.cli.speed import run_speed
from gradcheck.faces.cli.status import EXIT_OK, EXIT_USAGE, UsageError

__all__ = ["build_parser", "main"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check": run_check,
    "list": run_list,
    "speed": run_speed,
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
        print(
            "gradcheck: error: choose a command: check, list or speed (see 'gradcheck --help')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    started = time.perf_counter()
    try:
        return _COMMANDS[args.command](args)
    except UsageError as error:
        print(f"gradcheck {args.command}: error: {one_line(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        elapsed = time.perf_counter() - started
        print(f"\ngradcheck {args.command}: interrupted after {elapsed:.1f} s", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gradcheck ... | head`
        sys.stderr.close()
        return EXIT_OK
