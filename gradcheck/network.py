"""Find the guilty layer: check every layer of a network in place, then the whole.

A net whose gradient check fails says *that* ``W1`` is wrong, not *which* backward made
it wrong. :func:`check_network` runs the net's own forward and backward once, on a deep
copy, recording what every layer receives; then it checks each layer's ``backward`` alone
at exactly those inputs (with :func:`gradcheck.check`), and finally the net's
``gradient()`` end to end. A wrong layer is named with its wrong element; when every
layer is right but the net is not, the composition (the "wiring") is to blame.

The network protocol
--------------------
``net.layers``
    The layers, in forward order: an ordered mapping ``name -> layer`` (the textbook's
    ``OrderedDict``) or a list (layers are then named ``Affine[0]``, ``Relu[1]``, ...).
    Each layer has ``forward(*xs, **kwargs)`` and ``backward(dout)`` (the layer protocol
    of :func:`gradcheck.check`).
``net.lastLayer`` or ``net.last_layer`` (optional)
    The loss layer, ``forward(y, t)``; its targets ``t`` are constants.
``net.gradient(x, t)`` and ``net.loss(x, t)``
    The model protocol: ``gradient`` returns a dict keyed like ``net.params``. The layers
    are traced while ``gradient`` runs (so each is checked in the mode its backward
    really used); a net without ``gradient`` is traced through ``loss`` and has no
    end-to-end check.

The net's ``forward`` may be any code that calls the layers (a residual branch, a
reshape between layers): what is recorded is what each layer's ``forward`` actually
received, positional and keyword arguments (``train=True``) alike. Randomness is held
fixed: a layer is checked from a copy taken just before its call, so a seeded Dropout
draws the very mask the net drew.

Nothing you pass is changed: the trace runs on a deep copy of the net, and the checks
on copies of their own.

>>> import numpy as np, gradcheck
>>> from reference_layers import TwoLayerNet
>>> net, (x, t) = TwoLayerNet.example(np.random.default_rng(0))
>>> report = gradcheck.check_network(net, x, t)
>>> report.passed, report.guilty
(True, None)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gradcheck.analytic.run import global_random_state_kept
from gradcheck.checker import check
from gradcheck.conventions.targets import describe
from gradcheck.errors import CheckError, OptionError
from gradcheck.options import resolve_options
from gradcheck.report.records import WIRING, LayerCheck, diagnosis_line
from gradcheck.report.reports import NetworkReport, Report

__all__ = ["check_network", "exposes_layers", "suggestion"]

_WIRING_SENTENCE = (
    "every layer's backward is right, but the net's gradient() is wrong: check the order "
    "of backward calls, gradient accumulation where branches meet, and which layer each "
    "parameter gradient is read from"
)

# Options that name one layer's inputs, or replace what the trace records.
_NOT_FOR_NETWORKS = {
    "wrt": "it names inputs and parameters of one layer, and check_network checks them all",
    "forward_kwargs": "check_network replays the keyword arguments each layer's forward "
    "really received",
}


# ---------------------------------------------------------------------------------------
# The layers of a net


def _layers_of(net: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` in forward order, the loss layer last."""
    layers = getattr(net, "layers", None)
    if isinstance(layers, Mapping):
        found = [(str(name), layer) for name, layer in layers.items()]
    elif isinstance(layers, list | tuple):
        found = [(f"{describe(layer)}[{i}]", layer) for i, layer in enumerate(layers)]
    else:
        raise CheckError(
            f"{describe(net)} has no layers to check: check_network needs net.layers, an "
            "ordered mapping name -> layer or a list of layers in forward order "
            "(see gradcheck.network)."
        )
    for attribute in ("lastLayer", "last_layer"):
        last = getattr(net, attribute, None)
        if last is not None:
            found.append((attribute, last))
            break
    for name, layer in found:
        if not callable(getattr(layer, "forward", None)):
            raise CheckError(
                f"{describe(net)}: layer {name} ({describe(layer)}) has no forward method; "
                "every entry of net.layers must be a layer with forward and backward."
            )
    return found


def _parameter_attributes(layer: Any) -> Iterator[tuple[str, Any]]:
    """``(label, array)`` of the arrays a layer holds: attributes and ``params`` entries."""
    attributes = vars(layer) if hasattr(layer, "__dict__") else {}
    for name, value in attributes.items():
        if isinstance(value, np.ndarray):
            yield name, value
    params = attributes.get("params")
    if isinstance(params, Mapping):
        for key, value in params.items():
            if isinstance(value, np.ndarray):
                yield f"params[{key!r}]", value


def _owners(net: Any, layers: list[tuple[str, Any]]) -> dict[str, tuple[str, str]]:
    """``params`` key -> (layer name, attribute) holding the very same array object."""
    params = getattr(net, "params", None)
    if not isinstance(params, Mapping):
        return {}
    holders = {
        id(array): (name, label)
        for name, layer in reversed(layers)
        for label, array in _parameter_attributes(layer)
    }
    return {str(key): holders[id(value)] for key, value in params.items() if id(value) in holders}


# ---------------------------------------------------------------------------------------
# The trace: what each layer received, and what its backward got and returned


@dataclass
class _Call:
    """One ``forward`` call: a copy of the layer just before it, and of its arguments."""

    layer: str
    order: int
    snapshot: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    argument_ids: list[int]
    output: Any


@dataclass
class _BackwardCall:
    layer: str
    order: int
    dout: Any
    returned: Any


@dataclass
class _Trace:
    forward: list[_Call] = field(default_factory=list)
    backward: list[_BackwardCall] = field(default_factory=list)
    gradients: Any = None
    error: str | None = None
    keep_alive: list[Any] = field(default_factory=list)

    def next_order(self) -> int:
        return len(self.forward) + len(self.backward)


def _instrument(name: str, layer: Any, trace: _Trace) -> None:
    """Replace ``forward``/``backward`` of ``layer`` (a copy) by recording wrappers."""
    forward, backward = layer.forward, layer.backward

    def traced_forward(*args: Any, **kwargs: Any) -> Any:
        snapshot = copy.deepcopy(layer)
        for attribute in ("forward", "backward"):
            vars(snapshot).pop(attribute, None)
        given = copy.deepcopy((args, kwargs))
        output = forward(*args, **kwargs)
        trace.keep_alive += [args, output]  # ids below stay unique while the trace lives
        trace.forward.append(_Call(name, trace.next_order(), snapshot, given[0], given[1],
                                   [id(a) for a in args], output))
        return output

    def traced_backward(dout: Any, *args: Any, **kwargs: Any) -> Any:
        given = copy.deepcopy(dout)
        returned = backward(dout, *args, **kwargs)
        trace.backward.append(_BackwardCall(name, trace.next_order(), given,
                                            copy.deepcopy(returned)))
        return returned

    try:
        layer.forward, layer.backward = traced_forward, traced_backward
    except AttributeError as error:
        raise CheckError(
            f"cannot trace layer {name} ({describe(layer)}): {error}. check_network records "
            "each layer's inputs by wrapping its forward on a copy of the net."
        ) from None


def _trace(net: Any, data: tuple[Any, ...], method: str) -> tuple[Any, _Trace]:
    """Run ``net.<method>(*data)`` on a deep copy with every layer instrumented."""
    traced = copy.deepcopy(net)
    trace = _Trace()
    for name, layer in _layers_of(traced):
        _instrument(name, layer, trace)
    data = copy.deepcopy(data)
    with global_random_state_kept():
        try:
            trace.gradients = getattr(traced, method)(*data)
        except Exception as error:
            trace.error = f"{describe(net)}.{method} raised {type(error).__name__}: {error}"
    return traced, trace


def _checked_call(trace: _Trace, name: str) -> tuple[_Call | None, int]:
    """The forward call whose cache the layer's backward used, and the number of calls."""
    calls = [c for c in trace.forward if c.layer == name]
    first_backward = next((b.order for b in trace.backward if b.layer == name), None)
    if first_backward is not None:
        before = [c for c in calls if c.order < first_backward]
        if before:
            return before[-1], len(calls)
    return (calls[-1] if calls else None), len(calls)


# ---------------------------------------------------------------------------------------
# Wiring: what the trace shows when every layer is right


def _first_of(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) and value else value


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.kind not in "fc" or b.dtype.kind not in "fc":
        return False
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return bool(np.allclose(a, b, rtol=1e-6, atol=1e-9 * scale))


def _consumers(trace: _Trace) -> dict[str, list[str]]:
    """Layer -> the layers whose forward received its output (by object identity)."""
    producer: dict[int, str] = {}
    edges: dict[str, list[str]] = {}
    for call in trace.forward:
        for argument in call.argument_ids:
            source = producer.get(argument)
            if source is not None and source != call.layer:
                targets = edges.setdefault(source, [])
                if call.layer not in targets:
                    targets.append(call.layer)
        producer[id(call.output)] = call.layer
    return edges


def _order_hint(trace: _Trace, edges: dict[str, list[str]]) -> str | None:
    last = {b.layer: b.order for b in trace.backward}
    for source, targets in edges.items():
        for target in targets:
            if source in last and target in last and last[source] < last[target]:
                return (
                    f"{source}.backward ran before {target}.backward, but {source}'s output is "
                    f"{target}'s input: call backward in the reverse order of forward."
                )
    return None


def _accumulation_hint(trace: _Trace, edges: dict[str, list[str]]) -> str | None:
    received = {b.layer: b.dout for b in trace.backward}
    returned = {b.layer: _first_of(b.returned) for b in trace.backward}
    for source, targets in edges.items():
        if len(targets) < 2 or source not in received or any(t not in returned for t in targets):
            continue
        dout = received[source]
        if _same(dout, sum(returned[t] for t in targets)):
            continue
        alone = [t for t in targets if _same(dout, returned[t])]
        got = f"only {alone[0]}'s gradient" if alone else "a dout that is not their sum"
        return (
            f"{source}'s output feeds {' and '.join(targets)}, but {source}.backward received "
            f"{got}: add the gradients where the branches meet "
            f"(dout = {' + '.join(f'd_{t}' for t in targets)})."
        )
    return None


def _gradient_attribute(layer: Any, label: str) -> Any:
    if label.startswith("params["):
        grads = getattr(layer, "grads", None)
        key = label[len("params["):-1].strip("'\"")
        return grads.get(key) if isinstance(grads, Mapping) else None
    return getattr(layer, "d" + label, None)


def _misread_hint(
    traced: Any, grads: Any, owners: dict[str, tuple[str, str]]
) -> str | None:
    if not isinstance(grads, Mapping):
        return None
    layers = dict(_layers_of(traced))
    for key, (owner, label) in owners.items():
        given = grads.get(key)
        own = _gradient_attribute(layers[owner], label)
        if given is None or own is None or given is own or _same(given, own):
            continue
        for name, layer in layers.items():
            for other_label, _ in _parameter_attributes(layer):
                other = _gradient_attribute(layer, other_label)
                if (name, other_label) != (owner, label) and other is not None and (
                    other is given or _same(given, other)
                ):
                    return (
                        f"grads[{key!r}] is {name}.d{other_label}, but params[{key!r}] is "
                        f"{owner}.{label}: read it from {owner}.d{label}."
                    )
    return None


def _mode_hint(trace: _Trace, loss_trace: _Trace | None) -> str | None:
    if loss_trace is None:
        return None
    in_loss = {c.layer: c.kwargs for c in loss_trace.forward}
    for call in trace.forward:
        other = in_loss.get(call.layer)
        if other is not None and repr(other) != repr(call.kwargs):
            return (
                f"gradient() runs {call.layer}.forward with {call.kwargs or 'no keywords'} but "
                f"loss() with {other or 'no keywords'}: the end-to-end check differentiates "
                "loss(), so both must run the net in the same mode."
            )
    return None


# ---------------------------------------------------------------------------------------
# The end-to-end check


def _end_to_end(net: Any, data: tuple[Any, ...], options: dict[str, Any]) -> Report:
    report = check(net, *data, **options)
    return _renamed(report, describe(net))


def _renamed(report: Report, name: str) -> Report:
    """``report`` about ``name`` (a layer's name in the net instead of its class)."""
    conclusion = report.conclusion
    if conclusion and conclusion.startswith(report.target + "."):
        conclusion = name + conclusion[len(report.target):]
    return replace(report, target=name, conclusion=conclusion)


# ---------------------------------------------------------------------------------------
# Putting it together


def _check_layer(
    name: str, layer: Any, call: _Call | None, options: dict[str, Any]
) -> LayerCheck[Report]:
    kind = describe(layer)
    if call is None:
        return LayerCheck(name, kind, error="not called during the forward pass")
    try:
        report = check(call.snapshot, *call.args, forward_kwargs=call.kwargs, **options)
    except CheckError as error:
        return LayerCheck(name, kind, error=str(error), failed=True)
    except Exception as error:  # one layer's crash must not hide the verdict on the others
        return LayerCheck(name, kind, error=f"{type(error).__name__}: {error}", failed=True)
    return LayerCheck(name, kind, report=_renamed(report, name), failed=not report.passed)


def _layer_conclusion(check_: LayerCheck[Report]) -> str:
    if check_.report is None:
        return f"{check_.name}: {check_.error}"
    if check_.report.conclusion:
        return check_.report.conclusion
    return f"{check_.name}.backward: {diagnosis_line(check_.report)}"


def _ownership_sentence(
    end_to_end: Report | None,
    owners: dict[str, tuple[str, str]],
    guilty: str,
    order: list[str],
) -> str:
    if end_to_end is None or end_to_end.passed:
        return ""
    wrong = [v.name for v in end_to_end.variables if not v.passed]
    if not wrong:
        return ""
    held = [f"params[{k!r}] is {owners[k][0]}.{owners[k][1]}" for k in wrong if k in owners]
    sentence = f" End to end, gradient() gets {', '.join(wrong)} wrong"
    sentence += f": {', '.join(held)}." if held else "."
    upstream = sorted({owners[k][0] for k in wrong if k in owners and owners[k][0] != guilty},
                      key=order.index)
    if upstream and guilty in order and all(order.index(o) < order.index(guilty)
                                            for o in upstream):
        one = len(upstream) == 1
        sentence += (f" {' and '.join(upstream)} {'passes on its' if one else 'pass on their'} "
                     f"own: the wrong gradient reaches {'it' if one else 'them'} from "
                     f"{guilty}.backward.")
    return sentence


def check_network(net: Any, x: Any, t: Any, **options: Any) -> NetworkReport:
    """Check every layer of ``net`` at the inputs it really sees, then ``net.gradient``.

    Parameters
    ----------
    net : object
        A net exposing ``layers`` (and optionally ``lastLayer``/``last_layer``,
        ``params``, ``loss`` and ``gradient``); see :mod:`gradcheck.network`.
    x, t : array_like
        A batch and its targets, as for ``net.gradient(x, t)``.
    **options
        Options of :func:`gradcheck.check` (``seed``, ``method``, ``rtol``...), used for
        every layer and for the end-to-end check; ``wrt`` and ``forward_kwargs`` do not
        apply.

    Returns
    -------
    NetworkReport
        ``.guilty`` names the wrong layer (or ``"wiring"``), ``.conclusion`` says how it
        is wrong, ``str(report)`` is a per-layer table.

    Raises
    ------
    CheckError
        When ``net`` has no layers, or its forward pass cannot run.
    OptionError
        For an invalid option.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> from reference_layers import MultiLayerNet
    >>> net, (x, t) = MultiLayerNet.example(np.random.default_rng(1))
    >>> [name for name, _ in gradcheck.check_network(net, x, t).layers][:2]
    ['Affine1', 'Activation_function1']
    """
    for name, reason in _NOT_FOR_NETWORKS.items():
        if options.get(name):  # None or {} (their defaults) are fine
            raise OptionError(f"option {name!r} does not apply to check_network: {reason}.")
    seed = resolve_options(**options).seed
    options = {k: v for k, v in options.items() if k not in _NOT_FOR_NETWORKS}
    started = time.perf_counter()
    data = (x, t)
    layers = _layers_of(net)
    has_gradient = callable(getattr(net, "gradient", None))
    is_model = has_gradient and callable(getattr(net, "loss", None)) and isinstance(
        getattr(net, "params", None), Mapping
    )
    if not has_gradient and not callable(getattr(net, "loss", None)):
        raise CheckError(f"{describe(net)} has neither gradient(x, t) nor loss(x, t) to run.")
    traced, trace = _trace(net, data, "gradient" if has_gradient else "loss")
    gradient_error = trace.error if has_gradient else None
    if not trace.forward and has_gradient:  # gradient() failed before any forward call
        traced, trace = _trace(net, data, "loss")
    if not trace.forward:
        raise CheckError(trace.error or f"{describe(net)}: no layer was called.")

    checks: list[LayerCheck[Report]] = []
    notes: list[str] = []
    for name, layer in layers:
        call, calls = _checked_call(trace, name)
        if calls > 1:
            notes.append(f"{name}.forward was called {calls} times; checked at the call whose "
                         "cache its backward used.")
        checks.append(_check_layer(name, layer, call, options))
    notes += [f"{c.name} was never called during the forward pass, so it was not checked."
              for c in checks if c.report is None and not c.failed]

    end_to_end, end_to_end_error = None, gradient_error
    if is_model and gradient_error is None:
        try:
            end_to_end = _end_to_end(net, data, options)
        except CheckError as error:
            end_to_end_error = str(error)
        except Exception as error:  # gradient() raised on the checker's copies
            end_to_end_error = f"{describe(net)}.gradient raised {type(error).__name__}: {error}"
    elif not is_model:
        notes.append(f"no end-to-end check: {describe(net)} lacks params, loss(x, t) or "
                     "gradient(x, t) (the model protocol).")

    owners = _owners(net, layers)
    report = NetworkReport(
        target=describe(net), checks=checks, end_to_end=end_to_end,
        end_to_end_error=end_to_end_error, conclusion=None, guilty=None,
        owners={key: f"{layer}.{label}" for key, (layer, label) in owners.items()},
        notes=notes,
        seed=seed,
    )
    _conclude(report, owners, traced, trace, lambda: _trace(net, data, "loss")[1])
    report.seconds = time.perf_counter() - started
    return report


def _conclude(
    report: NetworkReport,
    owners: dict[str, tuple[str, str]],
    traced: Any,
    trace: _Trace,
    loss_trace: Callable[[], _Trace],
) -> None:
    """Fill ``guilty``, ``conclusion`` and ``hints`` of a finished report."""
    failing = [c for c in report.checks if c.failed]
    order = [c.name for c in report.checks]
    if failing:
        guilty = failing[0]
        report.guilty = guilty.name
        report.conclusion = _layer_conclusion(guilty) + _ownership_sentence(
            report.end_to_end, owners, guilty.name, order
        )
        if len(failing) > 1:
            report.conclusion += f" Also wrong: {', '.join(c.name for c in failing[1:])}."
        return
    if report.passed:
        return
    report.guilty = WIRING
    report.conclusion = _WIRING_SENTENCE + "."
    if report.end_to_end is not None:
        wrong = [v.name for v in report.end_to_end.variables if not v.passed]
        if wrong:
            report.conclusion += f" Wrong end to end: {', '.join(wrong)}."
    edges = _consumers(trace)
    mode = _mode_hint(trace, loss_trace() if report.end_to_end is not None else None)
    candidates = [
        _order_hint(trace, edges),
        _accumulation_hint(trace, edges),
        _misread_hint(traced, trace.gradients, owners),
        mode,
    ]
    report.hints = [hint for hint in candidates if hint]


def exposes_layers(obj: Any) -> bool:
    """Whether :func:`check_network` can check ``obj``: a net with its layers in ``layers``.

    The CLI and the pytest plugin check such a model layer by layer.
    """
    layers = getattr(obj, "layers", None)
    runs = callable(getattr(obj, "gradient", None)) or callable(getattr(obj, "loss", None))
    return isinstance(layers, Mapping | list | tuple) and bool(layers) and runs


def suggestion(obj: Any) -> str | None:
    """The hint for a failing model check when ``obj`` exposes layers, else None.

    For :func:`gradcheck.check` to add to a failing model report.
    """
    if not exposes_layers(obj):
        return None
    return ("to find which layer's backward is wrong, run gradcheck.check_network(net, x, t): "
            "it checks every layer at the inputs it receives in this net")
