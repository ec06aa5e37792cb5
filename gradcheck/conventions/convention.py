"""The plug-in interface: a :class:`Convention` describes one way of writing backprop code.

A convention tells gradcheck, for the objects it recognises,

* how to call forward and backward (:meth:`~Convention.forward`,
  :meth:`~Convention.backward`) and which of backward's results are the inputs'
  gradients (:meth:`~Convention.input_gradients`);
* where the parameters and their gradients are (:meth:`~Convention.parameters`,
  :meth:`~Convention.gradients`), and which arrays are constants by design — buffers
  such as running statistics (:meth:`~Convention.is_buffer`);
* how to reset gradients that add up over calls (:meth:`~Convention.reset`,
  :attr:`~Convention.accumulates`).

The defaults are the book's layer protocol: ``forward(*xs, **kwargs)`` and
``backward(dout)`` returning ``dx`` or ``(dx, dy, ...)``. Every built-in convention is a
subclass registered with :func:`gradcheck.conventions.register`, and so is a user's:

>>> import numpy as np, gradcheck
>>> from gradcheck.conventions import Convention, register, unregister
>>> class WeightsDicts(Convention):
...     name = "weights/weight_grads dicts"
...     def recognises(self, obj):
...         return hasattr(obj, "weights") and hasattr(obj, "weight_grads")
...     def parameters(self, layer):
...         return layer.weights
...     def gradients(self, layer, returned):
...         return layer.weight_grads
>>> class Scale:
...     def __init__(self): self.weights, self.weight_grads = {"s": np.ones(3)}, {}
...     def forward(self, x): self.x = x; return x * self.weights["s"]
...     def backward(self, dout):
...         self.weight_grads["s"] = (dout * self.x).sum(axis=0)
...         return dout * self.weights["s"]
>>> register(WeightsDicts())
>>> report = gradcheck.check(Scale(), np.ones((2, 3)))
>>> report.passed, report.convention, [v.name for v in report.variables]
(True, 'weights/weight_grads dicts', ['x', 's'])
>>> unregister("weights/weight_grads dicts")
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from gradcheck.vocabulary import Kind

__all__ = [
    "DECLARED_CONSTANTS",
    "Convention",
    "accepted_keywords",
    "call_with_douts",
    "looks_like_statistic",
]

#: The attribute with which an object declares arrays constant: a collection of names or
#: paths (``gradcheck_constants = ("scale", "fc1.mask")``).
DECLARED_CONSTANTS = "gradcheck_constants"

# Names of non-trainable running statistics: running_mean, moving_var, running_avg...
_STATISTIC = re.compile(r"(^|[_.\[' ])(running|moving)([_\]' ]|$)", re.IGNORECASE)


def looks_like_statistic(name: str) -> bool:
    """Whether ``name`` (an attribute, a key, a path) names a running statistic.

    >>> looks_like_statistic("running_mean"), looks_like_statistic("bn.moving_var")
    (True, True)
    >>> looks_like_statistic("W"), looks_like_statistic("unmoving")
    (False, False)
    """
    last = re.split(r"[.\[]", name)[-1]
    return bool(_STATISTIC.search(last.strip("]'\"")))


def _positional_capacity(function: Callable[..., Any]) -> int | None:
    """How many positional arguments ``function`` takes (None: any number, or unknown)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


def call_with_douts(function: Callable[..., Any], dout: Any, *after: Any) -> Any:
    """Call a backward with the upstream gradient(s), then ``after`` (a cache).

    One output: ``function(dout, *after)``. Several outputs (``dout`` is a tuple, one per
    output): spread, ``function(dh, dc, *after)``, when the function takes that many
    positional arguments (the sequel book's LSTM), else ``function((dh, dc), *after)``.
    """
    if not isinstance(dout, tuple):
        return function(dout, *after)
    capacity = _positional_capacity(function)
    if capacity is None or capacity >= len(dout) + len(after):
        return function(*dout, *after)
    return function(dout, *after)


def accepted_keywords(function: Callable[..., Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``kwargs`` that ``function`` accepts by name (all, with ``**kwargs``).

    A model's ``gradient(x, t)`` rarely takes the ``train_flg`` its ``loss`` takes.
    """
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return dict(kwargs)
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in parameters}


class Convention:
    """One way of writing backprop code: how to recognise it, call it, and read it.

    Subclass it, override what differs from the book's layer protocol, and register an
    instance with :func:`gradcheck.conventions.register`. Methods receive the object being
    run — always a private deep copy, never the user's own (except :meth:`recognises` and
    :meth:`parameters`, which must only read).

    Attributes
    ----------
    name : str
        How reports name the convention (``report.convention``).
    kind : {"layer", "model", "function"}
        A layer's inputs are differentiated with its parameters; a model's inputs are its
        data (constants) and only its parameters are checked.
    accumulates : bool
        Parameter gradients add up over backward calls by design (until an optimizer step
        zeroes them): gradcheck zeroes every array of :meth:`gradients` before each
        backward, so that one backward is judged.
    forward_name, backward_name : str
        What reports call the two calls (``"loss"``, ``"gradient"`` for a model).
    converts_inputs : bool
        Python numbers and nested lists given as inputs become float arrays (the book's
        apple example passes ``100`` and ``2``); when False they are passed as given.
    """

    name: ClassVar[str] = "forward/backward layer"
    kind: ClassVar[Kind] = "layer"
    accumulates: ClassVar[bool] = False
    forward_name: ClassVar[str] = "forward"
    backward_name: ClassVar[str] = "backward"
    converts_inputs: ClassVar[bool] = True

    def recognises(self, obj: Any) -> bool:
        """Whether ``obj`` is written in this convention (only read it)."""
        return False

    def subject(self, obj: Any) -> Any:
        """What the working copies are deep copies of (default: ``obj`` itself).

        A pair of functions becomes an object that keeps the cache between the calls.
        """
        return obj

    def label(self, obj: Any) -> str | None:
        """How reports name ``obj`` (None: its class or function name)."""
        return None

    def calls(self, obj: Any) -> tuple[str, str] | None:
        """How error notes name the two calls (None: ``Name.forward``, ``Name.backward``)."""
        return None

    def forward_function(self, obj: Any) -> Any:
        """The callable whose signature names the inputs (default: ``obj.forward``)."""
        return getattr(obj, self.forward_name, None)

    def notes(self, obj: Any, kwargs: Mapping[str, Any]) -> list[str]:
        """Sentences for the report about how ``obj`` is called (default: none)."""
        return []

    def forward(self, obj: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Run forward; return the output: an array, a number (a loss), or a tuple of
        arrays (several outputs)."""
        return obj.forward(*inputs, **kwargs)

    def backward(
        self, obj: Any, dout: Any, inputs: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """Run backward after :meth:`forward` and return what it returns.

        ``dout`` is the upstream gradient: a number for a scalar output, a tuple with one
        array per output for several outputs. ``inputs`` and ``kwargs`` are those of the
        forward call (a model's ``gradient(x, t)`` needs them).
        """
        return call_with_douts(obj.backward, dout)

    def input_gradients(self, returned: Any, inputs: Sequence[Any]) -> Sequence[Any] | None:
        """What :meth:`backward` returned, as one gradient per input (None: no gradient).

        The default (None) is the layer protocol, read and validated by gradcheck: ``dx``
        or a tuple ``(dx, dy, ...)`` in the order of the inputs; inputs left without a
        gradient (targets, labels) come last. Not called for a model's data.
        """
        return None

    def parameters(self, obj: Any) -> Mapping[str, Any]:
        """The parameters, by name: the very arrays forward reads (not copies)."""
        return {}

    def gradients(self, obj: Any, returned: Any) -> Mapping[str, Any]:
        """After :meth:`backward`: the gradient of each parameter, by the same names.

        ``returned`` is what :meth:`backward` returned (a model's gradient dict). A name
        left out, or None, means backward gave that parameter no gradient.
        """
        return {}

    def declares(self, obj: Any, name: str) -> bool:
        """Whether :meth:`parameters` entry ``name`` must get a gradient (a missing one is
        an error); when False it may be a constant, and is only checked for that."""
        return True

    def gradient_name(self, name: str) -> str:
        """Where backward should put the gradient of ``name``, for messages (``dW``)."""
        return f"the gradient of {name}"

    def parameter_label(self, name: str) -> str:
        """How messages name the parameter ``name`` (``parameter W``, ``params['W']``)."""
        return f"parameter {name}"

    def is_buffer(self, name: str) -> bool:
        """Whether the array called ``name`` is a constant by design (a running
        statistic): never differentiated, never counted as unchecked."""
        return looks_like_statistic(name)

    def reset(self, obj: Any) -> None:
        """Prepare ``obj`` for a forward pass; called before every one.

        Accumulating conventions start each pass from zero gradients here (by the
        layer's own method when it has one).
        """
