"""The check's options, defined once for the library, the pytest plugin and the CLI.

Every face reads :data:`OPTIONS`: the library validates keyword arguments with
:func:`resolve_options`, the pytest plugin turns each spec into a command-line flag and an
ini key, and the CLI into an ``argparse`` option. Text from a command line or an ini file
is parsed with :meth:`OptionSpec.parse`, so every face accepts and rejects the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_args

from gradcheck.engine.spec import ENGINES
from gradcheck.errors import OptionError
from gradcheck.vocabulary import Mode

__all__ = ["METHODS", "MODES", "OPTIONS", "CheckOptions", "OptionSpec", "resolve_options"]

METHODS: tuple[str, ...] = ("auto", *ENGINES)
MODES: tuple[str, ...] = get_args(Mode)


@dataclass(frozen=True)
class CheckOptions:
    """Validated options of one check (immutable; build with :func:`resolve_options`).

    ``rtol`` and ``atol`` of ``None`` mean "follow the dtype of the layer's computation".
    """

    method: str = "auto"
    mode: Mode = "auto"
    rtol: float | None = None
    atol: float | None = None
    seed: int = 0
    wrt: tuple[str, ...] | None = None
    params: bool = True
    allow_inplace: bool = False
    strict: bool = False
    max_evaluations: int = 2_000_000
    forward_kwargs: Mapping[str, Any] = field(default_factory=dict)
    executor: Any = None
    workers: int | None = None
    scheduler: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the options as JSON-ready data."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["wrt"] = list(self.wrt) if self.wrt is not None else None
        out["forward_kwargs"] = {k: repr(v) for k, v in self.forward_kwargs.items()}
        out["executor"] = None if self.executor is None else type(self.executor).__name__
        return out


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_wrt(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("expected a comma-separated list of input or parameter names")
    return names


def _check_choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}; got {value!r}")
        return str(value)

    return check


def _check_tolerance(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number >= 0, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a finite number >= 0, got {value!r}")
    return float(value)


def _check_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return int(value)


def _check_positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number >= 1, got {value!r}")
    return int(value)


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected True or False, got {value!r}")
    return value


def _check_wrt(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise ValueError(f"expected a name or a sequence of names, got {value!r}") from None
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"expected a non-empty sequence of names, got {value!r}")
    return names


def _check_mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a dict of keyword arguments, got {value!r}")
    return dict(value)


def _check_executor(value: Any) -> Any:
    if value is not None and not callable(getattr(value, "submit", None)):
        raise ValueError(
            f"expected a concurrent.futures.Executor (an object with .submit), got {value!r}"
        )
    return value


def _check_workers(value: Any) -> int | None:
    return None if value is None else _check_positive_int(value)


def _check_scheduler(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected the address of a dask scheduler, got {value!r}")
    return value.strip()


def _parse_optional_int(text: str) -> int | None:
    return None if text.strip().lower() in {"", "none"} else int(text)


def _parse_optional_text(text: str) -> str | None:
    return None if text.strip().lower() in {"", "none"} else text


def _parse_optional_float(text: str) -> float | None:
    if text.strip().lower() in {"", "none", "auto"}:
        return None
    return float(text)


@dataclass(frozen=True)
class OptionSpec:
    """One option: its name, default, help text, and how to parse and validate it.

    ``parse`` turns command-line or ini text into a value, ``validate`` checks a value
    given from Python. ``textual`` is False for options that only make sense in Python.
    """

    name: str
    help: str
    validate: Callable[[Any], Any]
    parse: Callable[[str], Any]
    metavar: str = "VALUE"
    choices: tuple[str, ...] | None = None
    textual: bool = True

    @property
    def default(self) -> Any:
        """The default value, as in :class:`CheckOptions`."""
        return getattr(CheckOptions(), self.name)

    def from_text(self, text: str) -> Any:
        """Parse and validate ``text``; raise :class:`OptionError` naming the option."""
        try:
            return self.validate(self.parse(text))
        except ValueError as error:
            raise OptionError(f"invalid value for option {self.name!r}: {error}") from None


OPTIONS: dict[str, OptionSpec] = {
    spec.name: spec
    for spec in (
        OptionSpec(
            "method",
            "numerical engine: auto (complex step where the layer supports it, else central "
            "differences), or one of: "
            + "; ".join(f"{e.name} ({e.summary})" for e in ENGINES.values()),
            _check_choice(METHODS),
            str,
            metavar="NAME",
            choices=METHODS,
        ),
        OptionSpec(
            "mode",
            "full checks every element; fast checks random directions and localises a "
            "failure; auto picks the fastest mode that still names wrong elements",
            _check_choice(MODES),
            str,
            metavar="NAME",
            choices=MODES,
        ),
        OptionSpec(
            "rtol",
            "relative tolerance (default: by dtype, 1e-5 for float64, 1e-4 for float32)",
            _check_tolerance,
            _parse_optional_float,
            metavar="FLOAT",
        ),
        OptionSpec(
            "atol",
            "absolute tolerance (default: a tenth of rtol times the typical small gradient "
            "of each variable)",
            _check_tolerance,
            _parse_optional_float,
            metavar="FLOAT",
        ),
        OptionSpec(
            "seed",
            "seed of the random upstream gradient; the same seed gives the same verdict",
            _check_seed,
            int,
            metavar="INT",
        ),
        OptionSpec(
            "wrt",
            "names of the inputs and parameters to check (default: all)",
            _check_wrt,
            _parse_wrt,
            metavar="NAMES",
        ),
        OptionSpec(
            "params",
            "check parameters as well as inputs",
            _check_bool,
            _parse_bool,
            metavar="BOOL",
        ),
        OptionSpec(
            "allow_inplace",
            "do not fail when forward or backward modifies its arguments in place",
            _check_bool,
            _parse_bool,
            metavar="BOOL",
        ),
        OptionSpec(
            "strict", "tolerances ten times tighter", _check_bool, _parse_bool, metavar="BOOL"
        ),
        OptionSpec(
            "max_evaluations",
            "refuse a check that would need more forward passes than this",
            _check_positive_int,
            int,
            metavar="INT",
        ),
        OptionSpec(
            "forward_kwargs",
            "keyword arguments passed to every forward call",
            _check_mapping,
            str,
            textual=False,
        ),
        OptionSpec(
            "executor",
            "a concurrent.futures.Executor that runs independent groups of forward passes "
            "(colours, directions, chunks of elements), each on its own working copy; "
            "default: serial",
            _check_executor,
            str,
            textual=False,
        ),
        OptionSpec(
            "workers",
            "run independent groups of forward passes on a pool of this many processes "
            "(the layer must be importable: defined at module level); default: serial",
            _check_workers,
            _parse_optional_int,
            metavar="N",
        ),
        OptionSpec(
            "scheduler",
            "run them on the workers of the dask.distributed scheduler at this address "
            "(e.g. tcp://127.0.0.1:8786; needs gradcheck[distributed])",
            _check_scheduler,
            _parse_optional_text,
            metavar="ADDRESS",
        ),
    )
}

# Ways to hand work to other processes or threads: at most one per check.
_EXECUTION = ("executor", "workers", "scheduler")


def resolve_options(base: CheckOptions | None = None, **overrides: Any) -> CheckOptions:
    """Validate ``overrides`` and apply them on top of ``base``.

    Raises
    ------
    OptionError
        For an unknown option name or an invalid value; the message names the option.
    """
    values: dict[str, Any] = {}
    for name, value in overrides.items():
        spec = OPTIONS.get(name)
        if spec is None:
            known = ", ".join(OPTIONS)
            raise OptionError(f"unknown option {name!r}; known options: {known}")
        try:
            values[name] = spec.validate(value)
        except ValueError as error:
            raise OptionError(f"invalid value for option {name!r}: {error}") from None
    resolved = replace(base or CheckOptions(), **values)
    given = [name for name in _EXECUTION if getattr(resolved, name) is not None]
    if len(given) > 1:
        raise OptionError(
            f"options {' and '.join(given)} both say where to run the forward passes; "
            "give one of them."
        )
    return resolved
