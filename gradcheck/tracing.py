"""Watch the ``forward`` and ``backward`` calls of layers, and tell a recorder about each.

One mechanism serves both readers of a run: :func:`gradcheck.trace` turns the calls into a
computational graph (:mod:`gradcheck.teaching.graph`), and
:func:`gradcheck.check_network` into the inputs each layer really received
(:mod:`gradcheck.network`). What to keep of a call is the recorder's business; this module
only sees that every watched call is announced before it runs and after it ends, and
that everything it changed is put back when the ``with`` block ends, even on an error.

Two ways to watch:

- ``Tracer(recorder, [(label, layer), ...])`` wraps ``forward`` and ``backward`` of just
  those objects (instance attributes that shadow the class's methods, deleted on exit).
  Nothing else is touched; it works in any thread and under any profiler or debugger.
  The same object listed twice is wrapped twice and announces each call twice, once per
  label (inner label first).
- ``Tracer(recorder)`` sees *every* object whose class has both ``forward`` and
  ``backward``, however it was created: it installs a ``sys.setprofile`` hook for the
  current thread, which reports each Python call named ``forward``/``backward`` with its
  arguments and return value. No class or object is modified. Calls in other threads are
  not seen, and a profiler already installed (``cProfile``) is suspended for the block.
  The hook sees positional arguments only (keywords are merged into the frame's locals),
  and cannot tell a return from an exception: such a call ends with ``result=None``.

>>> from reference_layers import AddLayer
>>> class Printer:
...     def begin(self, call): return True
...     def end(self, call): print(call.order, call.label, call.method, call.args, call.result)
>>> add = AddLayer()
>>> with Tracer(Printer(), [("add", add)]):
...     total = add.forward(1.5, 2.0)
...     grads = add.backward(1.0)
0 add forward (1.5, 2.0) 3.5
1 add backward (1.0,) (1.0, 1.0)
>>> "forward" in vars(add)
False
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, Protocol

__all__ = ["METHODS", "Call", "NotWatchableError", "Recorder", "Tracer", "has_layer_protocol"]

#: The methods a tracer watches.
METHODS = ("forward", "backward")
_MISSING = object()


@dataclass
class Call:
    """One call of a watched method.

    Attributes
    ----------
    layer : object
        The object whose method was called.
    method : str
        ``"forward"`` or ``"backward"``.
    args : tuple
        The positional arguments, as passed (not copies).
    kwargs : dict
        The keyword arguments (always empty when the profile hook watches).
    label : str or None
        The name the layer was watched under; None for the profile hook.
    caller : frame or None
        The frame that made the call (for names of variables).
    result : object
        What the method returned; None until it ends, or when it raised.
    raised : bool
        True when the method raised (the wrappers know; the profile hook does not).
    order : int
        The position of the call among the recorded calls that ended before it: a
        call's ``order`` is larger than that of every call it made. -1 until it ends.
    memo : object
        Whatever the recorder keeps with the call between ``begin`` and ``end``.
    """

    layer: Any = field(repr=False)
    method: str
    args: tuple[Any, ...] = field(repr=False)
    kwargs: dict[str, Any] = field(repr=False)
    label: str | None = None
    caller: FrameType | None = field(default=None, repr=False)
    result: Any = field(default=None, repr=False)
    raised: bool = False
    order: int = -1
    memo: Any = field(default=None, repr=False)


class Recorder(Protocol):
    """What a :class:`Tracer` tells about each call."""

    def begin(self, call: Call) -> bool:
        """Before the call runs. False leaves it unrecorded: ``end`` will not follow."""

    def end(self, call: Call) -> None:
        """After the call returned or raised (``call.result``, ``raised``, ``order`` set)."""


class NotWatchableError(TypeError):
    """A layer's method cannot be replaced by a wrapper (an object without ``__dict__``).

    ``layer``, ``method`` and ``label`` say which; ``__cause__`` is the ``AttributeError``.
    """

    def __init__(self, layer: Any, method: str, label: str | None) -> None:
        super().__init__(f"cannot watch {type(layer).__name__}.{method}")
        self.layer, self.method, self.label = layer, method, label


def has_layer_protocol(obj: Any) -> bool:
    """Whether the class of ``obj`` has callable ``forward`` and ``backward`` methods.

    The profile hook reports the calls of such objects only; methods set on the object
    itself do not count, since the hook sees calls of functions, not of attributes.
    """
    cls = type(obj)
    return callable(getattr(cls, "forward", None)) and callable(getattr(cls, "backward", None))


def _frame_arguments(frame: FrameType) -> tuple[Any, tuple[Any, ...]]:
    """``(self, positional arguments)`` of a frame that has just been called."""
    code = frame.f_code
    local = frame.f_locals
    names = code.co_varnames[: code.co_argcount]
    args = [local[name] for name in names[1:] if name in local]
    if code.co_flags & 0x04:  # CO_VARARGS: *args follows the keyword-only arguments
        args += list(local.get(code.co_varnames[code.co_argcount + code.co_kwonlyargcount], ()))
    return local.get(names[0]) if names else None, tuple(args)


class Tracer:
    """Watch layer calls for the length of a ``with`` block, announcing each to a recorder.

    Parameters
    ----------
    recorder : Recorder
        Told about each call before it runs and after it ends.
    layers : sequence of (label, layer), optional
        Wrap the ``forward`` and ``backward`` of these objects, in this order. None
        (default) watches every object with :func:`has_layer_protocol` through a
        ``sys.setprofile`` hook on the current thread.

    Raises
    ------
    AttributeError
        On entering, when a given layer has no ``forward`` or ``backward``.
    NotWatchableError
        On entering, when a given layer's methods cannot be replaced.
    """

    def __init__(
        self, recorder: Recorder, layers: Sequence[tuple[str | None, Any]] | None = None
    ) -> None:
        self.recorder = recorder
        self.layers = layers
        self.ended = 0
        self.saved: list[tuple[Any, str, Any]] = []
        self.frames: list[tuple[FrameType, Call]] = []
        self.previous_profile: Any = None

    def __enter__(self) -> Tracer:
        if self.layers is None:
            self.previous_profile = sys.getprofile()
            sys.setprofile(self._profile)
            return self
        try:
            for label, layer in self.layers:
                self._wrap(label, layer)
        except BaseException:
            self._unwrap()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.layers is None:
            sys.setprofile(self.previous_profile)
        else:
            self._unwrap()

    def _end(self, call: Call) -> None:
        call.order = self.ended
        self.ended += 1
        self.recorder.end(call)

    def _wrap(self, label: str | None, layer: Any) -> None:
        originals = [getattr(layer, method) for method in METHODS]
        for method, original in zip(METHODS, originals, strict=True):
            previous = vars(layer).get(method, _MISSING) if hasattr(layer, "__dict__") else _MISSING
            try:
                setattr(layer, method, self._wrapper(label, layer, method, original))
            except AttributeError as exc:
                raise NotWatchableError(layer, method, label) from exc
            self.saved.append((layer, method, previous))

    def _wrapper(self, label: str | None, layer: Any, method: str, original: Any) -> Any:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            call = Call(layer, method, args, kwargs, label, sys._getframe(1))
            if not self.recorder.begin(call):
                return original(*args, **kwargs)
            try:
                call.result = original(*args, **kwargs)
            except BaseException:
                call.raised = True
                raise
            finally:
                self._end(call)
            return call.result

        return recorded

    def _unwrap(self) -> None:
        while self.saved:
            layer, method, previous = self.saved.pop()
            if previous is _MISSING:
                delattr(layer, method)
            else:
                setattr(layer, method, previous)

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if code.co_name in METHODS and code.co_argcount >= 1:
                layer, args = _frame_arguments(frame)
                if not has_layer_protocol(layer):
                    return
                call = Call(layer, code.co_name, args, {}, None, frame.f_back)
                if self.recorder.begin(call):
                    self.frames.append((frame, call))
        elif event == "return" and self.frames and frame is self.frames[-1][0]:
            _, call = self.frames.pop()
            call.result = arg
            self._end(call)
