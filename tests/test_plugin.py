"""Specification of the pytest plugin: fixture, marker, options, layer collection, xdist.

Each test writes a small project with ``pytester`` and runs pytest on it, in-process where
possible (fast), in a subprocess for xdist and the import-cost check.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from gradcheck.faces.pytest_plugin import derive_seed as seed_of

BAD_AFFINE = """
    import numpy as np
    import pytest
    from reference_layers import Affine


    class BadAffine(Affine):
        '''Affine whose dW is wrong in one element, at (2, 1).'''

        def backward(self, dout):
            dx = super().backward(dout)
            self.dW[2, 1] += 0.5
            return dx
"""

TESTS = (
    BAD_AFFINE
    + """

    def example(cls=Affine):
        return cls.example(np.random.default_rng(0))


    def test_good(gradcheck):
        layer, (x,) = example()
        assert gradcheck(layer, x).passed


    def test_bad(gradcheck):
        layer, (x,) = example(BadAffine)
        gradcheck(layer, x)
"""
)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def one_error_line(result: pytest.RunResult) -> str:
    lines = [line for line in result.stderr.lines if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# --------------------------------------------------------------------------- loading


def test_importing_the_plugin_imports_no_scipy_hypothesis_or_discovery():
    code = (
        "import sys, gradcheck; before = set(sys.modules); import gradcheck.faces.pytest_plugin; "
        "added = set(sys.modules) - before; "
        "parts = {'gradcheck.faces.pytest_plugin.' + m "
        "for m in ('configuration', 'settings', 'fixture', 'layers')}; "
        "assert parts <= added, added; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('scipy', 'hypothesis')]; "
        "assert not heavy, heavy; "
        "assert not {'gradcheck.conventions.discovery', 'gradcheck.faces.strategies', "
        "'gradcheck.checker', 'numpy'} & added, added"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_marker_is_listed(pytester):
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.gradcheck(**options):*"])


def test_disabled_with_p_no_gradcheck(pytester):
    pytester.makepyfile(TESTS)
    result = run(pytester, "-p", "no:gradcheck", "-k", "good")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'gradcheck' not found*"])


# --------------------------------------------------------------------------- the fixture


def test_fixture_passes_a_correct_layer_and_fails_a_broken_one(pytester):
    pytester.makepyfile(TESTS)
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    seed = seed_of(0, "test_fixture_passes_a_correct_layer_and_fails_a_broken_one.py::test_bad")
    result.stdout.fnmatch_lines(
        [
            f"*GradientCheckError: gradcheck BadAffine (layer): FAILED*seed={seed}*",
            "*only one element of dW is wrong, at (2, 1).",
            "*(2, 1)*",
            f"*seed {seed} = crc32 of --gradcheck-seed=0 and the test id",
            "*reproduce: pytest *::test_bad --gradcheck-seed=0",
        ]
    )


def test_fixture_returns_the_report_and_takes_per_call_options(pytester):
    pytester.makepyfile(
        BAD_AFFINE
        + """
    def test_options(gradcheck):
        layer, (x,) = Affine.example(np.random.default_rng(0))
        report = gradcheck(layer, x, rtol=1e-4, wrt="W", seed=3)
        assert [v.name for v in report.variables] == ["W"]
        assert report.variables[0].rtol == 1e-4 and report.seed == 3


    def test_check_reports_without_asserting(gradcheck):
        layer, (x,) = Affine.example(np.random.default_rng(0))
        assert not gradcheck.check(BadAffine(layer.W, layer.b), x).passed


    def test_bad_call_option(gradcheck):
        import gradcheck as gc

        layer, (x,) = Affine.example(np.random.default_rng(0))
        with pytest.raises(gc.OptionError, match="rtoll"):
            gradcheck(layer, x, rtoll=1)
    """
    )
    run(pytester).assert_outcomes(passed=3)


def test_seed_comes_from_the_test_id_and_the_configured_seed(pytester):
    pytester.makepyfile("""
    def test_a(gradcheck):
        print("SEED", gradcheck.seed)

    def test_b(gradcheck):
        print("SEED", gradcheck.seed)
    """)
    path = "test_seed_comes_from_the_test_id_and_the_configured_seed.py"
    for base in (0, 7):
        result = run(pytester, "-s", f"--gradcheck-seed={base}")
        seeds = [int(s) for s in re.findall(r"SEED (\d+)", result.stdout.str())]
        assert seeds == [seed_of(base, f"{path}::test_a"), seed_of(base, f"{path}::test_b")]
        assert seeds[0] != seeds[1]


def test_failure_with_an_explicit_seed_says_where_it_came_from(pytester):
    pytester.makepyfile(
        BAD_AFFINE
        + """
    def test_bad(gradcheck):
        layer, (x,) = BadAffine.example(np.random.default_rng(0))
        gradcheck(layer, x, seed=11)
    """
    )
    result = run(pytester)
    result.stdout.fnmatch_lines(["*seed=11*", "*seed 11 was given by the test*"])


def test_fixture_works_inside_given(pytester):
    pytester.makepyfile("""
    import numpy as np
    from hypothesis import given, settings
    from gradcheck.strategies import reference_cases

    @settings(max_examples=5, database=None)
    @given(reference_cases(names=["Sigmoid", "Affine"]))
    def test_sweep(gradcheck, case):
        gradcheck(case.layer, *case.inputs)
    """)
    run(pytester).assert_outcomes(passed=1)


# --------------------------------------------------------------------------- the marker


def test_marker_overrides_options_closest_wins(pytester):
    pytester.makepyfile("""
    import pytest

    pytestmark = pytest.mark.gradcheck(method="central", rtol=1e-3)

    def test_module_level(gradcheck):
        assert gradcheck.options.method == "central" and gradcheck.options.rtol == 1e-3

    @pytest.mark.gradcheck(rtol=1e-2, seed=5)
    class TestClass:
        @pytest.mark.gradcheck(rtol=1e-1)
        def test_closest(self, gradcheck):
            assert gradcheck.options.rtol == 1e-1
            assert gradcheck.options.method == "central"
            assert gradcheck.seed == 5
    """)
    run(pytester, "--gradcheck-rtol=1e-9").assert_outcomes(passed=2)


def test_marker_rejects_unknown_keys_naming_test_and_key(pytester):
    pytester.makepyfile("""
    import pytest

    @pytest.mark.gradcheck(rtoll=1e-4)
    def test_typo(gradcheck):
        pass
    """)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*test_marker_rejects_unknown_keys_naming_test_and_key.py::test_typo: "
            "@pytest.mark.gradcheck: unknown option 'rtoll'; known options: method, mode, rtol*"
        ]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("gradcheck(rtol=-1)", "invalid value for option 'rtol'"),
        ("gradcheck('central')", "keyword arguments only"),
    ],
)
def test_marker_rejects_bad_values_and_positional_arguments(pytester, marker, message):
    pytester.makepyfile(f"""
    import pytest

    @pytest.mark.{marker}
    def test_it(gradcheck):
        pass
    """)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*::test_it: *{message}*"])


# --------------------------------------------------------------------------- options


OPTIONS_PROBE = """
def test_probe(gradcheck):
    o = gradcheck.options
    print("OPTIONS", o.method, o.rtol, o.strict, o.params)
"""


def probe(pytester: pytest.Pytester, *args: str) -> str:
    result = run(pytester, "-s", *args)
    result.assert_outcomes(passed=1)
    (line,) = re.findall(r"OPTIONS [^\n]*", result.stdout.str())
    return line


def test_ini_options_apply_and_the_command_line_wins(pytester):
    pytester.makeini("""
    [pytest]
    gradcheck_method = central
    gradcheck_rtol = 1e-3
    gradcheck_strict = yes
    gradcheck_params = false
    """)
    pytester.makepyfile(OPTIONS_PROBE)
    assert probe(pytester) == "OPTIONS central 0.001 True False"
    assert (
        probe(pytester, "--gradcheck-rtol=1e-2", "--no-gradcheck-strict", "--gradcheck-params")
        == "OPTIONS central 0.01 False True"
    )


def test_defaults_without_options(pytester):
    pytester.makepyfile(OPTIONS_PROBE)
    assert probe(pytester) == "OPTIONS auto None False True"
    assert probe(pytester, "--gradcheck-rtol=auto") == "OPTIONS auto None False True"


def test_pyproject_toml_ini_keys(pytester):
    pytester.makepyprojecttoml("""
    [tool.pytest.ini_options]
    gradcheck_method = "richardson"
    """)
    pytester.makepyfile(OPTIONS_PROBE)
    assert probe(pytester).startswith("OPTIONS richardson")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--gradcheck-rtol=abc"],
            "ERROR: gradcheck: --gradcheck-rtol=abc: invalid value for "
            "option 'rtol': could not convert string to float: 'abc'",
        ),
        (
            ["--gradcheck-method=fastest"],
            "ERROR: gradcheck: --gradcheck-method=fastest: invalid "
            "value for option 'method': expected one of auto, central, richardson, forward, "
            "complex; got 'fastest'",
        ),
        (
            ["--gradcheck-seed=-1"],
            "ERROR: gradcheck: --gradcheck-seed=-1: invalid value for "
            "option 'seed': expected a whole number >= 0, got -1",
        ),
    ],
)
def test_invalid_command_line_values_are_a_usage_error(pytester, args, message):
    pytester.makepyfile(OPTIONS_PROBE)
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert one_error_line(result) == message


def test_invalid_ini_value_is_a_usage_error_naming_the_file(pytester):
    pytester.makeini("""
    [pytest]
    gradcheck_atol = -1
    """)
    pytester.makepyfile(OPTIONS_PROBE)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert one_error_line(result) == (
        "ERROR: gradcheck: ini option gradcheck_atol in tox.ini: invalid value for option "
        "'atol': expected a finite number >= 0, got -1.0"
    )


def test_every_textual_option_has_a_flag_and_an_ini_key(pytester):
    from gradcheck.options import OPTIONS

    result = run(pytester, "--help")
    for spec in OPTIONS.values():
        flag, key = "--gradcheck-" + spec.name.replace("_", "-"), f"gradcheck_{spec.name}"
        assert (flag in result.stdout.str()) == spec.textual, flag
        assert (key in result.stdout.str()) == spec.textual, key


def test_header_only_when_the_plugin_is_used(pytester):
    pytester.makepyfile(OPTIONS_PROBE)
    assert "gradcheck:" not in run(pytester).stdout.str()
    result = run(pytester, "--gradcheck-mode=fast")
    result.stdout.fnmatch_lines(["gradcheck: method=auto, mode=fast, rtol=auto*seed=0*"])
    run(pytester, "-v").stdout.fnmatch_lines(["gradcheck: method=auto*"])


# --------------------------------------------------------------------------- layer collection


def test_layers_option_generates_two_passing_items_per_class(pytester):
    result = run(pytester, "--gradcheck-layers=reference_layers", "-v", "-k", "Affine or Relu")
    result.stdout.fnmatch_lines(
        [
            "*layers: reference_layers",
            "reference_layers::Relu[[]float64] PASSED*",
            "reference_layers::Relu[[]float32] PASSED*",
        ],
        consecutive=False,
    )
    result.assert_outcomes(passed=6)  # Relu, LeakyRelu, Affine


def test_layers_items_are_all_collected_and_pass(pytester):
    import reference_layers

    pytester.makeini("[pytest]\ngradcheck_layers = reference_layers\n")
    result = run(pytester)
    result.assert_outcomes(passed=2 * len(reference_layers.examples()))


def test_layers_item_failure_shows_the_report(pytester):
    pytester.makepyfile(layers_mod=BAD_AFFINE)
    result = run(pytester, "--gradcheck-layers=layers_mod.py")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ layers_mod.py::BadAffine[[]float64] _*",
            "gradcheck BadAffine (layer): FAILED*",
            "*only one element of dW is wrong, at (2, 1).",
            "*reproduce: pytest --gradcheck-layers=layers_mod.py -k 'BadAffine[[]float64]' "
            "--gradcheck-seed=0",
        ]
    )


def test_layers_that_cannot_be_imported_are_a_collection_error(pytester):
    result = run(pytester, "--gradcheck-layers=no_such_module")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*--gradcheck-layers: no module named 'no_such_module'*"])


# --------------------------------------------------------------------------- xdist


def test_xdist_gives_the_same_verdicts_and_seeds(pytester):
    pytester.makepyfile(layers_mod=BAD_AFFINE)
    pytester.makepyfile(
        test_many=textwrap.dedent(TESTS)
        + "".join(
            textwrap.dedent(f"""
        def test_seed_{i}(gradcheck):
            print("SEED", {i}, gradcheck.seed)
        """)
            for i in range(6)
        )
    )
    args = ("-rA", "--gradcheck-layers=reference_layers,layers_mod.py", "--gradcheck-seed=3")

    def outcome(result: pytest.RunResult) -> tuple[list[str], list[str], list[str]]:
        text = result.stdout.str()
        verdicts = sorted(re.findall(r"^(PASSED|FAILED) (\S+)", text, re.MULTILINE))
        seeds = sorted(re.findall(r"SEED \d+ \d+", text))
        failure_seeds = sorted(
            re.findall(
                r"^(?:E +\S*GradientCheckError: )?gradcheck \S+ \(layer\): FAILED +seed=(\d+)",
                text,
                re.MULTILINE,
            )
        )
        return [" ".join(v) for v in verdicts], seeds, failure_seeds

    alone = outcome(run(pytester, *args))
    spread = outcome(pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", *args))
    assert alone == spread
    verdicts, seeds, failure_seeds = alone
    assert len(seeds) == 6 and len(failure_seeds) == 3
    assert sum(v.startswith("FAILED") for v in verdicts) == 3


# --------------------------------------------------------------------------- any convention
STUDENT = """
    import numpy as np


    class Sigmoid:
        '''No example and a bare constructor: checked at made-up inputs.'''

        def forward(self, x):
            self.out = 1 / (1 + np.exp(-x))
            return self.out

        def backward(self, dout):
            return dout * self.out * (1 - self.out)


    class Dense:
        '''Needs its sizes: skipped, with the reason.'''

        def __init__(self, units):
            self.W = np.ones((4, units))

        def forward(self, x):
            self.x = x
            return x @ self.W

        def backward(self, dout):
            self.dW = self.x.T @ dout
            return dout @ self.W.T


    def affine_forward(x, w, b):
        return x @ w + b, (x, w)


    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout, 3 * dout.sum(axis=0)
"""


def test_layers_option_checks_what_the_command_checks(pytester):
    pytester.makepyfile(student=STUDENT)
    result = run(pytester, "--gradcheck-layers=student.py", "-v", "-rs")
    result.assert_outcomes(passed=2, failed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*Sigmoid[[]float64] PASSED*",
            "*Dense[[]float64] SKIPPED*",
            "*affine[[]float64] FAILED*",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(["*the gradient of b is ×3 too large*"])
    result.stdout.fnmatch_lines(["SKIPPED*Dense: no example(rng, dtype)*"])


WRONG_AXIS = """
    import numpy as np


    class WrongAxis:
        def __init__(self):
            self.W, self.b = np.ones((4, 3)), np.zeros(3)

        def forward(self, x):
            self.x = x
            return x @ self.W + self.b

        def backward(self, dout):
            self.dW = self.x.T @ dout
            self.db = dout.sum(axis=1)
            return dout @ self.W.T


    def test_layer(gradcheck):
        gradcheck(WrongAxis(), np.ones((5, 4)))
"""


def test_a_layer_that_cannot_be_checked_fails_once_at_the_test_line(pytester):
    pytester.makepyfile(WRONG_AXIS)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       gradcheck(WrongAxis(), np.ones((5, 4)))",
            "E       gradcheck.errors.CheckError: WrongAxis.backward: db has shape (5,)*",
        ]
    )
    # No frame of gradcheck's own: the failure is the user's line and the message.
    assert not re.search(r"gradcheck[/\\]\w+[/\\]?\S*\.py:\d+", result.stdout.str())


def test_the_fixture_fails_a_check_that_left_an_array_unchecked(pytester):
    pytester.makepyfile("""
        import numpy as np


        class Scaled:
            def __init__(self):
                self.params, self.grads = [np.ones(4)], [np.zeros(4)]
                self.scale = np.full(4, 2.0)

            def forward(self, x):
                self.x = x
                return x * self.params[0] * self.scale

            def backward(self, dout):
                self.grads[0][...] = (dout * self.x * self.scale).sum(axis=0)
                return dout * self.params[0] * self.scale


        def test_scaled(gradcheck):
            gradcheck(Scaled(), np.ones((3, 4)))
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*gradcheck Scaled (layer): INCOMPLETE*", "*? Scaled: scale changes the output*"]
    )
