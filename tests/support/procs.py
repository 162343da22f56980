"""Helpers for tests that run real island processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parent.parent


def island_env() -> dict[str, str]:
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), str(REPO), env.get("PYTHONPATH", "")])
    return env


def evolve_cmd(island: str, run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "islands", "evolve", island, "--run-dir", str(run_dir), "--quiet", *args]


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=island_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=island_env(), capture_output=True, text=True, timeout=timeout)


def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def status_generation(run_dir: Path, island: str) -> int:
    try:
        status = RunDir(run_dir).read_status(island)
    except (FormatError, OSError):
        return -1
    return -1 if status is None else int(status["generation"])


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a child's whole session and reap it (teardown)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
