"""The plugin's options: one flag and ini key per textual option, read once per session.

Holds the ``pytest_addoption``, ``pytest_configure`` and ``pytest_report_header`` hooks
and the frozen :class:`Configuration` they leave in the config's stash.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import pytest

from gradcheck.errors import OptionError
from gradcheck.options import OPTIONS, CheckOptions, OptionSpec, resolve_options

MARKER = "gradcheck"


def flag(name: str) -> str:
    """The pytest flag of option ``name``: ``max_evaluations`` → ``--gradcheck-max-evaluations``."""
    return "--gradcheck-" + name.replace("_", "-")


def negated_flag(name: str) -> str:
    """The pytest flag that turns a boolean option off: ``strict`` → ``--no-gradcheck-strict``."""
    return "--no-gradcheck-" + name.replace("_", "-")


def _key(name: str) -> str:
    """The ini key, which is also the ``dest`` of the flag."""
    return f"gradcheck_{name}"


def _is_flag(spec: OptionSpec) -> bool:
    return isinstance(spec.default, bool)


def textual() -> list[OptionSpec]:
    """The options that can be written as text, hence as a flag and an ini key.

    Returns
    -------
    list of OptionSpec
        In the order of :data:`gradcheck.options.OPTIONS`.
    """
    return [spec for spec in OPTIONS.values() if spec.textual]


@dataclasses.dataclass(frozen=True)
class Configuration:
    """What the command line and ini file say, validated once per session.

    Attributes
    ----------
    options : CheckOptions
        The defaults overridden by the ini file, then the command line.
    explicit : tuple of str
        The options given on the command line or in the ini file.
    layers : tuple of str
        The modules of ``--gradcheck-layers``.
    """

    options: CheckOptions
    explicit: tuple[str, ...]  # options given on the command line or in the ini file
    layers: tuple[str, ...]

    @property
    def used(self) -> bool:
        """Whether any option or layer module was given."""
        return bool(self.explicit or self.layers)


_CONFIG_KEY = pytest.StashKey[Configuration]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """One flag and one ini key per textual option of :data:`gradcheck.options.OPTIONS`."""
    group = parser.getgroup("gradcheck", "gradient checking (gradcheck)")
    for spec in textual():
        help_text = spec.help
        if spec.choices and not all(choice in help_text for choice in spec.choices):
            help_text += f" (one of: {', '.join(spec.choices)})"
        if spec.name == "seed":
            help_text += "; each test mixes it with its test id"
        if _is_flag(spec):
            _add_boolean_option(group, spec, help_text)
        else:
            if "default" not in help_text:
                help_text += f" (default: {spec.default})"
            group.addoption(
                flag(spec.name),
                dest=_key(spec.name),
                metavar=spec.metavar,
                default=None,
                help=help_text,
            )
        parser.addini(_key(spec.name), f"gradcheck: {spec.help}", default="")
    _add_layers_option(parser, group)


def _add_boolean_option(group: pytest.OptionGroup, spec: OptionSpec, help_text: str) -> None:
    """``--gradcheck-NAME`` and the hidden ``--no-gradcheck-NAME``, into one ``dest``."""
    group.addoption(
        flag(spec.name),
        dest=_key(spec.name),
        action="store_true",
        default=None,
        help=f"{help_text} (default: {str(spec.default).lower()}; "
        f"{negated_flag(spec.name)} to turn off)",
    )
    group.addoption(
        negated_flag(spec.name),
        dest=_key(spec.name),
        action="store_false",
        default=None,
        help=argparse.SUPPRESS,
    )


def _add_layers_option(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    group.addoption(
        "--gradcheck-layers",
        dest="gradcheck_layers",
        metavar="MODULE[,MODULE]",
        default=None,
        help="collect one gradient check per layer class and forward/backward function "
        "pair in these modules (or .py files), in float64 and float32, at their "
        "example(rng, dtype) or made-up inputs",
    )
    parser.addini(
        "gradcheck_layers",
        "gradcheck: modules whose layer classes and function pairs become tests",
        default="",
    )


def _read_configuration(config: pytest.Config) -> Configuration:
    values: dict[str, Any] = {}
    explicit: list[str] = []
    for spec in textual():
        given = config.getoption(_key(spec.name))
        ini_text = str(config.getini(_key(spec.name)) or "").strip()
        if given is not None:
            where = flag(spec.name)
            value = given if _is_flag(spec) else _parse(spec, str(given), f"{where}={given}")
        elif ini_text:
            where = f"ini option {_key(spec.name)}"
            if config.inipath is not None:
                where += f" in {config.inipath.name}"
            value = _parse(spec, ini_text, where)
        else:
            continue
        values[spec.name] = value
        explicit.append(spec.name)
    layers_text = config.getoption("gradcheck_layers") or config.getini("gradcheck_layers") or ""
    layers = tuple(part for part in str(layers_text).replace(",", " ").split() if part)
    return Configuration(resolve_options(**values), tuple(explicit), layers)


def _parse(spec: OptionSpec, text: str, where: str) -> Any:
    try:
        return spec.from_text(text)
    except OptionError as error:
        raise pytest.UsageError(f"gradcheck: {where}: {error}") from None


def pytest_configure(config: pytest.Config) -> None:
    """Validate the options once (usage error on a bad value) and register the marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): gradcheck options for this test, overriding the command "
        f"line and ini file; known options: {', '.join(OPTIONS)}",
    )
    config.stash[_CONFIG_KEY] = _read_configuration(config)


def configuration(config: pytest.Config) -> Configuration:
    """The session's configuration, as :func:`pytest_configure` left it.

    Parameters
    ----------
    config : pytest.Config

    Returns
    -------
    Configuration
    """
    return config.stash[_CONFIG_KEY]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """One line with the active settings, when options or layers were given (or -v)."""
    settings = configuration(config)
    if not settings.used and config.get_verbosity() <= 0:
        return []
    options = settings.options
    parts = []
    for spec in textual():
        value = getattr(options, spec.name)
        if spec.name in ("wrt", "max_evaluations") and spec.name not in settings.explicit:
            continue
        shown = "auto" if value is None else ",".join(value) if isinstance(value, tuple) else value
        parts.append(f"{spec.name}={shown}")
    line = "gradcheck: " + ", ".join(parts) + " (seeds per test: crc32 of seed and test id)"
    if settings.layers:
        line += f"; layers: {', '.join(settings.layers)}"
    return [line]
