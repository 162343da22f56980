"""Stop signals as requests, held from the start of a launch until its summary is written.

While a `StopRequests` is entered, SIGINT, SIGTERM and SIGUSR1 only append to `signals`,
which the launch reads between its steps (planning, supervising, the summary): no signal can
end the launcher in the middle of one, so a stop always ends in summary.json and exit 75,
however many signals a scheduler sends and whenever they come. What repeats mean is the
session's: a second SIGINT kills the islands at once, repeated SIGTERMs change nothing.
Handlers can only be set in the main thread; elsewhere signals keep their handlers.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


class StopRequests:
    """`with StopRequests() as stops:` records stop signals in `stops.signals` (in order), and
    puts the earlier handlers back at the end; `install()` / `restore()` do the same by hand."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self._old: dict[int, Any] = {}

    def install(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        return self

    def restore(self, only: tuple[int, ...] = STOP_SIGNALS) -> None:
        """Put back the handlers of `only` (the others stay requests)."""
        for s in only:
            if s in self._old:
                signal.signal(s, self._old.pop(s))

    def __enter__(self) -> "StopRequests":
        return self.install()

    def __exit__(self, *_exc: object) -> None:
        self.restore()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.signals.append(signum)  # only recorded: the launch acts on it between its steps
