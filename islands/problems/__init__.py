"""Problems an island can optimise: built-in benchmarks, network tasks and user plug-ins.

Fitness is maximised everywhere; minimisation benchmarks report -f(x).

    base.py         the `Problem` type: plain data plus one vectorised fitness function
    registry.py     finding a problem by name: built-ins, import paths, installed plug-ins
    benchmarks.py   the classic black-box benchmarks
    rotated.py      rotated (non-separable) versions of them
    landscapes.py   deceptive landscapes
    tasks.py        a network task (`Task`) and the problem of evolving a network on it
    control.py      the xor and cartpole tasks
    double_pole.py  double pole balancing, with and without velocities
    gym.py          gymnasium environments as network tasks (`gym:ENV-ID`, the `gym` extra)
    inline.py       a fitness function or `Problem` given as a Python object
    usercode.py     a user's problem code that fails: one line naming the user's file and line
"""
from __future__ import annotations

from islands.problems.base import FitnessFn, Problem
from islands.problems.registry import ENTRY_POINT_GROUP, builtin_names, describe_all, make_problem

__all__ = [
    "ENTRY_POINT_GROUP",
    "FitnessFn",
    "Problem",
    "builtin_names",
    "describe_all",
    "make_problem",
]
