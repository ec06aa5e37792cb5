"""The instance and inputs a class is checked at: ``--shape`` (with ``--param`` and
``--kwargs``), or else what :mod:`gradcheck.faces.examples` offers — its example, or
made-up inputs."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from gradcheck.faces.cli.status import UsageError
from gradcheck.faces.cli.targets import TargetClass
from gradcheck.faces.examples import DEFAULT_SHAPE, Attempt, attempts

__all__ = ["DEFAULT_SHAPE", "prepare"]


def _constructor_arguments(
    args: argparse.Namespace, rng: np.random.Generator, dtype: np.dtype
) -> dict[str, Any]:
    kwargs = dict(args.kwargs or {})
    for name, shape in args.param:
        kwargs[name] = rng.standard_normal(shape).astype(dtype)
    return kwargs


def _construct(candidate: Any, kwargs: dict[str, Any]) -> Any:
    try:
        return candidate.obj(**kwargs)
    except Exception as error:
        given = ", ".join(
            f"{k}=<array {v.shape}>" if isinstance(v, np.ndarray) else f"{k}={v!r}"
            for k, v in kwargs.items()
        )
        hint = "" if kwargs else "; give --kwargs JSON or --param NAME=SHAPE"
        raise UsageError(
            f"cannot construct {candidate.name}({given}): {type(error).__name__}: {error}{hint}"
        ) from None


def prepare(item: TargetClass, args: argparse.Namespace, seed: int) -> list[Attempt] | str:
    """The ways to check one candidate, in order, or the reason it is skipped.

    Parameters
    ----------
    item : TargetClass
        The class or function pair to check.
    args : argparse.Namespace
        The check command's arguments: ``shape``, ``dtype``, ``kwargs``, ``param``.
    seed : int
        Seeds the example's rng and the arrays drawn for ``--shape`` and ``--param``.

    Returns
    -------
    list of Attempt, or str
        The instance and inputs (made-up inputs may come with a second guess, tried when
        the check raises on the first), or why an unnamed candidate is skipped.

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
        if candidate.is_function:
            return [Attempt(candidate.obj, inputs)]
        if not has_arguments and candidate.has_example:
            instance, _ = candidate.example(np.random.default_rng(seed), dtype)
        else:
            instance = _construct(candidate, _constructor_arguments(args, rng, dtype))
        return [Attempt(instance, inputs)]
    if has_arguments:
        raise UsageError(
            f"{item.display}: --kwargs and --param need the inputs too: give one "
            "--shape per forward input"
        )
    found = attempts(candidate, rng, dtype)
    if isinstance(found, str) and item.named:
        raise UsageError(
            f"{item.display}: {found}; give --param NAME=SHAPE or --kwargs JSON for the "
            "constructor, and its inputs with --shape (one per forward input), e.g. "
            "--shape 5,4"
        )
    return found
