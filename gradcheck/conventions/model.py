"""Models, the book's two-layer net: a ``params`` dict, ``loss(*data)``, ``gradient(*data)``.

Only the parameters are checked; the data (``x``, ``t``) are constants. ``gradient``
returns a dict keyed like ``params``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Instance, Target, Variable, describe
from gradcheck.conventions.validation import validate_float_input
from gradcheck.errors import CheckError
from gradcheck.vocabulary import Constant

__all__ = ["ModelTarget"]


class ModelTarget(Target):
    """A model with a ``params`` dict, ``loss(*data)`` and ``gradient(*data)``."""

    kind = "model"
    backward_call = "gradient"

    def __init__(self, model: Any, data: Sequence[Any]) -> None:
        super().__init__()
        self.model = model
        self.name = describe(model)
        self.data = list(data)
        for key, value in model.params.items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                validate_float_input(self.name, key, value)
                self.variables.append(Variable(key, "parameter", np.array(value), value))
        for i in range(len(self.data)):
            label = "x" if i == 0 else ("t" if i == 1 else f"data{i}")
            self.constants.append(Constant(label, "model data (only parameters are checked)"))

    def batch_size(self) -> int | None:
        """The leading dimension of the model's first datum, when it is a batch."""
        first = self.data[0] if self.data else None
        if isinstance(first, np.ndarray) and first.ndim >= 2:
            return int(first.shape[0])
        return None

    def _make_instance(self, dtype: np.dtype | type | None) -> Instance:
        arrays = self._arrays(dtype)
        clone = self._clone(self.model, arrays)
        data = [
            x.astype(dtype) if dtype is not None and isinstance(x, np.ndarray)
            and x.dtype.kind == "f" else x
            for x in self.data
        ]

        def run_forward(model: Any, current: dict[str, NDArray]) -> Any:
            return model.loss(*data)

        def run_backward(model: Any, dout: Any, current: dict[str, NDArray]) -> dict[str, Any]:
            grads = model.gradient(*data)
            if not isinstance(grads, Mapping):
                raise CheckError(
                    f"{self.name}.gradient returned {type(grads).__name__}; expected a dict "
                    "with one gradient per entry of params."
                )
            return {
                name: None if grads.get(name) is None else np.asarray(grads[name]) * dout
                for name in current
            }

        return Instance(
            clone, arrays, run_forward, run_backward,
            calls=(f"{self.name}.loss", f"{self.name}.gradient"),
        )
