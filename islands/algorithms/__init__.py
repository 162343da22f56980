"""Algorithms the island loop can run, chosen by name (`--algorithm`).

- `ga`: a genetic algorithm (tournaments, SBX, self-adaptive Gaussian mutation, elitism).
- `pure`: the same GA on the weights of a network task (xor, cartpole, ...): "pure" names
  the genome (a fixed network's flattened weights), not a different search. Any vector
  algorithm (`cmaes`, `sep-cmaes`, `de`, `es`) runs on a network task the same way.
- `cmaes` / `sep-cmaes`: CMA-ES with IPOP restarts; `sep-cmaes` adapts a diagonal
  covariance (linear cost in D, for thousands of weights).
- `de`: differential evolution with success-history parameter adaptation (SHADE).
- `es`: a natural-gradient evolution strategy for networks (antithetic sampling).
- `neat`: NEAT topology evolution on network tasks.

Vector algorithms other than the GA take their settings as `--algorithm-param KEY=VALUE`,
each validated by the algorithm's own frozen config.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import torch

from islands.algorithms.base import Algorithm, Migrants, Stats
from islands.errors import ConfigError

if TYPE_CHECKING:
    from islands.config import RunConfig
    from islands.problems import Problem

__all__ = ["Algorithm", "Migrants", "Stats", "make_algorithm", "resolve_dtype"]

# name -> (module, algorithm class, config class with from_params, keyword arguments)
_VECTOR: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "cmaes": ("islands.algorithms.cmaes", "CMAES", "CMAESConfig", {"separable": False}),
    "sep-cmaes": ("islands.algorithms.cmaes", "CMAES", "CMAESConfig", {"separable": True}),
    "de": ("islands.algorithms.de", "DifferentialEvolution", "DEConfig", {}),
    "es": ("islands.algorithms.es", "NaturalES", "ESConfig", {}),
}


def resolve_dtype(cfg: "RunConfig", problem: "Problem") -> torch.dtype:
    """The dtype a run evolves in: `--dtype` if given, else the problem's own."""
    name = cfg.dtype or problem.dtype
    return torch.float64 if name == "float64" else torch.float32


def make_algorithm(cfg: "RunConfig", problem: "Problem", device: torch.device | str = "cpu") -> Algorithm:
    """The algorithm named by `cfg.algorithm`, configured for `problem` on `device`."""
    if cfg.algorithm == "pure" and getattr(problem, "spec", None) is None:
        raise ConfigError(f"algorithm 'pure' evolves network weights; {problem.name!r} is not a network task "
                          "(try xor, cartpole, double_pole)")
    if cfg.algorithm == "neat":
        from islands.algorithms.neat import NeatAlgorithm, NeatConfig

        return NeatAlgorithm(problem, NeatConfig.from_params(cfg.algorithm_params), device)
    if problem.genome_kind != "vector":
        raise ConfigError(f"algorithm {cfg.algorithm!r} needs a vector problem; {problem.name!r} is {problem.genome_kind!r}")
    dtype = resolve_dtype(cfg, problem)
    algo = _vector_algorithm(cfg, problem, device, dtype)
    algo.min_distance = cfg.migration.min_distance  # the near-duplicate rule of `screen`
    return algo


def _vector_algorithm(cfg: "RunConfig", problem: "Problem", device: torch.device | str,
                      dtype: torch.dtype) -> Any:
    """The vector algorithm named by `cfg.algorithm`."""
    if cfg.algorithm in ("ga", "pure"):
        from islands.algorithms.ga import GeneticAlgorithm

        if cfg.algorithm_params:
            raise ConfigError(f"algorithm {cfg.algorithm!r} takes no --algorithm-param "
                              f"(got {', '.join(sorted(cfg.algorithm_params))}); its settings are the GA options")
        return GeneticAlgorithm(problem, cfg.ga, device, dtype)
    if cfg.algorithm in _VECTOR:
        module, cls, config_cls, kwargs = _VECTOR[cfg.algorithm]
        mod = importlib.import_module(module)
        settings = getattr(mod, config_cls).from_params(cfg.algorithm_params)
        return getattr(mod, cls)(problem, settings, device, dtype, **kwargs)
    raise ConfigError(f"algorithm {cfg.algorithm!r} is not available")
