"""Functions: ``f(*xs)`` with a vector-Jacobian product ``vjp(dout, *xs)``, or a scalar
``f(x)`` with its gradient ``grad(x)`` (scipy's ``check_grad`` shape).

``check(f, x, vjp=g)`` wraps ``f`` and ``g`` in a :class:`WithDerivative`, which these two
conventions recognise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.conventions.convention import Convention
from gradcheck.conventions.target import describe
from gradcheck.errors import CheckError

__all__ = ["FunctionWithGrad", "FunctionWithVjp", "WithDerivative"]


@dataclass(frozen=True)
class WithDerivative:
    """A function and the derivative given with it: ``vjp=`` or ``grad=``."""

    function: Callable[..., Any]
    vjp: Callable[..., Any] | None = None
    grad: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if (self.vjp is None) == (self.grad is None):
            raise CheckError(
                f"{describe(self.function)}: a function needs exactly one of vjp= (vjp(dout, "
                "*xs) returns one gradient per input) or grad= (grad(x) returns the gradient "
                "of a scalar function)."
            )


class FunctionWithVjp(Convention):
    """``f(*xs)`` and ``vjp(dout, *xs)`` returning one gradient per input."""

    name = "function with vjp"
    kind = "function"
    backward_name = "vjp"

    def recognises(self, obj: Any) -> bool:
        """A function given with ``vjp=``."""
        return isinstance(obj, WithDerivative) and obj.vjp is not None

    def label(self, obj: Any) -> str | None:
        """The function's name."""
        return describe(obj.function)

    def calls(self, obj: Any) -> tuple[str, str]:
        """``f`` and ``vjp``."""
        return describe(obj.function), self.backward_name

    def forward_function(self, obj: Any) -> Any:
        """``f``."""
        return obj.function

    def forward(self, obj: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """``f(*xs)``."""
        return obj.function(*inputs, **kwargs)

    def backward(
        self, obj: Any, dout: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """``vjp(dout, *xs)``."""
        return obj.vjp(dout, *inputs)

    def input_gradients(self, returned: Any, inputs: Sequence[Any]) -> Sequence[Any] | None:
        """One gradient per input: a tuple, or one array for a function of one input."""
        if len(inputs) == 1 and not isinstance(returned, tuple):
            return [returned]
        if not isinstance(returned, tuple) or len(returned) != len(inputs):
            raise CheckError(
                f"{self.backward_name} returned {type(returned).__name__}; expected a tuple of "
                f"{len(inputs)} gradients, one per input."
            )
        return list(returned)


class FunctionWithGrad(FunctionWithVjp):
    """A scalar ``f(x)`` and ``grad(x)``: the vector-Jacobian product ``dout · grad(x)``."""

    name = "scalar function with grad"
    backward_name = "grad"

    def recognises(self, obj: Any) -> bool:
        """A function given with ``grad=``."""
        return isinstance(obj, WithDerivative) and obj.grad is not None

    def backward(
        self, obj: Any, dout: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """``dout * grad(*xs)``."""
        return dout * np.asarray(obj.grad(*inputs))
