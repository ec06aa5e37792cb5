"""Forward/backward function pairs with a cache (cs231n): ``out, cache = affine_forward(x,
w, b)`` and ``dx, dw, db = affine_backward(dout, cache)``.

``gradcheck.check((affine_forward, affine_backward), x, w, b)``. The float arrays among
the arguments are differentiated; everything else — dicts (``conv_param``, ``bn_param``),
numbers, strings, integer arrays (indices), and ``forward_kwargs`` — is passed through
unchanged as a constant. backward returns one gradient per float array, in order (or one
per argument). A forward with several outputs returns ``(h, c, cache)`` and its backward
takes ``(dh, dc, cache)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.conventions.convention import Convention, call_with_douts
from gradcheck.errors import CheckError

__all__ = [
    "FunctionPair",
    "FunctionPairs",
    "float_positions",
    "gradients_by_argument",
    "pair_label",
]


@dataclass
class FunctionPair:
    """A forward function, its backward, and the cache between their calls.

    A working copy of a pair is a deep copy: the functions are shared, the cache is not.
    """

    forward: Callable[..., Any]
    backward: Callable[..., Any]
    cache: Any = None


def _name(function: Callable[..., Any]) -> str:
    return str(getattr(function, "__name__", type(function).__name__))


def pair_label(forward: Callable[..., Any], backward: Callable[..., Any]) -> str:
    """``affine`` for ``affine_forward``/``affine_backward``, else both names.

    >>> def conv_forward_naive(x): ...
    >>> def conv_backward_naive(d, c): ...
    >>> pair_label(conv_forward_naive, conv_backward_naive)
    'conv_naive'
    """
    first, second = _name(forward), _name(backward)
    if "forward" in first and first.replace("forward", "backward", 1) == second:
        return (
            first.replace("_forward", "", 1).replace("forward_", "", 1).replace("forward", "", 1)
            or first
        )
    return f"{first}/{second}"


def _is_pair(obj: Any) -> bool:
    return (
        isinstance(obj, tuple | list)
        and len(obj) == 2
        and all(callable(f) and not isinstance(f, type) for f in obj)
        and not any(callable(getattr(f, "forward", None)) for f in obj)
    )


def float_positions(inputs: Sequence[Any]) -> list[int]:
    """The positions of the float array arguments: the ones differentiated."""
    return [
        i
        for i, value in enumerate(inputs)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f"
    ]


def gradients_by_argument(grads: list[Any], inputs: Sequence[Any]) -> list[Any]:
    """One gradient per float array argument, in order, spread over the arguments (None
    for the constants); as given when there is one per argument, or too many."""
    floats = float_positions(inputs)
    if len(grads) != len(floats) and len(grads) == len(inputs):
        return grads  # one per argument, None for the constants
    if len(grads) > len(floats):
        return grads  # more than there are inputs: refused with the layer's message
    mapped: list[Any] = [None] * len(inputs)
    for position, gradient in zip(floats, grads, strict=False):
        mapped[position] = gradient
    return mapped


class FunctionPairs(Convention):
    """``(forward_fn, backward_fn)``: ``forward_fn(*args) -> (out, cache)``,
    ``backward_fn(dout, cache) -> (dx, dw, ...)``."""

    name = "forward/backward function pair"
    kind = "function"
    converts_inputs = False

    def recognises(self, obj: Any) -> bool:
        """A :class:`FunctionPair`, or a tuple of two functions."""
        return isinstance(obj, FunctionPair) or _is_pair(obj)

    def subject(self, obj: Any) -> Any:
        """A :class:`FunctionPair` that keeps the cache."""
        return obj if isinstance(obj, FunctionPair) else FunctionPair(obj[0], obj[1])

    def label(self, obj: Any) -> str | None:
        """``affine`` for ``affine_forward``/``affine_backward``."""
        pair = self.subject(obj)
        return pair_label(pair.forward, pair.backward)

    def calls(self, obj: Any) -> tuple[str, str]:
        """The two functions' own names."""
        pair = self.subject(obj)
        return _name(pair.forward), _name(pair.backward)

    def forward(self, obj: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Call the forward function; keep the cache; return the output(s)."""
        returned = obj.forward(*inputs, **kwargs)
        if not (isinstance(returned, tuple) and len(returned) >= 2):
            raise CheckError(
                f"{_name(obj.forward)} returned {type(returned).__name__}; expected "
                f"(out, cache): the output and what {_name(obj.backward)} needs "
                "(or (out1, out2, ..., cache) for several outputs)."
            )
        *outputs, obj.cache = returned
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def backward(
        self, obj: Any, dout: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """``backward_fn(dout, cache)`` (``backward_fn(dh, dc, cache)`` for two outputs)."""
        return call_with_douts(obj.backward, dout, obj.cache)

    def input_gradients(self, returned: Any, inputs: Sequence[Any]) -> Sequence[Any] | None:
        """One gradient per float array argument, in order; or one per argument."""
        grads = list(returned) if isinstance(returned, tuple | list) else [returned]
        return gradients_by_argument(grads, inputs)
