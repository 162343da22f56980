"""Algorithms the island loop can run, chosen by name (`--algorithm`).

The list, with a line about each, is `registry.REGISTRY` (ga, pure, cmaes, sep-cmaes, de, es,
neat); `make_algorithm` builds one. Modules: `base` (the `Algorithm` interface), `vector` and
`vector_kind` (what every real-vector algorithm shares), one module per vector algorithm
(`ga`, `cmaes`, `de`, `es`), `neat/` (topology evolution), `params` (`--algorithm-param`
parsing), `registry` and `factory`. Vector algorithms other than the GA take their settings as
`--algorithm-param KEY=VALUE`, each validated by the algorithm's own frozen config.
"""
from __future__ import annotations

import importlib
from typing import Any

from islands.algorithms.registry import ALGORITHMS, REGISTRY, AlgorithmEntry

__all__ = ["ALGORITHMS", "REGISTRY", "Algorithm", "AlgorithmEntry", "Migrants", "make_algorithm", "resolve_dtype"]

_TORCH_SIDE = {"Algorithm": "islands.algorithms.base", "Migrants": "islands.population",
               "make_algorithm": "islands.algorithms.factory", "resolve_dtype": "islands.algorithms.factory"}


def __getattr__(name: str) -> Any:
    # Lazy: the launcher reads the registry through this package without loading torch.
    if name in _TORCH_SIDE:
        return getattr(importlib.import_module(_TORCH_SIDE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
