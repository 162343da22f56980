"""A deliberately slow problem for the launcher's process tests.

Island children import it as `--problem test_launcher_slowproblem:make` (the tests put this
folder on PYTHONPATH): each evaluation sleeps `delay` seconds, so an island lives long
enough to be signalled mid-run while using almost no CPU on a 2-core machine. It has no
target, so islands run exactly `--generations` generations.
"""
from __future__ import annotations

import time

import torch

from islands.problems import Problem


def make(dim: int, delay: float = 0.01) -> Problem:
    """Sphere (maximised as -sum x^2) that sleeps `delay` seconds per evaluation."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        time.sleep(delay)
        return -(x ** 2).sum(dim=1)

    return Problem(name="slow_sphere", dim=dim, lower=-5.0, upper=5.0, fn=fn, optimum=0.0)


def test_slow_problem_is_a_sphere_without_target():
    p = make(3, delay=0.0)
    fit = p.evaluate(torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]], dtype=torch.float64))
    assert fit.tolist() == [0.0, -9.0]
    assert p.solved_at is None
