"""Classification targets: integer labels and one-hot rows, batched or single-sample."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp
from numpy.typing import DTypeLike, NDArray

from gradcheck.faces.strategies.validation import Shape, _check_int, _float_dtype


def _check_batch(batch_size: Any) -> Shape:
    if batch_size is None:
        return ()
    return (_check_int("batch_size", batch_size, minimum=1),)


def labels(
    batch_size: int | None, classes: int, *, dtype: DTypeLike = np.int64
) -> st.SearchStrategy[NDArray[np.integer[Any]]]:
    """Integer class labels in ``[0, classes)``: shape ``(batch_size,)``, or ``()`` for None.

    ``batch_size=None`` is the single-sample case: one label for scores of shape
    ``(classes,)``.

    Parameters
    ----------
    batch_size : int or None
        Samples in the batch (>= 1), or None for a single sample.
    classes : int
        Number of classes (>= 1).
    dtype : integer dtype
        Element type of the labels.

    Examples
    --------
    >>> batch_targets = labels(4, classes=3)
    >>> single_target = labels(None, classes=3)
    """
    shape = _check_batch(batch_size)
    count = _check_int("classes", classes, minimum=1)
    resolved = np.dtype(dtype)
    if resolved.kind not in "iu":
        raise InvalidArgument(f"dtype={dtype!r} must be an integer dtype, e.g. np.int64")
    return hnp.arrays(resolved, shape, elements=st.integers(0, count - 1))


def one_hot(
    batch_size: int | None, classes: int, *, dtype: DTypeLike = np.float64
) -> st.SearchStrategy[NDArray[np.floating[Any]]]:
    """One-hot target rows: ``(batch_size, classes)``, or ``(classes,)`` for None.

    Parameters
    ----------
    batch_size : int or None
        Rows (>= 1), or None for a single sample.
    classes : int
        Number of classes (>= 1): the length of a row.
    dtype : np.float64, np.float32 or np.float16
        Element type of the rows.

    Examples
    --------
    >>> batch_targets = one_hot(4, classes=3)
    >>> single_target = one_hot(None, classes=3, dtype=np.float32)
    """
    resolved = _float_dtype(dtype)
    count = _check_int("classes", classes, minimum=1)
    eye = np.eye(count, dtype=resolved)
    return labels(batch_size, count).map(lambda t: eye[t])
