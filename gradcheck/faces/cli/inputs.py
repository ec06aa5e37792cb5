"""The instance and inputs a class is checked at: its example, ``--shape``, or a guess."""

from __future__ import annotations

import argparse
import inspect
from typing import Any

import numpy as np

from gradcheck.faces.cli.status import UsageError
from gradcheck.faces.cli.targets import TargetClass

# Inputs made up for a layer that offers no example(rng, dtype): small, not square.
DEFAULT_SHAPE = (3, 4)


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


def prepare(
    item: TargetClass, args: argparse.Namespace, seed: int
) -> tuple[Any, tuple[Any, ...]] | str:
    """``(instance, inputs)`` for one class, or the reason it is skipped.

    Parameters
    ----------
    item : TargetClass
        The class to check.
    args : argparse.Namespace
        The check command's arguments: ``shape``, ``dtype``, ``kwargs``, ``param``.
    seed : int
        Seeds the example's rng and the arrays drawn for ``--shape`` and ``--param``.

    Returns
    -------
    tuple or str
        The instance and its inputs, or why an unnamed class is skipped.

    Raises
    ------
    UsageError
        A named class that cannot be given inputs, or whose constructor refuses the
        arguments given.
    """
    candidate = item.candidate
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
            f"{item.display}: --kwargs and --param need the inputs too: give one "
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
        if item.named:
            raise UsageError(
                f"{item.display} has no example(rng, dtype) classmethod and needs constructor "
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
