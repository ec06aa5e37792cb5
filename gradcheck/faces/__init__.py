"""Step 6: the faces people use — the ``gradcheck`` command (:mod:`~gradcheck.faces.cli`),
the pytest plugin (:mod:`~gradcheck.faces.pytest_plugin`) and the hypothesis strategies
(:mod:`~gradcheck.faces.strategies`, imported as :mod:`gradcheck.strategies`).

Faces call :func:`gradcheck.check` and :func:`gradcheck.check_network` and show their
reports; they never compute a gradient. Options are defined once, in
:mod:`gradcheck.options`, and each face turns them into flags or ini keys.
"""
