"""Loss functions that return their gradient (cs231n): ``loss, dx = softmax_loss(x, y)``.

``gradcheck.check(softmax_loss, x, y)``: a plain function whose call returns the scalar
loss and the gradient of each float array argument, in order (``svm_loss``,
``softmax_loss``, a ``loss(W, X, y, reg) -> (loss, dW)``). Integer arrays (labels),
numbers and dicts are constants. Any other plain function is refused with the ways to
check it (``vjp=``, ``grad=``, a forward/backward pair).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.conventions.convention import Convention
from gradcheck.conventions.pairs import gradients_by_argument
from gradcheck.conventions.target import describe
from gradcheck.errors import CheckError

__all__ = ["LossFunction", "LossWithGradients"]


@dataclass
class LossFunction:
    """A function returning ``(loss, grads...)``, and the gradients of its last call.

    A working copy is a deep copy: the function is shared, the gradients are not.
    """

    function: Any
    gradients: tuple[Any, ...] = ()


class LossWithGradients(Convention):
    """``f(*xs) -> (loss, dx, ...)``: a scalar loss and one gradient per float argument."""

    name = "loss function returning (loss, gradients)"
    kind = "function"
    backward_name = "gradients"
    converts_inputs = False

    def recognises(self, obj: Any) -> bool:
        """A plain Python function (or one wrapped as :class:`LossFunction`)."""
        return isinstance(obj, LossFunction) or inspect.isfunction(obj)

    def subject(self, obj: Any) -> Any:
        """A :class:`LossFunction` that keeps the gradients between forward and backward."""
        return obj if isinstance(obj, LossFunction) else LossFunction(obj)

    def label(self, obj: Any) -> str | None:
        """The function's name."""
        return describe(self.subject(obj).function)

    def calls(self, obj: Any) -> tuple[str, str]:
        """The function, whose own return value carries the gradients, both times."""
        name = describe(self.subject(obj).function)
        return name, name

    def forward_function(self, obj: Any) -> Any:
        """The function."""
        return self.subject(obj).function

    def forward(self, obj: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Call the function; keep the gradients; return the loss."""
        name = describe(obj.function)
        returned = obj.function(*inputs, **kwargs)
        if not (isinstance(returned, tuple) and len(returned) >= 2 and np.ndim(returned[0]) == 0):
            raise CheckError(
                f"{name} returned {_shape_of(returned)}; a function checked on its own must "
                "return (loss, gradients...) — a number and the gradient of each float array "
                "argument. Otherwise pass vjp=g (g(dout, *xs) returns one gradient per input) "
                "or grad=g (g(x) returns the gradient of a scalar function), or check it "
                "with its backward: check((f_forward, f_backward), *xs)."
            )
        loss, *gradients = returned
        obj.gradients = tuple(gradients)
        return loss

    def backward(
        self, obj: Any, dout: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """The gradients the last call returned, times the loss's ``dout``."""
        return tuple(None if g is None else dout * np.asarray(g) for g in obj.gradients)

    def input_gradients(self, returned: Any, inputs: Sequence[Any]) -> Sequence[Any] | None:
        """One gradient per float array argument, in order; or one per argument."""
        return gradients_by_argument(list(returned), inputs)


def _shape_of(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} whose first item is not a number"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"
