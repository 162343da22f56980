"""Neighbours of islands started by hand (issue 12, item 4): the planned list when the manifest
has one, an order-stable assumption (island-00 up to the highest number seen) otherwise."""
from __future__ import annotations

from pathlib import Path

import pytest

from islands.config import MigrationConfig, RunConfig
from islands.island import IslandSpec
from islands.migration import PoolMigrator
from islands.runs import PLANNED_KEY, join_run, new_manifest, planned_islands
from migration_pool import topology
from migration_pool.errors import PoolError
from migration_pool.rundir import RunDir
from support.procs import evolve_cmd, run

EIGHT = [f"island-{i:02d}" for i in range(8)]


def test_the_planned_list_is_read_tolerantly():
    assert planned_islands({PLANNED_KEY: EIGHT, "islands": ["island-00"]}) == tuple(EIGHT)
    assert planned_islands({"islands": ["island-01", "island-00"]}) == ("island-01", "island-00")  # older manifests
    assert planned_islands({PLANNED_KEY: [], "islands": ["island-02"]}) == ("island-02",)
    hostile = {PLANNED_KEY: ["island-00", "../../etc", 7, None, "island-0", "island-00", "island-01\n"]}
    assert planned_islands(hostile) == ("island-00",)
    for junk in ({}, {PLANNED_KEY: "island-00"}, {PLANNED_KEY: {"island-00": 1}}, {"islands": None}):
        assert planned_islands(junk) == ()


def test_assumed_islands_fill_the_gaps_below_the_highest_number():
    assert topology.assumed(["island-03", "island-01"]) == ["island-00", "island-01", "island-02", "island-03"]
    assert topology.assumed(["island-00"]) == ["island-00"]
    assert topology.assumed([]) == []
    far = f"island-{topology.MAX_ASSUMED}"
    assert topology.assumed(["island-01", far]) == ["island-01", far]  # no million-island guess
    with pytest.raises(PoolError):
        topology.assumed(["island-1"])


def sources(tmp_path: Path, island: str, found: list[str], topo: str, planned: tuple[str, ...] = ()) -> list[str]:
    rd = RunDir(tmp_path)
    for other in found:
        rd.ensure(other)
    spec = IslandSpec(island=island, run_dir=tmp_path, run_id="r",
                      config=RunConfig(migration=MigrationConfig(every=5, topology=topo)), planned=planned)
    return PoolMigrator(spec, rd, lambda _m: None)._sources(5)


def test_unplanned_neighbours_do_not_depend_on_which_islands_started_first(tmp_path):
    # Before: island-01 with only island-03 on disk read island-03 (the ring wrapped round).
    assert sources(tmp_path / "a", "island-01", ["island-03"], "ring") == ["island-00"]
    assert sources(tmp_path / "b", "island-01", ["island-00", "island-03"], "ring") == ["island-00"]
    assert sources(tmp_path / "c", "island-02", ["island-03"], "ring2") == ["island-01", "island-03"]


def test_planned_neighbours_ignore_what_is_on_disk(tmp_path):
    got = sources(tmp_path, "island-00", ["island-03", "island-12"], "ring2", planned=tuple(EIGHT))
    assert got == ["island-01", "island-07"]


@pytest.mark.timeout(180)
def test_hand_started_islands_read_their_planned_neighbours_from_the_first_exchange(tmp_path):
    """island-03 runs (and publishes) first; island-00, started by hand next, must read only its
    planned ring2 neighbours island-07 and island-01 (not started: nothing to read), never
    island-03, which discovery alone would have made both its neighbours."""
    config = RunConfig(problem="rastrigin", dim=6, population=20, generations=30,
                       migration=MigrationConfig(every=5, migrants=2, topology="ring2"))
    planned, unplanned = tmp_path / "planned", tmp_path / "unplanned"
    join_run(planned, config, {}, make_manifest=lambda: {**new_manifest(config), PLANNED_KEY: EIGHT})
    join_run(unplanned, config, {})
    for root in (planned, unplanned):
        first = run(evolve_cmd("island-03", root))
        assert first.returncode == 0, first.stderr
        assert RunDir(root).pool_dir("island-03").is_dir() and any(RunDir(root).pool_dir("island-03").iterdir())
        second = run(evolve_cmd("island-00", root))
        assert second.returncode == 0, second.stderr
    for root, expect in ((planned, set()), (unplanned, {"island-03"})):
        rd = RunDir(root)
        m = rd.island("island-00").read_status()["migration"]
        events = [h["migration"] for h in rd.island("island-00").read_history() if h.get("migration")]
        assert m["events"] >= 5 and len(events) == m["events"]
        # Control: in the unplanned run island-00 is the lowest number, so island-03, the highest
        # seen, is its ring2 neighbour by the order-stable rule as well, and it is read.
        assert {s for e in events for s in e["sources"]} == expect
        assert {k for k in m if k.startswith("from:")} == {f"from:{s}" for s in expect}
