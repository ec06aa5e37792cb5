"""Randomness held fixed: a layer's own generators, and the global ``np.random`` state.

A Dropout must draw the same mask in every forward pass of a check, or every numerical
derivative measures the mask's change instead of the gradient. The generators reachable
from a working copy are found once, their states saved, and reset before every pass
(:class:`HeldRandomness`); the global ``np.random`` state — the textbook's Dropout draws
``np.random.rand`` in every forward — is set before every pass to one state seeded from
the check's seed (:func:`seeded_global_state`). What cannot be held (a generator created
inside forward, the time, OS entropy) is left to the non-determinism diagnosis. The
user's global state is restored after a check (:func:`global_random_state_kept`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["HeldRandomness", "global_random_state_kept", "seeded_global_state"]

# How deep to look for generators: attributes of attributes of ... (a net's layers' masks).
_DEPTH = 4


@contextmanager
def global_random_state_kept() -> Iterator[None]:
    """Layers that draw from ``np.random`` must not advance the user's global state."""
    state = np.random.get_state()  # noqa: NPY002 (the legacy global state is what we keep)
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def seeded_global_state(seed: int) -> Any:
    """The legacy global ``np.random`` state that ``np.random.seed(seed)`` would set."""
    return np.random.RandomState(seed).get_state()


def _generators(root: Any, depth: int = _DEPTH) -> list[Any]:
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


def _state(rng: Any) -> Any:
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator.state
    return rng.get_state()


def _restore(rng: Any, state: Any) -> None:
    if isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    else:
        rng.set_state(state)


class HeldRandomness:
    """The random generators inside ``subject``, each to be reset to its current state.

    Examples
    --------
    >>> class Noisy:
    ...     def __init__(self): self.rng = np.random.default_rng(0)
    >>> layer = Noisy(); held = HeldRandomness(layer)
    >>> first = layer.rng.random(); held.hold(); first == layer.rng.random()
    True
    """

    def __init__(self, subject: Any) -> None:
        self._generators = _generators(subject)
        self._states = [_state(g) for g in self._generators]

    def hold(self) -> None:
        """Reset every generator to the state it had when this object was made."""
        for generator, state in zip(self._generators, self._states, strict=True):
            _restore(generator, state)
