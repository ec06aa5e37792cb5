"""``python -m gradcheck``: the ``gradcheck`` command."""

from gradcheck.faces.cli import main

raise SystemExit(main())
