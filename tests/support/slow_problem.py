"""The test plug-in problem: a built-in benchmark that sleeps per evaluation and is never solved.

Island processes load it as `--problem slow_problem:make` (tests/support is on the PYTHONPATH
that `procs.child_env` gives children), so a test can signal an island mid-run, at about a
chosen generation, without any hook in the engine and with almost no CPU on a 2-core machine.
With no target, an island runs exactly `--generations` generations.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from islands.problems import Problem, make_problem

BASES = ("rastrigin", "sphere")


def make(dim: int = 10, delay: float = 0.004, base: str = "rastrigin", barrier: str = "",
         parties: int = 1) -> Problem:
    """`base` ("rastrigin" or "sphere") that sleeps `delay` seconds per evaluation.

    With `barrier` (a directory), the first evaluation waits until `parties` processes have
    reached it, so islands started together evolve together whatever their start-up skew.
    Scoring two genomes is not a party: that is the check every new run makes before it writes
    anything (`islands.plancheck`, in the launcher's own child before any island starts).
    """
    if base not in BASES:
        raise ValueError(f"slow_problem: base must be one of {BASES}, got {base!r}")
    inner = make_problem(base, dim, solved_at=None)
    waited = [not barrier]

    def slow(genomes: Any) -> Any:
        if not waited[0] and len(genomes) > 2:
            waited[0] = True
            _meet(barrier, int(parties))
        time.sleep(float(delay))
        return inner.fn(genomes)

    return dataclasses.replace(inner, name=f"slow-{base}", fn=slow,
                               description=f"{inner.description}; sleeps {delay} s per evaluation")


def _meet(barrier: str, parties: int, timeout: float = 60.0) -> None:
    os.makedirs(barrier, exist_ok=True)
    open(os.path.join(barrier, str(os.getpid())), "w").close()
    deadline = time.monotonic() + timeout  # never hang a test: go on alone after the timeout
    while len(os.listdir(barrier)) < parties and time.monotonic() < deadline:
        time.sleep(0.005)
