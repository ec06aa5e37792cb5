"""Functions: ``f(*xs)`` with a vector-Jacobian product ``vjp(dout, *xs)``, or a scalar
``f(x)`` with its gradient ``grad(x)`` (scipy's ``check_grad`` shape).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Instance, Target, Variable, describe
from gradcheck.conventions.validation import as_input, input_names, validate_float_input
from gradcheck.errors import CheckError

__all__ = ["FunctionTarget"]


class _GradientAsVjp:
    """``grad`` of a scalar function as a vector-Jacobian product: ``dout · grad(x)``."""

    def __init__(self, grad: Callable[..., Any] | None) -> None:
        assert grad is not None
        self.grad = grad

    def __call__(self, dout: Any, *xs: Any) -> Any:
        return dout * np.asarray(self.grad(*xs))


class FunctionTarget(Target):
    """A function with a vector-Jacobian product, or a scalar function with a gradient."""

    kind = "function"

    def __init__(
        self,
        function: Callable[..., Any],
        inputs: Sequence[Any],
        *,
        vjp: Callable[..., Any] | None,
        grad: Callable[..., Any] | None,
    ) -> None:
        super().__init__()
        self.function = function
        self.name = describe(function)
        if (vjp is None) == (grad is None):
            raise CheckError(
                f"{self.name}: a function needs exactly one of vjp= (vjp(dout, *xs) returns one "
                "gradient per input) or grad= (grad(x) returns the gradient of a scalar function)."
            )
        self.backward_call = "vjp" if vjp is not None else "grad"
        self.vjp: Callable[..., Any] = vjp if vjp is not None else _GradientAsVjp(grad)
        names = input_names(function, len(inputs))
        self.input_names = names
        for name, raw in zip(names, inputs, strict=True):
            value, note = as_input(name, self.name, raw)
            if note:
                self.notes.append(note)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fc" + "O":
                raise CheckError(
                    f"{self.name}: input {name} is {type(raw).__name__}"
                    f"{'' if not isinstance(value, np.ndarray) else f' ({value.dtype})'}; "
                    "expected a float array."
                )
            validate_float_input(self.name, name, value)
            self.variables.append(Variable(name, "input", np.array(value, copy=True)))

    def _make_instance(self, dtype: np.dtype | type | None) -> Instance:
        arrays = self._arrays(dtype)

        def run_forward(function: Any, current: dict[str, NDArray]) -> Any:
            return function(*(current[name] for name in self.input_names))

        def run_backward(function: Any, dout: Any, current: dict[str, NDArray]) -> dict[str, Any]:
            returned = self.vjp(dout, *(current[name] for name in self.input_names))
            if len(self.input_names) == 1 and not isinstance(returned, tuple):
                returned = (returned,)
            if not isinstance(returned, tuple) or len(returned) != len(self.input_names):
                raise CheckError(
                    f"{self.name}: {self.backward_call} returned {type(returned).__name__}; "
                    f"expected a tuple of {len(self.input_names)} gradients, one per input."
                )
            return dict(zip(self.input_names, returned, strict=True))

        return Instance(
            self.function, arrays, run_forward, run_backward,
            calls=(self.name, self.backward_call),
        )
