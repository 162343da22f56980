"""Is the process that wrote a record still alive? The one rule, for the report and the tests.

A pid alone proves little: the kernel hands a dead process's pid to a newer one, and a killed
child stays a zombie until its parent reaps it. So a pid counts as alive only while it names
a running, non-zombie process created no later than the record's writer started.
"""
from __future__ import annotations

REUSE_SLACK_S = 2.0  # clock rounding between psutil's create_time and time.time()


def pid_alive(pid: int, started: float | None = None) -> bool:
    """Whether `pid` on this host is still the process that started at `started` (Unix time).

    A pid the kernel has handed to a newer process (created after `started`) or a zombie
    (killed, not yet reaped by its parent) counts as not alive. Without `started`, any live
    non-zombie process with that pid does.
    """
    import psutil  # lazy: every `islands status` imports this module; psutil (~20 ms) only for a running island here

    if pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, OverflowError):
        return False
    except psutil.AccessDenied:  # it exists but is not ours to inspect: assume it is the writer
        return True
    return started is None or created <= started + REUSE_SLACK_S
