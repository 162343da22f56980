"""Stopping an island by signal: a person's Ctrl+C, a scheduler's SIGTERM or time-limit warning.

The island loop checks a `StopFlag` once per generation; `install_stop_handlers` sets it from
signal handlers. Every stop ends with a checkpoint and exit code EXIT_STOPPED (75, see
`islands.exit_codes`), except a second SIGINT, which exits at once. Kept out of
`islands.island` so the rules are in one short place (re-exported there).
"""
from __future__ import annotations

import atexit
import os
import signal
from typing import Any


class StopFlag:
    """A stop request, set from a signal handler; the loop checks it once per generation.

    `signum` is the first signal that asked for the stop (None for a library caller's
    `request()`); `time_limit` says it was a scheduler's warning that the job's time is
    nearly up (SIGUSR1, e.g. sbatch `--signal=B:USR1@120`), after which the island may
    requeue itself (`run_island(on_time_limit=...)`).
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self.interrupts = 0  # SIGINTs received: the second one exits at once

    def __bool__(self) -> bool:
        return self.requested

    def request(self, signum: int | None = None) -> None:
        """Ask the loop to stop after the current generation; only the first request counts."""
        if not self.requested:
            self.requested, self.signum = True, signum

    @property
    def time_limit(self) -> bool:
        return self.signum == signal.SIGUSR1


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


def install_stop_handlers(stop: StopFlag) -> None:
    """SIGINT, SIGTERM and SIGUSR1 ask the island to finish its generation, checkpoint and exit
    (EXIT_STOPPED). Repeats are idempotent, since a scheduler may send SIGTERM more than once
    (SLURM signals every process of a step, then again at its kill wait); only a second SIGINT,
    a person pressing Ctrl+C again, exits at once (128 + SIGINT, no checkpoint)."""

    def handler(signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT:
            stop.interrupts += 1
            if stop.interrupts > 1:
                os._exit(128 + signum)
        stop.request(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


def ignore_stop_signals() -> None:
    """After the loop has ended (checkpoint and status written): ignore SIGTERM and SIGUSR1
    from interpreter exit on.

    Python puts back the default action of every signal it handled while the interpreter
    shuts down, so a scheduler's late repeat of SIGTERM would otherwise turn a clean exit 75
    (or 0) into a death by signal. The ignoring starts in an atexit hook (atexit runs before
    that reset; until then the stop handlers absorb repeats), not at once: an ignored signal is
    inherited by every program started later, and a process that ran an island in-process
    (tests, notebooks) must not pass that on. SIGINT keeps its handler: a person's Ctrl+C
    still ends a slow shutdown.
    """
    global _IGNORING_AT_EXIT
    if not _IGNORING_AT_EXIT:
        atexit.register(_ignore_now)
        _IGNORING_AT_EXIT = True


_IGNORING_AT_EXIT = False


def _ignore_now() -> None:
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_IGN)
