"""The ``gradcheck`` command, run as users run it: in a subprocess, by exit status and output.

Exit status: 0 all passed, 1 a gradient problem found, 2 a usage or load error with
exactly one line on stderr and never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gradcheck
from gradcheck.errors import OptionError
from gradcheck.faces.cli import main
from gradcheck.options import OPTIONS

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed\b", re.MULTILINE)

USER_LAYERS = '''
import numpy as np
from reference_layers import Affine


class BuggyAffine(Affine):
    """Affine whose dW is wrong in exactly one element, (2, 1)."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.dW[2, 1] += 0.5
        return dx


class Crashing:
    def forward(self, x):
        return 2 * x

    def backward(self, dout):
        raise ZeroDivisionError("boom in backward")

    @classmethod
    def example(cls, rng, dtype=np.float64):
        return cls(), (rng.standard_normal((3, 2)).astype(dtype),)


class ForgetsReturn:
    def forward(self, x):
        return 2 * x

    def backward(self, dout):
        2 * dout

    @classmethod
    def example(cls, rng, dtype=np.float64):
        return cls(), (rng.standard_normal((3, 2)).astype(dtype),)


class Scale:
    """No example: needs --shape, and its constructor needs alpha."""

    def __init__(self, alpha):
        self.alpha = alpha

    def forward(self, x):
        return self.alpha * x

    def backward(self, dout):
        return self.alpha * dout


class Dense:
    """No example: constructor takes arrays (--param W=4,3 --param b=3)."""

    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T
'''


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "gradcheck", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "error" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture(scope="module")
def layers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("user") / "my_layers.py"
    path.write_text(textwrap.dedent(USER_LAYERS))
    return path


# --- gradcheck check: exit status -------------------------------------------------------------


def test_reference_layers_all_pass_with_exit_0() -> None:
    result = run("check", "reference_layers", "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    passed, failed = map(int, SUMMARY.findall(result.stdout)[-1])
    assert passed >= 18 and failed == 0


def test_summary_line_is_n_passed_n_failed() -> None:
    result = run("check", "reference_layers:Sigmoid", "reference_layers:Affine")
    assert result.stdout.strip().splitlines()[-1] == "2 passed, 0 failed"


def test_buggy_layer_exits_1_and_names_the_wrong_element(layers_file: Path) -> None:
    result = run(
        "check",
        f"{layers_file}:BuggyAffine",
        "--shape",
        "5,4",
        "--param",
        "W=4,3",
        "--param",
        "b=3",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "(2, 1)" in result.stdout
    assert "FAILED" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"


def test_typo_in_target_exits_2_with_one_line() -> None:
    result = run("check", "reference_layers:Sigmoidd")
    assert_one_line_error(result)
    assert "Sigmoidd" in result.stderr
    assert result.stdout == ""


def test_unknown_module_exits_2_with_one_line() -> None:
    result = run("check", "reference_layerz")
    assert_one_line_error(result)
    assert "reference_layerz" in result.stderr


def test_missing_file_exits_2_with_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run("check", str(tmp_path / "nope.py")))


def test_file_that_fails_to_import_exits_2_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy as np\nraise RuntimeError('cannot import me')\n")
    result = run("check", str(broken))
    assert_one_line_error(result)
    assert "cannot import me" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--rtol", "abc"],
        ["--rtol", "-1"],
        ["--method", "finite"],
        ["--mode", "slow"],
        ["--seed", "-1"],
        ["--max-evaluations", "0"],
        ["--dtype", "float16"],
        ["--shape", "5,a"],
        ["--kwargs", "[1, 2]"],
        ["--kwargs", "{not json"],
        ["--param", "W"],
        ["--no-such-option"],
    ],
)
def test_bad_option_value_exits_2_with_one_line(args: list[str]) -> None:
    assert_one_line_error(run("check", "reference_layers:Sigmoid", *args))


def test_option_errors_are_the_librarys_own_messages() -> None:
    with pytest.raises(OptionError) as library:
        OPTIONS["rtol"].from_text("-1")
    result = run("check", "reference_layers:Sigmoid", "--rtol", "-1")
    assert str(library.value) in result.stderr


def test_wrt_typo_is_a_usage_error() -> None:
    result = run("check", "reference_layers:Affine", "--wrt", "Wx")
    assert_one_line_error(result)
    assert "Wx" in result.stderr


def test_layer_that_raises_exits_1_with_one_line_and_no_traceback(layers_file: Path) -> None:
    result = run("check", f"{layers_file}:Crashing")
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if "Crashing" in line]
    assert len(lines) == 1
    assert "ZeroDivisionError" in lines[0] and "boom in backward" in lines[0]
    assert "(at my_layers.py:" in lines[0] and "in backward)" in lines[0]  # the user's line
    assert "Traceback" not in result.stdout + result.stderr


def test_traceback_flag_shows_the_traceback(layers_file: Path) -> None:
    result = run("check", f"{layers_file}:Crashing", "--traceback")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "boom in backward" in result.stderr


def test_malformed_backward_is_a_problem_found_exit_1(layers_file: Path) -> None:
    result = run("check", f"{layers_file}:ForgetsReturn")
    assert result.returncode == 1
    assert "ForgetsReturn" in result.stdout and "None" in result.stdout


def test_layer_without_example_gets_standard_normal_inputs(tmp_path: Path) -> None:
    path = tmp_path / "student.py"
    path.write_text(
        "import numpy as np\n"
        "class Sigmoid:\n"
        "    def forward(self, x):\n"
        "        self.out = 1 / (1 + np.exp(-x))\n"
        "        return self.out\n"
        "    def backward(self, dout):\n"
        "        return dout * self.out  # (1 - out) forgotten\n"
    )
    result = run("check", str(path))
    assert result.returncode == 1
    assert "12 of 12 elements wrong" in result.stdout
    assert "standard normal arrays of shape (3, 4)" in result.stdout


def test_the_books_affine_gets_made_up_weights_by_their_names(tmp_path: Path) -> None:
    path = tmp_path / "book.py"
    path.write_text(
        "import numpy as np\n"
        "class Affine:\n"
        "    def __init__(self, W, b):\n"
        "        self.W, self.b = W, b\n"
        "    def forward(self, x):\n"
        "        self.x = x\n"
        "        return np.dot(x, self.W) + self.b\n"
        "    def backward(self, dout):\n"
        "        self.dW = np.dot(self.x.T, dout)\n"
        "        self.db = np.sum(dout, axis=0) * 2\n"
        "        return np.dot(dout, self.W.T)\n"
    )
    result = run("check", str(path))
    assert result.returncode == 1
    assert "Affine(W (4, 5), b (5,)) made up" in result.stdout
    assert "db is ×2 too large" in result.stdout


def test_a_layer_whose_forward_rejects_made_up_inputs_is_skipped_not_failed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "book.py"
    path.write_text(
        "class Convolution:\n"
        "    def __init__(self, W, b, stride=1, pad=0):\n"
        "        self.W, self.b = W, b\n"
        "    def forward(self, x):\n"
        "        N, C, H, W = x.shape\n"
        "        return x\n"
        "    def backward(self, dout):\n"
        "        return dout\n"
        "class Double:\n"
        "    def forward(self, x):\n"
        "        return 2 * x\n"
        "    def backward(self, dout):\n"
        "        return 2 * dout\n"
    )
    result = run("check", str(path))
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().splitlines()[-1] == "1 passed, 0 failed, 1 skipped"
    assert "Convolution: skipped: made-up inputs do not fit its forward (ValueError" in (
        result.stdout
    )
    assert "--shape" in result.stdout
    named = run("check", f"{path}:Convolution")
    assert named.returncode == 2
    assert "made-up inputs do not fit its forward" in named.stderr


def test_class_needing_constructor_arguments_is_skipped_in_a_module(
    layers_file: Path,
) -> None:
    result = run("check", str(layers_file))
    assert result.returncode == 1  # the buggy and broken layers in the same file
    skipped = [line for line in result.stdout.splitlines() if "skipped" in line]
    assert any("Scale" in line and "example" in line for line in skipped)
    assert "skipped" in result.stdout.strip().splitlines()[-1]


def test_imported_classes_are_not_checked_as_the_files_own(layers_file: Path) -> None:
    result = run("check", str(layers_file), "--json")
    names = [entry["name"] for entry in json.loads(result.stdout)["reports"]]
    assert f"{layers_file}:Affine" not in names
    assert f"{layers_file}:BuggyAffine" in names


def test_class_without_example_named_without_shape_is_a_usage_error(layers_file: Path) -> None:
    result = run("check", f"{layers_file}:Scale")
    assert_one_line_error(result)
    assert "--shape" in result.stderr


def test_shape_and_kwargs_build_the_layer(layers_file: Path) -> None:
    result = run("check", f"{layers_file}:Scale", "--shape", "3,4", "--kwargs", '{"alpha": 0.1}')
    assert result.returncode == 0, result.stdout + result.stderr


def test_param_makes_random_constructor_arrays(layers_file: Path) -> None:
    result = run(
        "check",
        f"{layers_file}:Dense",
        "--shape",
        "5,4",
        "--param",
        "W=4,3",
        "--param",
        "b=3",
        "--json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    variables = json.loads(result.stdout)["reports"][0]["variables"]
    shapes = {v["name"]: tuple(v["shape"]) for v in variables}
    assert shapes == {"x": (5, 4), "W": (4, 3), "b": (3,)}


def test_constructor_refusing_the_arguments_is_a_usage_error(layers_file: Path) -> None:
    result = run("check", f"{layers_file}:Scale", "--shape", "3,4", "--kwargs", '{"beta": 1}')
    assert_one_line_error(result)
    assert "Scale" in result.stderr


def test_float32_inputs() -> None:
    result = run("check", "reference_layers:Affine", "--dtype", "float32", "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)["reports"][0]
    assert {v["dtype"] for v in report["variables"]} == {"float32"}


# --- gradcheck check: output --------------------------------------------------------------------


def test_shape_with_several_classes_is_a_usage_error() -> None:
    assert_one_line_error(run("check", "reference_layers", "--shape", "5,4"))


def test_json_is_one_document_with_reports_and_summary(layers_file: Path) -> None:
    result = run("check", "reference_layers:Affine", f"{layers_file}:Crashing", "--json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert set(document) >= {"gradcheck", "reports", "summary"}
    assert document["summary"] == {
        "passed": 1,
        "failed": 1,
        "errors": 1,
        "skipped": 0,
        "total": 2,
        "exit_status": 1,
        "line": "1 passed, 1 failed (1 with errors)",
    }
    passed, crashed = document["reports"]
    assert passed["status"] == "passed" and passed["passed"] is True
    assert set(passed) >= {"target", "kind", "variables", "options", "seed", "name"}
    assert crashed["status"] == "error" and "ZeroDivisionError" in crashed["error"]


def test_json_names_the_wrong_element(layers_file: Path) -> None:
    result = run(
        "check",
        f"{layers_file}:BuggyAffine",
        "--shape",
        "5,4",
        "--param",
        "W=4,3",
        "--param",
        "b=3",
        "--json",
    )
    report = json.loads(result.stdout)["reports"][0]
    weights = next(v for v in report["variables"] if v["name"] == "W")
    assert weights["mismatches"] == 1
    assert weights["worst"][0]["index"] == [2, 1]


def test_no_colour_when_piped_and_colour_when_forced() -> None:
    assert "\033[" not in run("check", "reference_layers:Sigmoid").stdout
    assert "\033[" in run("check", "reference_layers:Sigmoid", "--color").stdout


def test_json_never_has_colour_or_progress() -> None:
    result = run("check", "reference_layers:Sigmoid", "--json", "--color")
    json.loads(result.stdout)
    assert "\033[" not in result.stdout and result.stderr == ""


def test_every_textual_option_is_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    help_text = capsys.readouterr().out
    for spec in OPTIONS.values():
        flag = "--" + spec.name.replace("_", "-")
        assert (flag in help_text) == spec.textual, flag


def test_bool_options_parse_through_the_spec() -> None:
    result = run("check", "reference_layers:Affine", "--strict", "--allow-inplace", "--json")
    options = json.loads(result.stdout)["reports"][0]["options"]
    assert options["strict"] is True and options["allow_inplace"] is True


# --- list, --version, --help ------------------------------------------------------------------


def test_list_shows_layers_with_shapes_and_parameters() -> None:
    result = run("list")
    assert result.returncode == 0
    affine = next(
        line for line in result.stdout.splitlines() if line.startswith("reference_layers:Affine ")
    )
    assert "(5, 4) float64" in affine and "W (4, 3)" in affine and "b (3,)" in affine


def test_list_json_and_layers_without_example(layers_file: Path) -> None:
    result = run("list", str(layers_file), "--json")
    entries = {e["name"].rpartition(":")[2]: e for e in json.loads(result.stdout)["layers"]}
    assert entries["Scale"]["checkable"] is False
    assert entries["BuggyAffine"]["parameters"] == {"W": [4, 3], "b": [3]}


def test_list_typo_exits_2() -> None:
    assert_one_line_error(run("list", "reference_layerz"))


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"gradcheck {gradcheck.__version__}"


@pytest.mark.parametrize("command", [[], ["check"], ["list"], ["speed"]])
def test_help_has_examples(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "usage:" in result.stdout


def test_no_command_is_a_usage_error() -> None:
    assert_one_line_error(run())


def _without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_same_seed_same_json_report() -> None:
    first = run("check", "reference_layers:TwoLayerNet", "--json", "--seed", "3")
    second = run("check", "reference_layers:TwoLayerNet", "--json", "--seed", "3")
    assert first.returncode == second.returncode == 0
    assert _without_timings(json.loads(first.stdout)) == _without_timings(json.loads(second.stdout))


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": ' + "1" * 5000 + "}"])
def test_unreadable_json_kwargs_are_one_line_usage_errors(text: str) -> None:
    result = run("check", "reference_layers:Relu", "--shape", "2,2", "--kwargs", text)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "_json_kwargs" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- the code people write: packages, function pairs, losses, embeddings ----------------------
HELPERS = """
import numpy as np


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
"""

PACKAGE_LAYERS = '''
import numpy as np
from common.functions import softmax


class OneHotLoss:
    """Takes one-hot targets only, as the first book's SoftmaxWithLoss does."""

    def forward(self, x, t):
        self.y, self.t = softmax(x), t
        return -np.sum(t * np.log(self.y)) / x.shape[0]

    def backward(self, dout=1):
        return dout * (self.y - self.t) / self.t.shape[0]


class LabelsLoss:
    """Takes integer labels only, as the sequel book's SoftmaxWithLoss does."""

    def forward(self, x, t):
        self.y, self.t = softmax(x), t
        return -np.mean(np.log(self.y[np.arange(x.shape[0]), t]))

    def backward(self, dout=1):
        dx = self.y.copy()
        dx[np.arange(self.t.shape[0]), self.t] -= 1
        return dout * dx / self.t.shape[0]


class Embedding:
    """The sequel book's first Embedding: dW[idx] = dout drops repeated indices."""

    def __init__(self):
        self.params = [np.random.default_rng(0).standard_normal((7, 3))]
        self.grads = [np.zeros((7, 3))]

    def forward(self, idx):
        self.idx = idx
        return self.params[0][idx]

    def backward(self, dout):
        self.grads[0][...] = 0
        self.grads[0][self.idx] = dout
'''

PAIRS = """
import numpy as np


def affine_forward(x, w, b):
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, 3 * dout.sum(axis=0)


def batchnorm_forward(x, gamma, beta, bn_param):
    mu, std = x.mean(axis=0), np.sqrt(x.var(axis=0) + 1e-5)
    xn = (x - mu) / std
    return gamma * xn + beta, (xn, gamma, std)


def batchnorm_backward(dout, cache):
    xn, gamma, std = cache
    dxn = dout * gamma
    dx = (dxn - dxn.mean(axis=0) - xn * (dxn * xn).mean(axis=0)) / std
    return dx, (dout * xn).sum(axis=0), dout.sum(axis=0)


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return h, (x, prev_h, Wx, Wh, h)


def rnn_step_backward(dnext_h, cache):
    raise NotImplementedError


def softmax_loss(x, y):
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n = x.shape[0]
    dx = p.copy()
    dx[np.arange(n), y] -= 1
    return -np.log(p[np.arange(n), y]).mean(), dx  # dx / n forgotten


def softmax_loss_naive(W, X, y, reg):
    loss, dscores = softmax_loss(X @ W, y)
    n = X.shape[0]
    return loss + reg * np.sum(W * W), X.T @ dscores / n + 2 * reg * W
"""


def run_installed(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``gradcheck`` script, as a user types it: not ``python -m`` (which puts
    the working directory on the import path itself), and without ``PYTHONPATH``."""
    script = Path(sys.executable).with_name("gradcheck")
    env = {
        k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "PYTHONPATH")
    }
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "functions.py").write_text(textwrap.dedent(HELPERS))
    (tmp_path / "common" / "layers.py").write_text(textwrap.dedent(PACKAGE_LAYERS))
    (tmp_path / "cs231n_layers.py").write_text(textwrap.dedent(PAIRS))
    return tmp_path


def test_a_file_that_imports_its_helpers_as_a_package_is_checked_from_the_root(
    repository: Path,
) -> None:
    result = run_installed("check", "common/layers.py", "--json", cwd=repository)
    assert result.returncode == 1, result.stdout + result.stderr  # the Embedding is wrong
    reports = {r["name"]: r for r in json.loads(result.stdout)["reports"]}
    assert reports["common/layers.py:OneHotLoss"]["status"] == "passed"
    assert reports["common/layers.py:LabelsLoss"]["status"] == "passed"
    assert any("integer labels" in note for note in reports["common/layers.py:LabelsLoss"]["notes"])
    embedding = reports["common/layers.py:Embedding"]
    assert embedding["status"] == "failed"
    assert any("indices with a repeat" in note for note in embedding["notes"])


def test_a_file_of_function_pairs_is_checked(repository: Path) -> None:
    result = run_installed("check", "cs231n_layers.py", cwd=repository)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gradcheck affine (function): FAILED" in result.stdout
    assert "the gradient of b is ×3 too large" in result.stdout
    assert "gradcheck batchnorm (function): passed" in result.stdout
    assert "- cs231n_layers.py:rnn_step: skipped: cannot make up inputs" in result.stdout
    # Loss functions returning (loss, dx): scores and labels made up by their names.
    assert "gradcheck softmax_loss (function): FAILED" in result.stdout
    assert "the gradient of x is ×3 too large" in result.stdout
    assert "gradcheck softmax_loss_naive (function): passed" in result.stdout
    assert "W (4, 5), X (3, 4), y (3,), reg 0.1" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "2 passed, 2 failed, 1 skipped"


def test_a_function_pair_is_named_by_its_stem(repository: Path) -> None:
    result = run_installed("check", "cs231n_layers.py:batchnorm", "-q", cwd=repository)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = run_installed("list", "cs231n_layers.py", cwd=repository).stdout
    assert re.search(
        r"cs231n_layers.py:affine +inputs x \(3, 4\) float64, w \(4, 5\) "
        r"float64, b \(5,\) float64",
        listed,
    )
    assert re.search(
        r"softmax_loss_naive +inputs W \(4, 5\) float64, X \(3, 4\) float64, "
        r"y \(3,\) int64, reg 0.1",
        listed,
    )


def test_an_array_the_output_depends_on_without_a_gradient_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "scaled.py"
    path.write_text(
        textwrap.dedent("""
        import numpy as np


        class Scaled:
            def __init__(self):
                self.params, self.grads = [], []
                self.scale = np.full(4, 2.0)

            def forward(self, x):
                return x * self.scale

            def backward(self, dout):
                return dout * self.scale
    """)
    )
    result = run_installed("check", "scaled.py", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gradcheck Scaled (layer): INCOMPLETE" in result.stdout
    assert "gradcheck_constants = ('scale',)" in result.stdout
