"""The command-line targets (``module``, ``file.py``, ``module:Name``) resolved to classes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gradcheck.faces.cli.status import UsageError


@dataclass(frozen=True)
class TargetClass:
    """A class to check: the discovery candidate, how to call it, whether it was named.

    Attributes
    ----------
    candidate : gradcheck.conventions.discovery.Candidate
        The class, as discovery found it.
    display : str
        Its name as the user would write it: ``module.Name`` or ``path/to/file.py:Name``.
    named : bool
        Whether the target named this one class (``module:Name``) rather than a module.
    """

    candidate: Any
    display: str
    named: bool


def _is_named(target: str, candidates: Sequence[Any]) -> bool:
    """Whether ``target`` names one class explicitly (``module:Name``)."""
    return len(candidates) == 1 and target.endswith(f":{candidates[0].name}")


def resolve_all(targets: Sequence[str]) -> list[TargetClass]:
    """Every candidate of every target, named as the user would write it.

    A class from a file is shown as ``path/to/file.py:Name`` (its module name is internal).

    Parameters
    ----------
    targets : sequence of str
        Modules, ``.py`` files or ``module:Name``, as given on the command line.

    Returns
    -------
    list of TargetClass

    Raises
    ------
    UsageError
        A target that cannot be loaded.
    """
    from gradcheck.conventions.discovery import LoadError, resolve

    found: list[TargetClass] = []
    for target in targets:
        try:
            candidates = resolve(target)
        except LoadError as error:
            raise UsageError(str(error)) from None
        named = _is_named(target, candidates)
        source = target.rpartition(":")[0] if named else target
        from_file = source.endswith(".py") or "/" in source or os.sep in source
        found += [
            TargetClass(c, f"{source}:{c.name}" if from_file else c.qualified, named)
            for c in candidates
        ]
    return found
