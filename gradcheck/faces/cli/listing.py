"""``gradcheck list``: one line per class found, with its example inputs and parameters."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from gradcheck.faces.cli.output import emit_json
from gradcheck.faces.cli.status import EXIT_OK
from gradcheck.faces.cli.targets import TargetClass, resolve_all


def _describe_array(value: Any) -> str:
    if isinstance(value, dict | str | int | float):  # a constant (conv_param, reg)
        return repr(value)
    array = np.asarray(value)
    return f"{tuple(array.shape)} {array.dtype}"


def _list_entry(item: TargetClass, dtype: np.dtype) -> dict[str, Any]:
    from gradcheck.conventions.registry import make_target
    from gradcheck.conventions.target import TargetRequest
    from gradcheck.faces.examples import attempts

    candidate = item.candidate
    entry: dict[str, Any] = {"name": item.display, "checkable": candidate.has_example}
    try:
        found = attempts(candidate, np.random.default_rng(0), dtype)
    except Exception as error:
        entry["note"] = f"example(rng, dtype) fails: {type(error).__name__}: {error}"
        return entry
    if isinstance(found, str):
        reason = found if candidate.is_function else found.partition(";")[0]
        entry["note"] = f"{reason}: check it with --shape"
        return entry
    entry["checkable"] = True
    obj, inputs = found[0].obj, found[0].inputs
    if found[0].note:
        entry["note"] = "inputs made up"
    entry["inputs"] = [_describe_array(x) for x in inputs]
    try:
        # The adapter the checker uses: the same inputs and parameters, the same names.
        target = make_target(TargetRequest(obj, inputs))
    except Exception as error:
        entry["note"] = f"forward/backward fail on the example: {type(error).__name__}: {error}"
        return entry
    names = list(getattr(target, "input_names", None) or [c.name for c in target.constants])
    if len(names) == len(inputs):
        entry["inputs"] = [f"{n} {d}" for n, d in zip(names, entry["inputs"], strict=True)]
    entry["kind"] = target.kind
    entry["convention"] = target.convention_name
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


def run_list(args: argparse.Namespace) -> int:
    """Run ``gradcheck list`` with its parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From the ``list`` subparser of :func:`~gradcheck.faces.cli.parser.build_parser`.

    Returns
    -------
    int
        0; a module that cannot be loaded raises :class:`UsageError` instead.
    """
    candidates = resolve_all(args.modules)
    entries = [_list_entry(item, np.dtype(args.dtype)) for item in candidates]
    if args.json:
        emit_json({"layers": entries})
        return EXIT_OK
    width = max(len(e["name"]) for e in entries)
    for entry in entries:
        print(_list_line(entry, width))
    checkable = sum(bool(e["checkable"]) for e in entries)
    line = f"{len(entries)} found: {checkable} with inputs (their example, or made up)"
    if checkable < len(entries):
        line += f", {len(entries) - checkable} without (check those with --shape)"
    print(line)
    return EXIT_OK
