"""Find the guilty layer: check every layer of a network in place, then the whole.

A net whose gradient check fails says *that* ``W1`` is wrong, not *which* backward made
it wrong. :func:`check_network` runs the net's own forward and backward once, on a deep
copy, recording what every layer receives; then it checks each layer's ``backward`` alone
at exactly those inputs (with :func:`gradcheck.check`), and finally the net's
``gradient()`` end to end. A wrong layer is named with its wrong element; when every
layer is right but the net is not, the composition (the "wiring") is to blame.

The network protocol
--------------------
``net.layers``
    The layers, in forward order: an ordered mapping ``name -> layer`` (the textbook's
    ``OrderedDict``) or a list (layers are then named ``Affine[0]``, ``Relu[1]``, ...).
    Each layer has ``forward(*xs, **kwargs)`` and ``backward(dout)`` (the layer protocol
    of :func:`gradcheck.check`).
``net.lastLayer`` or ``net.last_layer`` (optional)
    The loss layer, ``forward(y, t)``; its targets ``t`` are constants.
``net.gradient(x, t)`` and ``net.loss(x, t)``
    The model protocol: ``gradient`` returns a dict keyed like ``net.params``. The layers
    are traced while ``gradient`` runs (so each is checked in the mode its backward
    really used); a net without ``gradient`` is traced through ``loss`` and has no
    end-to-end check.

The net's ``forward`` may be any code that calls the layers (a residual branch, a
reshape between layers): what is recorded is what each layer's ``forward`` actually
received, positional and keyword arguments (``train=True``) alike. Randomness is held
fixed: a layer is checked from a copy taken just before its call, so a seeded Dropout
draws the very mask the net drew.

Nothing you pass is changed: the trace runs on a deep copy of the net, and the checks
on copies of their own.

>>> import numpy as np, gradcheck
>>> from reference_layers import TwoLayerNet
>>> net, (x, t) = TwoLayerNet.example(np.random.default_rng(0))
>>> report = gradcheck.check_network(net, x, t)
>>> report.passed, report.guilty
(True, None)

The package, in the order of a check: :mod:`~gradcheck.network.protocol` (where a net
keeps its layers, which layer owns each parameter), :mod:`~gradcheck.network.recording`
(one run of the net, every layer call recorded), :mod:`~gradcheck.network.checking`
(:func:`check_network`, step by step) and :mod:`~gradcheck.network.wiring` (what the
recorded run says when every layer is right but the net is not). The report is
:class:`gradcheck.NetworkReport`.
"""

from gradcheck.network.checking import check_network
from gradcheck.network.protocol import exposes_layers, suggestion

__all__ = ["check_network", "exposes_layers", "suggestion"]
