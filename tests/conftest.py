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


TERMINAL_ENV = ("COLUMNS", "LINES")


def pytest_configure(config):
    """A test running over ISLANDS_TEST_STILL_RUNNING seconds (60) is named on the terminal.

    In a pytest-xdist worker, COLUMNS and LINES are put back as the controller had them: the
    worker finds them set to 80 and 24 by the time it is configured, and `islands status`,
    started by a test, would draw its table for 80 columns instead of the pipe's width."""
    still_running.register(config)
    terminal = getattr(config, "workerinput", {}).get("islands_terminal_env")
    for name, value in (terminal or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist, in the controller: each worker gets this process's COLUMNS and LINES."""
    node.workerinput["islands_terminal_env"] = {name: os.environ.get(name) for name in TERMINAL_ENV}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the groups
def pytest_collection_modifyitems(config, items):
    """Groups for pytest-xdist's `--dist loadgroup` (scripts/test runs the suite on workers):
    every `slurm` test on one worker, one after another, since they share the scheduler's
    queue and nodes and the 3-host cluster (and one crashes and revives a host); the tests of a
    module with a module-scoped fixture (one real run several tests read) on one worker, so
    that run is made once. Every other test goes to whichever worker is free."""
    if hasattr(config, "workerinput"):  # on pytest-xdist workers: the longest tests first, no long tail
        items.sort(key=lambda item: 0 if item.get_closest_marker("slurm") else
                   1 if item.nodeid.startswith("tests/system/") or item.get_closest_marker("slow") else 2)
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))
        elif any(d.scope != "function" for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs
                 if d.baseid):  # the project's own fixtures, not pytest's session-wide ones
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


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
