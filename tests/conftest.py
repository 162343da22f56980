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


def _rank(item) -> int:
    """0: a SLURM test; 1: a whole-system or slow one; 2: the rest."""
    if item.get_closest_marker("slurm"):
        return 0
    return 1 if item.nodeid.startswith("tests/system/") or item.get_closest_marker("slow") else 2


def pytest_collection_modifyitems(config, items):
    """On pytest-xdist workers, the files with the longest tests come first, so that they start
    at once and no long test is left to run alone at the end. A file's tests keep their order
    and stay together (a module-scoped fixture is made once)."""
    if hasattr(config, "workerinput"):
        first = {}
        for item in items:
            path = item.nodeid.split("::", 1)[0]
            first[path] = min(first.get(path, 2), _rank(item))
        items.sort(key=lambda item: first[item.nodeid.split("::", 1)[0]])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (scripts/test), with one change: the files named test_slurm*.py share one
    worker, one test after another, as they use the SLURM clusters (one queue each, hosts that a
    test crashes and revives). A test file runs on one worker, so a module-scoped fixture (one
    real run several tests read) is made once and a file's tests never overlap each other."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # files in the workers' order (above), not by their number of tests

    class FilesAndSlurm(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "slurm" if os.path.basename(path).startswith("test_slurm") else path

    return FilesAndSlurm(config, log)


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
