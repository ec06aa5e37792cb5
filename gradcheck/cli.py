"""The ``gradcheck`` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gradcheck`` command."""
    from gradcheck import __version__

    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--version":
        print(f"gradcheck {__version__}")
        return 0
    print("usage: gradcheck [--version]")
    return 0
