"""Find checkable code: by name (``module:Name``, ``path/to/file.py:Name``) or a module.

Candidates are layer and model classes, forward/backward function pairs named
``<stem>_forward`` / ``<stem>_backward`` (cs231n's ``affine_forward``; a pair is named by
its stem, ``affine``), and functions named like a loss (``softmax_loss``), which return
``(loss, gradients)``. A class is *checkable without help* when it offers example
inputs: a classmethod ``example(rng, dtype)`` returning ``(instance, inputs)`` — the
protocol of ``reference_layers``; others are checked at made-up inputs
(:mod:`gradcheck.faces.examples`). The CLI (``gradcheck check``, ``gradcheck list``) and
the pytest plugin (``--gradcheck-layers``) both discover code through this module.

Modules are imported the way ``python -m`` would from the working directory: it is on the
import path, and a file inside it is imported under its package name
(``common/layers.py`` as ``common.layers``), so its own ``from common.functions import
...`` works without ``PYTHONPATH``.
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

from gradcheck.conventions.pairs import pair_label
from gradcheck.errors import CheckError

__all__ = ["Candidate", "LoadError", "candidates_in", "load_module", "resolve"]


class LoadError(CheckError):
    """A target spec names nothing importable; the message is one line for the user."""


@dataclass(frozen=True)
class Candidate:
    """A class or a function pair found by discovery, and how to make an example of it.

    Attributes
    ----------
    name : str
        The class's name, or a pair's stem (``affine``).
    module : str
        The module it was found in.
    obj : type or tuple
        The class, or the ``(forward, backward)`` functions.
    """

    name: str
    module: str
    obj: Any

    @property
    def qualified(self) -> str:
        """``module:Name``."""
        return f"{self.module}:{self.name}"

    @property
    def is_pair(self) -> bool:
        """Whether this is a forward/backward function pair."""
        return isinstance(self.obj, tuple)

    @property
    def is_function(self) -> bool:
        """Whether this is code without a class: a function pair or a loss function."""
        return not inspect.isclass(self.obj)

    @property
    def has_example(self) -> bool:
        """Whether the class offers ``example(rng, dtype)``."""
        return not self.is_function and callable(getattr(self.obj, "example", None))

    def example(self, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Any, tuple]:
        """A ready ``(instance, inputs)`` pair from the class's ``example``."""
        factory: Callable[..., Any] | None = getattr(self.obj, "example", None)
        if factory is None or self.is_function:
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


def _on_import_path(directory: str) -> None:
    """Put ``directory`` first on the import path (once), as ``python -m`` puts the
    working directory."""
    if directory not in sys.path:
        sys.path.insert(0, directory)


def _package_name(path: Path) -> str | None:
    """``common.layers`` for ``common/layers.py`` below the working directory, else None."""
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return None
    parts = relative.with_suffix("").parts
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def _import_as_package(path: Path) -> ModuleType | None:
    """The file imported under its package name, when that name finds this very file."""
    name = _package_name(path)
    if name is None:
        return None
    try:
        module = importlib.import_module(name)
    except Exception:  # not importable as a package module: load it as a file
        return None
    found = getattr(module, "__file__", None)
    return module if found and Path(found).resolve() == path.resolve() else None


def load_module(spec: str) -> ModuleType:
    """Import a module by dotted name or by the path of a ``.py`` file.

    Raises
    ------
    LoadError
        With one line saying what could not be loaded and why.
    """
    _on_import_path(str(Path.cwd()))
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec)
        if not path.is_file():
            raise LoadError(f"no such file: {spec}")
        packaged = _import_as_package(path)
        if packaged is not None:
            return packaged
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


def _pairs_in(module: ModuleType, names: list[str], exported: bool) -> list[Candidate]:
    """``<stem>_forward`` functions that have a ``<stem>_backward`` beside them."""
    found = []
    for name in names:
        forward = getattr(module, name, None)
        if "forward" not in name or not inspect.isfunction(forward):
            continue
        backward = getattr(module, name.replace("forward", "backward", 1), None)
        defined_here = exported or forward.__module__ == module.__name__
        if inspect.isfunction(backward) and defined_here:
            found.append(
                Candidate(pair_label(forward, backward), module.__name__, (forward, backward))
            )
    return found


def _is_loss_function(obj: Any, name: str) -> bool:
    """A function named like a loss (``svm_loss``, ``softmax_loss_naive``), which cs231n's
    code writes to return ``(loss, gradients)``."""
    return inspect.isfunction(obj) and "loss" in name.lower()


def candidates_in(module: ModuleType) -> list[Candidate]:
    """Checkable classes, function pairs and loss functions a module defines or exports
    (its ``__all__`` when it has one)."""
    exported = getattr(module, "__all__", None)
    names = exported or [n for n in vars(module) if not n.startswith("_")]
    found = []
    for name in names:
        obj = getattr(module, name, None)
        # Without __all__, a class imported from elsewhere (``from lib import Affine``) is
        # not this module's to check: it would be checked, and reported, under a wrong name.
        defined_here = exported or getattr(obj, "__module__", None) == module.__name__
        checkable = (isinstance(obj, type) and _is_checkable_class(obj)) or _is_loss_function(
            obj, name
        )
        if checkable and defined_here:
            found.append(Candidate(name, module.__name__, obj))
    return found + _pairs_in(module, list(names), bool(exported))


def _named_pair(module: ModuleType, name: str) -> Candidate | None:
    """The pair ``name`` names: its forward function, or its stem (``affine``)."""
    for candidate in _pairs_in(module, [n for n in vars(module) if "forward" in n], True):
        if name in (candidate.name, candidate.obj[0].__name__):
            return candidate
    return None


def resolve(spec: str) -> list[Candidate]:
    """The candidates a target spec names: ``module:Name``, ``file.py:Name``, or a module.

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
        pair = _named_pair(module, name)
        if pair is not None:
            return [pair]
        obj = getattr(module, name, None)
        if obj is None:
            available = ", ".join(c.name for c in candidates_in(module)) or "none"
            raise LoadError(
                f"{module_part} has no attribute {name!r} (checkable classes: {available})"
            )
        if _is_loss_function(obj, name):
            return [Candidate(name, module.__name__, obj)]
        if not _is_checkable_class(obj):
            raise LoadError(
                f"{spec} is not a layer class (forward/backward), a model class "
                "(loss/gradient), a <name>_forward function with its <name>_backward, or a "
                "loss function returning (loss, gradients)"
            )
        assert isinstance(obj, type)
        return [Candidate(name, module.__name__, obj)]
    found = candidates_in(module)
    if not found:
        raise LoadError(
            f"{module_part} defines no layer or model classes, no "
            "<name>_forward/<name>_backward function pairs and no loss functions"
        )
    return found
