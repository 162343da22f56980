"""Starting island processes that can never outlive the launcher.

Each island is `python -m islands evolve island-XX --run-dir D` in its own process group
(so the terminal's Ctrl+C reaches only the launcher, which forwards one SIGTERM, and a
signal to the group also reaches anything the island started), pinned to its planned
cores, with every thread variable set to 1, stdout and stderr appended to its log file,
and a parent-death signal (`launcher.child_setup`). A CPU island may instead be forked from
the island template (`launcher.template_client`); `Child` supervises both the same way.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import psutil

from islands.status.record import IslandStatus
from launcher.child_setup import child_command, child_env, pdeathsig_wanted, preexec
from launcher.template_client import ForkedProc, ForkServer
from migration_pool.rundir import RunDir


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

    def kill(self) -> None:
        """SIGKILL the island's process group ourselves, whoever its parent is (the template may
        not answer); only while it is unreaped, so its pid and group are still its own."""
        if self.poll() is not None:
            return
        if not isinstance(self.proc, subprocess.Popen):
            self.proc.kill()
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            self.proc.kill()

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
    with rundir.island(island).open_log() as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"--- launcher: start {attempt} of {island} at {stamp}, cores {list(cores)}"
                  f"{', forked from the island template' if forked else ''} ---\n".encode())
    if forked:
        assert forks is not None
        proc: subprocess.Popen | ForkedProc = forks.spawn(
            child_command(island, rundir.root, device), child_env(base, cuda_visible), os.getcwd(),
            {"run_dir": str(rundir.root), "island": island}, tuple(cores), pdeathsig and pdeathsig_wanted(base))
    else:
        with rundir.island(island).open_log() as log:
            proc = subprocess.Popen(
                child_command(island, rundir.root, device),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=child_env(base, cuda_visible), close_fds=True,
                cwd=os.getcwd(),  # explicitly the launcher's: `--problem mymodule:factory` resolves there
                preexec_fn=preexec(os.getpid(), tuple(cores), pdeathsig and pdeathsig_wanted(base)),
            )
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.Error:  # already gone: poll() will report how
        created = time.time()
    return Child(island, proc, created)
