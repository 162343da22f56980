"""The test plug-in problem: a built-in benchmark that sleeps per evaluation and is never solved.

Island processes load it as `--problem slow_problem:make` (tests/support is on the PYTHONPATH
that `procs.child_env` gives children), so a test can signal an island mid-run, at about a
chosen generation, without any hook in the engine and with almost no CPU on a 2-core machine.
With no target, an island runs exactly `--generations` generations.

With `turns`, islands started together take turns (see `make`), so what they exchange is the
same whatever the machine's load: a test of real islands can then assert exact counts.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from typing import Any

from islands.problems import Problem, make_problem

BASES = ("rastrigin", "sphere")
PLACE_ENV = "SLOW_PROBLEM_PLACE"  # an island's place in the order of turns: 0, 1, ...
TURN_TIMEOUT_S = 60.0


def make(dim: int = 10, delay: float = 0.004, base: str = "rastrigin", barrier: str = "",
         parties: int = 1, turns: int = 0, rows: int = 1, trace: str = "") -> Problem:
    """`base` ("rastrigin" or "sphere") that sleeps `delay` seconds per evaluation.

    With `barrier` (a directory), the first evaluation waits until `parties` processes have
    reached it, so islands started together evolve together whatever their start-up skew.
    Scoring two genomes is not a party: that is the check every new run makes before it writes
    anything (`islands.plancheck`, in the launcher's own child before any island starts).

    With `turns` as well (how many population evaluations each island makes: its generations
    + 1), the `parties` islands take turns in the order of their `SLOW_PROBLEM_PLACE`
    (0, 1, ...): one island evaluates its population and does everything up to its next
    population evaluation (its migration included) while the others wait. Evaluations of
    fewer than `rows` genomes (immigrants being screened, mid-turn) take no turn. A turn that
    does not come within TURN_TIMEOUT_S raises: the island fails with the reason in its log.

    With `trace` (a file), each evaluation appends a line `evaluate` as it begins, and the
    first wraps the island's handlers of the stop signals (installed by then) so that each
    run of one first appends `signal <number>`. A test then sends a signal while an island
    is inside a given evaluation, and the next once the last was handled (Python merges
    repeats of a signal whose handler has not run yet).
    """
    if base not in BASES:
        raise ValueError(f"slow_problem: base must be one of {BASES}, got {base!r}")
    inner = make_problem(base, dim, solved_at=None)
    waited = [not barrier]
    wrapped = [not trace]
    taking = _Turns(barrier, int(parties), int(turns)) if barrier and int(turns) else None

    def slow(genomes: Any) -> Any:
        check = len(genomes) <= 2  # a new run's check before it writes anything: no party, no trace
        if not wrapped[0] and not check:
            wrapped[0] = True
            _trace_handlers(trace)
        if trace and not check:
            _append(trace, "evaluate")
        if not waited[0] and not check:
            waited[0] = True
            _meet(barrier, int(parties))
        turn = taking is not None and len(genomes) >= int(rows)
        if turn:
            taking.begin()
        time.sleep(float(delay))  # the scenario: a slow evaluation, not a wait for anything
        fitness = inner.fn(genomes)
        if turn:
            taking.end()
        return fitness

    return dataclasses.replace(inner, name=f"slow-{base}", fn=slow,
                               description=f"{inner.description}; sleeps {delay} s per evaluation")


class _Turns:
    """Turn `t` of the run is call `t // parties` of the island at place `t % parties`; a turn
    lasts from that island's population evaluation to its next one. Its end is a file,
    `turns/done-<t>` in the barrier directory, that the next turn waits for."""

    def __init__(self, barrier: str, parties: int, turns: int) -> None:
        self.dir = os.path.join(barrier, "turns")
        os.makedirs(self.dir, exist_ok=True)
        self.parties, self.turns, self.calls = parties, turns, 0
        self.place = int(os.environ[PLACE_ENV])
        if not 0 <= self.place < parties:
            raise ValueError(f"slow_problem: {PLACE_ENV}={self.place} is not a place among {parties}")

    def _turn(self, call: int) -> int:
        return call * self.parties + self.place

    def _done(self, turn: int) -> None:
        open(os.path.join(self.dir, f"done-{turn}"), "w").close()

    def begin(self) -> None:
        if self.calls:
            self._done(self._turn(self.calls - 1))  # our last turn ends here
        turn = self._turn(self.calls)
        if turn == 0:
            return
        previous = os.path.join(self.dir, f"done-{turn - 1}")
        deadline = time.monotonic() + TURN_TIMEOUT_S
        while not os.path.exists(previous):
            if time.monotonic() > deadline:
                raise RuntimeError(f"slow_problem: turn {turn} did not come within "
                                   f"{TURN_TIMEOUT_S:.0f} s ({previous} is missing)")
            time.sleep(0.001)  # polling for the file above

    def end(self) -> None:
        self.calls += 1
        if self.calls == self.turns:  # the island's last evaluation: nothing of it follows
            self._done(self._turn(self.calls - 1))


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def _trace_handlers(path: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("slow_problem: trace= needs the island's loop in the main thread")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        original = signal.getsignal(signum)
        if not callable(original):
            raise RuntimeError(f"slow_problem: no handler of signal {signum} to wrap ({original!r})")

        def record(number: int, frame: Any, original: Any = original) -> None:
            _append(path, f"signal {number}")  # first: the second SIGINT's handler exits at once
            original(number, frame)

        signal.signal(signum, record)


def _meet(barrier: str, parties: int, timeout: float = 60.0) -> None:
    os.makedirs(barrier, exist_ok=True)
    # One file per party: the host's name as well as the pid, since islands on SLURM hosts with
    # a PID namespace each (tests/system/test_slurm_multi_host.py) can have the same pid.
    open(os.path.join(barrier, f"{os.uname().nodename}-{os.getpid()}"), "w").close()
    deadline = time.monotonic() + timeout  # never hang a test: go on alone after the timeout
    while len([f for f in os.listdir(barrier) if f != "turns"]) < parties and time.monotonic() < deadline:
        time.sleep(0.005)  # polling for the files above
