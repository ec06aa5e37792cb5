"""What goes into and comes out of user code, validated before it can mislead a check.

Inputs are converted (Python numbers to float64 arrays, nested lists to arrays) and
refused when no check can start from them (NaN, object arrays, empty arrays); outputs and
gradients are refused when malformed (None, wrong shape or dtype, NaN), each with a
message that names the layer, the array and what was expected.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import CheckError

__all__ = [
    "as_gradient",
    "as_input",
    "check_output",
    "format_indices",
    "input_names",
    "validate_float_input",
    "validate_given_input",
]


def as_input(name: str, owner: str, value: Any) -> tuple[Any, str | None]:
    """Convert one forward argument; return (value, note about the conversion)."""
    if isinstance(value, bool | np.bool_):
        return value, None
    if isinstance(value, numbers.Real) and not isinstance(value, np.ndarray):
        return np.asarray(value, dtype=np.float64), f"{name}: Python number converted to float64"
    if isinstance(value, list | tuple):
        try:
            array = np.asarray(value)
        except ValueError:
            raise CheckError(
                f"{owner}: input {name} is a ragged {type(value).__name__} (rows of different "
                "lengths); pass a rectangular float array."
            ) from None
        return array, f"{name}: {type(value).__name__} converted to a {array.dtype} array"
    return value, None


def validate_float_input(owner: str, name: str, array: NDArray) -> None:
    if array.dtype.kind == "c":
        raise CheckError(
            f"{owner}: input {name} is complex ({array.dtype}); gradcheck checks real "
            "gradients — pass its real part, or split real and imaginary parts into two inputs."
        )
    validate_given_input(owner, name, array)
    if array.size == 0:
        raise CheckError(
            f"{owner}: input {name} is empty (shape {array.shape}); nothing to check — "
            "pass an array with at least one element."
        )


def validate_given_input(owner: str, name: str, value: Any) -> None:
    """Reject, before any user code runs, arrays that no check can start from."""
    if not isinstance(value, np.ndarray):
        return
    if value.dtype.kind == "O":
        raise CheckError(
            f"{owner}: input {name} is an object array (dtype=object); pass a float array "
            f"to differentiate (np.asarray({name}, dtype=np.float64)) or integers for labels."
        )
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = format_indices(~np.isfinite(value))
        raise CheckError(
            f"{owner}: input {name} contains NaN or Inf at {bad}; a gradient is only "
            "defined at finite points — check at a point where every element is finite."
        )


def format_indices(mask: NDArray[np.bool_], most: int = 5) -> str:
    """Up to ``most`` indices of True elements, as plain integer tuples."""
    if np.ndim(mask) == 0:
        return "()"  # the one element of a 0-d array
    found = [tuple(int(i) for i in idx) for idx in zip(*np.nonzero(mask), strict=True)]
    if not found:
        return "()"
    text = ", ".join(str(i) if len(i) != 1 else f"({i[0]},)" for i in found[:most])
    return text + (f" and {len(found) - most} more" if len(found) > most else "")


def input_names(function: Callable[..., Any], count: int) -> list[str]:
    """Names of the first ``count`` positional parameters of ``function``."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names = [
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
    ]
    if len(names) < count or any(p.kind is p.VAR_POSITIONAL for p in parameters[: len(names)]):
        return [f"x{i}" for i in range(count)]
    return names[:count]


def _shape_hint(got: tuple[int, ...], expected: tuple[int, ...]) -> str:
    """What a gradient of shape ``got`` where ``expected`` was due probably did wrong."""
    if got == expected[::-1]:
        return " (transposed?)"
    if len(got) == len(expected) + 1 and got[1:] == expected:
        return " — not summed over the batch? (sum over axis 0, as db = dout.sum(axis=0) does)"
    if len(got) == len(expected) == 1:
        return (
            " — summed over the wrong axis? A bias's gradient sums over the batch: "
            "db = dout.sum(axis=0)"
        )
    return ""


def as_gradient(
    owner: str, call: str, name: str, like: NDArray, value: Any, *, of: str | None = None
) -> NDArray:
    """Validate one gradient returned for variable ``name`` (shaped like ``like``).

    ``of`` says whose gradient it is, for messages (default ``name``; ``"parameter b"``
    when ``name`` is the gradient's own name, ``db``).
    """
    expected = f"an array of shape {tuple(like.shape)}"
    if value is None:
        raise CheckError(
            f"{owner}.{call} returned None for {name}; expected {expected}. "
            "Did you forget a `return`?"
        )
    if isinstance(value, list | tuple):
        raise CheckError(
            f"{owner}.{call} returned a {type(value).__name__} for {name}; expected {expected} "
            "(a numpy array, not a Python sequence)."
        )
    if isinstance(value, numbers.Number | np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise CheckError(
            f"{owner}.{call} returned {type(value).__name__} for {name}; expected {expected}."
        )
    if value.dtype.kind not in "fiu" or (value.dtype.kind in "iu" and like.dtype.kind == "f"):
        hint = (
            " (a mask? multiply it: dout * mask)"
            if value.dtype.kind == "b"
            else f" — return floats, e.g. .astype(np.{like.dtype})"
        )
        raise CheckError(
            f"{owner}.{call}: the gradient of {name} has dtype {value.dtype}; expected a float "
            f"array like {name} ({like.dtype}){hint}."
        )
    if value.shape != like.shape:
        if value.size == like.size == 1:
            value = value.reshape(like.shape)
        else:
            hint = _shape_hint(tuple(value.shape), tuple(like.shape))
            subject = name if of else f"the gradient of {name}"
            raise CheckError(
                f"{owner}.{call}: {subject} has shape {tuple(value.shape)}; expected "
                f"{tuple(like.shape)}, the shape of {of or name}{hint}."
            )
    if not np.all(np.isfinite(value)):
        raise CheckError(
            f"{owner}.{call}: the gradient of {name} contains NaN or Inf at "
            f"{format_indices(~np.isfinite(value))} although forward is finite there; look "
            "for a division by zero, log(0) or inf * 0 in backward."
        )
    return np.array(value, dtype=np.float64 if value.dtype.kind != "f" else value.dtype)


def _as_output(owner: str, call: str, value: Any) -> NDArray:
    """Validate a forward output: a float array or number."""
    if isinstance(value, numbers.Real | np.generic) and not isinstance(value, bool):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise CheckError(
            f"{owner}.{call} returned {type(value).__name__}; expected a numpy array or a number."
        )
    if value.dtype.kind not in "fc":
        raise CheckError(
            f"{owner}.{call} returned an array of dtype {value.dtype}; expected floats "
            "(an integer or boolean output has no gradient)."
        )
    return value


def check_output(owner: str, call: str, value: Any) -> NDArray:
    """Validate a forward output and reject NaN/Inf, naming the elements."""
    array = _as_output(owner, call, value)
    if not np.all(np.isfinite(array)):
        raise CheckError(
            f"{owner}.{call} produced NaN or Inf at {format_indices(~np.isfinite(array))} "
            "of its output at the point being checked; check at inputs where the output is "
            "finite."
        )
    return array
