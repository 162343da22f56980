"""A plug-in problem for process tests: Rastrigin that sleeps per evaluation.

Loaded by real island processes through `--problem slow_problem:make` (tests put this folder
on PYTHONPATH), so a test can SIGKILL an island at a chosen generation without any hook in
the engine itself.
"""
from __future__ import annotations

import dataclasses
import time

from islands.problems import Problem, make_problem


def make(dim: int = 10, delay: float = 0.004) -> Problem:
    base = make_problem("rastrigin", dim)

    def slow(genomes):
        time.sleep(float(delay))
        return base.fn(genomes)

    return dataclasses.replace(base, name="slow-rastrigin", fn=slow, solved_at=None)
