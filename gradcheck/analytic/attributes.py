"""Float arrays that change the output but get no gradient: never a silent pass.

A layer with ``self.W`` and ``self.dW`` is checked; a layer whose ``gamma`` no convention
paired with a gradient either holds a constant or forgot a gradient (or keeps it where no
convention looks). Only the output can tell: each such array is nudged on a fresh copy,
and when the output moves the check is INCOMPLETE — it cannot pass while a gradient the
output depends on went unchecked. The message says how to declare the array a constant,
or how to teach gradcheck the convention. Buffers a convention knows are constant
(running statistics) never get here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradcheck.analytic.run import same_output
from gradcheck.conventions.convention import DECLARED_CONSTANTS
from gradcheck.conventions.target import Target, Unpaired
from gradcheck.vocabulary import Diagnostic, Severity

__all__ = ["unchecked_arrays", "unchecked_diagnostics"]


def _nudged(unpaired: Unpaired, seed: int) -> NDArray:
    source = np.asarray(unpaired.source)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], source.shape)
    return (source + 1e-3 * (np.abs(source) + 1) * signs).astype(source.dtype)


def _moves_output(target: Target, nudged: dict[int, NDArray], output: NDArray) -> bool:
    """Whether the output changes when the arrays in ``nudged`` are replaced."""
    instance = target.instantiate(replacing=nudged)
    try:
        moved = np.asarray(instance.forward())
    except Exception:  # an array the object cannot run with changed is not a parameter
        return False
    return moved.shape == output.shape and not same_output(output, moved)


def _message(target: Target, names: list[str]) -> str:
    first = names[0]
    listed = ", ".join(names)
    one = len(names) == 1
    last = first.rpartition(".")[2]
    return (
        f"{target.name}: {listed} {'changes' if one else 'change'} the output but no "
        f"gradient is paired with {'it' if one else 'them'}, so "
        f"{'it was' if one else 'they were'} not checked ({target.convention_name}). If "
        f"{first} is trained, {target.backward_call} must store its gradient where the "
        f"convention looks (self.d{last}, grads[...]), or teach gradcheck your convention "
        "with gradcheck.conventions.register(...); if it is a constant, declare it: "
        f"{DECLARED_CONSTANTS} = ({first!r},) on the {target.kind}."
    )


def unchecked_arrays(target: Target, output: NDArray) -> list[str]:
    """The unpaired arrays the output depends on, by name.

    The convention lists the float arrays it found no gradient for
    (``target.unexplained``); they are nudged together on a fresh copy and, when the output
    moves, one by one, and those that move the output are returned.

    Parameters
    ----------
    target : Target
        The checked target.
    output : ndarray
        Its forward output at the point checked.

    Returns
    -------
    list of str
        Names (paths) such as ``scale`` or ``fc1.gamma``.
    """
    candidates = [u for u in target.unexplained if np.size(u.source)]
    nudged = {id(u.source): _nudged(u, seed=12345 + i) for i, u in enumerate(candidates)}
    if len(candidates) > 1 and not _moves_output(target, nudged, output):
        return []  # one pass for all: usually none matters (caches of an earlier forward)
    return [
        u.name
        for u in candidates
        if _moves_output(target, {id(u.source): nudged[id(u.source)]}, output)
    ]


def unchecked_diagnostics(target: Target, names: list[str]) -> list[Diagnostic]:
    """One INCOMPLETE diagnostic (kind ``"unchecked"``) naming ``names``, or none."""
    if not names:
        return []
    return [Diagnostic("unchecked", Severity.INCOMPLETE, _message(target, names))]
