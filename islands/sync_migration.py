"""Synchronous migration: the waits that make a run a pure function of its seed and settings.

Asynchronous migration (`islands.migration`) reads whatever a neighbour has published by the
time an island gets there, so what an island adopts depends on the machine's timing. In sync
mode (`MigrationConfig.mode`, docs/DESIGN.md "Synchronous migration") an island:

- reads from each source exactly the batch of the source's last due event at or before its
  own (the same generation when both migrate on the same schedule), waiting for it up to
  `sync_timeout` seconds; a source that has ended (finished, or its process gone) or is not
  there in time is skipped, counted and logged, never waited for again at that event;
- before publishing, waits until every island that reads it has moved past the batch the
  publish would overwrite: a ring keeps RING_SLOTS batches, so an island runs at most
  RING_SLOTS - 1 events ahead of its slowest live reader.

Both waits are bounded, poll with a short growing pause, and give up at once when the island
is asked to stop (`MigrationInterrupted`): the loop then stops before the event, and a
resumed island repeats it, so a stop never changes the trajectory.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from islands.config import MigrationConfig, island_seed
from migration_pool import ring, topology
from migration_pool.batches import MigrantBatch
from migration_pool.errors import FormatError
from migration_pool.lease import this_host
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir

POLL_MIN_S, POLL_MAX_S = 0.0005, 0.02  # the pause between looks grows from the first to the second
# A source's status and lease are read at most this often while waiting for it: the rings are
# polled every few ms, but an island's ending changes rarely and costs two file reads to see.
ENDED_EVERY_S = 0.5


class MigrationInterrupted(Exception):
    """The island was asked to stop while it waited: the event did not happen."""


def last_due(mig: MigrationConfig, seed: int, generation: int) -> int | None:
    """The island's latest due migration event at or before `generation` (None: none yet).

    A pure function of the settings and the island's seed (`MigrationConfig.due`), so a
    reader knows which of a source's batches it needs without asking the source.
    """
    if not mig.every or generation <= 0:
        return None
    g = generation - generation % mig.every
    while g > 0 and g >= mig.start:
        if mig.due(g, seed):
            return g
        g -= mig.every
    return None


def ended(rundir: RunDir, island: str, now: float, run_id: str | None = None) -> str | None:
    """Why `island` will publish no more batches (None: it may: running, stopped, or not started).

    A stopped island may be resumed, and one not started yet may start: those are waited for
    (until the deadline); one that finished, or whose process is gone, is not.
    """
    files = rundir.island(island)
    try:
        status = files.read_status()
    except (FormatError, OSError):  # a bad status file says nothing either way
        status = None
    if isinstance(status, dict) and run_id is not None and status.get("run_id") != run_id:
        status = None  # a leftover of another run says nothing of this one
    state = status.get("state") if isinstance(status, dict) else None
    if state == "finished":
        return "finished"
    if state == "stopped":
        return None
    try:
        lease = files.read_lease()
    except (FormatError, OSError):
        lease = None
    if lease is None:
        return "ended" if state == "running" else None  # a running status, no lease: it died
    alive = lease.alive_here() if lease.host == this_host() else lease.fresh(now)
    return None if alive else "process gone"


class SyncWaiter:
    """The two waits of one sync-mode island (see the module docstring)."""

    def __init__(self, spec: Any, rundir: RunDir, log: Callable[[str], None],
                 stop: Callable[[], bool]) -> None:
        self.spec, self.rundir, self.log, self.stop = spec, rundir, log, stop
        self.cfg: MigrationConfig = spec.effective.migration
        self._seeds: dict[str, int] = {}
        self._readers_key: tuple[str, ...] | None = None
        self._readers_cache: list[str] = []
        self._ended_seen: dict[str, tuple[float, str | None]] = {}  # island -> (when asked, answer)

    def _seed(self, island: str) -> int:
        seed = self._seeds.get(island)
        if seed is None:
            seed = self._seeds[island] = island_seed(self.spec.config.seed, island)
        return seed

    def wants(self, sources: Iterable[str], generation: int) -> list[tuple[str, int]]:
        """(source, generation of its batch to read now) for the sources with a batch this
        island has not read at an earlier event."""
        mine = self._seed(self.spec.island)
        before = last_due(self.cfg, mine, generation - 1)  # this island's previous event
        out = []
        for source in dict.fromkeys(sources):
            want = last_due(self.cfg, self._seed(source), generation)
            if want is not None and (before is None or last_due(self.cfg, self._seed(source), before) != want):
                out.append((source, want))
        return out

    def read(self, pool: Pool, wants: list[tuple[str, int]]) -> tuple[list[MigrantBatch], list[str]]:
        """The batches wanted, in the order of `wants`, and a line per source skipped."""
        found: dict[str, MigrantBatch] = {}
        skipped: list[str] = []
        pending = list(wants)
        deadline = time.monotonic() + self.cfg.sync_timeout
        pause = POLL_MIN_S
        while pending:
            still = []
            for source, want in pending:
                state, batch = pool.read_generation(source, want)
                if batch is not None:
                    found[source] = batch
                elif state == "ahead":
                    skipped.append(f"{source} (its batch of generation {want} is gone)")
                else:
                    why = self._ended(source)
                    if why is not None:
                        skipped.append(f"{source} ({why} before generation {want})")
                    else:
                        still.append((source, want))
            pending = still
            if pending:
                if time.monotonic() >= deadline:
                    skipped.extend(f"{s} (no batch of generation {w} within {self.cfg.sync_timeout:g} s)"
                                   for s, w in pending)
                    break
                pause = self._pause(pause)
        return [found[s] for s, _ in wants if s in found], skipped

    def wait_for_readers(self, generation: int, everyone: list[str]) -> None:
        """Before publishing at `generation`: every live reader is past the batch the publish
        overwrites (the ring's oldest), so no reader ever finds its batch gone."""
        me, seed = self.spec.island, self._seed(self.spec.island)
        back = generation
        for _ in range(ring.RING_SLOTS - 1):  # the events whose batches stay in the ring
            prev = last_due(self.cfg, seed, back - 1)
            if prev is None:
                return  # the ring is not full yet: nothing is overwritten
            back = prev
        if last_due(self.cfg, seed, back - 1) is None:
            return
        readers = self._readers(everyone)
        deadline = time.monotonic() + self.cfg.sync_timeout
        pause = POLL_MIN_S
        while readers:
            readers = [x for x in readers if not self._past(x, back)]
            if not readers:
                return
            if time.monotonic() >= deadline:
                self.log(f"warning: {me}: {', '.join(readers)} not past generation {back} within "
                         f"{self.cfg.sync_timeout:g} s; publishing generation {generation} anyway")
                return
            pause = self._pause(pause)

    def _readers(self, everyone: list[str]) -> list[str]:
        """The islands whose sources include this one (all others under `random`, whose
        sources change per event), recomputed only when the run's islands change."""
        key = tuple(everyone)
        if key != self._readers_key:
            me, topo = self.spec.island, self.cfg.topology
            self._readers_key, self._readers_cache = key, [
                x for x in everyone if x != me and (topo == "random" or me in topology.neighbours(
                    x, everyone, topo, seed=self.spec.config.seed, event=0))]
        return list(self._readers_cache)

    def _past(self, reader: str, generation: int) -> bool:
        """Whether `reader` has published at `generation` or later, or has ended."""
        head = ring.header_now(f"{self.rundir.pool_dir(reader)}/{ring.RING_NAME}", ring.fmt.MAX_FILE_BYTES)
        if head is not None and head.generation >= generation:
            return True
        return self._ended(reader) is not None

    def _ended(self, island: str) -> str | None:
        """`ended` for this run, asked at most every ENDED_EVERY_S per island (the first time at once)."""
        now = time.monotonic()
        seen = self._ended_seen.get(island)
        if seen is None or now - seen[0] >= ENDED_EVERY_S:
            seen = self._ended_seen[island] = (now, ended(self.rundir, island, time.time(), self.spec.run_id))
        return seen[1]

    def _pause(self, pause: float) -> float:
        if self.stop():
            raise MigrationInterrupted()
        time.sleep(pause)  # a poll: the files give no notification to wait on
        return min(pause * 2, POLL_MAX_S)
