"""Step 4 of a check: the verdict on every element, and the words for it.

:mod:`~gradcheck.verdict.compare` gives each element a status (match, mismatch, kink,
unresolved) from its own tolerance and error estimate; :mod:`~gradcheck.verdict.patterns`
recognises the shape of a bug (×N, a sign, a transpose, one element, a swap);
:mod:`~gradcheck.verdict.summary` turns a variable's statuses into its report row and the
check's one-sentence conclusion.
"""
