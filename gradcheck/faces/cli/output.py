"""How the commands write: colour on a terminal, one-line messages, plain JSON."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from typing import IO, Any

import numpy as np

_GREEN, _RED, _YELLOW, _BOLD, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[1m", "\033[0m"


def use_color(choice: bool | None, stream: IO[str]) -> bool:
    """Whether to colour what goes to ``stream``.

    Parameters
    ----------
    choice : bool or None
        ``--color`` (True) or ``--no-color`` (False) win; None decides by the stream.
    stream : text stream
        Coloured when it is a TTY, unless NO_COLOR is set (no-color.org) or TERM is dumb.

    Returns
    -------
    bool
    """
    if choice is not None:
        return choice
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return isatty(stream)


def isatty(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal; False for a closed or file-less stream.

    Parameters
    ----------
    stream : text stream

    Returns
    -------
    bool
    """
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colorize(text: str) -> str:
    """``text`` with its verdict words and marks in colour (passed, FAILED, ✓, ✗, ...).

    Parameters
    ----------
    text : str
        A report, status line or summary as printed without colour.

    Returns
    -------
    str
    """
    text = re.sub(r"(?<=: )passed\b", f"{_GREEN}passed{_RESET}", text)
    text = re.sub(r"\bFAILED\b|\bERROR\b", lambda m: f"{_BOLD}{_RED}{m.group(0)}{_RESET}", text)
    text = text.replace("✓", f"{_GREEN}✓{_RESET}").replace("✗", f"{_RED}✗{_RESET}")
    return re.sub(r"\bskipped\b", f"{_YELLOW}skipped{_RESET}", text)


def one_line(text: str) -> str:
    """``text`` on one line: messages from user code may span lines; a status line must not.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        The words of ``text`` joined by single spaces.
    """
    return " ".join(text.split())


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


def emit_json(document: dict[str, Any]) -> None:
    """Print ``document`` on stdout as indented, strict JSON (NaN and inf become null).

    Parameters
    ----------
    document : dict
        May hold numpy scalars and arrays; they are written as plain numbers and lists.
    """
    json.dump(_jsonable(document), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
