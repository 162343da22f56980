"""How the launcher starts any child process: its environment, its command line, and what it
runs between fork and exec.

Shared by the islands the launcher spawns itself (`launcher.spawn`), the island template
(`launcher.template_client`) and the torch work it hands to children (`launcher.torch_jobs`),
so that every child gets the same thread limits and the same guard against outliving the
launcher.

On Linux a child arms PR_SET_PDEATHSIG: the kernel SIGKILLs it when the launcher dies, even
by SIGKILL. Setting ISLANDS_TEST_NO_PDEATHSIG=1 in the launcher's environment disables that;
it exists only so that a test can show the guard is what kills orphans.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

from islands.threads import limit_env

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
NO_PDEATHSIG_ENV = "ISLANDS_TEST_NO_PDEATHSIG"


def pdeathsig_wanted(env: Mapping[str, str] = os.environ) -> bool:
    return sys.platform.startswith("linux") and env.get(NO_PDEATHSIG_ENV, "") in ("", "0")


def preexec(parent: int, cores: Sequence[int], pdeathsig: bool) -> Callable[[], None]:
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
