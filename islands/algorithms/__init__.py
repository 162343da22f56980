"""Algorithms the island loop can run, chosen by name (`--algorithm`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from islands.algorithms.base import Algorithm, Migrants, Stats
from islands.errors import ConfigError

if TYPE_CHECKING:
    from islands.config import RunConfig
    from islands.problems import Problem

__all__ = ["Algorithm", "Migrants", "Stats", "make_algorithm"]


def make_algorithm(cfg: "RunConfig", problem: "Problem", device: torch.device | str = "cpu") -> Algorithm:
    """The algorithm named by `cfg.algorithm`, configured for `problem` on `device`."""
    if cfg.algorithm == "pure" and getattr(problem, "spec", None) is None:
        raise ConfigError(f"algorithm 'pure' evolves network weights; {problem.name!r} is not a network task "
                          "(try xor, cartpole, double_pole)")
    if cfg.algorithm in ("ga", "pure"):
        from islands.algorithms.ga import GeneticAlgorithm

        if cfg.algorithm_params:
            raise ConfigError(f"algorithm {cfg.algorithm!r} takes no --algorithm-param "
                              f"(got {', '.join(sorted(cfg.algorithm_params))}); its settings are the GA options")
        if problem.genome_kind != "vector":
            raise ConfigError(f"algorithm {cfg.algorithm!r} needs a vector problem; {problem.name!r} is {problem.genome_kind!r}")
        return GeneticAlgorithm(problem, cfg.ga, device)
    if cfg.algorithm == "neat":
        from islands.algorithms.neat import NeatAlgorithm, NeatConfig

        return NeatAlgorithm(problem, NeatConfig.from_params(cfg.algorithm_params), device)
    raise ConfigError(f"algorithm {cfg.algorithm!r} is not available")
