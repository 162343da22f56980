"""Problems an island can optimise: built-in benchmarks and user plug-ins.

Fitness is maximised everywhere; minimisation benchmarks report -f(x).
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
