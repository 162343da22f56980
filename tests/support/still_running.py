"""A pytest plug-in that names the test still running when one takes long.

`-q` prints a dot only when a test ends, so a two-minute test looks like a hung suite. A
watcher thread in the pytest process (never in the children tests start) writes
"still running: <nodeid> (60 s)" every ISLANDS_TEST_STILL_RUNNING seconds (default 60; 0 turns
it off) that one test (setup, call and teardown) has run. It writes to a duplicate of the
terminal's stdout taken at configure time, when pytest's output capture is suspended, so the
line reaches the terminal even while the test's own output is captured (in a pytest-xdist
worker: of its stderr, the terminal's).
"""
from __future__ import annotations

import os
import threading
import time

import pytest

ENV = "ISLANDS_TEST_STILL_RUNNING"
NAME = "islands-still-running"


class StillRunning:
    """Tracks the running test; a daemon thread reports it every `every` seconds."""

    def __init__(self, every: float, fd: int) -> None:
        self.every = every
        self.fd = fd
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.current: tuple[str, float] | None = None  # (nodeid, time.monotonic() at its start)
        self.closed = False
        self.thread = threading.Thread(target=self._watch, name=NAME, daemon=True)
        self.thread.start()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item):
        with self.lock:
            self.current = (item.nodeid, time.monotonic())
            self.wake.notify()
        try:
            yield
        finally:
            with self.lock:
                self.current = None
                self.wake.notify()

    def pytest_unconfigure(self, config) -> None:
        with self.lock:
            self.closed = True
            self.wake.notify()
        self.thread.join(timeout=5)
        os.close(self.fd)

    def _watch(self) -> None:
        with self.lock:
            while not self.closed:
                if self.current is None:
                    self.wake.wait()
                    continue
                test = self.current
                reported = 0
                # Report at every, 2*every, ... while this same test runs.
                while not self.closed and self.current is test:
                    due = test[1] + (reported + 1) * self.every
                    left = due - time.monotonic()
                    if left > 0:
                        self.wake.wait(left)
                        continue
                    reported += 1
                    line = f"\nstill running: {test[0]} ({reported * self.every:g} s)\n"
                    try:
                        os.write(self.fd, line.encode())
                    except OSError:
                        pass


def register(config) -> None:
    """Registers the watcher once per pytest process (conftest and `-p` may both call this)."""
    every = float(os.environ.get(ENV, "60") or 0)
    if every <= 0 or config.pluginmanager.has_plugin(NAME):
        return
    # A pytest-xdist worker's stdout is /dev/null (its stdout carries the controller's channel);
    # its stderr is the terminal's.
    worker = hasattr(config, "workerinput")
    config.pluginmanager.register(StillRunning(every, os.dup(2 if worker else 1)), NAME)


def pytest_configure(config) -> None:
    """As a plug-in (`-p still_running` with tests/support on the path)."""
    register(config)
