"""The internal form everything checkable is turned into: a :class:`Target`.

A target knows the named float arrays to differentiate (:class:`Variable`: inputs and
parameters) and makes :class:`Instance` objects: private working copies on which the
checker runs ``forward`` and ``backward`` as often as it likes.

The user's own object is never called. An instance is a ``copy.deepcopy`` of it whose
memo maps each variable's array to a fresh working array (optionally in another dtype:
float64 for the numerical side of a float32 layer, complex128 for the complex step). A
deepcopy keeps shared references shared, so a network whose layers hold the very arrays
of its ``params`` dict sees a perturbation of the working array everywhere at once.
"""

from __future__ import annotations

import copy
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.randomness import HeldRandomness
from gradcheck.errors import CheckError
from gradcheck.vocabulary import Constant, Kind, Role

__all__ = [
    "Instance",
    "Target",
    "TargetRequest",
    "Unpaired",
    "Variable",
    "describe",
    "user_code",
]


@dataclass
class Variable:
    """A named float array to differentiate: an input or a parameter.

    ``value`` is a private copy of the user's array at the time of the check; ``source``
    is the user's array itself (only its identity is used, to substitute it in copies).
    """

    name: str
    role: Role
    value: NDArray
    source: Any = None

    @property
    def dtype(self) -> np.dtype:
        """The dtype the user's layer computes this variable in."""
        return self.value.dtype


@dataclass(frozen=True)
class Unpaired:
    """A float array of the checked object that no convention paired with a gradient.

    ``source`` is the user's array (only its identity is used: a working copy in which it
    is replaced by a nudged copy shows whether the output depends on it).
    """

    name: str
    source: Any = field(repr=False)


def describe(obj: Any) -> str:
    """A short name for a user object: its class name, or a function's name."""
    if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj):
        return str(getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj))))
    if isinstance(obj, np.ufunc):  # np.sqrt is a ufunc instance, named like a function
        return f"np.{obj.__name__}"
    return type(obj).__name__


class Instance:
    """A working copy of a target: arrays to perturb in place, and the calls to run.

    ``arrays`` maps each variable's name to the working array that the copy reads; the
    numerical engines perturb these arrays in place. Random generators inside the copy,
    and the global ``np.random`` state, are reset before every ``forward`` so that the
    randomness of a pass (a Dropout mask) is held fixed across evaluations.
    """

    def __init__(
        self,
        subject: Any,
        arrays: dict[str, NDArray],
        run_forward: Callable[[Any, dict[str, NDArray]], Any],
        run_backward: Callable[[Any, Any, dict[str, NDArray]], dict[str, Any]],
        *,
        calls: tuple[str, str] = ("forward", "backward"),
    ) -> None:
        self.subject = subject
        self.arrays = arrays
        self._run_forward = run_forward
        self._run_backward = run_backward
        self._calls = calls
        self._randomness = HeldRandomness(subject)
        self.copy_inputs = False
        self.global_random_state: Any = None

    def _hold_randomness(self) -> None:
        self._randomness.hold()
        if self.global_random_state is not None:
            np.random.set_state(self.global_random_state)  # noqa: NPY002 (the textbook's)

    def forward(self) -> Any:
        """Run the forward pass at the current working arrays; return its output."""
        self._hold_randomness()
        arrays = self.arrays
        if self.copy_inputs:
            arrays = {name: array.copy() for name, array in arrays.items()}
        with user_code(self._calls[0]):
            return self._run_forward(self.subject, arrays)

    def backward(self, dout: Any) -> dict[str, Any]:
        """Run the backward pass (after :meth:`forward`); return the raw gradients.

        Random generators are reset here too: a model's ``gradient(x, t)`` runs its own
        forward pass, which must draw the same Dropout mask as ``loss(x, t)`` did.
        """
        self._hold_randomness()
        if isinstance(dout, np.ndarray) and dout.ndim == 0:
            # A loss's backward gets a number, as every caller passes one (dout=1): a 0-d
            # array would make `dout *= 1 / n` an edit of the caller's value.
            dout = dout.item()
        with user_code(self._calls[1]):
            return self._run_backward(self.subject, dout, self.arrays)


class user_code:  # noqa: N801 (used as ``with user_code(call):``, like a function)
    """Let an exception from the user's code propagate unchanged, with a note on where.

    The exception keeps its type and traceback (a test runner shows the user's own line);
    the note (PEP 678) adds that gradcheck called it on a private copy, so nothing the
    user passed was changed. Our own :class:`CheckError` passes through without a note.
    A class rather than a generator: it wraps every forward pass, and costs a third.
    """

    __slots__ = ("call",)

    def __init__(self, call: str) -> None:
        self.call = call

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if isinstance(error, Exception) and not isinstance(error, CheckError):
            error.add_note(
                f"(raised in {self.call}, called by gradcheck on a private copy; the "
                "arrays you passed are unchanged)"
            )
        return False  # never swallowed


class Target(ABC):
    """The internal form of anything checkable.

    Attributes
    ----------
    name : str
        How reports name the target (a class or function name).
    kind : str
        ``"layer"``, ``"model"`` or ``"function"``.
    variables : list of Variable
        What is differentiated, inputs first.
    constants : list of Constant
        What is not, with the reason.
    notes : list of str
        Conversions made on the way in (e.g. Python numbers to float64 arrays).
    unexplained : list of Unpaired
        Float arrays of the object that got no gradient and are not known constants.
    convention_name : str or None
        The convention the object was read with, for the report.
    """

    name: str
    kind: Kind
    backward_call = "backward"

    def __init__(self) -> None:
        self.variables: list[Variable] = []
        self.constants: list[Constant] = []
        self.notes: list[str] = []
        # Float arrays the convention found no gradient for (see analytic.attributes).
        self.unexplained: list[Unpaired] = []
        self.convention_name: str | None = None
        # The global np.random state every forward pass starts from (see randomness).
        self.global_random_state: Any = None

    def variable(self, name: str) -> Variable:
        """The variable called ``name``."""
        for var in self.variables:
            if var.name == name:
                return var
        raise KeyError(name)

    def moved(self, values: Mapping[str, NDArray]) -> Target:
        """This target at another point: the variables named in ``values`` take those
        values (constants, buffers and the object itself stay as they are)."""
        other = copy.copy(self)
        other.variables = [
            replace(var, value=np.array(values[var.name], dtype=var.value.dtype))
            if var.name in values
            else var
            for var in self.variables
        ]
        return other

    def batch_size(self) -> int | None:
        """The leading dimension of the first input of rank ≥ 2 (for "divide by N" hints)."""
        for var in self.variables:
            if var.role == "input" and var.value.ndim >= 2:
                return int(var.value.shape[0])
        return None

    def instantiate(
        self,
        dtype: np.dtype | type | None = None,
        *,
        replacing: Mapping[int, NDArray] | None = None,
    ) -> Instance:
        """A fresh working copy whose variables are cast to ``dtype`` (default: theirs).

        ``replacing`` maps ``id(array)`` of arrays of the object to what the copy holds
        instead (a nudged copy of an :class:`Unpaired` array). Every forward pass of the
        copy starts from the same random state: its own generators' and the global
        ``np.random`` state of this target.
        """
        instance = self._make_instance(dtype, replacing or {})
        instance.global_random_state = self.global_random_state
        return instance

    @abstractmethod
    def _make_instance(
        self, dtype: np.dtype | type | None, replacing: Mapping[int, NDArray]
    ) -> Instance:
        """A fresh working copy (the convention's part of :meth:`instantiate`)."""

    def _arrays(self, dtype: np.dtype | type | None) -> dict[str, NDArray]:
        return {
            var.name: np.array(var.value, dtype=dtype or var.value.dtype, order="C", copy=True)
            for var in self.variables
        }

    def _clone(
        self, subject: Any, arrays: dict[str, NDArray], replacing: Mapping[int, NDArray]
    ) -> Any:
        """Deep-copy ``subject``, substituting each parameter's array by its working array
        (and each array named in ``replacing`` by its replacement)."""
        memo: dict[int, Any] = dict(replacing)
        for var in self.variables:
            if var.source is not None:
                memo[id(var.source)] = arrays[var.name]
        try:
            return copy.deepcopy(subject, memo)
        except Exception as error:
            raise CheckError(
                f"{self.name}: cannot copy the {self.kind} ({type(error).__name__}: {error}). "
                "gradcheck works on a deep copy so that your object is never changed; "
                "make it copyable (copy.deepcopy) to check it."
            ) from error


@dataclass
class TargetRequest:
    """What ``check`` was called with, before adaptation."""

    obj: Any
    inputs: Sequence[Any]
    vjp: Callable[..., Any] | None = None
    grad: Callable[..., Any] | None = None
    forward_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
