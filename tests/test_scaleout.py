"""Checks on other processes: a process pool, the workers option, a dask cluster.

Every report must equal the serial one: the tasks are shipped by pickling, every task
works on its own working copy, and noise is pooled after merging, so how the work is cut
into tasks changes nothing.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest
from zoo import BROKEN

import gradcheck
from gradcheck import OptionError, UsageError
from gradcheck.engine import executors
from reference_layers import Affine, Convolution, TwoLayerNet


class PlantedNet(TwoLayerNet):
    """A small two-layer net whose ``gradient`` is off in one element of ``W1``, or by
    a factor everywhere (module level, so worker processes can import it)."""

    def __init__(self, *args: Any, factor: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.factor = factor

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        grads = super().gradient(x, t)
        grads["W1"] = grads["W1"] * self.factor
        if self.factor == 1.0:
            grads["W1"][3, 2] += 1e-3 * float(np.sqrt(np.mean(np.square(grads["W1"]))))
        return grads


def _cases() -> dict[str, tuple[Any, tuple[Any, ...], dict[str, Any]]]:
    rng = np.random.default_rng(0)
    layer, inputs = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    data = (rng.standard_normal((6, 40)), rng.integers(0, 5, size=6))
    conv = Convolution(0.3 * rng.standard_normal((2, 2, 3, 3)), np.zeros(2), stride=1, pad=1)
    return {
        "affine full": (layer, inputs, {"mode": "full"}),
        "affine fast": (layer, inputs, {"mode": "fast"}),
        "one element of a net": (PlantedNet(40, 20, 5), data, {"mode": "fast"}),
        "a factor everywhere": (PlantedNet(40, 20, 5, factor=1.01), data, {"mode": "fast"}),
        "conv full": (conv, (rng.standard_normal((2, 2, 5, 5)),), {"mode": "full"}),
    }


def _summary(report: gradcheck.Report) -> list[Any]:
    return [
        (v.name, v.mismatches, v.checked, v.unresolved, [f.index for f in v.worst], v.diagnosis)
        for v in report.variables
    ]


def _assert_same(parallel: gradcheck.Report, serial: gradcheck.Report) -> None:
    assert parallel.passed == serial.passed
    assert _summary(parallel) == _summary(serial)
    for ours, theirs in zip(parallel.variables, serial.variables, strict=True):
        np.testing.assert_array_equal(ours.status, theirs.status)
        np.testing.assert_allclose(
            np.nan_to_num(ours.numerical), np.nan_to_num(theirs.numerical), rtol=0, atol=1e-8
        )


@pytest.fixture(scope="module")
def pool() -> Any:
    with ProcessPoolExecutor(max_workers=2) as executor:
        yield executor


@pytest.mark.parametrize("name", sorted(_cases()))
def test_a_process_pool_gives_the_serial_report(name: str, pool: Any) -> None:
    obj, inputs, options = _cases()[name]
    serial = gradcheck.check(obj, *inputs, **options)
    parallel = gradcheck.check(obj, *inputs, executor=pool, **options)
    _assert_same(parallel, serial)


def test_the_workers_option_runs_on_a_pool_of_processes() -> None:
    obj, inputs, options = _cases()["one element of a net"]
    serial = gradcheck.check(obj, *inputs, **options)
    try:
        parallel = gradcheck.check(obj, *inputs, workers=2, **options)
        assert executors._POOLS[2] is executors.executor_for(None, 2, None)
    finally:
        executors.shutdown()
    _assert_same(parallel, serial)
    assert parallel.options["workers"] == 2


def test_one_way_of_running_in_parallel_at_a_time(pool: Any) -> None:
    with pytest.raises(OptionError, match="executor and workers"):
        gradcheck.check(
            Affine(np.ones((2, 2)), np.zeros(2)), np.ones((3, 2)), executor=pool, workers=2
        )
    with pytest.raises(OptionError, match="workers"):
        gradcheck.check(Affine(np.ones((2, 2)), np.zeros(2)), np.ones((3, 2)), workers=0)


def test_a_class_processes_cannot_import_is_a_clear_error(pool: Any) -> None:
    class Local(Affine):
        pass

    rng = np.random.default_rng(0)
    with pytest.raises(UsageError, match="importable"):
        gradcheck.check(
            Local(rng.standard_normal((4, 3)), np.zeros(3)),
            rng.standard_normal((5, 4)),
            mode="full",
            executor=pool,
        )


def test_the_command_line_takes_workers() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gradcheck",
            "check",
            "reference_layers:Sigmoid",
            "--workers",
            "2",
            "--mode",
            "full",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def cluster() -> Any:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.mark.parametrize("name", ["one element of a net", "conv full"])
def test_a_dask_cluster_gives_the_serial_report(name: str, cluster: Any) -> None:
    from distributed import Client

    obj, inputs, options = _cases()[name]
    serial = gradcheck.check(obj, *inputs, **options)
    with Client(cluster) as client:
        parallel = gradcheck.check(obj, *inputs, executor=client, **options)
    _assert_same(parallel, serial)


def test_the_scheduler_option_connects_to_a_dask_scheduler(cluster: Any) -> None:
    obj, inputs, options = _cases()["a factor everywhere"]
    serial = gradcheck.check(obj, *inputs, **options)
    try:
        parallel = gradcheck.check(obj, *inputs, scheduler=cluster.scheduler_address, **options)
    finally:
        executors.shutdown()
    _assert_same(parallel, serial)
    assert parallel.options["scheduler"] == cluster.scheduler_address
