"""The island's migration step: publish emigrants, read neighbours, adopt immigrants.

A thin shell between the algorithm's population (which the island's policies select from and
replace into, `islands.policies`) and the pool (which owns the files). Asynchronous (the
default), it never waits for a neighbour: whatever is in the pool now is read, and a
neighbour that has published nothing new simply contributes nothing this time. Synchronous
(`--migration sync`), it reads each source's batch of the event's generation, waiting for it
(`islands.sync_migration`). Migration is best effort: a pool that cannot be written or holds
garbage costs migrants, never the island.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np
import torch

from islands import policies
from islands.algorithms.base import Algorithm
from islands.population import Migrants
from islands.checkpoint import Progress
from islands.config import NO_LEAD_LIMIT, island_number
from islands.status.record import EVENT_COUNTERS, IslandStatus, MigrationEvent
from islands.sync_migration import SyncWaiter
from migration_pool.batches import MigrantBatch, encode_batch
from migration_pool.errors import FormatError
from migration_pool import format_packed as fmt_packed
from migration_pool import topology
from migration_pool.fsinfo import on_shared_filesystem
from migration_pool.lease import LEASE_FILE
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir

DISCOVERY_REFRESH_S = 1.0  # hand-started islands: relist the run's islands at least this often
COLLECT_EVERY = 64  # events between collections of stale temporaries and old batch files


def joined_at(rundir: RunDir, island: str, migration: Any) -> int:
    """How far the run's other islands had got when `island` starts afresh: their highest
    generation on the run's clock, if at least one migration interval (a late joiner), else 0.
    Isolated islands adopt nothing from the others: their start times do not matter."""
    if not migration.every or migration.topology == "none":
        return 0
    furthest = 0
    for other in rundir.island_ids():
        if other == island:
            continue
        try:
            status = IslandStatus.from_body(rundir.island(other).read_status() or {})
        except (FormatError, OSError):
            continue
        furthest = max(furthest, (status.generation or 0) + (status.joined_at or 0))  # the run's clock
    return furthest if furthest >= migration.every else 0


class PoolMigrator:
    """Exchanges migrants for one island through the run's pool directory.

    Counters (cumulative in `progress.migration`, per event in `last_event`) are declared in
    `islands.status.record` (`Migration`, `MigrationEvent`); rejected migrants are duplicates,
    out of bounds, not good enough for the replacement policy, or in a batch published too far
    ahead of this island (`MigrationConfig.max_lead`), and a bad file is counted once.
    """

    def __init__(self, spec: Any, rundir: RunDir, log: Callable[[str], None]) -> None:
        self.spec, self.rundir, self.log = spec, rundir, log
        self.cfg = spec.effective.migration
        self.pool: Pool | None = None
        self.last_event: MigrationEvent | None = None
        # The topology's inputs and answer, kept until they change (`_sources`).
        self._found: tuple[str, ...] | None = None  # the island list they were computed from
        self._everyone: list[str] = []  # every island of the run, sorted: the topology's input
        self._sources_event: int | None = None  # the event they were drawn for (None: stale)
        self._sources_cache: list[str] = []
        self._islands_dir = os.fspath(rundir.island(spec.island).dir.parent)
        self._islands: tuple[str, ...] = ()
        self._islands_sig: tuple[int, ...] | None = None
        self._islands_at = float("-inf")
        self._events = 0  # events in this process: it collects at its first
        self._number = island_number(spec.island)
        self._last_sent: tuple[np.ndarray, ...] | None = None  # the batch in our ring now
        self.stop_requested: Callable[[], bool] = lambda: False  # the loop sets its stop flag here
        self.sync = self.cfg.mode == "sync"
        self._waiter = SyncWaiter(spec, rundir, log, lambda: self.stop_requested()) if self.sync else None
        self._started: set[str] = set()  # sources seen started (or noted as not started)
        self._skip_logged: set[str] = set()  # sources whose sync skip has been logged
        # Generations are the lead's clock; where islands' generations differ in cost (a run
        # that varies the algorithm or population) they are no common clock: no limit there.
        varied = {"algorithm", "population"} & set(spec.overrides)
        self._max_lead = NO_LEAD_LIMIT if varied else self.cfg.max_lead

    def _pool(self, algo: Algorithm, em: Migrants) -> Pool:
        if self.pool is None:
            # Array genomes pin dtype and gene shape; per-genome maps (NEAT) have neither.
            vector = isinstance(em.genomes, np.ndarray)
            genomes = em.genomes if vector else None
            self.pool = Pool(
                self.rundir,
                self.spec.run_id,
                genome_kind=algo.genome_kind,
                dtype=str(genomes.dtype) if vector else None,
                gene_shape=tuple(genomes.shape[1:]) if vector else None,
                warn=lambda message: self.log(f"warning: {message}"),
                # Other hosts see an in-place ring rewrite only once it reached the server.
                durable=on_shared_filesystem(self.rundir.root),
                carry=self.sync,  # a restarted island keeps the batches its readers still need
            )
        return self.pool

    def close(self) -> None:
        """Close the ring files the pool holds open (the island's run has ended)."""
        if self.pool is not None:
            self.pool.close()

    def exchange(self, algo: Algorithm, state: Any, progress: Progress, gen: torch.Generator) -> Any:
        """One migration event at `progress.generation`; updates the counters in `progress`.

        In sync mode it raises `MigrationInterrupted` when the island is asked to stop while
        it waits: the event then did not happen (nothing adopted, nothing counted).
        """
        started = time.perf_counter()
        pop = algo.population(state)
        em = policies.select(pop, self.cfg.migrants, self.cfg.emigrants, gen)
        pool = self._pool(algo, em)
        sources = self._sources(progress.generation)
        self._note_missing(sources)
        skipped: list[str] = []
        if self._waiter is not None:
            self._waiter.wait_for_readers(progress.generation, self._everyone)
            sent = self._publish(pool, em, progress)
            bad_before = pool.rejected
            batches, skipped = self._waiter.read(pool, self._waiter.wants(sources, progress.generation))
            bad_files = pool.rejected - bad_before
            new = [line for line in skipped if line.split(" ", 1)[0] not in self._skip_logged]
            if new:  # once per source: an ended one is skipped at every later event
                self._skip_logged.update(line.split(" ", 1)[0] for line in new)
                self.log(f"{self.spec.island}: generation {progress.generation}: skipped "
                         f"{'; '.join(new)} (later skips of it are counted, not logged)")
        else:
            sent = self._publish(pool, em, progress)
            batches, bad_files = pool.read_new(sources)
        # On the run's clock: an island that joined late (`joined_at`) counts from where the others were.
        now = progress.generation + progress.joined_at
        timely = [b for b in batches if policies.timely(b.generation, now, self._max_lead)]
        incoming = _concat(timely, algo.genome_kind)
        adopted = 0
        if incoming is not None:
            found = policies.screen(pop, incoming, self.cfg.min_distance)
            pop, rows = policies.replace(pop, found, incoming, self.cfg.replacement, gen)
            if rows.size:
                state, adopted = algo.with_population(state, pop, rows), int(rows.size)
        if self._events % COLLECT_EVERY == 0:  # the ring leaves only a past life's files
            pool.collect(self.spec.island, self.cfg.keep_batches)
        self._events += 1
        received = sum(len(b) for b in batches)  # a batch refused as ahead counts as rejected
        event = MigrationEvent(
            sent=sent,
            received=received,
            adopted=adopted,
            rejected=received - adopted,
            bad_files=bad_files,
            skipped=len(skipped),
            sources=tuple(b.source for b in batches),
            seconds=round(time.perf_counter() - started, 6),
        )
        m = progress.migration
        m["events"] = m.get("events", 0) + 1
        for k in EVENT_COUNTERS:
            m[k] = m.get(k, 0) + getattr(event, k)
        m["micros"] = m.get("micros", 0) + int(event.seconds * 1e6)
        m["last_generation"] = progress.generation  # a resumed island must not migrate twice
        for b in batches:  # who received from whom, for the status report's matrix
            key = f"from:{b.source}"
            m[key] = m.get(key, 0) + len(b)
        self.last_event = event
        return state

    def _sources(self, event: int) -> list[str]:
        """The neighbours to read now; islands that appear in the run are discovered.

        The topology is a pure function of the run's islands (and, for "random", of the
        event), so it is computed again only when one of those changed: a planned run's list
        never does, a run started by hand's only when a relisting finds an island it did not
        know (a late joiner is then a source at that event).
        """
        # A planned run (the manifest's planned_islands) knows its islands from the start; in a
        # run started by hand they are discovered on disk, gaps counted as not yet started, so
        # the neighbours do not depend on the order in which the islands were started.
        found = self.spec.planned or self._discovered()
        if found is not self._found and found != self._found:  # the first, or a new listing
            if self.spec.planned:
                everyone = sorted({*self.spec.planned, self.spec.island})
            else:
                everyone = sorted(topology.assumed((*found, self.spec.island)))
            if everyone != self._everyone:  # e.g. a late joiner numbered above every island
                self._everyone, self._sources_event = everyone, None
        self._found = found
        if self._sources_event is None or (self.cfg.topology == "random" and event != self._sources_event):
            self._sources_cache = topology.neighbours(
                self.spec.island, self._everyone, self.cfg.topology,
                seed=self.spec.config.seed, event=event,
            )
            self._sources_event = event
        return self._sources_cache

    def _note_missing(self, sources: list[str]) -> None:
        """One line, once per source, when a source this island reads has never started
        (no status, no lease: a hand-started archipelago with a gap, or a planned island that
        failed to start): its migrants will be missing until it does."""
        if self.spec.planned:  # the launcher reports an island that failed to start
            return
        for source in sources:
            if source in self._started:
                continue
            self._started.add(source)  # noted once, whether started or not
            files = self.rundir.island(source)
            if not (files.status_path.exists() or files.dir.joinpath(LEASE_FILE).exists()):
                self.log(f"note: {self.spec.island} reads {source}, which has not started")

    def _discovered(self) -> tuple[str, ...]:
        """The islands with a directory in the run, relisted only when that directory changes.

        One stat replaces the listing at most events. Adding or removing an island's
        directory changes the directory's link count at once; other changes show in its
        mtime, which two changes within one timestamp tick may leave equal (and which another
        host's NFS client may cache), so the listing is also refreshed every
        DISCOVERY_REFRESH_S: a new island is found by then at worst, whatever the stat says.
        """
        try:
            st = os.stat(self._islands_dir)
            sig: tuple[int, ...] | None = (st.st_ino, st.st_nlink, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            sig = None
        now = time.monotonic()
        if sig is None or sig != self._islands_sig or now - self._islands_at > DISCOVERY_REFRESH_S:
            # Stat first, list second: a change in between shows as a new signature next time.
            self._islands = tuple(self.rundir.island_ids())
            self._islands_sig, self._islands_at = sig, now
        return self._islands

    def _publish(self, pool: Pool, em: Migrants, progress: Progress) -> int:
        """Publish the emigrants with finite fitness (and, for array genomes, finite genes: the
        format refuses a batch holding one that is not); returns how many were published.

        An I/O error (disk full, directory removed) is warned about and counted in
        `publish_errors`: the island goes on evolving without sending this time.
        """
        generation = progress.generation
        fitness = np.asarray(em.fitness, dtype=np.float64)
        genomes, origin, birth, lineage = em.genomes, em.origin, em.birth, em.lineage
        vector = isinstance(genomes, np.ndarray) and genomes.ndim >= 1 and len(genomes) == len(fitness)
        # The format refuses NaN/inf fitness and genes: a batch finite throughout (the usual
        # one) is cleared at once, otherwise its rows are sorted out one by one.
        if vector and fitness.size and bool(np.isfinite(fitness).all()) and bool(np.isfinite(genomes).all()):
            ok = None
        else:
            finite = np.isfinite(fitness)
            if vector:
                finite &= np.isfinite(genomes.reshape(len(finite), -1)).all(axis=1)
            ok = np.flatnonzero(finite)
            if ok.size == 0:
                return 0
        if ok is not None and ok.size < fitness.size:
            # Vector genomes are one array; other kinds (NEAT) a list of per-genome maps.
            genomes = genomes[ok] if isinstance(genomes, np.ndarray) else [genomes[i] for i in ok]
            origin, birth, lineage = (np.asarray(a)[ok] for a in (origin, birth, lineage))
            fitness = fitness[ok]
        if isinstance(genomes, np.ndarray):
            sending = (genomes, fitness, np.asarray(origin), np.asarray(birth), np.asarray(lineage))
            last = self._last_sent
            # Sync readers ask for a batch per generation: a sync island always publishes.
            # Fitness first: one comparison tells a changed batch (nearly every event) apart.
            if not self.sync and last is not None and fitness.shape == last[1].shape \
                    and bool((fitness == last[1]).all()) and all(
                    a.shape == b.shape and np.array_equal(a, b) for a, b in zip(sending, last)) \
                    and pool.ring_intact(self.spec.island):
                # The same emigrants as last time (a converged elite): the ring still holds
                # them, so neighbours find its header unchanged and neither decode nor screen.
                return 0
        try:
            if isinstance(genomes, np.ndarray):  # packed straight from the arrays (schema 2)
                data = fmt_packed.encode_vector_batch(
                    run_id=self.spec.run_id, source=self._number, generation=generation,
                    created=time.time(), genome_kind=pool.genome_kind, genomes=genomes,
                    fitness=fitness, origin=np.asarray(origin), birth=np.asarray(birth),
                    lineage=np.asarray(lineage))
            else:
                data = encode_batch(MigrantBatch(
                    run_id=self.spec.run_id, source=self.spec.island, generation=generation,
                    created=time.time(), genome_kind=pool.genome_kind, genomes=genomes,
                    fitness=fitness, origin=np.asarray(origin),
                    birth=np.asarray(birth).astype(np.int64, copy=False),
                    lineage=np.asarray(lineage).astype(np.int64, copy=False)))
            pool.publish_ring(self.spec.island, generation, data)
            if isinstance(genomes, np.ndarray):
                # No copies: the emigrants are copies already (`GenomeKind.take`), this
                # event's alone, and nothing writes into them after this.
                self._last_sent = sending
        except OSError as e:
            self.log(f"warning: cannot publish the migrants of generation {generation}: {e}")
            m = progress.migration
            m["publish_errors"] = m.get("publish_errors", 0) + 1
            return 0
        return int(fitness.size)


def _concat(batches: list[MigrantBatch], kind: str) -> Migrants | None:
    if not batches:
        return None
    if len(batches) == 1:  # the batch is ours alone (decoded copies): no need to copy again
        b = batches[0]
        genomes = b.genomes if kind == "vector" else list(b.genomes)
        return Migrants(genomes=genomes, fitness=b.fitness, origin=b.origin, birth=b.birth,
                        lineage=b.lineage)
    if kind == "vector":
        genomes: Any = np.concatenate([b.genomes for b in batches])
    else:
        genomes = [g for b in batches for g in b.genomes]
    return Migrants(
        genomes=genomes,
        fitness=np.concatenate([b.fitness for b in batches]),
        origin=np.concatenate([b.origin for b in batches]),  # island numbers, as decoded
        birth=np.concatenate([b.birth for b in batches]),
        lineage=np.concatenate([b.lineage for b in batches]),
    )
