"""1. User code → a :class:`~gradcheck.conventions.target.Target`: the conventions.

A convention is one way of writing backprop code — W/dW attributes, params/grads dicts or
lists, accumulating parameters/gradients dicts, forward/backward function pairs, models —
described by a :class:`Convention` and kept in a registry that a user extends with
:func:`register` (see :mod:`~gradcheck.conventions.convention`).

Modules: ``convention`` (the plug-in interface), ``registry`` (the conventions in order,
and the choice), ``adapter`` (the one target every convention runs through), ``nodes`` (a
layer and its sublayers, each with its convention), ``layers``, ``model``, ``pairs``,
``function`` (the built-in conventions), ``walk`` (arrays and sublayers an object holds),
``target`` (the internal form), ``validation`` (what goes in and out of user code),
``randomness`` (held fixed), ``discovery`` (checkable things in modules and files, for the
faces).
"""

from gradcheck.conventions.convention import Convention
from gradcheck.conventions.pairs import FunctionPair
from gradcheck.conventions.registry import CONVENTIONS, register, unregister

__all__ = ["CONVENTIONS", "Convention", "FunctionPair", "register", "unregister"]
