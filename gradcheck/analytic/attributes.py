"""Float attributes that change the output but get no gradient: a forgotten parameter?

A layer with ``self.W`` and ``self.dW`` is checked; a layer with ``self.gamma`` and no
``self.dgamma`` either holds a constant or forgot a gradient. Only the output can tell:
the attribute is nudged and, when the output moves, the report says so (as a warning —
it may be a running statistic).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradcheck.analytic.run import same_output
from gradcheck.conventions.target import Target
from gradcheck.vocabulary import Diagnostic, Severity

__all__ = ["unexplained_attributes"]


def unexplained_attributes(target: Target, output: NDArray) -> list[Diagnostic]:
    """Float attributes that change the output but get no gradient.

    The convention lists the float attributes it found no gradient for
    (``target.unexplained``); each is nudged on a fresh copy, and one that moves the output
    is reported: a trainable parameter whose gradient is missing, or a constant to ignore.
    """
    if not target.unexplained:
        return []
    found: list[Diagnostic] = []
    rng = np.random.default_rng(12345)
    for name in target.unexplained:
        instance = target.instantiate()
        attribute = getattr(instance.subject, name, None)
        if not isinstance(attribute, np.ndarray) or attribute.size == 0:
            continue
        nudged = attribute + 1e-3 * (np.abs(attribute) + 1) * rng.choice([-1, 1], attribute.shape)
        setattr(instance.subject, name, nudged.astype(attribute.dtype))
        try:
            moved = np.asarray(instance.forward())
        except Exception:  # an attribute the layer cannot run with is not a parameter
            continue
        if moved.shape == output.shape and not same_output(output, moved):
            found.append(
                Diagnostic(
                    "no-gradient",
                    Severity.WARNING,
                    f"{target.name}.{name} changes the output but backward sets no d{name}: if "
                    f"it is a trainable parameter its gradient is missing (store it in "
                    f"self.d{name}); if it is a constant or a running statistic, ignore this.",
                )
            )
    return found
