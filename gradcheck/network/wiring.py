"""Wiring: what a net's trace shows when every layer is right but ``gradient()`` is not.

Each hint reads the trace of one run (:mod:`gradcheck.network.recording`) for one
mistake of composition: backward calls in the wrong order, branch gradients not added
where the branches meet, a parameter gradient read from the wrong layer, or ``loss()``
and ``gradient()`` running the net in different modes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gradcheck.network.protocol import layers_of, parameter_attributes
from gradcheck.network.recording import NetTrace
from gradcheck.report.records import CheckRecord

__all__ = ["wiring_conclusion", "wiring_hints"]

_WIRING_SENTENCE = (
    "every layer's backward is right, but the net's gradient() is wrong: check the order "
    "of backward calls, gradient accumulation where branches meet, and which layer each "
    "parameter gradient is read from"
)


def wiring_conclusion(end_to_end: CheckRecord | None) -> str:
    """The conclusion when the layers are right and the net is not.

    Parameters
    ----------
    end_to_end : Report or None
        The end-to-end check, when it ran.

    Returns
    -------
    str
        What to look at, then which gradients are wrong end to end.
    """
    conclusion = _WIRING_SENTENCE + "."
    if end_to_end is not None:
        wrong = [v.name for v in end_to_end.variables if not v.passed]
        if wrong:
            conclusion += f" Wrong end to end: {', '.join(wrong)}."
    return conclusion


def wiring_hints(
    trace: NetTrace,
    traced: Any,
    owners: dict[str, tuple[str, str]],
    loss_trace: Callable[[], NetTrace] | None,
) -> list[str]:
    """What the trace shows about the wiring, one sentence per mistake found.

    Parameters
    ----------
    trace : NetTrace
        The run of ``gradient()`` (or of ``loss()`` for a net without one).
    traced : object
        The copy of the net that run used (its layers' gradient attributes are read).
    owners : dict
        ``params`` key -> (layer name, attribute), as
        :func:`~gradcheck.network.protocol.owners_of` gives them.
    loss_trace : callable or None
        Runs ``loss()`` and returns its trace, to compare the modes of the two runs;
        None when there was no end-to-end check.

    Returns
    -------
    list of str
        Hints about backward order, accumulation, misread gradients and modes.
    """
    edges = _consumers(trace)
    mode = _mode_hint(trace, loss_trace() if loss_trace is not None else None)
    candidates = [
        _order_hint(trace, edges),
        _accumulation_hint(trace, edges),
        _misread_hint(traced, trace.gradients, owners),
        mode,
    ]
    return [hint for hint in candidates if hint]


def _first_of(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) and value else value


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.kind not in "fc" or b.dtype.kind not in "fc":
        return False
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return bool(np.allclose(a, b, rtol=1e-6, atol=1e-9 * scale))


def _consumers(trace: NetTrace) -> dict[str, list[str]]:
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


def _order_hint(trace: NetTrace, edges: dict[str, list[str]]) -> str | None:
    last = {b.layer: b.order for b in trace.backward}
    for source, targets in edges.items():
        for target in targets:
            if source in last and target in last and last[source] < last[target]:
                return (
                    f"{source}.backward ran before {target}.backward, but {source}'s output is "
                    f"{target}'s input: call backward in the reverse order of forward."
                )
    return None


def _accumulation_hint(trace: NetTrace, edges: dict[str, list[str]]) -> str | None:
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
        key = label[len("params[") : -1].strip("'\"")
        return grads.get(key) if isinstance(grads, Mapping) else None
    return getattr(layer, "d" + label, None)


def _misread_hint(traced: Any, grads: Any, owners: dict[str, tuple[str, str]]) -> str | None:
    if not isinstance(grads, Mapping):
        return None
    layers = dict(layers_of(traced))
    for key, (owner, label) in owners.items():
        given = grads.get(key)
        own = _gradient_attribute(layers[owner], label)
        if given is None or own is None or given is own or _same(given, own):
            continue
        for name, layer in layers.items():
            for other_label, _ in parameter_attributes(layer):
                other = _gradient_attribute(layer, other_label)
                if (
                    (name, other_label) != (owner, label)
                    and other is not None
                    and (other is given or _same(given, other))
                ):
                    return (
                        f"grads[{key!r}] is {name}.d{other_label}, but params[{key!r}] is "
                        f"{owner}.{label}: read it from {owner}.d{label}."
                    )
    return None


def _mode_hint(trace: NetTrace, loss_trace: NetTrace | None) -> str | None:
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
