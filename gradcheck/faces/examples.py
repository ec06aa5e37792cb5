"""What a discovered class, function pair or loss function is checked at when nobody
said: the same for the ``gradcheck`` command and ``--gradcheck-layers``.

A class's own ``example(rng, dtype)`` comes first. Otherwise a class is constructed bare,
or with weights made up by the names of its constructor's parameters (``W``, ``b``,
``gamma``, ``beta``: the book's ``Affine(W, b)``), and inputs are made up from the names
of forward's parameters, the way the code people write names them:

* arrays: standard normal, shape (3, 4);
* targets (``t``, ``labels``; ``y`` of a loss): one-hot rows, and integer labels when the
  layer refuses one-hot rows — never a random normal target, which no loss accepts;
* indices (``idx``, ``ids``, the input of an Embedding): integers below the first
  dimension of its weights, with a repeated index — the pattern ``dW[idx] += dout`` gets
  wrong;
* for cs231n function pairs, shapes that fit together (``x (3, 4)``, ``w (4, 5)``,
  ``b (5,)``, ``gamma (4,)``; ``(N, C, H, W)`` inputs and ``(F, C, 3, 3)`` filters for
  a convolution or pooling) and the dicts they take (``conv_param``, ``bn_param``...);
* for cs231n loss functions, scores ``x (3, 5)`` and labels ``y`` below 5, or data
  ``X (3, 4)``, weights ``W (4, 5)`` and a number ``reg``.

Made-up inputs are a guess: :func:`attempts` lists them in order, each with a note for
the report, and a face moves to the next when the check raises on one.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_SHAPE", "Attempt", "attempts", "index_array"]

#: Inputs made up for a layer that offers no example: small, not square.
DEFAULT_SHAPE = (3, 4)
_TARGETS = {"t", "target", "targets", "label", "labels", "y_true"}
_INDICES = {"idx", "index", "indices", "ids", "tokens", "token_ids", "word_ids", "words"}
_VOCABULARY = 6  # indices are drawn below this when no weight says how many rows there are
# Constructor arguments made up by name: weights that fit the made-up (3, 4) inputs — an
# Affine's (4, 5) W, an Embedding's W of 4 rows, a BatchNorm's gamma and beta over 4.
_WEIGHTS: dict[str, Callable[[np.random.Generator], NDArray[Any]]] = {
    "w": lambda rng: 0.5 * rng.standard_normal((DEFAULT_SHAPE[1], 5)),
    "weight": lambda rng: 0.5 * rng.standard_normal((DEFAULT_SHAPE[1], 5)),
    "b": lambda rng: 0.1 * rng.standard_normal(5),
    "bias": lambda rng: 0.1 * rng.standard_normal(5),
    "gamma": lambda rng: 1 + 0.1 * rng.standard_normal(DEFAULT_SHAPE[1]),
    "beta": lambda rng: 0.1 * rng.standard_normal(DEFAULT_SHAPE[1]),
}
# cs231n's dict arguments, by name.
_PARAMS: dict[str, dict[str, Any]] = {
    "conv_param": {"stride": 1, "pad": 1},
    "pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2},
    "bn_param": {"mode": "train"},
    "ln_param": {},
    "gn_param": {},
    "dropout_param": {"p": 0.5, "mode": "train", "seed": 0},
}


@dataclass(frozen=True)
class Attempt:
    """One way to check a candidate: the object, its inputs, and what was made up.

    ``note`` is None for the class's own ``example``, else a sentence for the report.
    """

    obj: Any
    inputs: tuple[Any, ...]
    note: str | None = None


def index_array(rng: np.random.Generator, high: int, shape: tuple[int, ...]) -> NDArray[Any]:
    """Integer indices below ``high`` in which one index is repeated (when there are two
    or more), so a gradient that counts a repeated index once is caught.

    >>> idx = index_array(np.random.default_rng(0), 6, (3, 4))
    >>> len(set(idx.ravel().tolist())) < idx.size
    True
    """
    idx = rng.integers(0, max(high, 1), size=shape)
    if idx.size >= 2:
        idx.flat[-1] = idx.flat[0]
    return idx


def _required(function: Callable[..., Any]) -> list[str] | None:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    return [
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is p.empty
        and p.name != "self"
    ]


def _rows(obj: Any) -> int:
    """The number of rows of a layer's first 2-D weight (an Embedding's vocabulary)."""
    from gradcheck.conventions.registry import find

    convention = find(obj)
    arrays = convention.parameters(obj).values() if convention is not None else []
    return next((a.shape[0] for a in arrays if getattr(a, "ndim", 0) == 2), _VOCABULARY)


def _is_target(name: str, position: int, owner: str) -> bool:
    loss = "loss" in owner.lower()
    return position > 0 and (name in _TARGETS or (loss and name == "y"))


def _is_index(name: str, position: int, owner: str) -> bool:
    return name in _INDICES or (position == 0 and "embed" in owner.lower())


def _role(name: str, position: int, owner: str) -> str:
    """What the argument ``name`` of ``owner`` holds: indices, targets, or an array."""
    if _is_index(name, position, owner):
        return "indices with a repeat"
    return "targets" if _is_target(name, position, owner) else "standard normal"


def _constructed(cls: type, rng: np.random.Generator, dtype: Any) -> tuple[Any, str] | None:
    """``cls()``, or ``cls(W, b)`` with weights made up by the names of its parameters
    (the book's ``Affine(W, b)``, ``BatchNormalization(gamma, beta)``, ``Embedding(W)``),
    and how it was made; None when neither works."""
    try:
        return cls(), ""
    except Exception:
        pass
    names = _required(cls)
    if not names or not all(name.lower() in _WEIGHTS for name in names):
        return None
    made = {name: _WEIGHTS[name.lower()](rng).astype(dtype) for name in names}
    try:
        instance = cls(*made.values())
    except Exception:
        return None
    shapes = ", ".join(f"{name} {made[name].shape}" for name in names)
    return instance, f"{cls.__name__}({shapes}) made up by the constructor's argument names; "


def _layer_attempts(cls: type, rng: np.random.Generator, dtype: Any) -> list[Attempt] | str:
    """A layer constructed bare or with made-up weights, at made-up inputs (one-hot
    targets, then labels)."""
    constructed = _constructed(cls, rng, dtype)
    if constructed is None:
        return (
            "no example(rng, dtype) classmethod, and its constructor needs arguments "
            "other than weights named W, b, gamma, beta"
        )
    instance, how = constructed
    if not callable(getattr(instance, "forward", None)):
        return (
            "a model without example(rng, dtype): its data cannot be made up; add "
            "example(rng, dtype), or check it in a test"
        )
    names = _required(instance.forward)
    if not names:
        return "no example(rng, dtype) and forward takes no arguments to make up"
    roles = [_role(name, i, cls.__name__) for i, name in enumerate(names)]
    count = DEFAULT_SHAPE[-1]

    def made(labels: bool) -> tuple[Any, ...]:
        inputs: list[Any] = []
        for role in roles:
            if role == "targets":
                classes = rng.integers(0, count, size=DEFAULT_SHAPE[0])
                inputs.append(classes if labels else np.eye(count, dtype=dtype)[classes])
            elif role == "standard normal":
                inputs.append(rng.standard_normal(DEFAULT_SHAPE).astype(dtype))
            else:
                inputs.append(index_array(rng, _rows(instance), DEFAULT_SHAPE))
        return tuple(inputs)

    if set(roles) == {"standard normal"}:
        note = (
            f"{how}inputs: standard normal arrays of shape {DEFAULT_SHAPE} (the class "
            "has no example(rng, dtype)); choose them with --shape"
        )
        return _fitting([Attempt(instance, made(labels=False), note)])
    described = ", ".join(f"{name} {role}" for name, role in zip(names, roles, strict=True))
    note = (
        f"{how}inputs made up (the class has no example(rng, dtype)): {described}, of "
        f"shape {DEFAULT_SHAPE}; choose them with --shape"
    )
    if "targets" not in roles:
        return _fitting([Attempt(instance, made(labels=False), note)])
    return _fitting(
        [
            Attempt(instance, made(labels=False), note + "; targets as one-hot rows"),
            Attempt(
                copy.deepcopy(instance), made(labels=True), note + "; targets as integer labels"
            ),
        ]
    )


def _fitting(made: list[Attempt]) -> list[Attempt] | str:
    """The made-up attempts whose forward runs (on copies), or why none does.

    A forward that rejects made-up arrays (a convolution given (3, 4) inputs) says the
    guess was wrong, not that the layer is: the candidate is skipped with the reason.
    Errors in backward are the check's to report.
    """
    fitting, errors = [], []
    for attempt in made:
        obj, inputs = copy.deepcopy((attempt.obj, attempt.inputs))
        try:
            with np.errstate(all="ignore"):
                obj.forward(*inputs)
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")
            continue
        fitting.append(attempt)
    if fitting:
        return fitting
    return f"made-up inputs do not fit its forward ({errors[0]})"


def _pair_inputs(
    forward: Callable[..., Any], stem: str, rng: np.random.Generator, dtype: Any
) -> tuple[Any, ...] | None:
    """Arguments for a cs231n forward function, by the names of its parameters."""
    names = _required(forward)
    if names is None:
        return None
    spatial = any(word in stem for word in ("conv", "pool", "spatial"))
    n, d, m, vocabulary = 3, 4, 5, _VOCABULARY
    channels, side, filters = 3, 5, 2
    shapes = {
        "x": (2, channels, side, side) if spatial else (n, d),
        "w": (filters, channels, 3, 3) if spatial else (d, m),
        "b": (filters,) if spatial else (m,),
        "gamma": (channels,) if spatial else (d,),
        "beta": (channels,) if spatial else (d,),
        "dout": (n, d),
    }
    made: list[Any] = []
    for position, name in enumerate(names):
        key = name.lower()
        if key in _PARAMS:
            made.append(dict(_PARAMS[key]))
        elif _is_index(key, position, stem):
            made.append(index_array(rng, vocabulary, (n, d)))
        elif _is_target(key, position, stem):
            made.append(rng.integers(0, d, size=n))
        elif key == "w" and "embed" in stem:
            made.append(rng.standard_normal((vocabulary, d)).astype(dtype))
        elif key in shapes:
            made.append(rng.standard_normal(shapes[key]).astype(dtype))
        else:
            return None
    return tuple(made)


def _pair_attempts(
    pair: tuple[Any, Any], name: str, rng: np.random.Generator, dtype: Any
) -> list[Attempt] | str:
    forward = pair[0]
    inputs = _pair_inputs(forward, name, rng, dtype)
    signature = f"{forward.__name__}{inspect.signature(forward)}"
    if inputs is None:
        return (
            f"cannot make up inputs for {signature}: name its arguments like cs231n's "
            "(x, w, b, gamma, beta, conv_param...), or check it in a test"
        )
    try:
        forward(
            *[
                x.copy() if isinstance(x, np.ndarray) else dict(x) if isinstance(x, dict) else x
                for x in inputs
            ]
        )
    except Exception as error:
        return f"made-up inputs do not fit {signature} ({type(error).__name__}: {error})"
    shapes = ", ".join(
        f"{n} {tuple(x.shape)}" if isinstance(x, np.ndarray) else f"{n} {x!r}"
        for n, x in zip(_required(forward) or [], inputs, strict=False)
    )
    return [Attempt(pair, inputs, f"inputs made up from the argument names: {shapes}")]


# A loss function's arguments, by name: scores of 3 samples over 5 classes, or data of 4
# features with (4, 5) weights; labels below 5; a regularisation strength.
_LOSS_CLASSES = 5


def _loss_argument(name: str, rng: np.random.Generator, dtype: Any) -> Any:
    n, d, c = DEFAULT_SHAPE[0], DEFAULT_SHAPE[1], _LOSS_CLASSES
    if name in ("x", "scores", "logits"):
        return rng.standard_normal((n, c)).astype(dtype)
    if name == "X":
        return rng.standard_normal((n, d)).astype(dtype)
    if name.lower() in ("w", "weights"):
        return (0.1 * rng.standard_normal((d, c))).astype(dtype)
    if name.lower() in ("b", "bias"):
        return (0.1 * rng.standard_normal(c)).astype(dtype)
    if name in _TARGETS or name == "y":
        return rng.integers(0, c, size=n)
    if name == "reg":
        return 0.1
    return None


def _loss_attempts(function: Any, rng: np.random.Generator, dtype: Any) -> list[Attempt] | str:
    """A loss function at arguments made up from their names (cs231n's ``softmax_loss(x,
    y)``, ``softmax_loss_naive(W, X, y, reg)``)."""
    names = _required(function) or []
    signature = f"{function.__name__}{inspect.signature(function)}"
    inputs = [_loss_argument(name, rng, dtype) for name in names]
    if not names or any(x is None for x in inputs):
        return (
            f"cannot make up inputs for {signature}: name its arguments like cs231n's "
            "(x, y; or W, X, y, reg), or check it in a test"
        )
    try:
        returned = function(*[x.copy() if isinstance(x, np.ndarray) else x for x in inputs])
    except Exception as error:
        return f"made-up inputs do not fit {signature} ({type(error).__name__}: {error})"
    if not (isinstance(returned, tuple) and len(returned) >= 2 and np.ndim(returned[0]) == 0):
        return f"{signature} does not return (loss, gradients)"
    shapes = ", ".join(
        f"{n} {tuple(x.shape)}" if isinstance(x, np.ndarray) else f"{n} {x!r}"
        for n, x in zip(names, inputs, strict=True)
    )
    return [Attempt(function, tuple(inputs), f"inputs made up from the argument names: {shapes}")]


def attempts(candidate: Any, rng: np.random.Generator, dtype: Any) -> list[Attempt] | str:
    """The ways to check a discovery candidate, in order, or why there is none.

    Parameters
    ----------
    candidate : gradcheck.conventions.discovery.Candidate
        A class, a function pair or a loss function found in a module.
    rng : numpy.random.Generator
        For the example or the made-up arrays.
    dtype : dtype
        Of the float arrays.

    Returns
    -------
    list of Attempt, or str
        The class's example alone; or made-up inputs, a later attempt to be tried when
        the check raises on an earlier one; or the reason the candidate is skipped.
    """
    if candidate.is_pair:
        return _pair_attempts(candidate.obj, candidate.name, rng, dtype)
    if candidate.is_function:
        return _loss_attempts(candidate.obj, rng, dtype)
    if candidate.has_example:
        instance, inputs = candidate.example(rng, dtype)
        return [Attempt(instance, inputs)]
    return _layer_attempts(candidate.obj, rng, dtype)
