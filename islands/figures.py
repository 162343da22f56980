"""Figures of a population, computed in one place for every algorithm and genome kind.

Statistics (best, mean, index of the best; NaN ranks as the worst), spread, the share of
foreign lineages, the count of lineages per origin island, the centroid and one genome (the
champion) are read from a `Population` view (`Algorithm.population(state)`); what depends on
the kind of genome (distance, mean, a genome's record) is asked of `Population.kind`.

Torch columns (vector algorithms) are read through one `tolist()` for the usual sizes: inside
the island loop at P=100 that costs ~5 us where five torch ops cost ~50 us and numpy,
interleaved with torch, more. Numpy columns (NEAT) use numpy. Either way the figures are the
ones the history and status files have always recorded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from islands import operators as ops
from islands.population import Population

_SMALL = 4096  # up to this many individuals, plain Python on one host list beats torch


@dataclass(frozen=True)
class Stats:
    """Per-generation summary of a population."""

    best: float
    mean: float
    best_index: int


def stats(pop: Population) -> Stats:
    """Best (NaN ranks last, the first of ties), its index, and the mean of the finite fitness."""
    fitness = pop.fitness
    assert fitness is not None, "stats need an evaluated population"
    if isinstance(fitness, np.ndarray):
        f = np.where(np.isnan(fitness), -np.inf, fitness)
        best = int(np.argmax(f))
        finite = fitness[np.isfinite(fitness)]
        return Stats(best=float(f[best]), mean=float(finite.mean()) if finite.size else float("nan"),
                     best_index=best)
    if 0 < fitness.numel() <= _SMALL:
        vals = fitness.tolist()
        total = sum(vals)
        if math.isfinite(total):  # no NaN and no infinity: the common case
            top = max(vals)
            return Stats(best=top, mean=total / len(vals), best_index=vals.index(top))
        ranked = [v if v == v else -math.inf for v in vals]  # NaN ranks last
        top = max(ranked)
        kept = [v for v in vals if math.isfinite(v)]
        return Stats(best=top, mean=sum(kept) / len(kept) if kept else math.nan,
                     best_index=ranked.index(top))
    fit = ops.rankable(fitness)
    index = int(torch.argmax(fit))
    finite_t = fitness[torch.isfinite(fitness)]
    mean = float(finite_t.mean()) if finite_t.numel() else float("nan")
    return Stats(best=float(fit[index]), mean=mean, best_index=index)


def diversity(pop: Population) -> float:
    """Spread of the population in [0, 1]-ish units (the kind's own distance)."""
    return pop.kind.diversity(pop)


def foreign_share(pop: Population, island: int) -> float:
    """Share of the population whose lineage began on another island."""
    origin = pop.origin
    if isinstance(origin, np.ndarray):
        return float((origin != island).mean())
    if 0 < origin.numel() <= _SMALL:
        return (origin.numel() - origin.tolist().count(island)) / origin.numel()
    return float((origin != island).double().mean())


def origins(pop: Population) -> dict[int, int]:
    """How many individuals descend from each origin island (island number -> count), sorted.

    The archipelago's lineage diversity (`islands.status.lineage`) is built from these.
    """
    origin = pop.origin
    if isinstance(origin, np.ndarray):
        keys, counts = np.unique(origin, return_counts=True)
        return dict(zip(keys.tolist(), counts.tolist()))
    if origin.numel() <= _SMALL:
        tally: dict[int, int] = {}
        for o in origin.tolist():
            tally[o] = tally.get(o, 0) + 1
        return dict(sorted(tally.items()))  # sorted, as torch.unique's
    keys_t, counts_t = torch.unique(origin, return_counts=True)
    return dict(zip(keys_t.tolist(), counts_t.tolist()))


def centroid(pop: Population) -> np.ndarray | None:
    """Mean genome in normalised units, for between-island diversity (None if meaningless)."""
    return pop.kind.centroid(pop)


def genome(pop: Population, index: int) -> Any:
    """One genome as numpy data (the champion's, for reports)."""
    return pop.kind.genome(pop, index)
