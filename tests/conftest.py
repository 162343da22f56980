"""Shared test fixtures: child processes that are always reaped, Hypothesis profiles."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import settings

from support import still_running
from support.procs import Reaper, child_env

# "ci" is the default; HYPOTHESIS_PROFILE=nightly runs many more examples.
settings.register_profile("ci", deadline=None)
settings.register_profile("nightly", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    """A test running over ISLANDS_TEST_STILL_RUNNING seconds (60) is named on the terminal."""
    still_running.register(config)


@pytest.fixture
def reaper():
    """A `support.procs.Reaper`: every child's process group is SIGKILLed and reaped at teardown."""
    r = Reaper()
    yield r
    r.close()


@pytest.fixture
def spawn(reaper):
    """Start ``python -c code *args`` in its own session; every group is killed at teardown.

    Returns a function (code, *args, env=None, **popen_kwargs) -> Popen. `env` is added to
    ours, and the working tree and tests/support are on PYTHONPATH (see `procs.child_env`).
    """

    def start(code: str, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
        return reaper.start([sys.executable, "-c", code, *args], env=child_env(**(env or {})), **kwargs)

    return start
