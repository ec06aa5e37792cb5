"""The conventions gradcheck knows, and how one is chosen for what ``check`` was given.

A :class:`Convention` recognises an object (or a function with ``vjp=``/``grad=``) and
builds the :class:`~gradcheck.conventions.target.Target` for it. :func:`make_target`
asks each registered convention in turn; the first that recognises the request builds
the target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gradcheck.conventions.function import FunctionTarget
from gradcheck.conventions.layer import LayerTarget
from gradcheck.conventions.model import ModelTarget
from gradcheck.conventions.randomness import seeded_global_state
from gradcheck.conventions.target import Target, TargetRequest, describe
from gradcheck.errors import CheckError

__all__ = ["CONVENTIONS", "Convention", "make_target"]


@dataclass(frozen=True)
class Convention:
    """One way of writing backprop code that gradcheck can check.

    Attributes
    ----------
    name : str
        How reports and errors name it.
    recognises : callable
        ``recognises(request) -> bool``.
    build : callable
        ``build(request) -> Target``; may raise :class:`~gradcheck.CheckError` for an
        object it recognises but cannot check as given.
    """

    name: str
    recognises: Callable[[TargetRequest], bool]
    build: Callable[[TargetRequest], Target]


def _has_derivative(request: TargetRequest) -> bool:
    return request.vjp is not None or request.grad is not None


def _is_layer(request: TargetRequest) -> bool:
    return callable(getattr(request.obj, "forward", None))


def _is_model(request: TargetRequest) -> bool:
    obj: Any = request.obj
    return isinstance(getattr(obj, "params", None), Mapping) and callable(
        getattr(obj, "gradient", None)
    )


def _build_model(request: TargetRequest) -> Target:
    if not callable(getattr(request.obj, "loss", None)):
        raise CheckError(f"{describe(request.obj)} has params and gradient but no loss method.")
    return ModelTarget(request.obj, request.inputs)


CONVENTIONS: list[Convention] = [
    Convention(
        "function", _has_derivative,
        lambda r: FunctionTarget(r.obj, r.inputs, vjp=r.vjp, grad=r.grad),
    ),
    Convention("layer", _is_layer, lambda r: LayerTarget(r.obj, r.inputs, r.forward_kwargs)),
    Convention("model", _is_model, _build_model),
]


def make_target(request: TargetRequest) -> Target:
    """Pick the convention for ``request.obj`` and build the target.

    Raises
    ------
    CheckError
        When the object fits no convention, or its inputs or gradients are malformed.
    """
    for convention in CONVENTIONS:
        if convention.recognises(request):
            target = convention.build(request)
            target.global_random_state = seeded_global_state(request.seed)
            return target
    obj = request.obj
    if callable(obj):
        raise CheckError(
            f"{describe(obj)} is a function; pass vjp=g (g(dout, *xs) returns one gradient "
            "per input) or grad=g (g(x) returns the gradient of a scalar function)."
        )
    raise CheckError(
        f"cannot check a {type(obj).__name__}: expected a layer with forward and backward, "
        "a model with params, loss and gradient, or a function with vjp= or grad=."
    )
