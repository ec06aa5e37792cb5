"""What an object holds, found by walking it: its float arrays and its sublayers, by path.

A path is a tuple of steps — an attribute name (``"fc1"``) or an item key wrapped in a
one-element tuple (``(0,)``, ``("W",)``) — shown as ``fc1.W``, ``layers[0].W`` or
``params['W']``. The walk follows attributes, dict values and list or tuple items, to a
limited depth, and never enters arrays, functions, classes, modules or random generators.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["Path", "float_arrays", "layer_children", "path_text", "resolve"]

Step = str | tuple[Any]
Path = tuple[Step, ...]

# Deep enough for a net's layers' sublayers' caches; shallow enough to stay fast.
_DEPTH = 6
# A longer list is data (a dataset kept on the model), not a place parameters live.
_LONGEST = 1000
_OPAQUE = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
    np.random.Generator,
    np.random.RandomState,
    np.random.BitGenerator,
    str,
    bytes,
    int,
    float,
    complex,
    bool,
)


def path_text(path: Path) -> str:
    """``fc1.W``, ``layers[0].W``, ``params['W']``.

    >>> path_text(("layers", (0,), "W")), path_text(("params", ("W",)))
    ('layers[0].W', "params['W']")
    """
    text = ""
    for step in path:
        if isinstance(step, tuple):
            text += f"[{step[0]!r}]"
        else:
            text += f".{step}" if text else step
    return text


def _children(obj: Any) -> Iterator[tuple[Step, Any]]:
    if isinstance(obj, Mapping):
        for key, value in list(obj.items())[:_LONGEST]:
            yield (key,), value
    elif isinstance(obj, list | tuple):
        if len(obj) <= _LONGEST:
            for index, value in enumerate(obj):
                yield (index,), value
    elif not isinstance(obj, (*_OPAQUE, np.ndarray, np.generic)):
        try:
            attributes = vars(obj)
        except TypeError:  # __slots__, builtins
            return
        for name, value in list(attributes.items()):
            yield name, value


def float_arrays(root: Any, depth: int = _DEPTH) -> dict[int, tuple[Path, np.ndarray]]:
    """Every float array reachable from ``root``: ``id -> (first path, array)``.

    Each array is listed once, under the first path that reaches it (attributes in
    definition order, breadth first), so a parameter shared by two holders has one name.
    """
    found: dict[int, tuple[Path, np.ndarray]] = {}
    seen = {id(root)}
    level: list[tuple[Path, Any]] = [((), root)]
    for _ in range(depth):
        following: list[tuple[Path, Any]] = []
        for path, obj in level:
            for step, value in _children(obj):
                if isinstance(value, np.ndarray):
                    if value.dtype.kind == "f" and id(value) not in found:
                        found[id(value)] = ((*path, step), value)
                elif id(value) not in seen and not isinstance(value, _OPAQUE):
                    seen.add(id(value))
                    following.append(((*path, step), value))
        level = following
    return found


def layer_children(obj: Any, is_layer: Callable[[Any], bool]) -> list[tuple[Path, Any]]:
    """The sublayers ``obj`` holds: attributes that are layers, and the layers in its
    list, tuple or dict attributes (``self.fc1``, ``self.layers[0]``)."""
    found: list[tuple[Path, Any]] = []
    for step, value in _children(obj):
        if isinstance(step, tuple):
            continue
        if is_layer(value):
            found.append(((step,), value))
        elif isinstance(value, Mapping | list | tuple):
            found += [((step, key), item) for key, item in _children(value) if is_layer(item)]
    return found


def resolve(root: Any, path: Path) -> Any:
    """The object at ``path`` from ``root`` (None when the path no longer leads anywhere)."""
    obj = root
    for step in path:
        try:
            obj = obj[step[0]] if isinstance(step, tuple) else getattr(obj, step)
        except (KeyError, IndexError, AttributeError, TypeError):
            return None
    return obj
