"""Shared test fixtures: child processes that are always reaped, Hypothesis profiles."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

# "ci" is the default; HYPOTHESIS_PROFILE=nightly runs many more examples.
settings.register_profile("ci", deadline=None)
settings.register_profile("nightly", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def spawn():
    """Start ``python -c code *args`` in its own session; every group is killed at teardown.

    Returns a function (code, *args, env=None, **popen_kwargs) -> Popen. The repository
    root is on PYTHONPATH so children import the working tree.
    """
    children: list[subprocess.Popen] = []

    def start(code: str, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
        full_env = {**os.environ, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen([sys.executable, "-c", code, *args], env=full_env,
                                start_new_session=True, **kwargs)
        children.append(proc)
        return proc

    yield start
    for proc in children:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: pgid == pid
            except ProcessLookupError:
                pass
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
