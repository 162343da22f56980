"""`islands.sync_migration`: which batch a sync island reads, and its bounded waits."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from islands.config import MigrationConfig, island_seed
from islands.island import IslandSpec
from islands.sync_migration import MigrationInterrupted, SyncWaiter, ended, last_due
from migration_pool import format_packed as packed
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir
from support.factories import small_config


def spec(tmp_path: Path, island: str = "island-01", **mig) -> IslandSpec:
    cfg = small_config(migration=MigrationConfig(every=5, mode="sync", **mig))
    return IslandSpec(island, tmp_path, "run-s", cfg, planned=("island-00", "island-01", "island-02"))


def batch(source: int, generation: int) -> bytes:
    return packed.encode_vector_batch(
        run_id="run-s", source=source, generation=generation, created=1.0, genome_kind="vector",
        genomes=np.full((1, 8), float(generation)), fitness=np.zeros(1), origin=np.full(1, source),
        birth=np.zeros(1, dtype=np.int64), lineage=np.zeros(1, dtype=np.int64))


def test_last_due_is_the_schedule_and_skips_events_the_draw_leaves_out():
    every5 = MigrationConfig(every=5)
    assert [last_due(every5, 1, g) for g in (0, 4, 5, 9, 10)] == [None, None, 5, 5, 10]
    assert last_due(MigrationConfig(every=5, start=12), 1, 14) is None
    assert last_due(MigrationConfig(every=0), 1, 50) is None
    half = MigrationConfig(every=5, probability=0.5)
    for g in range(1, 200):
        d = last_due(half, 7, g)
        assert d is None or (d <= g and half.due(d, 7) and not any(half.due(h, 7) for h in range(d + 1, g + 1)))


def test_with_sparse_events_each_source_batch_is_read_once(tmp_path):
    waiter = SyncWaiter(spec(tmp_path, probability=0.5), RunDir(tmp_path), print, lambda: False)
    me, src = island_seed(3, "island-01"), island_seed(3, "island-00")
    mig = waiter.cfg
    read = []
    for g in range(5, 400, 5):
        if mig.due(g, me):
            read += [w for _, w in waiter.wants(["island-00"], g)]
    assert len(read) == len(set(read)) > 5  # never the same batch twice
    assert all(mig.due(w, src) for w in read)


def test_a_source_not_there_is_skipped_after_the_timeout_and_a_stop_interrupts(tmp_path):
    rd = RunDir(tmp_path)
    pool = Pool(rd, "run-s", dtype="float64", gene_shape=(8,))
    pool.publish_ring("island-00", 5, batch(0, 5))
    waiter = SyncWaiter(spec(tmp_path, sync_timeout=0.2), rd, print, lambda: False)
    started = time.monotonic()
    found, skipped = waiter.read(pool, [("island-00", 5), ("island-02", 5)])
    assert [b.generation for b in found] == [5] and time.monotonic() - started >= 0.2
    assert skipped == ["island-02 (no batch of generation 5 within 0.2 s)"]
    assert ended(rd, "island-02", time.time()) is None  # not started: waited for, not ended
    stopping = SyncWaiter(spec(tmp_path), rd, print, lambda: True)
    with pytest.raises(MigrationInterrupted):
        stopping.read(pool, [("island-02", 5)])


def test_another_runs_finished_status_does_not_end_a_source_and_ending_is_asked_rarely(tmp_path, monkeypatch):
    from islands import sync_migration

    rd = RunDir(tmp_path)
    rd.ensure("island-02")
    rd.island("island-02").write_status({"run_id": "an-older-run", "island": "island-02", "state": "finished"})
    assert ended(rd, "island-02", time.time()) == "finished"  # without a run id: any status counts
    assert ended(rd, "island-02", time.time(), "run-s") is None  # a leftover of another run: still waited for
    asked = []
    monkeypatch.setattr(sync_migration, "ended", lambda *a: asked.append(a) or None)
    pool = Pool(rd, "run-s", dtype="float64", gene_shape=(8,))
    waiter = SyncWaiter(spec(tmp_path, sync_timeout=0.3), rd, print, lambda: False)
    waiter.read(pool, [("island-02", 5)])  # ~30 ring polls in 0.3 s
    assert 1 <= len(asked) <= 1 + 0.3 / sync_migration.ENDED_EVERY_S
