"""Adapters: turn whatever the user hands us into one internal form, a :class:`Target`.

A target knows the named float arrays to differentiate (:class:`Variable`: inputs and
parameters) and makes :class:`Instance` objects: private working copies on which the
checker runs ``forward`` and ``backward`` as often as it likes.

The user's own object is never called. An instance is a ``copy.deepcopy`` of it whose
memo maps each variable's array to a fresh working array (optionally in another dtype:
float64 for the numerical side of a float32 layer, complex128 for the complex step). A
deepcopy keeps shared references shared, so a network whose layers hold the very arrays
of its ``params`` dict sees a perturbation of the working array everywhere at once.

Adapters, one per protocol (see DESIGN.md §2):

* layer objects with ``forward(*xs)`` / ``backward(dout)`` — :class:`LayerTarget`;
* models with ``params``, ``loss(x, t)`` and ``gradient(x, t)`` — :class:`ModelTarget`;
* a function with a vector-Jacobian product, ``vjp(dout, *xs)`` — :class:`FunctionTarget`;
* a scalar function with a gradient, ``grad(x)`` — also :class:`FunctionTarget`.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import CheckError, UsageError
from gradcheck.vocabulary import Constant

__all__ = [
    "Constant",
    "FunctionTarget",
    "Instance",
    "LayerTarget",
    "ModelTarget",
    "Target",
    "Variable",
    "make_target",
]


@dataclass
class Variable:
    """A named float array to differentiate: an input or a parameter.

    ``value`` is a private copy of the user's array at the time of the check; ``source``
    is the user's array itself (only its identity is used, to substitute it in copies).
    """

    name: str
    role: str
    value: NDArray
    source: Any = None

    @property
    def dtype(self) -> np.dtype:
        """The dtype the user's layer computes this variable in."""
        return self.value.dtype


def describe(obj: Any) -> str:
    """A short name for a user object: its class name, or a function's name."""
    if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj):
        return str(getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj))))
    return type(obj).__name__


def _random_states(root: Any, depth: int = 4) -> list[Any]:
    """Random generators reachable from ``root`` (attributes, dicts, lists)."""
    found: list[Any] = []
    seen: set[int] = set()

    def walk(obj: Any, level: int) -> None:
        if id(obj) in seen or level > depth:
            return
        seen.add(id(obj))
        if isinstance(obj, np.random.Generator | np.random.RandomState):
            found.append(obj)
        elif isinstance(obj, Mapping):
            for item in obj.values():
                walk(item, level + 1)
        elif isinstance(obj, list | tuple):
            for item in obj:
                walk(item, level + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type | np.ndarray):
            for item in vars(obj).values():
                walk(item, level + 1)

    walk(root, 0)
    return found


def _get_state(rng: Any) -> Any:
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator.state
    return rng.get_state()


def _set_state(rng: Any, state: Any) -> None:
    if isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    else:
        rng.set_state(state)


class Instance:
    """A working copy of a target: arrays to perturb in place, and the calls to run.

    ``arrays`` maps each variable's name to the working array that the copy reads; the
    numerical engines perturb these arrays in place. Random generators inside the copy
    are reset before every ``forward`` so that seeded randomness (a Dropout mask) is
    held fixed across evaluations.
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
        self._generators = _random_states(subject)
        self._states = [_get_state(g) for g in self._generators]
        self.copy_inputs = False

    def _hold_randomness(self) -> None:
        for generator, state in zip(self._generators, self._states, strict=True):
            _set_state(generator, state)

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
        with user_code(self._calls[1]):
            return self._run_backward(self.subject, dout, self.arrays)


@contextmanager
def user_code(call: str) -> Iterator[None]:
    """Let an exception from the user's code propagate unchanged, with a note on where.

    The exception keeps its type and traceback (a test runner shows the user's own line);
    the note (PEP 678) adds that gradcheck called it on a private copy, so nothing the
    user passed was changed. Our own :class:`CheckError` passes through without a note.
    """
    try:
        yield
    except CheckError:
        raise
    except Exception as error:
        error.add_note(
            f"(raised in {call}, called by gradcheck on a private copy; the arrays you "
            "passed are unchanged)"
        )
        raise


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
    """

    name: str
    kind: str
    backward_call = "backward"

    def __init__(self) -> None:
        self.variables: list[Variable] = []
        self.constants: list[Constant] = []
        self.notes: list[str] = []

    @abstractmethod
    def instantiate(self, dtype: np.dtype | type | None = None) -> Instance:
        """A fresh working copy whose variables are cast to ``dtype`` (default: theirs)."""

    def _arrays(self, dtype: np.dtype | type | None) -> dict[str, NDArray]:
        return {
            var.name: np.array(var.value, dtype=dtype or var.value.dtype, order="C", copy=True)
            for var in self.variables
        }

    def _clone(self, subject: Any, arrays: dict[str, NDArray]) -> Any:
        """Deep-copy ``subject``, substituting each parameter's array by its working array."""
        memo: dict[int, Any] = {}
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


# ---------------------------------------------------------------------------------------
# Inputs


def _as_input(name: str, owner: str, value: Any) -> tuple[Any, str | None]:
    """Convert one forward argument; return (value, note about the conversion)."""
    if isinstance(value, bool | np.bool_):
        return value, None
    if isinstance(value, numbers.Real) and not isinstance(value, np.ndarray):
        return np.asarray(value, dtype=np.float64), f"{name}: Python number converted to float64"
    if isinstance(value, list | tuple):
        try:
            array = np.asarray(value)
        except ValueError:
            raise CheckError(
                f"{owner}: input {name} is a ragged {type(value).__name__} (rows of different "
                "lengths); pass a rectangular float array."
            ) from None
        return array, f"{name}: {type(value).__name__} converted to a {array.dtype} array"
    return value, None


def _validate_float_input(owner: str, name: str, array: NDArray) -> None:
    if array.dtype.kind == "c":
        raise CheckError(
            f"{owner}: input {name} is complex ({array.dtype}); gradcheck checks real "
            "gradients — pass its real part, or split real and imaginary parts into two inputs."
        )
    _validate_given_input(owner, name, array)
    if array.size == 0:
        raise CheckError(
            f"{owner}: input {name} is empty (shape {array.shape}); nothing to check — "
            "pass an array with at least one element."
        )


def _validate_given_input(owner: str, name: str, value: Any) -> None:
    """Reject, before any user code runs, arrays that no check can start from."""
    if not isinstance(value, np.ndarray):
        return
    if value.dtype.kind == "O":
        raise CheckError(
            f"{owner}: input {name} is an object array (dtype=object); pass a float array "
            f"to differentiate (np.asarray({name}, dtype=np.float64)) or integers for labels."
        )
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = format_indices(~np.isfinite(value))
        raise CheckError(
            f"{owner}: input {name} contains NaN or Inf at {bad}; a gradient is only "
            "defined at finite points — check at a point where every element is finite."
        )


def format_indices(mask: NDArray[np.bool_], most: int = 5) -> str:
    """Up to ``most`` indices of True elements, as plain integer tuples."""
    found = [tuple(int(i) for i in idx) for idx in zip(*np.nonzero(mask), strict=True)]
    if not found:
        return "()"
    text = ", ".join(str(i) if len(i) != 1 else f"({i[0]},)" for i in found[:most])
    return text + (f" and {len(found) - most} more" if len(found) > most else "")


def _input_names(function: Callable[..., Any], count: int) -> list[str]:
    """Names of the first ``count`` positional parameters of ``function``."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names = [
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
    ]
    if len(names) < count or any(
        p.kind is p.VAR_POSITIONAL for p in parameters[: len(names)]
    ):
        return [f"x{i}" for i in range(count)]
    return names[:count]


# ---------------------------------------------------------------------------------------
# Gradients returned by backward


def as_gradient(owner: str, call: str, name: str, like: NDArray, value: Any) -> NDArray:
    """Validate one gradient returned for variable ``name`` (shaped like ``like``)."""
    expected = f"an array of shape {tuple(like.shape)}"
    if value is None:
        raise CheckError(
            f"{owner}.{call} returned None for {name}; expected {expected}. "
            "Did you forget a `return`?"
        )
    if isinstance(value, list | tuple):
        raise CheckError(
            f"{owner}.{call} returned a {type(value).__name__} for {name}; expected {expected} "
            "(a numpy array, not a Python sequence)."
        )
    if isinstance(value, numbers.Number | np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise CheckError(
            f"{owner}.{call} returned {type(value).__name__} for {name}; expected {expected}."
        )
    if value.dtype.kind not in "fiu" or (value.dtype.kind in "iu" and like.dtype.kind == "f"):
        hint = (
            " (a mask? multiply it: dout * mask)" if value.dtype.kind == "b"
            else f" — return floats, e.g. .astype(np.{like.dtype})"
        )
        raise CheckError(
            f"{owner}.{call}: the gradient of {name} has dtype {value.dtype}; expected a float "
            f"array like {name} ({like.dtype}){hint}."
        )
    if value.shape != like.shape:
        if value.size == like.size == 1:
            value = value.reshape(like.shape)
        else:
            hint = " (transposed?)" if value.shape == like.shape[::-1] else ""
            raise CheckError(
                f"{owner}.{call}: the gradient of {name} has shape {tuple(value.shape)}{hint}; "
                f"expected {tuple(like.shape)}, the shape of {name}."
            )
    if not np.all(np.isfinite(value)):
        raise CheckError(
            f"{owner}.{call}: the gradient of {name} contains NaN or Inf at "
            f"{format_indices(~np.isfinite(value))} although forward is finite there; look "
            "for a division by zero, log(0) or inf * 0 in backward."
        )
    return np.array(value, dtype=np.float64 if value.dtype.kind != "f" else value.dtype)


def _as_output(owner: str, call: str, value: Any) -> NDArray:
    """Validate a forward output: a float array or number."""
    if isinstance(value, numbers.Real | np.generic) and not isinstance(value, bool):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise CheckError(
            f"{owner}.{call} returned {type(value).__name__}; expected a numpy array or a number."
        )
    if value.dtype.kind not in "fc":
        raise CheckError(
            f"{owner}.{call} returned an array of dtype {value.dtype}; expected floats "
            "(an integer or boolean output has no gradient)."
        )
    return value


def check_output(owner: str, call: str, value: Any) -> NDArray:
    """Validate a forward output and reject NaN/Inf, naming the elements."""
    array = _as_output(owner, call, value)
    if not np.all(np.isfinite(array)):
        raise CheckError(
            f"{owner}.{call} produced NaN or Inf at {format_indices(~np.isfinite(array))} "
            "of its output at the point being checked; check at inputs where the output is "
            "finite."
        )
    return array


# ---------------------------------------------------------------------------------------
# Layer objects


def _arrays_of_kind(obj: Any, kinds: str) -> dict[str, NDArray]:
    return {
        name: value
        for name, value in vars(obj).items()
        if isinstance(value, np.ndarray) and value.dtype.kind in kinds
    }


def _float_arrays(obj: Any) -> dict[str, NDArray]:
    return _arrays_of_kind(obj, "f")


def _integer_arrays(obj: Any) -> dict[str, NDArray]:
    return _arrays_of_kind(obj, "iu")


class LayerTarget(Target):
    """A layer object with ``forward(*xs)`` and ``backward(dout)`` (the book's protocol)."""

    kind = "layer"

    def __init__(
        self, layer: Any, inputs: Sequence[Any], forward_kwargs: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.layer = layer
        self.name = describe(layer)
        self.forward_kwargs = dict(forward_kwargs)
        if not callable(getattr(layer, "backward", None)):
            raise CheckError(
                f"{self.name} has forward but no backward method; gradcheck compares "
                "backward's gradients with numerical ones."
            )
        self._check_arity(len(inputs))
        names = _input_names(layer.forward, len(inputs))
        self.inputs: list[Any] = []
        for name, raw in zip(names, inputs, strict=True):
            value, note = _as_input(name, self.name, raw)
            if note:
                self.notes.append(note)
            _validate_given_input(self.name, name, value)
            self.inputs.append(value)
        self.input_names = names
        self.parameter_style: dict[str, str] = {}
        self._discover()

    def _check_arity(self, count: int) -> None:
        """Refuse, with the signature, inputs that forward cannot take."""
        try:
            signature = inspect.signature(self.layer.forward)
        except (TypeError, ValueError):  # no signature (a builtin): let forward decide
            return
        try:
            signature.bind(*range(count), **self.forward_kwargs)
        except TypeError as error:
            plain = signature.replace(
                parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
                return_annotation=signature.empty,
            )
            raise UsageError(
                f"{self.name}.forward{plain} cannot be called with the {count} input(s) "
                f"given to check ({error}); pass forward's arguments after the layer, "
                "gradcheck.check(layer, x, ...), and keywords as forward_kwargs={...}."
            ) from None

    # -- discovery ----------------------------------------------------------------------
    def _discover(self) -> None:
        """Run forward and backward once on a copy to learn inputs and parameters."""
        probe = self._clone(self.layer, {})
        before = _float_arrays(probe) if hasattr(probe, "__dict__") else {}
        integers = _integer_arrays(probe) if hasattr(probe, "__dict__") else {}
        args = [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in self.inputs]
        with user_code(f"{self.name}.forward"):
            raw_output = probe.forward(*args, **self.forward_kwargs)
        output = check_output(self.name, "forward", raw_output)
        dout = np.ones_like(output)
        with user_code(f"{self.name}.backward"):
            returned = probe.backward(dout)
        grads = self._split_input_gradients(returned)
        self._refuse_skipped_gradients(grads)
        for position, (name, value) in enumerate(zip(self.input_names, self.inputs, strict=True)):
            if position >= len(grads) or grads[position] is None:
                reason = (
                    f"backward returned {len(grads)} gradient(s) for {len(self.inputs)} inputs"
                    if position >= len(grads)
                    else "backward returned None for it"
                )
                self.constants.append(Constant(name, reason))
                continue
            if not isinstance(value, np.ndarray):
                raise CheckError(
                    f"{self.name}: backward returns a gradient for input {name}, "
                    f"but {name} is a {type(value).__name__}; expected a float array."
                )
            if value.dtype.kind in "iub":
                raise CheckError(
                    f"{self.name}: input {name} is an integer array ({value.dtype}) but backward "
                    f"returns a gradient for it; pass floats, e.g. {name}.astype(np.float64)."
                )
            _validate_float_input(self.name, name, value)
            as_gradient(self.name, "backward", name, value, grads[position])
            self.variables.append(Variable(name, "input", np.array(value, copy=True)))
        self._refuse_integer_parameters(probe, integers)
        self._discover_parameters(probe, before)

    def _refuse_skipped_gradients(self, grads: list[Any]) -> None:
        """``(None, dy)``: a float input skipped while a later one gets its gradient.

        Inputs without a gradient are constants (targets, labels), and those come last;
        a None *before* a gradient is a forgotten gradient, not a constant, and treating
        it as one would let a wrong backward pass.
        """
        last = max((i for i, g in enumerate(grads) if g is not None), default=-1)
        for position in range(last):
            value, name = self.inputs[position], self.input_names[position]
            if grads[position] is None and isinstance(value, np.ndarray) and (
                value.dtype.kind == "f"
            ):
                raise CheckError(
                    f"{self.name}.backward returned None for {name} but a gradient for "
                    f"{self.input_names[last]} after it; expected the gradient of {name}, an "
                    f"array of shape {tuple(value.shape)}. Inputs without a gradient "
                    "(targets, labels) must come last in forward's arguments."
                )

    def _refuse_integer_parameters(self, probe: Any, integers: dict[str, NDArray]) -> None:
        """An integer attribute that backward gives a gradient cannot be perturbed."""
        after = vars(probe)
        for name, value in integers.items():
            gradient = after.get("d" + name)
            if after.get(name) is value and isinstance(gradient, np.ndarray):
                raise CheckError(
                    f"{self.name}: parameter {name} is an integer array ({value.dtype}) but "
                    f"backward sets d{name}; make it float (e.g. {name}.astype(np.float64)) "
                    "to check its gradient."
                )

    def _split_input_gradients(self, returned: Any) -> list[Any]:
        if returned is None:
            shape = getattr(self.inputs[0], "shape", ()) if self.inputs else ()
            first = self.input_names[0] if self.input_names else "its input"
            raise CheckError(
                f"{self.name}.backward returned None; expected the gradient of {first}, "
                f"an array of shape {tuple(shape)}. Did you forget `return dx`?"
            )
        if isinstance(returned, tuple):
            grads = list(returned)
        elif isinstance(returned, list):
            raise CheckError(
                f"{self.name}.backward returned a list; return an array, or a tuple "
                "(dx, dy, ...) with one gradient per input."
            )
        else:
            grads = [returned]
        if len(grads) > len(self.inputs):
            raise CheckError(
                f"{self.name}.backward returned {len(grads)} gradients, but forward takes "
                f"{len(self.inputs)} input(s) ({', '.join(self.input_names)}); expected at "
                "most one gradient per input, in order."
            )
        return grads

    def _discover_parameters(self, probe: Any, before: dict[str, NDArray]) -> None:
        after = vars(probe) if hasattr(probe, "__dict__") else {}
        params = after.get("params")
        if isinstance(params, Mapping) and params:
            grads = after.get("grads")
            for key, entry in params.items():
                if not isinstance(entry, np.ndarray) or entry.dtype.kind != "f":
                    continue
                if not isinstance(grads, Mapping) or grads.get(key) is None:
                    raise CheckError(
                        f"{self.name}: params[{key!r}] has no gradient after backward; "
                        f"expected backward to set grads[{key!r}], an array of shape "
                        f"{tuple(entry.shape)}."
                    )
                as_gradient(self.name, "backward", f"grads[{key!r}]", entry, grads[key])
                self._add_parameter(key, "dict", self.layer.params[key])
        for name, value in before.items():
            if name.startswith("d") and name[1:] in before:
                continue
            grad_name = "d" + name
            if grad_name not in after and grad_name not in vars(self.layer):
                continue
            if after.get(name) is not value:
                continue  # rebound by forward: a cache, not a parameter
            gradient = after.get(grad_name)
            if gradient is None:
                raise CheckError(
                    f"{self.name}: backward did not set {grad_name} (it is still None); "
                    f"expected the gradient of parameter {name}, an array of shape "
                    f"{tuple(value.shape)}."
                )
            as_gradient(self.name, "backward", grad_name, value, gradient)
            self._add_parameter(name, "attribute", getattr(self.layer, name))
        self.unexplained = [
            name
            for name, value in before.items()
            if name not in self.parameter_style
            and not (name.startswith("d") and name[1:] in before)
            and after.get(name) is value
        ]

    def _add_parameter(self, name: str, style: str, source: NDArray) -> None:
        if name in self.input_names:
            raise CheckError(
                f"{self.name}: parameter {name} has the same name as an input of forward; "
                "rename one of them."
            )
        if source.size == 0:
            raise CheckError(f"{self.name}: parameter {name} is empty; nothing to check.")
        _validate_float_input(self.name, name, source)
        self.parameter_style[name] = style
        self.variables.append(Variable(name, "parameter", np.array(source, copy=True), source))

    # -- running --------------------------------------------------------------------------
    def instantiate(self, dtype: np.dtype | type | None = None) -> Instance:
        arrays = self._arrays(dtype)
        clone = self._clone(self.layer, arrays)
        positions = {name: i for i, name in enumerate(self.input_names)}
        fixed = list(self.inputs)
        if dtype is not None:
            fixed = [
                x.astype(dtype) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x
                for x in fixed
            ]

        def run_forward(layer: Any, current: dict[str, NDArray]) -> Any:
            args = list(fixed)
            for name, array in current.items():
                if name in positions:
                    args[positions[name]] = array
            return layer.forward(*args, **self.forward_kwargs)

        def run_backward(layer: Any, dout: Any, current: dict[str, NDArray]) -> dict[str, Any]:
            returned = layer.backward(dout)
            grads = self._split_input_gradients(returned)
            result: dict[str, Any] = {}
            for var in self.variables:
                if var.role == "input":
                    position = positions[var.name]
                    result[var.name] = grads[position] if position < len(grads) else None
                elif self.parameter_style[var.name] == "dict":
                    result[var.name] = layer.grads.get(var.name)
                else:
                    result[var.name] = getattr(layer, "d" + var.name, None)
            return result

        return Instance(
            clone, arrays, run_forward, run_backward,
            calls=(f"{self.name}.forward", f"{self.name}.backward"),
        )


# ---------------------------------------------------------------------------------------
# Models (the book's TwoLayerNet): params, loss(x, t), gradient(x, t)


class ModelTarget(Target):
    """A model with a ``params`` dict, ``loss(*data)`` and ``gradient(*data)``."""

    kind = "model"
    backward_call = "gradient"

    def __init__(self, model: Any, data: Sequence[Any]) -> None:
        super().__init__()
        self.model = model
        self.name = describe(model)
        self.data = list(data)
        for key, value in model.params.items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                _validate_float_input(self.name, key, value)
                self.variables.append(Variable(key, "parameter", np.array(value), value))
        for i in range(len(self.data)):
            label = "x" if i == 0 else ("t" if i == 1 else f"data{i}")
            self.constants.append(Constant(label, "model data (only parameters are checked)"))

    def instantiate(self, dtype: np.dtype | type | None = None) -> Instance:
        arrays = self._arrays(dtype)
        clone = self._clone(self.model, arrays)
        data = [
            x.astype(dtype) if dtype is not None and isinstance(x, np.ndarray)
            and x.dtype.kind == "f" else x
            for x in self.data
        ]

        def run_forward(model: Any, current: dict[str, NDArray]) -> Any:
            return model.loss(*data)

        def run_backward(model: Any, dout: Any, current: dict[str, NDArray]) -> dict[str, Any]:
            grads = model.gradient(*data)
            if not isinstance(grads, Mapping):
                raise CheckError(
                    f"{self.name}.gradient returned {type(grads).__name__}; expected a dict "
                    "with one gradient per entry of params."
                )
            return {
                name: None if grads.get(name) is None else np.asarray(grads[name]) * dout
                for name in current
            }

        return Instance(
            clone, arrays, run_forward, run_backward,
            calls=(f"{self.name}.loss", f"{self.name}.gradient"),
        )


# ---------------------------------------------------------------------------------------
# Functions: f(*xs) with vjp(dout, *xs), or scalar f(x) with grad(x)


class FunctionTarget(Target):
    """A function with a vector-Jacobian product, or a scalar function with a gradient."""

    kind = "function"

    def __init__(
        self,
        function: Callable[..., Any],
        inputs: Sequence[Any],
        *,
        vjp: Callable[..., Any] | None,
        grad: Callable[..., Any] | None,
    ) -> None:
        super().__init__()
        self.function = function
        self.name = describe(function)
        if (vjp is None) == (grad is None):
            raise CheckError(
                f"{self.name}: a function needs exactly one of vjp= (vjp(dout, *xs) returns one "
                "gradient per input) or grad= (grad(x) returns the gradient of a scalar function)."
            )
        if vjp is None:
            assert grad is not None
            gradient = grad

            def vjp(dout: Any, *xs: Any) -> Any:
                return dout * np.asarray(gradient(*xs))

        self.vjp = vjp
        self.backward_call = "vjp" if vjp is not None else "grad"
        names = _input_names(function, len(inputs))
        self.input_names = names
        for name, raw in zip(names, inputs, strict=True):
            value, note = _as_input(name, self.name, raw)
            if note:
                self.notes.append(note)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fc" + "O":
                raise CheckError(
                    f"{self.name}: input {name} is {type(raw).__name__}"
                    f"{'' if not isinstance(value, np.ndarray) else f' ({value.dtype})'}; "
                    "expected a float array."
                )
            _validate_float_input(self.name, name, value)
            self.variables.append(Variable(name, "input", np.array(value, copy=True)))

    def instantiate(self, dtype: np.dtype | type | None = None) -> Instance:
        arrays = self._arrays(dtype)

        def run_forward(function: Any, current: dict[str, NDArray]) -> Any:
            return function(*(current[name] for name in self.input_names))

        def run_backward(function: Any, dout: Any, current: dict[str, NDArray]) -> dict[str, Any]:
            returned = self.vjp(dout, *(current[name] for name in self.input_names))
            if len(self.input_names) == 1 and not isinstance(returned, tuple):
                returned = (returned,)
            if not isinstance(returned, tuple) or len(returned) != len(self.input_names):
                raise CheckError(
                    f"{self.name}: {self.backward_call} returned {type(returned).__name__}; "
                    f"expected a tuple of {len(self.input_names)} gradients, one per input."
                )
            return dict(zip(self.input_names, returned, strict=True))

        return Instance(
            self.function, arrays, run_forward, run_backward,
            calls=(self.name, self.backward_call),
        )


# ---------------------------------------------------------------------------------------


@dataclass
class TargetRequest:
    """What ``check`` was called with, before adaptation."""

    obj: Any
    inputs: Sequence[Any]
    vjp: Callable[..., Any] | None = None
    grad: Callable[..., Any] | None = None
    forward_kwargs: Mapping[str, Any] = field(default_factory=dict)


def make_target(request: TargetRequest) -> Target:
    """Pick the adapter for ``request.obj`` and build the target.

    Raises
    ------
    CheckError
        When the object fits no protocol, or its inputs or gradients are malformed.
    """
    obj = request.obj
    if request.vjp is not None or request.grad is not None:
        return FunctionTarget(obj, request.inputs, vjp=request.vjp, grad=request.grad)
    if callable(getattr(obj, "forward", None)):
        return LayerTarget(obj, request.inputs, request.forward_kwargs)
    if isinstance(getattr(obj, "params", None), Mapping) and callable(
        getattr(obj, "gradient", None)
    ):
        if not callable(getattr(obj, "loss", None)):
            raise CheckError(f"{describe(obj)} has params and gradient but no loss method.")
        return ModelTarget(obj, request.inputs)
    if callable(obj):
        raise CheckError(
            f"{describe(obj)} is a function; pass vjp=g (g(dout, *xs) returns one gradient "
            "per input) or grad=g (g(x) returns the gradient of a scalar function)."
        )
    raise CheckError(
        f"cannot check a {type(obj).__name__}: expected a layer with forward and backward, "
        "a model with params, loss and gradient, or a function with vjp= or grad=."
    )
