"""Find checkable layers: by name (``module:Name``, ``path/to/file.py:Name``) or a module.

A class is *checkable without help* when it offers example inputs: a classmethod
``example(rng, dtype)`` returning ``(instance, inputs)`` — the protocol of
``reference_layers``. The CLI (``gradcheck check``, ``gradcheck list``) and the pytest
plugin (``--gradcheck-layers``) both discover layers through this module.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gradcheck.errors import CheckError

__all__ = ["Candidate", "LoadError", "candidates_in", "load_module", "resolve"]


class LoadError(CheckError):
    """A target spec names nothing importable; the message is one line for the user."""


@dataclass(frozen=True)
class Candidate:
    """A class found by discovery, and how to make an example of it."""

    name: str
    module: str
    cls: type

    @property
    def qualified(self) -> str:
        """``module:Name``."""
        return f"{self.module}:{self.name}"

    @property
    def has_example(self) -> bool:
        """Whether the class offers ``example(rng, dtype)``."""
        return callable(getattr(self.cls, "example", None))

    def example(self, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Any, tuple]:
        """A ready ``(instance, inputs)`` pair from the class's ``example``."""
        factory: Callable[..., Any] | None = getattr(self.cls, "example", None)
        if factory is None:
            raise LoadError(
                f"{self.qualified} has no example(rng, dtype) classmethod; give its inputs "
                "(e.g. --shape) or add one."
            )
        made = factory(rng, dtype)
        if not (isinstance(made, tuple) and len(made) == 2 and isinstance(made[1], tuple)):
            raise LoadError(
                f"{self.qualified}.example must return (instance, inputs_tuple); got "
                f"{type(made).__name__}."
            )
        return made


def load_module(spec: str) -> ModuleType:
    """Import a module by dotted name or by the path of a ``.py`` file.

    Raises
    ------
    LoadError
        With one line saying what could not be loaded and why.
    """
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec)
        if not path.is_file():
            raise LoadError(f"no such file: {spec}")
        name = f"gradcheck_user_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise LoadError(f"cannot import {spec} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        directory = str(path.resolve().parent)
        sys.path.insert(0, directory)
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[name]
            raise LoadError(f"importing {spec} failed: {type(error).__name__}: {error}") from None
        finally:
            sys.path.remove(directory)
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as error:
        raise LoadError(f"no module named {error.name!r} (from target {spec!r})") from None
    except Exception as error:
        raise LoadError(f"importing {spec} failed: {type(error).__name__}: {error}") from None


def _is_checkable_class(obj: Any) -> bool:
    if not inspect.isclass(obj):
        return False
    layer = callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None))
    model = callable(getattr(obj, "gradient", None)) and callable(getattr(obj, "loss", None))
    return layer or model


def candidates_in(module: ModuleType) -> list[Candidate]:
    """Checkable classes a module defines or exports (its ``__all__`` when it has one)."""
    exported = getattr(module, "__all__", None)
    names = exported or [n for n in vars(module) if not n.startswith("_")]
    found = []
    for name in names:
        obj = getattr(module, name, None)
        # Without __all__, a class imported from elsewhere (``from lib import Affine``) is
        # not this module's to check: it would be checked, and reported, under a wrong name.
        defined_here = exported or getattr(obj, "__module__", None) == module.__name__
        if isinstance(obj, type) and _is_checkable_class(obj) and defined_here:
            found.append(Candidate(name, module.__name__, obj))
    return found


def resolve(spec: str) -> list[Candidate]:
    """The classes a target spec names: ``module:Name``, ``file.py:Name``, or a module.

    Raises
    ------
    LoadError
        When the module cannot be imported, the name does not exist, or a module holds
        no checkable class.
    """
    module_part, _, name = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if len(module_part) == 1 and module_part.isalpha():  # a Windows drive letter, no name
        module_part, name = spec, ""
    module = load_module(module_part)
    if name:
        obj = getattr(module, name, None)
        if obj is None:
            available = ", ".join(c.name for c in candidates_in(module)) or "none"
            raise LoadError(
                f"{module_part} has no attribute {name!r} (checkable classes: {available})"
            )
        if not _is_checkable_class(obj):
            raise LoadError(
                f"{spec} is not a layer class (forward/backward) or a model class "
                "(loss/gradient)"
            )
        assert isinstance(obj, type)
        return [Candidate(name, module.__name__, obj)]
    found = candidates_in(module)
    if not found:
        raise LoadError(f"{module_part} defines no layer or model classes")
    return found
