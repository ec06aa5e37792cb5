"""For the chapter's readers: why backprop beats numerical gradients, and what it does.

:mod:`~gradcheck.teaching.speed` times a numerical gradient against backprop on the
two-layer net (``gradcheck speed``); :mod:`~gradcheck.teaching.graph` records the
computational graph of layer calls and draws it like the book's figures
(:func:`gradcheck.trace`).
"""
