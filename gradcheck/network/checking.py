"""check_network, step by step: run the net once, check each layer, then the whole.

1. :func:`_run` records one run of ``gradient()`` (or ``loss()``) on a copy of the net;
2. :func:`_check_layers` checks every layer's ``backward`` at the inputs it received;
3. :func:`_check_end_to_end` checks ``gradient()`` as a model;
4. :func:`_conclude` names the guilty layer, or the wiring with its hints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gradcheck.checker import check
from gradcheck.conventions.model import ForwardBackwardModel
from gradcheck.conventions.target import describe
from gradcheck.errors import CheckError, OptionError
from gradcheck.network.protocol import layers_of, owners_of
from gradcheck.network.recording import ForwardCall, NetTrace, checked_call, record_run
from gradcheck.network.wiring import wiring_conclusion, wiring_hints
from gradcheck.options import resolve_options
from gradcheck.report.records import WIRING, LayerCheck, diagnosis_line
from gradcheck.report.reports import NetworkReport, Report
from gradcheck.vocabulary import Verdict, sentence

__all__ = ["check_network"]

# Options that name one layer's inputs.
_NOT_FOR_NETWORKS = {
    "wrt": "it names inputs and parameters of one layer, and check_network checks them all",
}


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
        every layer and for the end-to-end check; ``wrt`` does not apply.
        ``forward_kwargs`` (``{"train_flg": True}``) go to the net's own calls — ``loss``,
        ``gradient`` or ``forward`` when they accept them; each layer is checked with the
        keywords it really received.

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
    options, seed = _layer_options(options)
    kwargs = dict(options.pop("forward_kwargs", None) or {})
    started = time.perf_counter()
    data = (x, t)
    layers = layers_of(net)
    run = _run(net, data, kwargs)
    checks, notes = _check_layers(layers, run.trace, options)
    if not run.is_model:
        notes.append(
            f"no end-to-end check: {describe(net)} lacks params, loss(x, t) or "
            "gradient(x, t) (the model protocol)."
        )
    end_to_end, end_to_end_error = _check_end_to_end(
        net, data, dict(options, forward_kwargs=kwargs), run
    )
    owners = owners_of(net, layers)
    report = NetworkReport(
        target=describe(net),
        checks=checks,
        end_to_end=end_to_end,
        end_to_end_error=end_to_end_error,
        conclusion=None,
        guilty=None,
        owners={key: f"{layer}.{label}" for key, (layer, label) in owners.items()},
        notes=notes,
        seed=seed,
    )
    _conclude(report, owners, run, lambda: record_run(net, data, "loss", kwargs)[1])
    report.seconds = time.perf_counter() - started
    return report


def _layer_options(options: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The options for each layer's check, and the seed they resolve to."""
    for name, reason in _NOT_FOR_NETWORKS.items():
        if options.get(name):  # None or {} (their defaults) are fine
            raise OptionError(f"option {name!r} does not apply to check_network: {reason}.")
    seed = resolve_options(**options).seed
    return {k: v for k, v in options.items() if k not in _NOT_FOR_NETWORKS}, seed


@dataclass
class _Run:
    """The recorded run of a net, and what the net offers."""

    traced: Any
    trace: NetTrace
    gradient_error: str | None
    is_model: bool


def _run(net: Any, data: tuple[Any, ...], kwargs: dict[str, Any]) -> _Run:
    """Record ``gradient()``; when it fails before any layer ran, record ``loss()``. A net
    without either (the sequel book's) records ``forward(x, t)`` then ``backward()``."""
    has_gradient = callable(getattr(net, "gradient", None))
    has_loss = callable(getattr(net, "loss", None))
    if not has_gradient and not has_loss:
        if not ForwardBackwardModel().recognises(net):
            raise CheckError(f"{describe(net)} has neither gradient(x, t) nor loss(x, t) to run.")
        traced, trace = record_run(net, data, "forward", kwargs)
        if not trace.forward:
            raise CheckError(trace.error or f"{describe(net)}: no layer was called.")
        return _Run(traced, trace, trace.error, True)
    traced, trace = record_run(net, data, "gradient" if has_gradient else "loss", kwargs)
    gradient_error = trace.error if has_gradient else None
    if not trace.forward and has_gradient:  # gradient() failed before any forward call
        traced, trace = record_run(net, data, "loss", kwargs)
    if not trace.forward:
        raise CheckError(trace.error or f"{describe(net)}: no layer was called.")
    params = isinstance(getattr(net, "params", None), Mapping)
    # loss(x, t) returning (loss, grads) is a model too (cs231n): only a run tells.
    returns_grads = not has_gradient and isinstance(trace.gradients, tuple)
    return _Run(traced, trace, gradient_error, params and (has_gradient or returns_grads))


def _check_layers(
    layers: list[tuple[str, Any]], trace: NetTrace, options: dict[str, Any]
) -> tuple[list[LayerCheck[Report]], list[str]]:
    """Each layer's verdict at the call its backward used, and notes on how it was chosen."""
    checks, notes = [], []
    for name, layer in layers:
        call, calls = checked_call(trace, name)
        if calls > 1:
            notes.append(
                f"{name}.forward was called {calls} times; checked at the call whose "
                "cache its backward used."
            )
        checks.append(_check_layer(name, layer, call, options))
    notes += [
        f"{c.name} was never called during the forward pass, so it was not checked."
        for c in checks
        if c.report is None and not c.failed
    ]
    return checks, notes


def _check_layer(
    name: str, layer: Any, call: ForwardCall | None, options: dict[str, Any]
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
    failed = report.verdict is Verdict.FAILED
    return LayerCheck(name, kind, report=_renamed(report, name), failed=failed)


def _check_end_to_end(
    net: Any, data: tuple[Any, ...], options: dict[str, Any], run: _Run
) -> tuple[Report | None, str | None]:
    """The check of ``net.gradient`` as a model, or why there is none."""
    if not run.is_model or run.gradient_error is not None:
        return None, run.gradient_error
    try:
        return _renamed(check(net, *data, **options), describe(net)), None
    except CheckError as error:
        return None, str(error)
    except Exception as error:  # gradient() raised on the checker's copies
        return None, sentence(f"{describe(net)}.gradient raised {type(error).__name__}: {error}")


def _renamed(report: Report, name: str) -> Report:
    """``report`` about ``name`` (a layer's name in the net instead of its class)."""
    conclusion = report.conclusion
    if conclusion and conclusion.startswith(report.target + "."):
        conclusion = name + conclusion[len(report.target) :]
    return replace(report, target=name, conclusion=conclusion)


def _conclude(
    report: NetworkReport,
    owners: dict[str, tuple[str, str]],
    run: _Run,
    loss_trace: Callable[[], NetTrace],
) -> None:
    """Fill ``guilty``, ``conclusion`` and ``hints`` of a finished report."""
    failing = sorted((c for c in report.checks if c.failed), key=_blame_order)
    if failing:
        report.guilty = failing[0].name
        report.conclusion = _blame(failing, report, owners)
    elif report.verdict is Verdict.INCOMPLETE:
        report.conclusion = _doubt(report)
    elif not report.passed:
        report.guilty = WIRING
        report.conclusion = wiring_conclusion(report.end_to_end)
        report.hints = wiring_hints(
            run.trace, run.traced, owners, loss_trace if report.end_to_end is not None else None
        )


def _blame_order(check_: LayerCheck[Report]) -> int:
    """Wrong gradients first: they explain a wrong end-to-end gradient, while a layer that
    only edits its arguments in place (the textbook's Relu) may be harmless in this net."""
    report = check_.report
    return 0 if report is None or any(v.mismatches for v in report.variables) else 1


def _doubt(report: NetworkReport) -> str:
    """Nothing is wrong, but these checks could not verify everything."""
    parts = [
        f"{name}: {diagnosis_line(layer)}"
        for name, layer in report.layers
        if layer.verdict is Verdict.INCOMPLETE
    ]
    if report.end_to_end is not None and report.end_to_end.verdict is Verdict.INCOMPLETE:
        parts.append(f"gradient() end to end: {diagnosis_line(report.end_to_end)}")
    return "nothing wrong was found, but not everything could be verified — " + "; ".join(parts)


def _blame(
    failing: list[LayerCheck[Report]], report: NetworkReport, owners: dict[str, tuple[str, str]]
) -> str:
    """The conclusion naming the first failing layer (and the others, if any)."""
    guilty = failing[0]
    order = [c.name for c in report.checks]
    conclusion = _layer_conclusion(guilty) + _ownership_sentence(
        report.end_to_end, owners, guilty.name, order
    )
    if len(failing) > 1:
        conclusion += f" Also wrong: {', '.join(c.name for c in failing[1:])}."
    return conclusion


def _layer_conclusion(check_: LayerCheck[Report]) -> str:
    if check_.report is None:
        return f"{check_.name}: {check_.error}"
    if check_.report.conclusion:
        return check_.report.conclusion
    return f"{check_.name}.backward: {diagnosis_line(check_.report)}"


def _entry(key: str) -> str:
    """``params['W1']`` for a dict key; a list entry is named so already (``params[2]``)."""
    return key if key.startswith("params[") else f"params[{key!r}]"


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
    held = [f"{_entry(k)} is {owners[k][0]}.{owners[k][1]}" for k in wrong if k in owners]
    sentence = f" End to end, gradient() gets {', '.join(wrong)} wrong"
    sentence += f": {', '.join(held)}." if held else "."
    upstream = sorted(
        {owners[k][0] for k in wrong if k in owners and owners[k][0] != guilty}, key=order.index
    )
    if upstream and guilty in order and all(order.index(o) < order.index(guilty) for o in upstream):
        one = len(upstream) == 1
        sentence += (
            f" {' and '.join(upstream)} {'passes on its' if one else 'pass on their'} "
            f"own: the wrong gradient reaches {'it' if one else 'them'} from "
            f"{guilty}.backward."
        )
    return sentence
