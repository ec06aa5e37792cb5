"""Layer objects, the book's protocol: ``forward(*xs)`` and ``backward(dout)``.

``backward`` returns ``dx`` or a tuple ``(dx, dy, ...)``, one per input, in order; inputs
it returns no gradient for (targets, labels — they come last) are constants. Parameters
are found by running forward and backward once on a copy: float array attributes whose
gradient ``backward`` stores in the attribute of the same name with a ``d`` prefix
(``W`` → ``dW``), or entries of ``params``/``grads`` dicts.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.conventions.target import Instance, Target, Variable, describe, user_code
from gradcheck.conventions.validation import (
    as_gradient,
    as_input,
    check_output,
    input_names,
    validate_float_input,
    validate_given_input,
)
from gradcheck.errors import CheckError, UsageError
from gradcheck.vocabulary import Constant

__all__ = ["LayerTarget"]


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
        names = input_names(layer.forward, len(inputs))
        self.inputs: list[Any] = []
        for name, raw in zip(names, inputs, strict=True):
            value, note = as_input(name, self.name, raw)
            if note:
                self.notes.append(note)
            validate_given_input(self.name, name, value)
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
            validate_float_input(self.name, name, value)
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
            as_gradient(self.name, "backward", grad_name, value, gradient, of=f"parameter {name}")
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
        validate_float_input(self.name, name, source)
        self.parameter_style[name] = style
        self.variables.append(Variable(name, "parameter", np.array(source, copy=True), source))

    # -- running --------------------------------------------------------------------------
    def _make_instance(self, dtype: np.dtype | type | None) -> Instance:
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
