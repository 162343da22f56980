"""A run of MAX_ISLANDS islands: its manifest (the plan, cores, devices, --vary overrides and
the settings groups), its launcher state and an island status are written and read back
through the real code path, and a resume plans it again."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from islands.config import RunConfig
from islands.runs import join_run, new_manifest
from islands.status.reader import open_run
from islands.status.record import IslandStatus, Migration
from launcher.plan import island_ids, make_plan, parse_vary, plan_from_manifest, sample_overrides
from migration_pool.island_ids import MAX_ISLANDS
from migration_pool.rundir import RunDir

VARY = ("mutation_sigma=0.01:0.5", "crossover_rate=0.1:0.9", "population=20,50,100")


def test_a_manifest_of_max_islands_with_vary_reads_back_and_resume_plans(tmp_path):
    config = RunConfig(problem="rastrigin", dim=10, generations=50)
    ids = island_ids(MAX_ISLANDS)
    specs = [parse_vary(v) for v in VARY]
    plan = make_plan(ids, tuple(range(64)), "cpu", None, sample_overrides(specs, ids, 7), specs)
    groups = tuple({"algorithm": "ga", "population": p, "target": None, "target_given": False,
                    "dtype": "float32", "islands": ids[k::3]} for k, p in enumerate((20, 50, 100)))
    plan = replace(plan, groups=groups)
    fields = plan.manifest_fields()
    run, created = join_run(tmp_path / "run", config, {}, make_manifest=lambda: new_manifest(config, **fields),
                            allow_shared=True)
    assert created and len(run.planned()) == MAX_ISLANDS

    back = RunDir(tmp_path / "run").read_manifest()  # decoded from the file, not the dict written
    assert back["planned_islands"] == ids and back["plan"]["cores"] == fields["plan"]["cores"]
    assert back["overrides"] == fields["overrides"] and len(back["overrides"]) == MAX_ISLANDS
    assert open_run(tmp_path / "run").run.overrides(ids[-1]) == fields["overrides"][ids[-1]]

    again = plan_from_manifest(back, tuple(range(64)), None)
    assert again.ids == ids and [p.overrides for p in again.islands] == [p.overrides for p in plan.islands]
    assert again.groups == groups and [str(v) for v in again.vary] == list(VARY)
    assert again.islands[-1].cores == ((MAX_ISLANDS - 1) % 64,)  # on today's cores, round-robin


def test_the_launcher_state_and_a_status_of_max_islands_read_back(tmp_path):
    rundir = RunDir(tmp_path)
    ids = island_ids(MAX_ISLANDS)
    rundir.ensure()
    islands = {i: {"state": "running", "restarts": 3, "hangs": 0, "start_failures": 0, "last_exit": -9,
                   "reason": "crashed with exit code -9 (killed)", "pid": 123456, "cores": [n % 256]}
               for n, i in enumerate(ids)}
    rundir.write_launcher_state({"run_id": "r" * 32, "pid": 1, "host": "h", "started": 1.0, "updated": 2.0,
                                 "state": "running", "islands": islands})
    assert rundir.read_launcher_state()["islands"] == islands
    # An island of a fully mixed archipelago: an origin count and a source counter per island.
    status = IslandStatus(island=ids[-1], run_id="r" * 32, origins={n: 1 + n % 3 for n in range(MAX_ISLANDS)},
                          migration=Migration(received_from={i: 100_000 for i in ids}),
                          best_genome=np.zeros(10), centroid=np.zeros(10))
    rundir.ensure(ids[-1])
    rundir.island(ids[-1]).write_status(status.to_body())
    back = IslandStatus.from_body(rundir.island(ids[-1]).read_status())
    assert back.origins == status.origins and back.migration.received_from == status.migration.received_from
