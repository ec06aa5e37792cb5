"""pytest plugin for gradcheck: a fixture, a marker, options, and opt-in layer collection.

Registered through the ``pytest11`` entry point, so installing gradcheck is enough::

    def test_affine(gradcheck):
        layer, (x,) = Affine.example(np.random.default_rng(0))
        gradcheck(layer, x)                    # raises GradientCheckError on a mismatch

* The ``gradcheck`` fixture checks and asserts; per-call options override everything
  (``gradcheck(layer, x, rtol=1e-4)``).
* ``@pytest.mark.gradcheck(**options)`` overrides options for one test (or a class or
  module, through ``pytestmark``); unknown names stop the run with a usage error.
* Every option of :data:`gradcheck.options.OPTIONS` that can be written as text is a
  flag (``--gradcheck-rtol=1e-6``) and an ini key (``gradcheck_rtol = 1e-6``); the
  command line wins over the ini file.
* ``--gradcheck-layers=MODULE[,MODULE]`` (ini: ``gradcheck_layers``) adds one test per
  layer class and forward/backward function pair, in float64 and float32, at its
  ``example(rng, dtype)`` or at made-up inputs, as the ``gradcheck`` command does.

Precedence, weakest first: defaults, ini file, command line, marker, call.

Seeds: each test gets ``crc32("<configured seed>:<test id>")``, a pure function of the
configured seed and the test id, so a test draws the same upstream gradient alone, in a
full run and on any pytest-xdist worker. A seed given to the marker or the call is used
as is. The plugin holds no mutable state: the configuration is computed once in
``pytest_configure`` and frozen; the running test is known through a context variable
set around each test's protocol.

Importing this module is cheap: the checker, numpy-heavy discovery and hypothesis are
imported inside the hooks and fixtures that need them.

The modules, in the order pytest meets them: :mod:`.configuration` (flags, ini keys,
the session's frozen configuration), :mod:`.settings` (one test's options, seed and
rerun command), :mod:`.fixture` (the ``gradcheck`` fixture) and :mod:`.layers` (the
``--gradcheck-layers`` tests). This package is the plugin pytest registers: it names
every hook and the fixture, so that ``-p no:gradcheck`` turns them all off.
"""

from __future__ import annotations

from gradcheck.faces.pytest_plugin import configuration, fixture, layers, settings
from gradcheck.faces.pytest_plugin.fixture import GradcheckFixture
from gradcheck.faces.pytest_plugin.layers import LayerItem
from gradcheck.faces.pytest_plugin.settings import derive_seed

__all__ = ["GradcheckFixture", "LayerItem", "derive_seed"]

# What pytest finds on this module: every hook and the fixture.
pytest_addoption = configuration.pytest_addoption
pytest_configure = configuration.pytest_configure
pytest_report_header = configuration.pytest_report_header
pytest_pycollect_makeitem = settings.pytest_pycollect_makeitem
pytest_collection_modifyitems = layers.pytest_collection_modifyitems
pytest_runtest_protocol = settings.pytest_runtest_protocol
gradcheck = fixture.gradcheck
