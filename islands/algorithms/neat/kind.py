"""NEAT genomes as the island's policies and figures see them.

Emigrants leave as per-genome records (the pool's NEAT batch format); an immigrant must pass
the structure check of this run's networks (inputs, outputs, recurrence, size caps, weight
range), must not be a copy of a resident or of an earlier immigrant (by structural
fingerprint), and is re-evaluated here. Diversity is NEAT's own compatibility distance;
graphs of different shapes have no mean, so there is no centroid.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from islands.algorithms.neat import genome as gn
from islands.algorithms.neat import speciation as spc
from islands.population import GenomeKind, Migrants, Population, Screened

_DIVERSITY_SAMPLE = 24


class NeatKind(GenomeKind):
    """Packed NEAT genomes of one algorithm (its network shape, limits and evaluator)."""

    name = "neat"
    seed_always = True

    def __init__(self, algo: Any) -> None:
        self.algo = algo  # a NeatAlgorithm: its config, `check` and `fitness_of`

    def take(self, pop: Population, idx: np.ndarray) -> Migrants:
        return Migrants(
            genomes=[pop.genomes.record(int(i)) for i in idx],
            fitness=pop.fitness[idx].astype(np.float64),
            origin=pop.origin[idx].copy(), birth=pop.birth[idx].copy(), lineage=pop.lineage[idx].copy(),
        )

    def screen(self, pop: Population, incoming: Migrants, min_distance: float) -> Screened:
        """See `GenomeKind.screen`; NEAT has no near-duplicate rule (`min_distance` unused)."""
        records = list(incoming.genomes)
        seen = set(pop.genomes.fingerprints()) if records else set()
        fresh: list[int] = []
        for i, r in enumerate(records):  # a handful of migrants
            if self.algo.check(r) is not None:
                continue
            key = gn.from_records([r]).fingerprints()[0]
            if key not in seen:
                seen.add(key)
                fresh.append(i)
        if not fresh:
            return Screened(None, np.zeros(0), np.zeros(0, dtype=np.int64))
        newcomers = gn.from_records([records[i] for i in fresh])
        fitness = self.algo.fitness_of(newcomers)  # never trust a claimed fitness
        return Screened(newcomers, fitness, np.asarray(fresh, dtype=np.int64))

    def put(self, pop: Population, slots: np.ndarray, found: Screened, chosen: np.ndarray,
            incoming: Migrants) -> Population:
        # Slot i keeps resident i unless an immigrant takes it; provenance travels along.
        size = len(pop.genomes)
        source = np.arange(size)
        source[slots] = size + chosen
        pick = found.rows[chosen]
        return dataclasses.replace(
            pop, genomes=gn.concat([pop.genomes, found.genomes]).take(source),
            fitness=_put(pop.fitness, slots, found.fitness[chosen]),
            origin=_put(pop.origin, slots, incoming.origin[pick]),
            birth=_put(pop.birth, slots, incoming.birth[pick]),
            lineage=_put(pop.lineage, slots, incoming.lineage[pick]),
        )

    def diversity(self, pop: Population) -> float:
        """Mean d / (d + threshold) over pairs of an evenly spaced sample: 0 for clones.

        Uses no random numbers: status reports happen at wall-clock times, and drawing from
        the generator there would make a run depend on timing.
        """
        n, cfg = len(pop.genomes), self.algo.cfg
        if n < 2:
            return 0.0
        idx = np.unique(np.linspace(0, n - 1, min(n, _DIVERSITY_SAMPLE)).astype(np.int64))
        sample = pop.genomes.take(idx)
        d = spc.distances(sample, sample, cfg)[np.triu_indices(idx.size, 1)]
        return float(np.mean(d / (d + cfg.compat_threshold)))

    def centroid(self, pop: Population) -> None:
        return None  # graphs of different shapes have no mean

    def genome(self, pop: Population, index: int) -> dict[str, np.ndarray]:
        return pop.genomes.record(index)


def _put(old: np.ndarray, slots: np.ndarray, new: np.ndarray) -> np.ndarray:
    out = old.copy()
    out[slots] = np.asarray(new, dtype=old.dtype)
    return out
