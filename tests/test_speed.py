"""``gradcheck speed`` and the measuring module behind it (tiny nets: seconds, not minutes).

No timing assertions beyond sanity (a numerical gradient is slower than backprop):
speed is measured in benchmarks, not in tests.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradcheck.faces import cli
from gradcheck.teaching import speed
from reference_layers import TwoLayerNet

# A few hundred parameters: every method finishes in well under a second.
TINY = ["--sizes", "3,6", "--input-size", "30", "--batch", "8", "--samples", "40"]
TINY_CONFIG = speed.SpeedConfig(
    input_size=30, hidden_sizes=(3,), batch_size=8, samples=40, min_backprop_seconds=0.0
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradcheck", "speed", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def quick_json() -> dict:
    result = run("--quick", "--json", *TINY)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_quick_json_has_config_machine_and_one_result_per_size(quick_json: dict) -> None:
    assert set(quick_json) >= {"config", "machine", "fast_mode", "results", "seconds"}
    assert [r["hidden_size"] for r in quick_json["results"]] == [3, 6]
    for result in quick_json["results"]:
        assert set(result) >= {
            "parameters",
            "textbook",
            "engine",
            "check_full",
            "check_fast",
            "backprop",
            "ratio",
            "textbook_max_diff",
            "engine_max_diff",
        }


def test_numerical_gradient_is_slower_than_backprop(quick_json: dict) -> None:
    for result in quick_json["results"]:
        assert result["ratio"] > 1


def test_parameters_and_forward_passes_are_counted(quick_json: dict) -> None:
    first = quick_json["results"][0]
    assert first["parameters"] == 30 * 3 + 3 + 3 * 10 + 10
    assert first["textbook"]["forward_passes"] == 2 * first["parameters"]
    assert first["engine"]["forward_passes"] >= 4 * first["parameters"]


def test_quick_mode_marks_extrapolated_numbers(quick_json: dict) -> None:
    for result in quick_json["results"]:
        assert result["textbook"]["extrapolated"] is result["diff_sampled"] is True
        assert result["backprop"]["extrapolated"] is False


def test_numerical_gradients_agree_with_backprop(quick_json: dict) -> None:
    for result in quick_json["results"]:
        assert result["textbook_max_diff"] < 1e-6
        assert result["engine_max_diff"] < 1e-6


def test_csv_has_a_header_and_one_row_per_size() -> None:
    result = run("--quick", "--csv", *TINY)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["hidden_size"] for row in rows] == ["3", "6"]
    assert float(rows[0]["ratio"]) > 1


def test_table_marks_extrapolation_and_explains_it() -> None:
    result = run("--quick", *TINY)
    assert result.returncode == 0, result.stderr
    assert "textbook/backprop" in result.stdout
    assert "~" in result.stdout and "extrapolated" in result.stdout
    assert result.stderr == ""  # no progress line when stderr is not a terminal


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "speed.png"
    result = run("--quick", "--json", "--plot", str(path), *TINY)
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)  # the plot message goes to stderr, not into the JSON
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _without(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )


def test_plot_without_matplotlib_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _without("matplotlib", monkeypatch)
    assert cli.main(["speed", "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "gradcheck[plot]" in err


def test_train_without_scikit_learn_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _without("sklearn", monkeypatch)
    assert cli.main(["speed", "--train"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "gradcheck[digits]" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--sizes", "5,x"],
        ["--sizes", "0"],
        ["--batch", "-3"],
        ["--plot", "speed.jpg"],
        ["--json", "--csv"],
    ],
)
def test_bad_speed_options_exit_2_with_one_line(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


# --- the measuring module ----------------------------------------------------------------------


def test_full_measurement_is_not_extrapolated() -> None:
    comparison = speed.compare_speed(TINY_CONFIG)
    (result,) = comparison.results
    assert not result.textbook.extrapolated and not result.engine.extrapolated
    assert not result.diff_sampled and result.compared_elements == result.parameters


def test_progress_is_reported_through_the_callback() -> None:
    messages: list[str] = []
    speed.compare_speed(TINY_CONFIG, progress=messages.append)
    assert any("backprop" in m for m in messages) and any("textbook" in m for m in messages)


def test_fast_mode_support_gives_a_reason() -> None:
    support = speed.fast_mode_support()
    assert isinstance(support.available, bool) and support.reason


@pytest.mark.parametrize("sampled", [False, True])
def test_measuring_leaves_the_parameters_bit_identical(sampled: bool) -> None:
    net = TwoLayerNet(6, 4, 3, seed=0)
    x, t = speed.synthetic_mnist(np.random.default_rng(1), 6, 3, 5)
    before = {key: value.copy() for key, value in net.params.items()}
    plan = speed._sample_plan(net, sampled, samples=10)
    speed._textbook(net, x, t, plan, sampled)
    speed._engine(net, x, t, plan, sampled)
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, before[key])
        assert net.layers[f"Affine{key[1]}"].__dict__[key[0]] is value  # still shared


def test_synthetic_data_looks_like_mnist() -> None:
    x, t = speed.synthetic_mnist(np.random.default_rng(0))
    assert x.shape == (100, 784) and x.min() >= 0 and x.max() <= 1
    assert t.shape == (100,) and set(np.unique(t)) <= set(range(10))


def test_config_rejects_empty_sweep() -> None:
    with pytest.raises(ValueError, match="hidden_sizes"):
        speed.SpeedConfig(hidden_sizes=())


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn")
def test_training_on_digits_reaches_a_useful_accuracy() -> None:
    result = speed.train_digits(speed.TrainingConfig(hidden_size=20, epochs=5))
    assert result.test_accuracy > 0.5
    assert result.numerical_seconds > result.backprop_seconds
    assert result.numerical_step.extrapolated
