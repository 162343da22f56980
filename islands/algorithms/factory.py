"""Building the algorithm a run names, from the registry (`islands.algorithms.registry`)."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import torch

from islands.algorithms.base import Algorithm
from islands.algorithms.registry import REGISTRY, uses_ga_options
from islands.errors import ConfigError

if TYPE_CHECKING:
    from islands.config import RunConfig
    from islands.problems import Problem


def resolve_dtype(cfg: "RunConfig", problem: "Problem") -> torch.dtype:
    """The dtype a run evolves in: `--dtype` if given, else the problem's own."""
    name = cfg.dtype or problem.dtype
    return torch.float64 if name == "float64" else torch.float32


def make_algorithm(cfg: "RunConfig", problem: "Problem", device: torch.device | str = "cpu") -> Algorithm:
    """The algorithm named by `cfg.algorithm`, configured for `problem` on `device`."""
    entry = REGISTRY.get(cfg.algorithm)
    if entry is None:
        raise ConfigError(f"algorithm {cfg.algorithm!r} is not available")
    if entry.needs_network and entry.genome_kind == "vector" and getattr(problem, "spec", None) is None:
        raise ConfigError(f"algorithm {entry.name!r} evolves network weights; {problem.name!r} is not a network task "
                          "(try xor, cartpole, double_pole)")
    mod = importlib.import_module(entry.module)
    if entry.genome_kind != "vector":  # its own genomes: no dtype, it checks the task itself
        settings = getattr(mod, entry.config).from_params(cfg.algorithm_params)
        return getattr(mod, entry.cls)(problem, settings, device, **entry.kwargs)
    if problem.genome_kind != "vector":
        raise ConfigError(f"algorithm {cfg.algorithm!r} needs a vector problem; {problem.name!r} is {problem.genome_kind!r}")
    dtype = resolve_dtype(cfg, problem)
    if uses_ga_options(entry.name):
        if cfg.algorithm_params:
            raise ConfigError(f"algorithm {cfg.algorithm!r} takes no --algorithm-param "
                              f"(got {', '.join(sorted(cfg.algorithm_params))}); its settings are the GA options")
        return getattr(mod, entry.cls)(problem, cfg.ga, device, dtype, **entry.kwargs)
    settings = getattr(mod, entry.config).from_params(cfg.algorithm_params)
    return getattr(mod, entry.cls)(problem, settings, device, dtype, **entry.kwargs)
