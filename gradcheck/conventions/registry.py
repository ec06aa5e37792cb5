"""The conventions gradcheck knows, and how one is chosen for what ``check`` was given.

:data:`CONVENTIONS` is walked in order; the first convention that recognises the object
is used, and the report names it. A user's convention, added with :func:`register`,
comes before the built-ins (the last registered first), so it can claim objects a
built-in would also take. Built-ins, most specific first:

===============================================  ==========================================
function with vjp / scalar function with grad    ``check(f, x, vjp=g)`` / ``grad=g``
forward/backward function pair                   ``check((affine_forward, affine_backward),
                                                 x, w, b)``
loss function returning (loss, gradients)        ``check(softmax_loss, x, y)``
params/loss/gradient model                       ``params`` dict, ``loss``, ``gradient``
loss → (loss, grads) model                       ``params`` dict, ``loss`` returning both
forward/backward model with params/grads lists   ``forward(x, t)``, ``backward(dout=1)``
parameters/gradients dicts (accumulating)        numpy-ml's layers
params/grads lists                               the sequel book's layers
params/grads dicts                               ``params``/``grads`` dicts
W/dW attributes                                  the first book's layers (any ``forward``)
===============================================  ==========================================

A layer's sublayers (``self.fc1``, ``self.layers[0]``) are read with the layer conventions
of this same list.
"""

from __future__ import annotations

from typing import Any

from gradcheck.conventions.adapter import ConventionTarget
from gradcheck.conventions.convention import Convention
from gradcheck.conventions.function import FunctionWithGrad, FunctionWithVjp, WithDerivative
from gradcheck.conventions.layers import (
    AttributePairs,
    ParametersGradients,
    ParamsGradsDicts,
    ParamsGradsLists,
)
from gradcheck.conventions.loss_function import LossWithGradients
from gradcheck.conventions.model import (
    ForwardBackwardModel,
    LossGradientModel,
    LossReturnsGradients,
)
from gradcheck.conventions.pairs import FunctionPairs
from gradcheck.conventions.randomness import seeded_global_state
from gradcheck.conventions.target import Target, TargetRequest, describe
from gradcheck.errors import CheckError

__all__ = ["CONVENTIONS", "find", "make_target", "register", "unregister"]

#: The built-in conventions, in the order they are tried.
BUILT_IN: tuple[Convention, ...] = (
    FunctionWithVjp(),
    FunctionWithGrad(),
    FunctionPairs(),
    LossWithGradients(),
    LossGradientModel(),
    LossReturnsGradients(),
    ForwardBackwardModel(),
    ParametersGradients(),
    ParamsGradsLists(),
    ParamsGradsDicts(),
    AttributePairs(),
)

#: Every convention, in the order they are tried: the user's, then the built-ins.
CONVENTIONS: list[Convention] = list(BUILT_IN)


def register(convention: Convention) -> None:
    """Teach gradcheck a convention: it is tried before every one registered before it.

    Parameters
    ----------
    convention : Convention
        An instance of a :class:`~gradcheck.conventions.Convention` subclass.

    Raises
    ------
    TypeError
        When ``convention`` is not a Convention.
    """
    if not isinstance(convention, Convention):
        raise TypeError(
            f"register() takes an instance of a gradcheck.conventions.Convention subclass, "
            f"not {type(convention).__name__}"
        )
    CONVENTIONS.insert(0, convention)


def unregister(name: str) -> None:
    """Forget the conventions called ``name`` (a built-in too: it is then never tried).

    Raises
    ------
    KeyError
        When no registered convention has that name.
    """
    kept = [c for c in CONVENTIONS if c.name != name]
    if len(kept) == len(CONVENTIONS):
        raise KeyError(
            f"no convention called {name!r}; known: {', '.join(c.name for c in CONVENTIONS)}"
        )
    CONVENTIONS[:] = kept


def find(obj: Any, kind: str | None = None) -> Convention | None:
    """The first convention that recognises ``obj`` (of ``kind``, when given), or None."""
    for convention in CONVENTIONS:
        if kind is not None and convention.kind != kind:
            continue
        try:
            if convention.recognises(obj):
                return convention
        except Exception:  # a user's recogniser that cannot read this object: not its kind
            continue
    return None


def _sublayer_convention(obj: Any) -> Convention | None:
    """The convention of a layer held by a layer (only layers with a backward)."""
    if not callable(getattr(obj, "backward", None)):
        return None
    return find(obj, "layer")


def make_target(request: TargetRequest) -> Target:
    """Pick the convention for ``request.obj`` and build the target.

    Raises
    ------
    CheckError
        When the object fits no convention, or its inputs or gradients are malformed.
    """
    obj = request.obj
    if request.vjp is not None or request.grad is not None:
        obj = WithDerivative(obj, vjp=request.vjp, grad=request.grad)
    convention = find(obj)
    if convention is None:
        raise CheckError(_unrecognised(obj))
    if convention.kind == "layer" and not callable(getattr(obj, "backward", None)):
        raise CheckError(
            f"{describe(obj)} has forward but no backward method; gradcheck compares "
            "backward's gradients with numerical ones."
        )
    target = ConventionTarget(
        convention, obj, request.inputs, request.forward_kwargs, _sublayer_convention
    )
    target.global_random_state = seeded_global_state(request.seed)
    return target


def _unrecognised(obj: Any) -> str:
    if callable(obj):
        return (
            f"{describe(obj)} is a function; pass vjp=g (g(dout, *xs) returns one gradient "
            "per input) or grad=g (g(x) returns the gradient of a scalar function), or "
            "check it with its backward: check((f_forward, f_backward), *xs)."
        )
    return (
        f"cannot check a {type(obj).__name__}: expected a layer with forward and backward, "
        "a model with params, loss and gradient, a pair of forward/backward functions, or "
        "a function with vjp= or grad=. Another convention can be taught with "
        "gradcheck.conventions.register."
    )
