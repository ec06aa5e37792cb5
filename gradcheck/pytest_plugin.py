"""pytest plugin for gradcheck (registered through the ``pytest11`` entry point)."""
