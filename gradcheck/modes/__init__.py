"""Modes: how the elements of one variable are covered by numerical derivatives.

``full`` (:mod:`~gradcheck.modes.full`)
    Every element's derivative, with groups of independent elements moved together when
    a verified sparsity pattern allows (colouring).
``fast`` (:mod:`~gradcheck.modes.fast`)
    A few random directions; a failing one is localised by group testing
    (:mod:`~gradcheck.modes.search`) and the suspects are checked one by one.
``auto`` (:mod:`~gradcheck.modes.auto`)
    Per variable, whichever of the two costs less while still naming wrong elements.

What every mode shares within one check — working copies, the analytic gradients, the
options, the engine chosen per variable (:mod:`~gradcheck.modes.probe`) — is a
:class:`~gradcheck.modes.context.Context`.
"""
