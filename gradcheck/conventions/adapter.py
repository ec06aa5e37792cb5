"""The one target every convention runs through: user code in, a :class:`Target` out.

:class:`ConventionTarget` asks its :class:`~gradcheck.conventions.convention.Convention`
how to call the object and where its parameters are, and does the rest the same way for
all of them. It runs forward and backward once on a copy to learn

* which inputs get a gradient (the others are constants: targets, labels, integer index
  arrays, dicts and numbers);
* which parameters get one — those of the object and, for a layer, of every sublayer it
  holds (``fc1.W``, ``layers[0].W``); an array held under several names gets the sum of
  their gradients (tied weights);
* which float arrays of the object got none: buffers the convention knows are constant
  (running statistics) become constants with a note; every other one is listed in
  :attr:`Target.unexplained`, and the checker nudges it to see whether the output depends
  on it (never a silent pass);
* how many outputs forward has: several outputs (a tuple) are joined into one flat output
  for the numerical side and split again into one upstream gradient each for backward.

The module runs past 500 lines because these discoveries share the one copy they run on
and each other's findings (which arrays are parameters decides which are unexplained);
split, they would hand that state back and forth.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

import gradcheck.conventions.nodes as nodes
from gradcheck.conventions.convention import DECLARED_CONSTANTS, Convention
from gradcheck.conventions.nodes import Holder, Node, sublayers
from gradcheck.conventions.target import Instance, Target, Unpaired, Variable, describe, user_code
from gradcheck.conventions.validation import (
    as_gradient,
    as_input,
    check_output,
    input_names,
    validate_float_input,
    validate_given_input,
)
from gradcheck.conventions.walk import Path, float_arrays, path_text
from gradcheck.errors import CheckError, UsageError
from gradcheck.vocabulary import Constant

__all__ = ["ConventionTarget"]


class ConventionTarget(Target):
    """Any object, pair of functions or function, run through its convention.

    Parameters
    ----------
    convention : Convention
        The convention that recognised ``obj``.
    obj : object
        What ``check`` was given.
    inputs : sequence
        forward's arguments (a model's data).
    forward_kwargs : mapping
        Keyword arguments of forward (a model's ``loss``), passed on every call.
    sublayer_convention : callable, optional
        ``obj -> Convention or None`` for the layers a layer holds (the registry's).
    """

    def __init__(
        self,
        convention: Convention,
        obj: Any,
        inputs: Sequence[Any],
        forward_kwargs: Mapping[str, Any],
        sublayer_convention: Callable[[Any], Convention | None] | None = None,
    ) -> None:
        super().__init__()
        self.convention = convention
        self.kind = convention.kind
        self.name = convention.label(obj) or describe(obj)
        self.backward_call = convention.backward_name
        self.calls = convention.calls(obj) or (
            f"{self.name}.{convention.forward_name}",
            f"{self.name}.{convention.backward_name}",
        )
        self.subject = convention.subject(obj)
        self.forward_kwargs = dict(forward_kwargs)
        self.convention_name = convention.name
        self.output_shapes: list[tuple[int, ...]] | None = None
        self.holders: dict[str, list[Holder]] = {}
        self._check_arity(len(inputs))
        self._take_inputs(inputs)
        self.nodes = [Node((), convention)]
        if self.kind == "layer" and sublayer_convention is not None:
            self.nodes += sublayers(self.subject, sublayer_convention)
        self.notes += convention.notes(self.subject, self.forward_kwargs)
        self._discover()

    # -- inputs -----------------------------------------------------------------------------
    def _forward_function(self) -> Any:
        return self.convention.forward_function(self.subject)

    def _check_arity(self, count: int) -> None:
        """Refuse, with the signature, inputs that forward cannot take."""
        try:
            signature = inspect.signature(self._forward_function())
        except (TypeError, ValueError):  # no signature (a builtin): let forward decide
            return
        try:
            signature.bind(*range(count), **self.forward_kwargs)
        except TypeError as error:
            plain = signature.replace(
                parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
                return_annotation=signature.empty,
            )
            kind, call = self.kind, self.convention.forward_name
            raise UsageError(
                f"{self.calls[0]}{plain} cannot be called with the {count} input(s) "
                f"given to check ({error}); pass {call}'s arguments after the {kind}, "
                f"gradcheck.check({kind}, x, ...), and keywords as forward_kwargs={{...}}."
            ) from None

    def _take_inputs(self, inputs: Sequence[Any]) -> None:
        """Convert, validate and keep private copies of the inputs."""
        if self.kind == "model":
            self.input_names = [("x", "t")[i] if i < 2 else f"data{i}" for i in range(len(inputs))]
        else:
            self.input_names = input_names(self._forward_function(), len(inputs))
        self.inputs: list[Any] = []
        for name, raw in zip(self.input_names, inputs, strict=True):
            value = raw
            if self.convention.converts_inputs:
                value, note = as_input(name, self.name, raw)
                if note:
                    self.notes.append(note)
            validate_given_input(self.name, name, value)
            self.inputs.append(copy.deepcopy(value))

    def _differentiable(self, position: int) -> bool:
        value = self.inputs[position]
        return self.kind != "model" and isinstance(value, np.ndarray) and value.dtype.kind in "fc"

    # -- discovery --------------------------------------------------------------------------
    def _discover(self) -> None:
        """Run forward and backward once on a copy to learn inputs and parameters."""
        candidates = nodes.candidates(self.nodes, self.subject)
        reachable = float_arrays(self.subject)
        working = {key: array.copy() for key, (_, array) in reachable.items()}
        for _, array in candidates.values():
            working.setdefault(id(array), array.copy())
        probe = self._clone(self.subject, {}, working)
        args = [
            np.array(x, copy=True) if isinstance(x, np.ndarray) else copy.deepcopy(x)
            for x in self.inputs
        ]
        nodes.reset(self.nodes, probe)
        with user_code(self.calls[0]):
            raw_output = self.convention.forward(probe, args, self.forward_kwargs)
        output = self._joined(raw_output, learn=True)
        dout: Any = 1.0 if output.ndim == 0 else self._split(np.ones_like(output))
        nodes.zero_accumulated(self.nodes, probe)
        with user_code(self.calls[1]):
            returned = self.convention.backward(probe, dout, args, self.forward_kwargs)
        self._discover_inputs(returned)
        claimed = self._discover_parameters(probe, returned, candidates, working)
        self._discover_unpaired(reachable, claimed)
        self._refuse_nothing_to_check()
        held = {h.node.path: h.node for holders in self.holders.values() for h in holders}
        parts = [
            f"{path_text(path)} ({node.convention.name})" for path, node in held.items() if path
        ]
        if parts:
            self.convention_name = f"{self.convention.name}; sublayers {', '.join(parts)}"

    def _discover_inputs(self, returned: Any) -> None:
        if self.kind == "model":
            self.constants += [
                Constant(n, "model data (only parameters are checked)") for n in self.input_names
            ]
            return
        grads = self._input_gradients(returned, self.inputs)
        for position, (name, value) in enumerate(zip(self.input_names, self.inputs, strict=True)):
            gradient = grads[position] if position < len(grads) else None
            if isinstance(value, np.ndarray) and value.dtype.kind in "iub":
                self.constants.append(
                    Constant(
                        name,
                        f"an integer array ({value.dtype}): "
                        "indices and labels are not differentiated",
                    )
                )
                continue
            if gradient is None:
                reason = (
                    f"{self.calls[1]} returned {len(grads)} gradient(s) for "
                    f"{len(self.inputs)} inputs"
                    if position >= len(grads)
                    else f"{self.calls[1]} returned no gradient for it"
                )
                if not isinstance(value, np.ndarray):
                    reason = f"a {type(value).__name__}, passed as given"
                self.constants.append(Constant(name, reason))
                continue
            if not isinstance(value, np.ndarray):
                raise CheckError(
                    f"{self.name}: {self.backward_call} returns a gradient for input {name}, "
                    f"but {name} is a {type(value).__name__}; expected a float array."
                )
            validate_float_input(self.name, name, value)
            as_gradient(self.name, self.backward_call, name, value, gradient)
            self.variables.append(Variable(name, "input", np.array(value, copy=True)))

    def _discover_parameters(
        self,
        probe: Any,
        returned: Any,
        candidates: dict[int, tuple[list[Holder], NDArray]],
        working: dict[int, NDArray],
    ) -> set[int]:
        """Pair candidates with gradients; return the ids of the arrays accounted for."""
        gradients = nodes.gradients(self.nodes, probe, returned)
        claimed: set[int] = set()
        for key, (holders, array) in candidates.items():
            first = holders[0]
            name = first.name
            found = [gradients.get(h.name) for h in holders]
            owner = first.node.of(probe)
            if all(g is None for g in found):
                self._refuse_missing_gradient(first, owner, name, array)
                continue  # perhaps a constant: left to the unpaired arrays
            if first.node.convention.parameters(owner).get(first.key) is not working[key]:
                continue  # forward replaced it: a cache, not a parameter
            if array.dtype.kind != "f":
                gradient_name = first.node.convention.gradient_name(first.key)
                raise CheckError(
                    f"{self.name}: parameter {name} is an integer array ({array.dtype}) but "
                    f"backward sets {gradient_name}; make it float (e.g. "
                    f"{name}.astype(np.float64)) to check its gradient."
                )
            for holder, gradient in zip(holders, found, strict=True):
                if gradient is not None:
                    label = holder.node.name(holder.node.convention.gradient_name(holder.key))
                    as_gradient(
                        self.name,
                        self.backward_call,
                        label,
                        array,
                        gradient,
                        of=f"parameter {name}",
                    )
            self._add_parameter(name, array, holders)
            claimed.add(key)
        self._refuse_lazy_parameters(probe, gradients, {id(w) for w in working.values()})
        return claimed

    def _refuse_missing_gradient(
        self, holder: Holder, owner: Any, name: str, array: NDArray
    ) -> None:
        """A parameter its convention declares (not a buffer) must get a gradient."""
        convention = holder.node.convention
        if (
            array.dtype.kind != "f"
            or convention.is_buffer(name)
            or not convention.declares(owner, holder.key)
        ):
            return
        label = convention.parameter_label(holder.key)
        label = f"{path_text(holder.node.path)}.{label}" if holder.node.path else label
        where = holder.node.name(convention.gradient_name(holder.key))
        raise CheckError(
            f"{self.name}: {label} has no gradient after {self.backward_call}; expected "
            f"{self.backward_call} to set {where}, an array of shape {tuple(array.shape)}."
        )

    def _refuse_lazy_parameters(
        self,
        probe: Any,
        gradients: Mapping[str, Any],
        copies: set[int],
    ) -> None:
        """A declared parameter that did not exist before forward cannot be perturbed."""
        for node in self.nodes:
            owner = node.of(probe)
            for key, value in node.convention.parameters(owner).items():
                name = node.name(str(key))
                if (
                    id(value) in copies
                    or gradients.get(name) is None
                    or not isinstance(value, np.ndarray)
                    or not node.convention.declares(owner, str(key))
                ):
                    continue
                raise CheckError(
                    f"{self.name}: {name} is created by {self.convention.forward_name} (it did "
                    "not exist before), so gradcheck cannot perturb it; create the parameters "
                    f"in __init__, or run {self.convention.forward_name} once before checking."
                )

    def _discover_unpaired(
        self, reachable: Mapping[int, tuple[Path, NDArray]], claimed: set[int]
    ) -> None:
        """Float arrays of the object that got no gradient: buffers, or to be nudged."""
        taken = {id(v.source) for v in self.variables if v.source is not None} | claimed
        declared = nodes.declared_constants(self.nodes, self.subject)
        buffers = set()
        for key, (path, array) in reachable.items():
            if key in taken:
                continue
            name = path_text(path)
            if name in declared:
                self.constants.append(Constant(name, f"declared in {DECLARED_CONSTANTS}"))
                continue
            if nodes.is_known_buffer(self.nodes, name):
                if name not in buffers:
                    buffers.add(name)
                    self.constants.append(
                        Constant(
                            name,
                            "a buffer (a running statistic): forward may update it, "
                            "backward gives it no gradient",
                        )
                    )
                continue
            self.unexplained.append(Unpaired(name, array))

    def _add_parameter(self, name: str, source: NDArray, holders: list[Holder]) -> None:
        if name in self.input_names:
            raise CheckError(
                f"{self.name}: parameter {name} has the same name as an input of forward; "
                "rename one of them."
            )
        if source.size == 0:
            raise CheckError(f"{self.name}: parameter {name} is empty; nothing to check.")
        validate_float_input(self.name, name, source)
        self.holders[name] = holders
        if len(holders) > 1:
            others = ", ".join(h.name for h in holders[1:])
            self.notes.append(
                f"{others} {'is' if len(holders) == 2 else 'are'} the same "
                f"array as {name}: their gradients are added"
            )
        self.variables.append(Variable(name, "parameter", np.array(source, copy=True), source))

    def _refuse_nothing_to_check(self) -> None:
        if self.variables:
            return
        integers = [
            (n, v.dtype)
            for n, v in zip(self.input_names, self.inputs, strict=True)
            if isinstance(v, np.ndarray) and v.dtype.kind in "iub"
        ]
        if integers:
            name, dtype = integers[0]
            raise CheckError(
                f"{self.name}: nothing to differentiate: input {name} is an integer array "
                f"({dtype}), and integer and boolean inputs (indices, labels) are never "
                f"differentiated; pass floats, e.g. {name}.astype(np.float64), to check its "
                "gradient."
            )
        raise CheckError(
            f"{self.name}: nothing to differentiate: no float input gets a gradient and no "
            f"parameter was found ({self.convention_name})."
        )

    # -- reading user code ------------------------------------------------------------------
    def _joined(self, raw: Any, *, learn: bool = False) -> NDArray:
        """forward's output as one array: several outputs are flattened and joined."""
        if not isinstance(raw, tuple):
            return check_output(self.name, self.convention.forward_name, raw)
        pieces = [
            check_output(self.name, f"{self.convention.forward_name} (output {i})", p)
            for i, p in enumerate(raw)
        ]
        shapes = [tuple(p.shape) for p in pieces]
        if learn:
            self.output_shapes = shapes
            self.notes.append(
                f"{self.convention.forward_name} has {len(pieces)} outputs; "
                f"{self.backward_call} gets one upstream gradient for each"
            )
        elif shapes != self.output_shapes:
            raise CheckError(
                f"{self.calls[0]} returned outputs of shapes {shapes}, then {self.output_shapes}"
                " at the same point; expected the same outputs every call."
            )
        return np.concatenate([p.ravel() for p in pieces])

    def _split(self, dout: Any) -> Any:
        """The upstream gradient of each output (the joined one split again)."""
        if self.output_shapes is None:
            return dout
        pieces, start = [], 0
        for shape in self.output_shapes:
            size = int(np.prod(shape))
            piece = np.asarray(dout)[start : start + size].reshape(shape)
            pieces.append(piece.item() if piece.ndim == 0 else piece)
            start += size
        return tuple(pieces)

    def _input_gradients(self, returned: Any, inputs: Sequence[Any]) -> list[Any]:
        """backward's return value as one entry per input, refused when malformed."""
        try:
            mapped = self.convention.input_gradients(returned, inputs)
        except CheckError as error:
            if str(error).startswith(self.name):
                raise
            raise CheckError(f"{self.name}: {error}") from None
        grads = _layer_gradients(self, returned) if mapped is None else list(mapped)
        if len(grads) > len(self.inputs):
            raise CheckError(
                f"{self.calls[1]} returned {len(grads)} gradients, but "
                f"{self.convention.forward_name} takes {len(self.inputs)} input(s) "
                f"({', '.join(self.input_names)}); expected at most one gradient per input, "
                "in order."
            )
        self._refuse_skipped_gradients(grads)
        return grads

    def _refuse_skipped_gradients(self, grads: list[Any]) -> None:
        """``(None, dy)``: a float input skipped while a later one gets its gradient.

        Inputs without a gradient (targets, labels) come last; a None *before* a gradient
        is a forgotten gradient, not a constant, and treating it as one would let a wrong
        backward pass.
        """
        last = max((i for i, g in enumerate(grads) if g is not None), default=-1)
        for position in range(last):
            name = self.input_names[position]
            if grads[position] is None and self._differentiable(position):
                raise CheckError(
                    f"{self.calls[1]} returned None for {name} but a gradient for "
                    f"{self.input_names[last]} after it; expected the gradient of {name}, an "
                    f"array of shape {tuple(self.inputs[position].shape)}. Inputs without a "
                    "gradient (targets, labels) must come last in forward's arguments."
                )

    # -- running ----------------------------------------------------------------------------
    def batch_size(self) -> int | None:
        """The leading dimension of the first input (a model's first datum) of rank ≥ 2."""
        if self.kind != "model":
            return super().batch_size()
        first = self.inputs[0] if self.inputs else None
        if isinstance(first, np.ndarray) and first.ndim >= 2:
            return int(first.shape[0])
        return None

    def _make_instance(
        self, dtype: np.dtype | type | None, replacing: Mapping[int, NDArray]
    ) -> Instance:
        arrays = self._arrays(dtype)
        subject = self._clone(self.subject, arrays, replacing)
        fixed = [copy.deepcopy(x) for x in self.inputs]
        if dtype is not None:
            fixed = [
                x.astype(dtype) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x
                for x in fixed
            ]
        positions = {name: i for i, name in enumerate(self.input_names)}

        def call_arguments(current: Mapping[str, NDArray]) -> list[Any]:
            args = list(fixed)
            for name, array in current.items():
                if name in positions:
                    args[positions[name]] = array
            return args

        def run_forward(obj: Any, current: dict[str, NDArray]) -> Any:
            nodes.reset(self.nodes, obj)
            raw = self.convention.forward(obj, call_arguments(current), self.forward_kwargs)
            return raw if self.output_shapes is None else self._joined(raw)

        def run_backward(obj: Any, dout: Any, current: dict[str, NDArray]) -> dict[str, Any]:
            nodes.zero_accumulated(self.nodes, obj)
            args = call_arguments(current)
            returned = self.convention.backward(obj, self._split(dout), args, self.forward_kwargs)
            result: dict[str, Any] = {}
            inputs = [v for v in self.variables if v.role == "input"]
            if inputs:
                grads = self._input_gradients(returned, args)
                for var in inputs:
                    position = positions[var.name]
                    result[var.name] = grads[position] if position < len(grads) else None
            gradients = nodes.gradients(self.nodes, obj, returned)
            for var in self.variables:
                if var.role == "parameter":
                    result[var.name] = nodes.summed(
                        [gradients.get(h.name) for h in self.holders[var.name]]
                    )
            return result

        return Instance(subject, arrays, run_forward, run_backward, calls=self.calls)


def _layer_gradients(target: ConventionTarget, returned: Any) -> list[Any]:
    """The layer protocol: ``dx``, or a tuple ``(dx, dy, ...)`` in the order of the inputs."""
    if returned is None:
        floats = [i for i in range(len(target.inputs)) if target._differentiable(i)]
        if not floats:
            return []
        first = floats[0]
        raise CheckError(
            f"{target.calls[1]} returned None; expected the gradient of "
            f"{target.input_names[first]}, an array of shape "
            f"{tuple(target.inputs[first].shape)}. Did you forget `return dx`?"
        )
    if isinstance(returned, tuple):
        return list(returned)
    if isinstance(returned, list):
        raise CheckError(
            f"{target.calls[1]} returned a list; return an array, or a tuple "
            "(dx, dy, ...) with one gradient per input."
        )
    return [returned]
