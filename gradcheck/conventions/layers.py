"""Where a layer keeps its parameters: the four built-in layer conventions.

All four call the layer the book's way (``forward(*xs)``, ``backward(dout)``) and differ in
where the parameters and their gradients live:

* :class:`AttributePairs` — ``self.W`` and, after backward, ``self.dW`` (the first book);
* :class:`ParamsGradsDicts` — ``self.params['W']`` and ``self.grads['W']``;
* :class:`ParamsGradsLists` — ``self.params = [W, b]``, ``self.grads = [dW, db]`` paired by
  position, written in place (``self.grads[0][...] = dW``) or rebound (the sequel book);
* :class:`ParametersGradients` — ``self.parameters`` / ``self.gradients`` dicts whose
  gradients accumulate until an optimizer step (numpy-ml): gradcheck starts every pass from
  zero gradients, by the layer's own reset method when it has one.

Each also pairs ``W``/``dW`` attributes the store does not hold (a layer may use both).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from gradcheck.conventions.convention import Convention

__all__ = ["AttributePairs", "ParametersGradients", "ParamsGradsDicts", "ParamsGradsLists"]

# The methods with which accumulating layers zero their gradients, in order of preference.
RESET_METHODS = (
    "flush_gradients",
    "zero_grad",
    "zero_gradients",
    "reset_gradients",
    "clear_gradients",
)


def _attributes(obj: Any) -> dict[str, Any]:
    try:
        return vars(obj)
    except TypeError:  # __slots__ or a builtin: no attributes to read
        return {}


def _is_layer(obj: Any) -> bool:
    return callable(getattr(obj, "forward", None)) and not isinstance(obj, type)


class AttributePairs(Convention):
    """``self.W`` with ``self.dW`` set by backward (``gamma`` → ``dgamma``).

    Every numeric array attribute is a candidate; those backward gives a ``d``-prefixed
    gradient are parameters, the others are constants if nudging them does not move the
    output (else the check is incomplete, never a pass).
    """

    name = "W/dW attributes"

    def recognises(self, obj: Any) -> bool:
        """Any object with a ``forward`` method (the fallback of the layer conventions)."""
        return _is_layer(obj)

    def parameters(self, obj: Any) -> Mapping[str, Any]:
        """Numeric array attributes, except the gradients of others (``dW`` next to ``W``)."""
        arrays = {
            k: v
            for k, v in _attributes(obj).items()
            if isinstance(v, np.ndarray) and v.dtype.kind in "fiu"
        }
        return {k: v for k, v in arrays.items() if not (k.startswith("d") and k[1:] in arrays)}

    def gradients(self, obj: Any, returned: Any) -> Mapping[str, Any]:
        """``dW`` for every ``W`` that has one."""
        attributes = _attributes(obj)
        return {
            name[1:]: value
            for name, value in attributes.items()
            if name.startswith("d") and name[1:] in attributes
        }

    def gradient_name(self, name: str) -> str:
        """``dW``."""
        return f"d{name}"

    def declares(self, obj: Any, name: str) -> bool:
        """``W`` must get a gradient when the layer has a ``dW`` attribute (even None);
        without one it may be a constant."""
        return f"d{name}" in _attributes(obj)

    def _with_attributes(self, obj: Any, found: dict[str, Any]) -> dict[str, Any]:
        """A store's parameters, then the attribute candidates it does not hold."""
        held = {id(v) for v in found.values()}
        for key, value in AttributePairs.parameters(self, obj).items():
            if id(value) not in held:
                found.setdefault(key, value)
        return found


class _DictStore(AttributePairs):
    """Parameters in one dict attribute, their gradients under the same keys in another."""

    store: ClassVar[str] = "params"
    gradient_store: ClassVar[str] = "grads"

    def recognises(self, obj: Any) -> bool:
        """A layer with the parameter dict (and the gradient dict, when it accumulates)."""
        stores = (self.store, self.gradient_store) if self.accumulates else (self.store,)
        return _is_layer(obj) and all(isinstance(getattr(obj, n, None), Mapping) for n in stores)

    def parameters(self, obj: Any) -> Mapping[str, Any]:
        """The store's float arrays by key, then the attribute pairs."""
        found = {
            str(k): v
            for k, v in getattr(obj, self.store).items()
            if isinstance(v, np.ndarray) and v.dtype.kind == "f"
        }
        return self._with_attributes(obj, found)

    def gradients(self, obj: Any, returned: Any) -> Mapping[str, Any]:
        """The gradient store's entries, then ``dW`` attributes."""
        grads = getattr(obj, self.gradient_store, None)
        found = {str(k): v for k, v in grads.items()} if isinstance(grads, Mapping) else {}
        return {**super().gradients(obj, returned), **found}

    def gradient_name(self, name: str) -> str:
        """``grads['W']``."""
        return f"{self.gradient_store}[{name!r}]"

    def parameter_label(self, name: str) -> str:
        """``params['W']``."""
        return f"{self.store}[{name!r}]"

    def declares(self, obj: Any, name: str) -> bool:
        """Entries of the store must get a gradient; attribute candidates may not."""
        return name in {str(k) for k in getattr(obj, self.store)}


class ParamsGradsDicts(_DictStore):
    """``self.params`` and ``self.grads`` dicts with the same keys (the first book's nets)."""

    name = "params/grads dicts"


class ParamsGradsLists(AttributePairs):
    """``self.params = [W, b]`` and ``self.grads = [dW, db]``, paired by position."""

    name = "params/grads lists"

    def recognises(self, obj: Any) -> bool:
        """A layer with ``params`` and ``grads`` lists (or tuples)."""
        return _is_layer(obj) and all(
            isinstance(getattr(obj, n, None), list | tuple) for n in ("params", "grads")
        )

    def parameters(self, obj: Any) -> Mapping[str, Any]:
        """``params[i]`` for every float array, then the attribute pairs."""
        found = {
            f"params[{i}]": v
            for i, v in enumerate(obj.params)
            if isinstance(v, np.ndarray) and v.dtype.kind == "f"
        }
        return self._with_attributes(obj, found)

    def gradients(self, obj: Any, returned: Any) -> Mapping[str, Any]:
        """``grads[i]``, read after backward (written in place or rebound alike)."""
        grads = obj.grads if isinstance(getattr(obj, "grads", None), list | tuple) else []
        return {
            **super().gradients(obj, returned),
            **{f"params[{i}]": g for i, g in enumerate(grads)},
        }

    def gradient_name(self, name: str) -> str:
        """``grads[0]`` for ``params[0]``."""
        return name.replace("params[", "grads[", 1)

    def parameter_label(self, name: str) -> str:
        """``params[0]``."""
        return name

    def declares(self, obj: Any, name: str) -> bool:
        """Entries of ``params`` must get a gradient; attribute candidates may not."""
        return name.startswith("params[")


class ParametersGradients(_DictStore):
    """``self.parameters`` / ``self.gradients`` dicts; gradients accumulate by design.

    Entries of ``parameters`` without a gradient whose names say they are running
    statistics (``running_mean``) are buffers: constants, with a note.
    """

    name = "parameters/gradients dicts (accumulating)"
    store = "parameters"
    gradient_store = "gradients"
    accumulates = True

    def reset(self, obj: Any) -> None:
        """The layer's own reset method (numpy-ml's ``flush_gradients`` also drops the
        inputs cached by earlier forward passes); else zero gradients."""
        for method in RESET_METHODS:
            if callable(getattr(obj, method, None)):
                getattr(obj, method)()
                return
        zero_gradients(obj.gradients)


def zero_gradients(gradients: Any) -> None:
    """Set every array of a gradient store (a dict or a list) to zero, in place.

    In place, so that a layer holding another reference to a gradient array sees zero too;
    a read-only array is replaced instead.
    """
    items = gradients.items() if isinstance(gradients, Mapping) else enumerate(gradients)
    for key, value in list(items):
        if isinstance(value, np.ndarray):
            if value.flags.writeable:
                value[...] = 0
            else:
                gradients[key] = np.zeros_like(value)
