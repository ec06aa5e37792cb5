"""Models: only the parameters are checked; the data (``x``, ``t``) are constants.

Three built-in conventions:

* :class:`LossGradientModel` — the first book's net: a ``params`` dict, ``loss(x, t)`` and
  ``gradient(x, t)`` returning a dict keyed like ``params``;
* :class:`LossReturnsGradients` — a ``params`` dict and ``loss(X, y)`` returning
  ``(loss, grads)`` (cs231n);
* :class:`ForwardBackwardModel` — the sequel book's net: ``forward(x, t)`` returning the
  loss, ``backward(dout=1)``, and ``params``/``grads`` lists.

``forward_kwargs`` go to the call that computes the loss (``loss(x, t, train_flg=True)``)
and to ``gradient`` when it accepts them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gradcheck.conventions.convention import Convention, accepted_keywords
from gradcheck.conventions.layers import ParamsGradsLists
from gradcheck.conventions.target import describe
from gradcheck.errors import CheckError

__all__ = ["ForwardBackwardModel", "LossGradientModel", "LossReturnsGradients", "training_flag"]

# Keyword flags that switch a net between training and inference (Dropout, BatchNorm).
_TRAINING_FLAGS = ("train_flg", "train", "training", "is_training", "train_mode")


def training_flag(function: Any) -> str | None:
    """The name of ``function``'s training flag when it defaults to off, else None.

    >>> def loss(x, t, train_flg=False): ...
    >>> training_flag(loss)
    'train_flg'
    """
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    for name in _TRAINING_FLAGS:
        parameter = parameters.get(name)
        if parameter is not None and parameter.default in (False, None):
            return name
    return None


def _float_entries(params: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        str(k): v for k, v in params.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"
    }


def _scaled(model: Any, call: str, grads: Any, dout: Any) -> dict[str, Any]:
    """A returned gradient dict times ``dout`` (the loss is scalar: ``dout`` is a number)."""
    if not isinstance(grads, Mapping):
        raise CheckError(
            f"{describe(model)}.{call} returned {type(grads).__name__} for the gradients; "
            "expected a dict with one gradient per entry of params."
        )
    return {str(k): None if g is None else np.asarray(g) * dout for k, g in grads.items()}


class LossGradientModel(Convention):
    """A ``params`` dict, ``loss(x, t)`` and ``gradient(x, t)`` returning a dict."""

    name = "params/loss/gradient model"
    kind = "model"
    forward_name = "loss"
    backward_name = "gradient"

    def recognises(self, obj: Any) -> bool:
        """A ``params`` mapping and a ``gradient`` method."""
        return isinstance(getattr(obj, "params", None), Mapping) and callable(
            getattr(obj, "gradient", None)
        )

    def notes(self, obj: Any, kwargs: Mapping[str, Any]) -> list[str]:
        """A loss that runs in inference mode by default, compared with a gradient that
        usually runs in training mode: say how to align them."""
        flag = training_flag(getattr(obj, "loss", None))
        if flag is None or flag in kwargs:
            return []
        return [
            f"loss ran with {flag} at its default (off); if {self.backward_name}() runs "
            f"the net in training mode (Dropout, BatchNorm), pass "
            f"forward_kwargs={{{flag!r}: True}}"
        ]

    def forward(self, obj: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """``loss(x, t, **forward_kwargs)``."""
        if not callable(getattr(obj, "loss", None)):
            raise CheckError(f"{describe(obj)} has params and gradient but no loss method.")
        return obj.loss(*inputs, **kwargs)

    def backward(
        self, obj: Any, dout: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """``gradient(x, t)`` (with the keywords it accepts), times ``dout``."""
        grads = obj.gradient(*inputs, **accepted_keywords(obj.gradient, kwargs))
        return _scaled(obj, "gradient", grads, dout)

    def parameters(self, obj: Any) -> Mapping[str, Any]:
        """``params``' float arrays."""
        return _float_entries(obj.params)

    def gradients(self, obj: Any, returned: Any) -> Mapping[str, Any]:
        """The dict ``gradient`` returned."""
        return returned

    def gradient_name(self, name: str) -> str:
        """``gradient()['W1']``."""
        return f"{self.backward_name}()[{name!r}]"

    def parameter_label(self, name: str) -> str:
        """``params['W1']``."""
        return f"params[{name!r}]"


class LossReturnsGradients(LossGradientModel):
    """A ``params`` dict and ``loss(X, y)`` returning ``(loss, grads)`` (cs231n)."""

    name = "loss → (loss, grads) model"
    backward_name = "loss"

    def recognises(self, obj: Any) -> bool:
        """A ``params`` mapping and a ``loss`` method, and no ``gradient`` method."""
        return (
            isinstance(getattr(obj, "params", None), Mapping)
            and callable(getattr(obj, "loss", None))
            and not callable(getattr(obj, "gradient", None))
        )

    def forward(self, obj: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """The loss of ``loss(X, y)``."""
        return self._loss_and_gradients(obj, inputs, kwargs)[0]

    def backward(
        self, obj: Any, dout: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """The gradients of ``loss(X, y)`` (called again), times ``dout``."""
        return _scaled(obj, "loss", self._loss_and_gradients(obj, inputs, kwargs)[1], dout)

    @staticmethod
    def _loss_and_gradients(
        obj: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[Any, Any]:
        returned = obj.loss(*inputs, **kwargs)
        if not (isinstance(returned, tuple) and len(returned) == 2):
            raise CheckError(
                f"{describe(obj)}.loss returned {type(returned).__name__}; expected "
                "(loss, grads): the loss and a dict with one gradient per entry of params. "
                "(Pass the targets too: loss(X, y) returns scores when y is None.)"
            )
        return returned


class ForwardBackwardModel(ParamsGradsLists):
    """The sequel book's net: ``forward(x, t)`` → loss, ``backward(dout=1)``, and
    ``params``/``grads`` lists gathered from its layers."""

    name = "forward/backward model with params/grads lists"
    kind = "model"

    def recognises(self, obj: Any) -> bool:
        """``params``/``grads`` lists, a ``backward`` whose ``dout`` has a default, and
        layers (``layers`` or a loss layer): a net, not one of its layers."""
        if not super().recognises(obj) or not callable(getattr(obj, "backward", None)):
            return False
        try:
            first = next(iter(inspect.signature(obj.backward).parameters.values()), None)
        except (TypeError, ValueError):
            return False
        has_layers = any(
            getattr(obj, name, None) is not None
            for name in ("layers", "loss_layer", "lastLayer", "last_layer")
        )
        return first is not None and first.default is not first.empty and has_layers

    def backward(
        self, obj: Any, dout: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """``backward(dout)``; what it returns (the data's gradient) is not used."""
        return obj.backward(dout)
