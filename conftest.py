"""Shared test configuration: hypothesis profiles, pytester, common fixtures.

Hypothesis profiles, chosen with the environment variable ``HYPOTHESIS_PROFILE``:

``ci`` (default)
    Quick and deterministic: 25 examples per test, derandomized, no example database, so
    every run draws the same cases and a CI failure reproduces locally.
``dev``
    Thorough: 500 examples per test, randomized, with the example database; run it before
    a release or after touching a strategy (``HYPOTHESIS_PROFILE=dev pytest``).
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# pytester must be registered in the root conftest (pytest refuses it elsewhere).
pytest_plugins = ["pytester"]

settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test id: the same numbers in every run and on every
    xdist worker, different numbers in different tests. (Function-scoped, so not for
    ``@given`` tests; draw from a strategy there.)"""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
