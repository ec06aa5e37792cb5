"""The self-erasing status line on stderr that shows what a slow step is doing."""

from __future__ import annotations

import threading
from typing import IO


class Progress:
    """A self-erasing status line on stderr, shown only for steps that take a moment.

    ``update`` starts a timer; if the step is still running after ``delay`` seconds the
    message appears (and later updates replace it at once). ``clear`` erases the line
    before anything else is printed. Disabled unless stderr is a terminal, so it never
    mixes with redirected output.

    Parameters
    ----------
    stream : text stream
        Where the line is written (stderr).
    enabled : bool
        False makes every method a no-op.
    delay : float, default 0.4
        Seconds a step must run before its message is shown.
    """

    def __init__(self, stream: IO[str], enabled: bool, delay: float = 0.4) -> None:
        self.stream = stream
        self.enabled = enabled
        self.delay = delay
        self._lock = threading.Lock()
        self._message: str | None = None
        self._shown = False
        self._timer: threading.Timer | None = None

    def update(self, message: str) -> None:
        """Show ``message`` now if a line is shown, else once ``delay`` has passed."""
        if not self.enabled:
            return
        with self._lock:
            self._message = message
            if self._shown:
                self._write()
            elif self._timer is None:
                self._timer = threading.Timer(self.delay, self._show)
                self._timer.daemon = True
                self._timer.start()

    def _show(self) -> None:
        with self._lock:
            if self._message is not None:
                self._shown = True
                self._write()

    def _write(self) -> None:
        assert self._message is not None
        self.stream.write(f"\r\033[K{self._message}")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the line (if shown) and forget the message and its timer."""
        if not self.enabled:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._shown:
                self.stream.write("\r\033[K")
                self.stream.flush()
            self._shown = False
            self._message = None
