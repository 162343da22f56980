"""Process helpers for tests that run real children (pool writers, lock holders, islands).

Every child runs in its own session (`start_new_session=True`), so a test can kill its whole
group, and `Reaper` (the `reaper` and `spawn` fixtures of conftest.py) kills and reaps whatever
is left at teardown. Children get the working tree and this folder on PYTHONPATH, so an
island finds the test plug-in problem as `--problem slow_problem:make`.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import pickle
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from islands.status.liveness import pid_alive
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parent.parent
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: ours plus `extra`, the working tree and tests/support importable."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), str(SUPPORT), env.get("PYTHONPATH", "")) if p)
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
        # Every group, even one whose leader has exited: its grandchildren may still run there.
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


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
             interval: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy and return its value.

    The deadline only guards against a hang: it fails the test, it never times anything.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def bounded(call: Callable[[], Any], timeout: float = 20.0) -> Any:
    """`call()` in a forked child; its value, or what it raised, comes back pickled.

    For calls that a regression would block forever (a FIFO opened without O_NONBLOCK) or keep
    busy forever (reading /dev/zero): past `timeout` the child is killed and the test fails,
    never the suite hanging nor a stuck thread left behind. What the call changes in memory
    stays in the child: return whatever the test needs to look at.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(r)
            try:
                out: tuple[str, Any] = ("value", call())
            except BaseException as e:  # noqa: BLE001 - handed to the parent
                out = ("error", e)
            try:
                data = pickle.dumps(out)
            except Exception as e:  # noqa: BLE001
                data = pickle.dumps(("error", AssertionError(f"unpicklable result {out!r}: {e}")))
            with os.fdopen(w, "wb") as f:
                f.write(data)
        finally:
            os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"{call} did not return within {timeout} s (blocked or reading forever)")
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise value
    return value


def waits_for_a_child(pid: int) -> bool:
    """Whether `pid` sleeps in wait() for a child, as bash does in its `wait` builtin (Linux:
    /proc/PID/wchan is `do_wait`; it reads 0 while the process runs; dash sleeps in
    sigsuspend instead)."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text().strip() == "do_wait"
    except FileNotFoundError:
        return False


def signal_pending(pid: int, signum: int) -> bool:
    """Whether `signum` is still pending for `pid` (not yet delivered to its handler); False
    once `pid` is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return False
    masks = [int(line.split()[1], 16) for line in lines if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask >> (signum - 1) & 1 for mask in masks)


def alive(pid: int, created: float | None = None) -> bool:
    """Whether `pid` runs and is not a zombie; with `created`, only the process started then
    (the engine's one rule, `islands.status.liveness.pid_alive`)."""
    return pid_alive(pid, created)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a child's whole session and reap it (teardown)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream:
            stream.close()


# ----------------------------------------------------------------------------- islands

def evolve_cmd(island: str, run_dir: Path, *args: str, quiet: bool = True) -> list[str]:
    """`python -m islands evolve`; quiet=False keeps the warnings a test may look for."""
    return [sys.executable, "-m", "islands", "evolve", island, "--run-dir", str(run_dir),
            *(["--quiet"] if quiet else []), *args]


def start(cmd: list[str]) -> subprocess.Popen:
    """Start `cmd` in its own session with text pipes; the caller must `kill_group` it."""
    return subprocess.Popen(cmd, env=child_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


def status_generation(run_dir: Path, island: str) -> int:
    """The island's last published generation, -1 before its first (or mid-replace) status."""
    try:
        status = RunDir(run_dir).island(island).read_status()
    except (FormatError, OSError):
        return -1
    return -1 if status is None else int(status["generation"])


def island_status(run_dir: Path, island: str) -> Any:
    """The island's status as a record (`IslandStatus`), empty while it has none or is being
    replaced (read again on the next poll)."""
    from islands.status.record import IslandStatus

    try:
        body = RunDir(run_dir).island(island).read_status()
    except (FormatError, OSError):
        body = None
    return IslandStatus.from_body(body) if body else IslandStatus()


def sigkill_at_generation(proc: subprocess.Popen, run_dir: Path, generation: int, island: str = "island-00") -> None:
    """Once `island` of `run_dir` has published `generation`, SIGKILL `proc`'s process group (a crash
    mid-run); `proc` is reaped whatever happens."""
    try:
        wait_for(lambda: status_generation(run_dir, island) >= generation, what=f"generation {generation}")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        kill_group(proc)


def signal_at_generation(proc: subprocess.Popen, run_dir: Path, generation: int, signum: int, timeout: float,
                         island: str = "island-00") -> tuple[str, str]:
    """Once `island` of `run_dir` has published `generation`, send `proc` `signum` and read its
    output to the end (within `timeout` s): (stdout, stderr). `proc` is reaped whatever happens."""
    try:
        wait_for(lambda: status_generation(run_dir, island) >= generation, what=f"generation {generation}")
        proc.send_signal(signum)
        return proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)


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
