"""The island's migration step: publish emigrants, read neighbours, adopt immigrants.

A thin shell between the algorithm (which picks and merges genomes) and the pool (which
owns the files). It never waits for a neighbour: whatever is in the pool now is read, and a
neighbour that has published nothing new simply contributes nothing this time.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch

from islands.algorithms.base import Algorithm, Migrants
from islands.checkpoint import Progress
from islands.config import island_id, island_number
from migration_pool import format as fmt
from migration_pool import topology
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir


class PoolMigrator:
    """Exchanges migrants for one island through the run's pool directory."""

    def __init__(self, spec: Any, rundir: RunDir, log: Callable[[str], None]) -> None:
        self.spec, self.rundir, self.log = spec, rundir, log
        self.cfg = spec.effective.migration
        self.pool: Pool | None = None
        self.last_event: dict[str, Any] | None = None

    def _pool(self, algo: Algorithm, em: Migrants) -> Pool:
        if self.pool is None:
            genomes = np.asarray(em.genomes)
            self.pool = Pool(
                self.rundir,
                self.spec.run_id,
                genome_kind=algo.genome_kind,
                dtype=str(genomes.dtype) if algo.genome_kind == "vector" else None,
                gene_shape=tuple(genomes.shape[1:]) if algo.genome_kind == "vector" else None,
            )
        return self.pool

    def exchange(self, algo: Algorithm, state: Any, progress: Progress, gen: torch.Generator) -> Any:
        """One migration event at `progress.generation`; updates the counters in `progress`."""
        started = time.perf_counter()
        em = algo.emigrants(state, self.cfg.migrants, self.cfg.emigrants, gen)
        pool = self._pool(algo, em)
        pool.publish(fmt.MigrantBatch(
            run_id=self.spec.run_id,
            source=self.spec.island,
            generation=progress.generation,
            created=time.time(),
            genome_kind=algo.genome_kind,
            genomes=em.genomes,
            fitness=np.asarray(em.fitness, dtype=np.float64),
            origin=tuple(island_id(int(n)) for n in em.origin),
            birth=np.asarray(em.birth, dtype=np.int64),
            lineage=np.asarray(em.lineage, dtype=np.int64),
        ))
        everyone = sorted(set(self.spec.planned) | set(self.rundir.island_ids()) | {self.spec.island})
        sources = topology.neighbours(
            self.spec.island, everyone, self.cfg.topology,
            seed=self.spec.config.seed, event=progress.generation,
        )
        batches, bad_files = pool.read_new(sources)
        incoming = _concat(batches, algo.genome_kind)
        adopted = 0
        if incoming is not None:
            state, adopted = algo.immigrate(state, incoming, self.cfg.replacement, gen)
        pool.collect(self.spec.island, self.cfg.keep_batches)
        received = 0 if incoming is None else len(incoming)
        event = {
            "sent": len(em),
            "received": received,
            "adopted": adopted,
            "rejected": received - adopted,
            "bad_files": bad_files,
            "sources": [b.source for b in batches],
            "seconds": round(time.perf_counter() - started, 6),
        }
        m = progress.migration
        m["events"] = m.get("events", 0) + 1
        for k in ("sent", "received", "adopted", "rejected", "bad_files"):
            m[k] = m.get(k, 0) + event[k]
        m["micros"] = m.get("micros", 0) + int(event["seconds"] * 1e6)
        for b in batches:  # who received from whom, for the status report's matrix
            key = f"from:{b.source}"
            m[key] = m.get(key, 0) + len(b)
        self.last_event = event
        return state


def _concat(batches: list[fmt.MigrantBatch], kind: str) -> Migrants | None:
    if not batches:
        return None
    if kind == "vector":
        genomes: Any = np.concatenate([b.genomes for b in batches])
    else:
        genomes = [g for b in batches for g in b.genomes]
    return Migrants(
        genomes=genomes,
        fitness=np.concatenate([b.fitness for b in batches]),
        origin=np.asarray([island_number(o) for b in batches for o in b.origin], dtype=np.int64),
        birth=np.concatenate([b.birth for b in batches]),
        lineage=np.concatenate([b.lineage for b in batches]),
    )
