"""Starting island processes that can never outlive the launcher.

Each island is `python -m islands evolve island-XX --run-dir D` in its own process group
(so the terminal's Ctrl+C reaches only the launcher, which forwards one SIGTERM, and a
signal to the group also reaches anything the island started), pinned to its planned
cores, with every thread variable set to 1, stdout and stderr appended to its log file.

On Linux the child also arms PR_SET_PDEATHSIG: the kernel SIGKILLs it when the launcher
dies, even by SIGKILL. Setting ISLANDS_TEST_NO_PDEATHSIG=1 in the launcher's environment
disables that; it exists only so that a test can show the guard is what kills orphans.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import psutil

from islands.status.record import IslandStatus
from islands.threads import limit_env
from migration_pool.rundir import RunDir

if TYPE_CHECKING:
    from launcher.template_client import ForkedProc, ForkServer

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
NO_PDEATHSIG_ENV = "ISLANDS_TEST_NO_PDEATHSIG"


def pdeathsig_wanted(env: Mapping[str, str] = os.environ) -> bool:
    return sys.platform.startswith("linux") and env.get(NO_PDEATHSIG_ENV, "") in ("", "0")


def _preexec(parent: int, cores: Sequence[int], pdeathsig: bool) -> Callable[[], None]:
    """The function the child runs between fork and exec (it must not allocate much)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl if pdeathsig else None  # loaded before fork

    def run() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            # prctl is variadic: pass full-width unsigned longs, as the kernel reads them.
            if prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0), ctypes.c_ulong(0),
                     ctypes.c_ulong(0)) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
            # Race: if the launcher died between fork and prctl, the signal was never armed
            # and the child is already an orphan (adopted by init or a subreaper): die now.
            # Note the death signal follows the forking *thread*; the launcher forks from its
            # main thread, which lives as long as the launcher.
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
        if cores and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cores)  # before exec, so torch starts on its own core

    return run


def child_env(base: Mapping[str, str], cuda_visible: str | None = None) -> dict[str, str]:
    """The child's environment: the launcher's, every thread variable 1, its GPU if planned."""
    env = dict(limit_env(dict(base)))
    env.pop(NO_PDEATHSIG_ENV, None)
    if cuda_visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible
    return env


def child_command(island: str, run_dir: Path, device: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "islands", "evolve", island, "--run-dir", str(run_dir)]
    return cmd + ["--device", device] if device else cmd


@dataclass
class Child:
    """One running incarnation of an island."""

    island: str
    proc: subprocess.Popen | ForkedProc  # ForkedProc: forked by the island template
    create_time: float  # psutil's, to recognise the process (pid reuse)
    exit_code: int | None = field(default=None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        """The exit code once it exited (reaping it), else None."""
        if self.exit_code is None:
            self.exit_code = self.proc.poll()
        return self.exit_code

    def signal(self, sig: int) -> None:
        """Send `sig` to the island's process group, if the island has not been reaped.

        Until we reap it, the pid (== its group id) cannot be reused, so this never hits a
        stranger; once reaped, we no longer signal it.
        """
        if self.poll() is not None:
            return
        if not isinstance(self.proc, subprocess.Popen):
            self.proc.send_signal(sig)  # through the template, the only one that reaps it
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:  # setpgid failed? fall back to the process itself
            self.proc.send_signal(sig)

    def owns(self, status: IslandStatus) -> bool:
        """Whether a status file was written by this incarnation (same pid, started after it)."""
        return status.pid == self.pid and (status.started or 0.0) >= self.create_time - 1.0


def spawn_island(
    rundir: RunDir,
    island: str,
    *,
    cores: Sequence[int] = (),
    device: str | None = None,
    cuda_visible: str | None = None,
    env: Mapping[str, str] | None = None,
    attempt: int = 1,
    pdeathsig: bool = True,
    forks: ForkServer | None = None,
) -> Child:
    """Start one island process with its log, affinity, thread limits and death signal.

    With `forks` (and no GPU), the island is forked from that pre-imported template
    (`launcher.template_client`); it raises ForkServerError if the template cannot.
    """
    base = os.environ if env is None else env
    forked = forks is not None and device in (None, "cpu") and cuda_visible is None
    with rundir.open_log(island) as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"--- launcher: start {attempt} of {island} at {stamp}, cores {list(cores)}"
                  f"{', forked from the island template' if forked else ''} ---\n".encode())
    if forked:
        assert forks is not None
        proc: subprocess.Popen | ForkedProc = forks.spawn(
            child_command(island, rundir.root, device), child_env(base, cuda_visible), os.getcwd(),
            {"run_dir": str(rundir.root), "island": island}, tuple(cores), pdeathsig and pdeathsig_wanted(base))
    else:
        with rundir.open_log(island) as log:
            proc = subprocess.Popen(
                child_command(island, rundir.root, device),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=child_env(base, cuda_visible), close_fds=True,
                cwd=os.getcwd(),  # explicitly the launcher's: `--problem mymodule:factory` resolves there
                preexec_fn=_preexec(os.getpid(), tuple(cores), pdeathsig and pdeathsig_wanted(base)),
            )
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.Error:  # already gone: poll() will report how
        created = time.time()
    return Child(island, proc, created)



CHECK_TIMEOUT_S = 300.0


def _check_forked(forks: ForkServer, request: str) -> subprocess.CompletedProcess:
    """`python -m islands.plancheck` forked from the island template, its pipes as files."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="islands-plancheck-") as tmp:
        paths = {k: os.path.join(tmp, k) for k in ("in", "out", "err")}
        with open(paths["in"], "w") as f:
            f.write(request)
        argv = [sys.executable, "-m", "islands.plancheck"]
        proc = forks.spawn(argv, child_env(os.environ), os.getcwd(), paths["out"], (),
                           pdeathsig_wanted(), stdin=paths["in"], stderr=paths["err"])
        try:
            code = proc.wait(timeout=CHECK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            raise
        with open(paths["out"]) as out, open(paths["err"]) as err:
            return subprocess.CompletedProcess(argv, code, out.read(), err.read())


def check_islands_build(config: Mapping[str, object], overrides: Mapping[str, Mapping[str, object]],
                        notes: list[str] | None = None, forks: ForkServer | None = None) -> str | None:
    """Build every island's config in a child (`islands.plancheck`); None if all build, else why not.

    With `notes` (the user typed --dim), the child's notices (a problem that fixes its own
    genome length) are appended there.

    A child, because judging algorithm and problem settings needs torch, which the launcher
    never loads. Used before a new run writes anything, when `--vary` reaches beyond settings
    `RunConfig` checks by itself.
    """
    import json

    from launcher.template_client import ForkServerError

    request = json.dumps({"config": config, "overrides": overrides, "dim_given": notes is not None})
    out: subprocess.CompletedProcess | None = None
    if forks is not None:  # forked from the island template: no torch import of its own
        try:
            out = _check_forked(forks, request)
        except ForkServerError:
            out = None  # the template is unusable: a child of our own, then
        except subprocess.SubprocessError as e:
            return f"cannot check the islands' settings ({e})"
    try:
        out = out or subprocess.run([sys.executable, "-m", "islands.plancheck"], input=request, capture_output=True,
                                    text=True, env=child_env(os.environ), timeout=CHECK_TIMEOUT_S,
                                    start_new_session=True)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot check the islands' settings ({e})"
    try:
        answer = json.loads(out.stdout)
        if notes is not None:
            notes.extend(str(n) for n in answer.get("notes") or ())
        return answer["error"]
    except (ValueError, KeyError, TypeError):
        tail = (out.stderr or "").strip().splitlines()[-1:] or ["no output"]
        return f"cannot check the islands' settings (exit {out.returncode}: {tail[0]})"


EVALUATE_TIMEOUT_S = 600.0


def evaluate_champion(root: Path, episodes: int) -> tuple[bool, str]:
    """Run `islands evaluate ROOT --episodes N` in a child; (succeeded, its last line or why not).

    A child for the same reason as `check_islands_build`: the evaluation runs the policy in torch.
    """
    cmd = [sys.executable, "-m", "islands", "evaluate", str(root), "--episodes", str(episodes)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(os.environ),
                             timeout=EVALUATE_TIMEOUT_S, start_new_session=True)
    except (OSError, subprocess.SubprocessError) as e:
        return False, str(e)
    lines = ((out.stdout if out.returncode == 0 else out.stderr) or "").strip().splitlines()
    return out.returncode == 0, (lines[-1] if lines else f"exit {out.returncode}, no output")
