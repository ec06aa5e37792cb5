"""Random argument lists never make the ``gradcheck`` command print a traceback.

The command is run in-process (``cli.main``), so an escaping exception fails the test
directly; every run must end in exit status 0, 1 or 2 with no traceback on stderr.
``speed`` is left out of the vocabulary: a real speed run takes seconds by design.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.faces.cli import main

COMMANDS = ["check", "list", "--version", "--help", "", "chek", "-q"]
TARGETS = [
    "reference_layers:Sigmoid",
    "reference_layers:Sigmoidd",
    "reference_layers:",
    ":Sigmoid",
    "nosuchmodule",
    "nosuchfile.py",
    "nosuchfile.py:Layer",
    "reference_layers:functions",
    "reference_layers:Affine",
    "gradcheck",
    "os:path",
]
FLAGS = [
    "--shape",
    "3,4",
    "5",
    "0,3",
    "-1",
    "a,b",
    "--dtype",
    "float32",
    "float16",
    "--seed",
    "--method",
    "complex",
    "richardson",
    "fft",
    "--mode",
    "fast",
    "--rtol",
    "1e-3",
    "nan",
    "-2",
    "--atol",
    "--wrt",
    "W",
    "x,W",
    "--strict",
    "--no-params",
    "--max-evaluations",
    "10",
    "--kwargs",
    '{"alpha": 0.1}',
    "{",
    "[]",
    "--param",
    "W=4,3",
    "W=x",
    "--json",
    "--color",
    "--no-color",
    "--traceback",
    "-q",
    "--html",
]
token = st.sampled_from(TARGETS + FLAGS) | st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8
)


@settings(max_examples=60, deadline=None)
@given(command=st.sampled_from(COMMANDS), rest=st.lists(token, max_size=6))
def test_random_arguments_never_raise(command: str, rest: list[str]) -> None:
    argv = ([command] if command else []) + [t for t in rest if t != "--html"]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(argv)
    assert status in (0, 1, 2), (argv, status)
    assert "Traceback" not in err.getvalue(), (argv, err.getvalue())
    if status == 2 and err.getvalue():
        # A usage error is said in one line (argparse adds its usage line before it).
        errors = [line for line in err.getvalue().splitlines() if "error" in line]
        assert len(errors) == 1, (argv, err.getvalue())
