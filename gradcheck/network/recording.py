"""One run of a net, recorded: what each layer's forward received, and its backward.

The run happens on a deep copy of the net whose layers are watched by
:class:`gradcheck.tracing.Tracer`. Before each ``forward`` the layer is copied (so a
layer is later checked from its state just before its call: a seeded Dropout draws the
very mask the net drew) and so are its arguments (so later in-place edits do not change
them).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from gradcheck.conventions.convention import accepted_keywords
from gradcheck.conventions.randomness import global_random_state_kept
from gradcheck.conventions.target import describe
from gradcheck.errors import CheckError
from gradcheck.network.protocol import layers_of
from gradcheck.tracing import METHODS, Call, NotWatchableError, Tracer
from gradcheck.vocabulary import sentence

__all__ = ["BackwardCall", "ForwardCall", "NetTrace", "checked_call", "record_run"]


@dataclass
class ForwardCall:
    """One ``forward`` call: a copy of the layer just before it, and of its arguments.

    ``argument_ids`` are the ids of the arguments as passed, and ``output`` the very
    object returned, so that an argument can be matched to the call that produced it.
    """

    layer: str
    order: int
    snapshot: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    argument_ids: list[int]
    output: Any


@dataclass
class BackwardCall:
    """One ``backward`` call: copies of the upstream gradient and of what it returned."""

    layer: str
    order: int
    dout: Any
    returned: Any


@dataclass
class NetTrace:
    """The calls of one run, in order, and how the run ended.

    A :class:`gradcheck.tracing.Recorder`: calls that raise are not kept.
    """

    forward: list[ForwardCall] = field(default_factory=list)
    backward: list[BackwardCall] = field(default_factory=list)
    gradients: Any = None
    error: str | None = None
    keep_alive: list[Any] = field(default_factory=list)

    def begin(self, call: Call) -> bool:
        """Copy the layer and the arguments before a ``forward``, ``dout`` before a ``backward``."""
        if call.method == "forward":
            snapshot = copy.deepcopy(call.layer)
            for attribute in METHODS:
                vars(snapshot).pop(attribute, None)  # the tracer's wrappers
            call.memo = snapshot, copy.deepcopy((call.args, call.kwargs))
        else:
            call.memo = copy.deepcopy(call.args[0] if call.args else call.kwargs.get("dout"))
        return True

    def end(self, call: Call) -> None:
        """Keep a call that returned."""
        if call.raised:
            return
        name = str(call.label)
        if call.method == "forward":
            snapshot, (args, kwargs) = call.memo
            self.keep_alive += [call.args, call.result]  # ids stay unique while the trace lives
            self.forward.append(
                ForwardCall(
                    name,
                    call.order,
                    snapshot,
                    args,
                    kwargs,
                    [id(a) for a in call.args],
                    call.result,
                )
            )
        else:
            self.backward.append(
                BackwardCall(name, call.order, call.memo, copy.deepcopy(call.result))
            )


def record_run(
    net: Any, data: tuple[Any, ...], method: str, kwargs: Mapping[str, Any] | None = None
) -> tuple[Any, NetTrace]:
    """Run ``net.<method>(*data)`` on a deep copy with every layer watched.

    Parameters
    ----------
    net : object
        The net (not changed).
    data : tuple
        The arguments of the method (copied).
    method : str
        ``"gradient"`` or ``"loss"``; ``"forward"`` runs ``forward(*data)`` and then
        ``backward()`` (the sequel book's nets).
    kwargs : mapping, optional
        Keyword arguments (``train_flg=True``), given to each call that accepts them.

    Returns
    -------
    (object, NetTrace)
        The copy after the run, and its trace; an exception of the method is kept as
        ``trace.error``, not raised.

    Raises
    ------
    CheckError
        When a layer's methods cannot be wrapped.
    """
    traced = copy.deepcopy(net)
    trace = NetTrace()
    with ExitStack() as stack:
        try:
            stack.enter_context(Tracer(trace, layers_of(traced)))
        except NotWatchableError as error:
            raise CheckError(
                f"cannot trace layer {error.label} ({describe(error.layer)}): "
                f"{error.__cause__}. check_network records each layer's inputs by wrapping "
                "its forward on a copy of the net."
            ) from None
        data = copy.deepcopy(data)
        with global_random_state_kept():
            try:
                trace.gradients = _call(traced, method, data, kwargs or {})
            except Exception as error:
                trace.error = sentence(
                    f"{describe(net)}.{method} raised {type(error).__name__}: {error}"
                )
    return traced, trace


def _call(net: Any, method: str, data: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    function = getattr(net, method)
    returned = function(*data, **accepted_keywords(function, kwargs))
    return net.backward() if method == "forward" else returned


def checked_call(trace: NetTrace, name: str) -> tuple[ForwardCall | None, int]:
    """The forward call whose cache the layer's backward used, and the number of calls.

    Parameters
    ----------
    trace : NetTrace
        A run.
    name : str
        A layer's name.

    Returns
    -------
    (ForwardCall or None, int)
        The last forward call before the layer's first backward (else its last forward
        call, else None), and how many forward calls the layer had.
    """
    calls = [c for c in trace.forward if c.layer == name]
    first_backward = next((b.order for b in trace.backward if b.layer == name), None)
    if first_backward is not None:
        before = [c for c in calls if c.order < first_backward]
        if before:
            return before[-1], len(calls)
    return (calls[-1] if calls else None), len(calls)
