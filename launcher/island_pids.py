"""An island process the launcher did not fork itself (the island template did), seen through
/proc/PID/stat: is it still the same process, has it ended and with what code, and how to
signal its process group without ever reaching a stranger.

The template reaps its islands; the launcher needs this when the template cannot be trusted to
(stopped, hung) and to kill islands past the grace period itself. A process is named by its pid
and its start time in clock ticks since boot (field 22), which no later process with the same
pid shares; an island that ended but is not reaped yet is a zombie whose exit status the kernel
shows in field 52 (Linux 3.5 and later).
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass

KILLED = -signal.SIGKILL  # the exit code of an island that vanished without a known status


@dataclass(frozen=True)
class Stat:
    state: str  # R, S, D, T, Z, ...
    start_ticks: int
    exit_status: int | None  # a wait status; None where the kernel does not show it


def read_stat(pid: int) -> Stat | None:
    """The process's state, start time and exit status; None if no process has that pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw.rsplit(b")", 1)[-1].split()  # the name (field 2) may hold spaces and parentheses
    try:
        return Stat(fields[0].decode(), int(fields[19]), int(fields[49]) if len(fields) > 49 else None)
    except (IndexError, ValueError):
        return None


def start_ticks(pid: int) -> int | None:
    st = read_stat(pid)
    return None if st is None else st.start_ticks


def exit_code(status: int) -> int:
    """A wait status as subprocess reports it (negative: the signal that killed it)."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def ended(pid: int, ticks: int | None) -> tuple[bool, int | None]:
    """(whether the process `pid` started at `ticks` has ended, its exit code if known).

    A zombie has ended, with the code the kernel holds for its parent; a pid that is gone, or
    names a later process, has ended with an unknown code (its parent reaped it already).
    """
    st = read_stat(pid)
    if st is None or (ticks is not None and st.start_ticks != ticks):
        return True, None
    if st.state == "Z":
        return True, None if st.exit_status is None else exit_code(st.exit_status)
    return False, None


def kill_group(pgid: int | None, pid: int, ticks: int | None, sig: int) -> bool:
    """Send `sig` to the process group `pgid` of island `pid` (to `pid` alone without one) if
    that island still exists (running, or a zombie nobody reaped: its pid and group id cannot
    have been reused). Returns whether the signal was sent."""
    st = read_stat(pid)
    if st is None or (ticks is not None and st.start_ticks != ticks):
        return False
    try:
        if pgid is not None:
            try:
                os.killpg(pgid, sig)
                return True
            except PermissionError:  # setpgid failed? the process itself, then
                pass
        os.kill(pid, sig)
    except OSError:
        return False
    return True
