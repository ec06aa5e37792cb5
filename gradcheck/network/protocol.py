"""The network protocol: where a net keeps its layers, and which layer owns each parameter.

``net.layers`` is an ordered mapping ``name -> layer`` or a list (layers are then named
``Affine[0]``, ``Relu[1]``, ...); ``net.lastLayer``, ``net.last_layer`` or
``net.loss_layer``, when there is one, is the loss layer and comes last. See
:mod:`gradcheck.network`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from gradcheck.conventions.model import ForwardBackwardModel
from gradcheck.conventions.target import describe
from gradcheck.errors import CheckError

__all__ = [
    "LOSS_LAYERS",
    "exposes_layers",
    "layers_of",
    "owners_of",
    "parameter_attributes",
    "suggestion",
]

#: Where nets keep their loss layer: the first book, PEP 8, the sequel book.
LOSS_LAYERS = ("lastLayer", "last_layer", "loss_layer")


def layers_of(net: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` of a net in forward order, the loss layer last.

    Parameters
    ----------
    net : object
        A net with ``layers`` (and optionally ``lastLayer`` or ``last_layer``).

    Returns
    -------
    list of (str, object)
        Names are the mapping's keys, ``Class[i]`` for a list, or the loss attribute.

    Raises
    ------
    CheckError
        When ``net.layers`` is missing, or an entry has no ``forward`` method.
    """
    layers = getattr(net, "layers", None)
    if isinstance(layers, Mapping):
        found = [(str(name), layer) for name, layer in layers.items()]
    elif isinstance(layers, list | tuple):
        found = [(f"{describe(layer)}[{i}]", layer) for i, layer in enumerate(layers)]
    else:
        raise CheckError(
            f"{describe(net)} has no layers to check: check_network needs net.layers, an "
            "ordered mapping name -> layer or a list of layers in forward order "
            "(see gradcheck.network)."
        )
    for attribute in LOSS_LAYERS:
        last = getattr(net, attribute, None)
        if last is not None:
            found.append((attribute, last))
            break
    for name, layer in found:
        if not callable(getattr(layer, "forward", None)):
            raise CheckError(
                f"{describe(net)}: layer {name} ({describe(layer)}) has no forward method; "
                "every entry of net.layers must be a layer with forward and backward."
            )
    return found


def parameter_attributes(layer: Any) -> Iterator[tuple[str, Any]]:
    """``(label, array)`` of the arrays a layer holds: attributes and ``params`` entries.

    Parameters
    ----------
    layer : object
        A layer.

    Yields
    ------
    (str, ndarray)
        ``("W", array)`` for an attribute, ``("params['W']", array)`` for a dict entry,
        ``("params[0]", array)`` for a list entry.
    """
    attributes = vars(layer) if hasattr(layer, "__dict__") else {}
    for name, value in attributes.items():
        if isinstance(value, np.ndarray):
            yield name, value
    params = attributes.get("params")
    if isinstance(params, Mapping):
        for key, value in params.items():
            if isinstance(value, np.ndarray):
                yield f"params[{key!r}]", value
    elif isinstance(params, list | tuple):
        for index, value in enumerate(params):
            if isinstance(value, np.ndarray):
                yield f"params[{index}]", value


def owners_of(net: Any, layers: list[tuple[str, Any]]) -> dict[str, tuple[str, str]]:
    """``params`` key -> (layer name, attribute) holding the very same array object.

    Parameters
    ----------
    net : object
        The net (its ``params`` mapping, if any, is read).
    layers : list of (str, object)
        Its layers, as :func:`layers_of` gives them.

    Returns
    -------
    dict
        Empty when the net has no ``params`` mapping or list (whose keys are then
        ``params[0]``, ...); a key no layer holds is left out.
    """
    params = getattr(net, "params", None)
    if isinstance(params, list | tuple):  # named as the end-to-end check names them
        params = {f"params[{i}]": value for i, value in enumerate(params)}
    if not isinstance(params, Mapping):
        return {}
    holders = {
        id(array): (name, label)
        for name, layer in reversed(layers)
        for label, array in parameter_attributes(layer)
    }
    return {str(key): holders[id(value)] for key, value in params.items() if id(value) in holders}


def exposes_layers(obj: Any) -> bool:
    """Whether :func:`~gradcheck.check_network` can check ``obj``: a net with ``layers``.

    The CLI and the pytest plugin check such a model layer by layer.

    Parameters
    ----------
    obj : object
        Anything.

    Returns
    -------
    bool
        True for a non-empty ``layers`` mapping or list and a ``gradient`` or ``loss``, or
        ``forward(x, t)`` and ``backward(dout=1)`` (the sequel book's nets; a layer that
        holds sublayers is not a net).
    """
    layers = getattr(obj, "layers", None)
    runs = (
        callable(getattr(obj, "gradient", None))
        or callable(getattr(obj, "loss", None))
        or ForwardBackwardModel().recognises(obj)
    )
    return isinstance(layers, Mapping | list | tuple) and bool(layers) and runs


def suggestion(obj: Any) -> str | None:
    """The hint for a failing model check when ``obj`` exposes layers, else None.

    For :func:`gradcheck.check` to add to a failing model report.

    Parameters
    ----------
    obj : object
        The checked model.

    Returns
    -------
    str or None
        A sentence pointing to :func:`~gradcheck.check_network`.
    """
    if not exposes_layers(obj):
        return None
    return (
        "to find which layer's backward is wrong, run gradcheck.check_network(net, x, t): "
        "it checks every layer at the inputs it receives in this net"
    )
