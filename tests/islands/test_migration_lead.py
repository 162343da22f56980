"""The migration lead limit: an asynchronous island refuses batches from a neighbour far ahead."""
from __future__ import annotations


import hashlib
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from islands import policies
from islands.cli import main as cli_main
from islands.config import NO_LEAD_LIMIT, MigrationConfig, RunConfig
from islands.errors import ConfigError
from islands.island import IslandSpec
from islands.manifest import run_from_manifest
from islands.migration import PoolMigrator
from islands.runs import evolve
from migration_pool.rundir import RunDir
from support.factories import QUIET
from islands.stopping import StopFlag
from support.factories import small_config as small


def test_timely_takes_the_same_event_or_earlier_and_up_to_the_lead():
    assert policies.timely(40, 40, 0) and policies.timely(30, 40, 0)
    assert not policies.timely(50, 40, 0)
    assert policies.timely(50, 40, 10) and not policies.timely(60, 40, 10)
    assert policies.timely(10_000, 0, NO_LEAD_LIMIT)  # -1: however far ahead


@pytest.mark.parametrize("bad", [-2, 1.5, math.nan, True, "0"])
def test_a_bad_lead_is_refused_quoting_the_value(bad):
    with pytest.raises(ConfigError) as e:
        MigrationConfig(max_lead=bad)
    assert str(bad) in str(e.value)


@pytest.mark.parametrize("value", ["-2", "x", "1.5"])
def test_a_bad_lead_option_exits_2_and_writes_nothing(tmp_path, value):
    result = CliRunner().invoke(cli_main, ["evolve", "--run-dir", str(tmp_path / "run"),
                                           "--migration-max-lead", value])
    assert result.exit_code == 2, result.output
    assert "--migration-max-lead" in result.output
    assert not (tmp_path / "run").exists()


def _received_and_adopted(root: Path, max_lead: int) -> dict[str, int]:
    """island-00 starts with island-01 (it joins at generation 0), stops at 5; island-01 then
    runs to its end, so every batch island-00 reads from it when it goes on is ahead."""
    mig = MigrationConfig(every=5, migrants=3, min_distance=0.0, max_lead=max_lead)
    full = small(migration=mig)
    stop = StopFlag()
    evolve("island-00", root, full, stop=stop, on_generation=lambda _i, line: line.generation >= 5 and stop.request(),
           **QUIET)
    evolve("island-01", root, full, **QUIET)
    evolve("island-00", root, full, **QUIET)
    status = RunDir(root).island("island-00").read_status()
    assert status["joined_at"] == 0 and status["generation"] == full.generations
    return status["migration"]


def test_an_island_started_after_its_neighbour_ended_is_on_the_run_s_clock(tmp_path):
    """One island per terminal, started late: it joins at the neighbour's generation, so the
    neighbour's batches are not ahead of it and are adopted under the default limit."""
    mig = MigrationConfig(every=5, migrants=3, min_distance=0.0)
    evolve("island-01", tmp_path, small(migration=mig), **QUIET)
    evolve("island-00", tmp_path, small(migration=mig), **QUIET)
    status = RunDir(tmp_path).island("island-00").read_status()
    assert status["joined_at"] > 0 and status["migration"]["adopted"] > 0


def test_a_batch_from_a_neighbour_ahead_is_refused_and_counted(tmp_path):
    refused = _received_and_adopted(tmp_path / "limited", 0)
    assert refused["received"] > 0  # the batch was read ...
    assert refused["adopted"] == 0 and refused["rejected"] == refused["received"]  # ... and refused
    taken = _received_and_adopted(tmp_path / "unlimited", NO_LEAD_LIMIT)
    assert taken["adopted"] > 0  # the same batch without the limit is adopted
    far = _received_and_adopted(tmp_path / "far", 1000)
    assert far["adopted"] > 0  # a lead within the limit is adopted too


def test_no_limit_where_generations_are_no_common_clock(tmp_path):
    cfg = small(migration=MigrationConfig(max_lead=0))
    rundir = RunDir(tmp_path)

    def lead(overrides: dict) -> int:
        spec = IslandSpec(island="island-00", run_dir=tmp_path, run_id="r", config=cfg, overrides=overrides)
        return PoolMigrator(spec, rundir, lambda _m: None)._max_lead

    assert lead({}) == 0 and lead({"mutation_sigma": 0.1}) == 0  # same generations: limited
    assert lead({"algorithm": "de"}) == NO_LEAD_LIMIT  # a mixed archipelago
    assert lead({"population": 50}) == NO_LEAD_LIMIT


def test_a_run_recorded_before_the_limit_resumes_without_it_and_hashes_as_before(tmp_path):
    evolve("island-00", tmp_path, small(generations=5), **QUIET)
    manifest = RunDir(tmp_path).read_manifest()
    assert manifest["config"]["migration"]["max_lead"] == MigrationConfig().max_lead == 0
    del manifest["config"]["migration"]["max_lead"]  # as a manifest written before the setting
    old = run_from_manifest(tmp_path, manifest).config
    assert old.migration.max_lead == NO_LEAD_LIMIT
    d = old.to_dict()
    del d["migration"]["max_lead"], d["migration"]["sync_timeout"], d["migration"]["mode"], d["tuner"]
    for k in ("generations", "target", "stagnation_limit", "checkpoint_every", "checkpoint_seconds",
              "max_evaluations", "evaluation_budget", "stop_when", "budget_share"):
        d.pop(k)
    assert old.trajectory_hash() == hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
    assert RunConfig.from_dict(small().to_dict()).trajectory_hash() != old.trajectory_hash()  # limited: another trajectory


def test_the_plan_says_whether_batches_from_ahead_are_refused():
    from launcher.plan import migration_line

    assert "batches from a neighbour ahead refused" in migration_line(MigrationConfig(), 20)
    assert "at most 20 generation(s) ahead refused" in migration_line(MigrationConfig(max_lead=20), 20)
    assert "ahead" not in migration_line(MigrationConfig(max_lead=-1), 20)
    assert "ahead" not in migration_line(MigrationConfig(mode="sync"), 20)
