"""An island's sources are computed once per change of the run's islands (or, under "random",
per event), never at every event; a late joiner is still found and read."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from islands.config import MigrationConfig, RunConfig
from islands.island import IslandSpec
from islands.migration import PoolMigrator
from migration_pool import topology
from migration_pool.rundir import RunDir


def migrator(root: Path, island: str, topo: str, planned: tuple[str, ...] = ()) -> PoolMigrator:
    spec = IslandSpec(island=island, run_dir=root, run_id="r",
                      config=RunConfig(migration=MigrationConfig(every=5, topology=topo)), planned=planned)
    return PoolMigrator(spec, RunDir(root), lambda _m: None)


@pytest.fixture
def counted(monkeypatch):
    """How often the topology was asked for an island's neighbours."""
    calls: list[int] = []
    real, real_assumed = topology.neighbours, topology.assumed

    def neighbours(*args, **kwargs):
        calls.append(kwargs.get("event", 0))
        return real(*args, **kwargs)

    def assumed(islands):
        calls.append(-1)  # the island list of a run started by hand, rebuilt
        return real_assumed(islands)

    monkeypatch.setattr(topology, "neighbours", neighbours)
    monkeypatch.setattr(topology, "assumed", assumed)
    return calls


def test_a_planned_topology_is_computed_once_and_random_once_per_event(tmp_path, counted):
    planned = tuple(f"island-{i:02d}" for i in range(6))
    ring2 = migrator(tmp_path / "a", "island-00", "ring2", planned)
    assert all(ring2._sources(g) == ["island-01", "island-05"] for g in range(5, 105, 5))
    assert len(counted) == 1
    counted.clear()
    rand = migrator(tmp_path / "b", "island-02", "random", planned)
    got = [rand._sources(g) for g in (5, 5, 10, 15, 15)]
    assert counted == [5, 10, 15]  # a repeated event is not drawn again
    # The same draws as the pure function, with the same inputs as before the cache.
    assert got == [topology.neighbours("island-02", list(planned), "random", seed=0, event=g)
                   for g in (5, 5, 10, 15, 15)]


def test_a_late_joiner_is_a_source_at_the_next_event_after_it_appears(tmp_path, counted):
    rd = RunDir(tmp_path)
    for island in ("island-00", "island-01"):
        rd.ensure(island)
    m = migrator(tmp_path, "island-01", "ring2")
    assert m._sources(5) == ["island-00"] and m._sources(10) == ["island-00"]
    assert counted == [-1, 5]  # nothing changed between the events: nothing rebuilt
    rd.ensure("island-02")  # a hand-started island joins: the islands directory changed
    assert m._sources(15) == ["island-00", "island-02"]
    assert m._sources(20) == ["island-00", "island-02"] and counted == [-1, 5, -1, 15]


def test_a_relisting_that_finds_the_same_islands_keeps_the_sources(tmp_path, counted, monkeypatch):
    rd = RunDir(tmp_path)
    for island in ("island-00", "island-03"):
        rd.ensure(island)
    m = migrator(tmp_path, "island-01", "ring")
    assert m._sources(5) == ["island-00"]
    # A fresh listing every event (the refresh interval passed): same islands, same answer,
    # and no new topology computed; a gap filled (island-02 starts) changes nothing either,
    # since it was assumed from the start.
    monkeypatch.setattr("islands.migration.DISCOVERY_REFRESH_S", -1.0)
    assert m._sources(10) == ["island-00"]
    rd.ensure("island-02")
    assert m._sources(15) == ["island-00"] and counted == [-1, 5, -1]  # one rebuild, same list
    os.rmdir(rd.island("island-03").dir)  # the highest island went away: the ring shrinks
    rd.ensure("island-01")
    assert m._sources(20) == ["island-00"] and counted == [-1, 5, -1, -1, 20]
    assert m._everyone == ["island-00", "island-01", "island-02"]
