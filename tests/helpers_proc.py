"""Process helpers for the pool's multi-process tests.

Every child runs in its own session (`start_new_session=True`) so a test can kill the whole
group, and `Reaper` kills and reaps whatever is left at teardown. Also a plug-in problem for
island processes (`--problem helpers_proc:slow_rastrigin`, with tests/ on PYTHONPATH) that
sleeps per generation, so that concurrently started islands surely overlap in time.
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: the working tree and tests/ importable."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(TESTS), env.get("PYTHONPATH", "")) if p)
    return env


class Reaper:
    """Starts children in their own sessions; `close()` SIGKILLs every group and reaps."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.extra_groups: list[int] = []  # groups whose leader may be gone (grandchildren)

    def start(self, args: list[str], **kwargs: Any) -> subprocess.Popen:
        kwargs.setdefault("env", child_env())
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def python(self, code: str, *args: str, **kwargs: Any) -> subprocess.Popen:
        """`python -c code args...`; stdout is a pipe (see `result`)."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        return self.start([sys.executable, "-c", code, *args], **kwargs)

    def close(self) -> None:
        for pgid in [p.pid for p in self.procs] + self.extra_groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in self.procs:
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def result(proc: subprocess.Popen, timeout: float = 60) -> Any:
    """Wait for a `Reaper.python` child and parse the JSON it printed last."""
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"child exited with {proc.returncode}"
    return json.loads(out.strip().splitlines()[-1])


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll until `predicate()` holds; fail the test (not time it) if it never does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def alive(pid: int) -> bool:
    """Whether `pid` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# ----------------------------------------------------------------------------- privileges

def drop_dac_capabilities() -> None:
    """preexec_fn: the exec'd child runs without CAP_DAC_OVERRIDE/READ_SEARCH.

    Root ignores file modes, so a chmod 000 file is readable to it; dropping these two
    capabilities from the bounding set before exec makes root obey modes like anyone else.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def unreadable_files_possible(probe_dir: Path) -> tuple[bool, Callable[[], None] | None, str]:
    """Whether a child can be made unable to read a chmod 000 file here.

    Returns (possible, preexec_fn to use or None, reason when impossible).
    """
    probe = probe_dir / "probe-unreadable"
    probe.write_bytes(b"x")
    probe.chmod(0)
    code = ("import sys\ntry:\n    open(sys.argv[1], 'rb')\n"
            "except PermissionError:\n    sys.exit(0)\nsys.exit(1)")
    preexec = drop_dac_capabilities if os.geteuid() == 0 else None
    try:
        rc = subprocess.run([sys.executable, "-c", code, str(probe)], preexec_fn=preexec,
                            start_new_session=True, timeout=30).returncode
    except (OSError, subprocess.SubprocessError) as e:  # prctl refused: no CAP_SETPCAP here
        rc = -1
        reason = f"running as root and cannot drop CAP_DAC_OVERRIDE ({e})"
    else:
        reason = "running as root and file modes are not enforced even without DAC capabilities"
    finally:
        probe.unlink()
    return rc == 0, preexec, reason


# ----------------------------------------------------------------------------- plug-in problem

def slow_rastrigin(dim: int = 10, delay: float = 0.004, barrier: str = "", parties: int = 1) -> Any:
    """Rastrigin that sleeps `delay` seconds per evaluation and is never "solved".

    With `barrier` (a directory), the first evaluation waits until `parties` processes have
    reached it, so islands started together evolve together whatever their start-up skew.
    """
    from islands.problems import make_problem

    base = make_problem("rastrigin", dim)
    waited = [not barrier]

    def slow(genomes: Any) -> Any:
        if not waited[0]:
            waited[0] = True
            _meet(barrier, int(parties))
        time.sleep(float(delay))
        return base.fn(genomes)

    return dataclasses.replace(base, name="slow-rastrigin", fn=slow, solved_at=None)


def _meet(barrier: str, parties: int, timeout: float = 60.0) -> None:
    os.makedirs(barrier, exist_ok=True)
    open(os.path.join(barrier, str(os.getpid())), "w").close()
    deadline = time.monotonic() + timeout  # never hang a test: go on alone after the timeout
    while len(os.listdir(barrier)) < parties and time.monotonic() < deadline:
        time.sleep(0.005)
