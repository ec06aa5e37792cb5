"""Ready-made cases: every reference layer with drawn inputs and parameters, in one strategy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from numpy.typing import DTypeLike

from gradcheck.faces.strategies.builders import _BUILDERS
from gradcheck.faces.strategies.validation import _float_dtype


class ReferenceCase(NamedTuple):
    """A reference layer ready to check: ``gradcheck(case.layer, *case.inputs)``."""

    name: str
    layer: Any
    inputs: tuple[Any, ...]
    dtype: np.dtype[Any]

    def __repr__(self) -> str:
        arrays = {
            key: value
            for key, value in vars(self.layer).items()
            if isinstance(value, np.ndarray | int | float) and not key.startswith("d")
        }
        params = getattr(self.layer, "params", None)
        if isinstance(params, dict):
            arrays.update(params)
        state = ", ".join(f"{key}={value!r}" for key, value in arrays.items())
        return (
            f"ReferenceCase(name={self.name!r}, dtype={self.dtype.name}, "
            f"layer={type(self.layer).__name__}({state}), inputs={self.inputs!r})"
        )


#: Names of the reference layers that :func:`reference_cases` draws from.
REFERENCE_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def _checked_dtypes(dtypes: Any) -> list[np.dtype[Any]]:
    if isinstance(dtypes, str) or not isinstance(dtypes, Sequence) or not dtypes:
        raise InvalidArgument(f"dtypes={dtypes!r} must be a non-empty sequence of float dtypes")
    return [_float_dtype(dtype) for dtype in dtypes]


def _checked_names(names: Any) -> tuple[str, ...]:
    if isinstance(names, str):
        raise InvalidArgument(
            f"names={names!r} must be a sequence of reference layer names, not one string: "
            f"names=[{names!r}]; known: {', '.join(REFERENCE_NAMES)}"
        )
    chosen = REFERENCE_NAMES if names is None else tuple(names)
    unknown = [name for name in chosen if name not in _BUILDERS]
    if not chosen or unknown:
        raise InvalidArgument(
            f"names={names!r} must be a non-empty sequence of reference layer names; "
            f"unknown: {unknown or names!r}; known: {', '.join(REFERENCE_NAMES)}"
        )
    return chosen


def reference_cases(
    *,
    dtypes: Sequence[DTypeLike] = (np.float64, np.float32),
    names: Sequence[str] | None = None,
) -> st.SearchStrategy[ReferenceCase]:
    """A reference layer with drawn inputs and parameters, ready to check.

    Inputs come from the strategies of this package (shapes included), not from the
    layers' fixed ``example``; parameters are drawn too, all in the drawn dtype.

    Parameters
    ----------
    dtypes : sequence of dtypes
        Float dtypes to draw from, for inputs and parameters alike.
    names : sequence of str, optional
        Restrict to these layers (default: every layer in ``REFERENCE_NAMES``).

    Raises
    ------
    InvalidArgument
        For an empty or non-float ``dtypes``, or an unknown name.

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(reference_cases(names=["Affine", "Relu"], dtypes=[np.float32]))
    ... def test_some(gradcheck, case):                   # with the pytest plugin's fixture
    ...     gradcheck(case.layer, *case.inputs)
    """
    resolved = _checked_dtypes(dtypes)
    chosen = _checked_names(names)

    @st.composite
    def draw(draw: st.DrawFn) -> ReferenceCase:
        name = draw(st.sampled_from(chosen))
        dtype = draw(st.sampled_from(resolved))
        layer, inputs = _BUILDERS[name](draw, dtype)
        return ReferenceCase(name, layer, inputs, dtype)

    return draw()
