"""Random example inputs for the layers' ``example`` classmethods.

Inputs are kept away from the points where a layer is not differentiable (ReLU at 0,
max-pooling ties), so a correct layer passes a gradient check at them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["away_from_zero", "distinct_values", "normal"]


def normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
    """Standard normal draws of the given shape, cast to ``dtype``."""
    return rng.standard_normal(shape).astype(dtype)


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
    """Values with ``|x|`` uniform in ``[0.1, 2]`` and a random sign: no ReLU kink near."""
    magnitude = rng.uniform(0.1, 2.0, size=shape)
    sign = rng.choice([-1.0, 1.0], size=shape)
    return (sign * magnitude).astype(dtype)


def distinct_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
    """A shuffled grid in ``[-2, 2]``: every two entries differ by at least ``4 / size``.

    Max pooling has a kink wherever two entries of a window tie; spaced values keep any
    small perturbation from changing which entry is the maximum.
    """
    size = int(np.prod(shape))
    grid = np.linspace(-2.0, 2.0, size)
    return rng.permutation(grid).reshape(shape).astype(dtype)
