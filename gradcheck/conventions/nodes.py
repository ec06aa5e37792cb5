"""The layers a checked object is made of, each read with its own convention.

A :class:`Node` is the object itself (path ``()``) or one of the sublayers it holds
(``self.fc1``, ``self.layers[0]``), found at any depth; its parameters are named by path
(``fc1.W``, ``layers[0].W``). An array held under several names is one parameter
(:class:`Holder` lists the places) whose gradient is the sum of the distinct gradients
given for it: tied weights in one store, a sublayer's weight reused by another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.convention import DECLARED_CONSTANTS, Convention
from gradcheck.conventions.walk import Path, layer_children, path_text, resolve

__all__ = [
    "Holder",
    "Node",
    "candidates",
    "declared_constants",
    "gradients",
    "is_known_buffer",
    "reset",
    "sublayers",
    "summed",
    "zero_accumulated",
]

# How deep sublayers are looked for: a block's layers' sublayers.
_NESTING = 4


@dataclass(frozen=True)
class Node:
    """A layer whose convention holds parameters: the object itself (path ``()``) or one
    of its sublayers."""

    path: Path
    convention: Convention

    def name(self, key: str) -> str:
        """``fc1.W`` for the key ``W`` of the sublayer ``fc1``."""
        return f"{path_text(self.path)}.{key}" if self.path else key

    def of(self, root: Any) -> Any:
        """This node's object in ``root`` (the user's object, or a working copy of it)."""
        return resolve(root, self.path)


@dataclass(frozen=True)
class Holder:
    """One place a parameter array is held: a node and the key its convention uses."""

    node: Node
    key: str

    @property
    def name(self) -> str:
        """The parameter's name at this place (``fc1.W``)."""
        return self.node.name(self.key)


def sublayers(root: Any, convention_of: Callable[[Any], Convention | None]) -> list[Node]:
    """The layers ``root`` holds, at any depth, with the convention of each."""
    found: list[Node] = []
    seen = {id(root)}
    level: list[tuple[Path, Any]] = [((), root)]
    for _ in range(_NESTING):
        following = []
        for path, obj in level:
            for step, child in layer_children(obj, lambda o: convention_of(o) is not None):
                if id(child) in seen:
                    continue
                seen.add(id(child))
                convention = convention_of(child)
                assert convention is not None
                found.append(Node((*path, *step), convention))
                following.append(((*path, *step), child))
        level = following
    return found


def candidates(nodes: list[Node], root: Any) -> dict[int, tuple[list[Holder], NDArray]]:
    """The arrays the nodes' conventions call parameters: ``id -> (holders, array)``."""
    found: dict[int, tuple[list[Holder], NDArray]] = {}
    for node in nodes:
        for key, array in node.convention.parameters(node.of(root)).items():
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
                continue
            if id(array) in found:
                holders = found[id(array)][0]
                # Tied weights in one store add up; a sublayer's copy of its parent's
                # array is the same parameter, named by the parent.
                if holders[0].node is node:
                    holders.append(Holder(node, str(key)))
                continue
            found[id(array)] = ([Holder(node, str(key))], array)
    return found


def gradients(nodes: list[Node], root: Any, returned: Any) -> dict[str, Any]:
    """Every node's parameter gradients after backward, by full name (``fc1.W``)."""
    found: dict[str, Any] = {}
    for node in nodes:
        given = node.convention.gradients(node.of(root), returned if not node.path else None)
        for key, value in (given or {}).items():
            found.setdefault(node.name(str(key)), value)
    return found


def summed(given: list[Any]) -> Any:
    """The gradient of an array held under several names: the sum of the distinct ones."""
    distinct: list[Any] = []
    for gradient in given:
        if gradient is not None and all(gradient is not g for g in distinct):
            distinct.append(gradient)
    if len(distinct) <= 1:
        return distinct[0] if distinct else None
    arrays = [np.asarray(g) for g in distinct]
    if any(a.shape != arrays[0].shape for a in arrays):
        return next(a for a in arrays if a.shape != arrays[0].shape)  # refused by its shape
    return sum(arrays[1:], arrays[0])


def reset(nodes: list[Node], root: Any) -> None:
    """Prepare every node for a forward pass (its convention's ``reset``)."""
    for node in nodes:
        node.convention.reset(node.of(root))


def zero_accumulated(nodes: list[Node], root: Any) -> None:
    """Zero the gradients of accumulating conventions, so that one backward is judged."""
    for node in nodes:
        if not node.convention.accumulates:
            continue
        for value in node.convention.gradients(node.of(root), None).values():
            if isinstance(value, np.ndarray) and value.flags.writeable:
                value[...] = 0


def declared_constants(nodes: list[Node], root: Any) -> set[str]:
    """The names the object and its sublayers declare constant (``fc1.mask``)."""
    declared: set[str] = set()
    for node in nodes:
        names = getattr(node.of(root), DECLARED_CONSTANTS, ())
        if isinstance(names, str):
            names = (names,)
        declared |= {node.name(str(n)) for n in names}
    return declared


def is_known_buffer(nodes: list[Node], name: str) -> bool:
    """Whether any node's convention knows ``name`` as a buffer (a running statistic)."""
    return any(node.convention.is_buffer(name) for node in nodes)
