"""The machine a comparison runs on: what to report about it, and a BLAS held to N threads."""

from __future__ import annotations

import importlib
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "processor": platform.machine(),
    }


@contextmanager
def _blas_threads(threads: int | None) -> Iterator[str]:
    """Limit the BLAS to ``threads`` threads for the block; yield how it runs."""
    if threads is None:
        yield "not limited"
        return
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")  # optional, untyped
    except ImportError:
        yield f"not limited (install threadpoolctl to measure with {threads})"
        return
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        yield str(threads)
