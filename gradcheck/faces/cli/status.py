"""How a ``gradcheck`` command ends: its exit statuses and the usage error.

Exit status: 0 when every check passed, 1 when a gradient problem was found, 2 for a
usage or load error (raised as :class:`UsageError` and printed as one line on stderr).
"""

from __future__ import annotations

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake on the command line or in a target; exit status 2 with one line."""
