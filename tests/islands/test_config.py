"""Run settings (islands/config.py): bad values and unknown keys are refused, the trajectory hash."""
from __future__ import annotations

import dataclasses

import pytest

from islands.config import GAConfig, RunConfig
from islands.errors import ConfigError
from support.factories import small_config as small


@pytest.mark.parametrize("bad", [
    dict(population=1), dict(generations=-1), dict(dim=0), dict(checkpoint_every=0),
    dict(algorithm="magic"), dict(ga=GAConfig(elitism=40)), dict(target=float("nan")),
    dict(checkpoint_seconds=-1), dict(checkpoint_seconds=float("nan")), dict(checkpoint_seconds=float("inf")),
    dict(checkpoint_seconds="30"),
])
def test_bad_settings_raise_config_errors_quoting_the_value(bad):
    with pytest.raises(ConfigError):
        small(**bad) if "ga" not in bad else dataclasses.replace(small(), **bad)


def test_unknown_config_keys_are_rejected():
    with pytest.raises(ConfigError, match="unknown GA setting"):
        RunConfig.from_dict({"ga": {"mutation_sgima": 0.1}})
    assert small().trajectory_hash() == small(generations=999, target=-1.0).trajectory_hash()
    # The checkpoint interval, by generations or by time, never shapes the trajectory.
    assert small().trajectory_hash() == small(checkpoint_every=7, checkpoint_seconds=60).trajectory_hash()
    assert small().trajectory_hash() != small(seed=4).trajectory_hash()


@pytest.mark.parametrize("bad", [dict(population=16.5), dict(population=True), dict(population=16.0)])
def test_population_must_be_an_integer(bad):
    with pytest.raises(ConfigError, match="population must be >= 2 and an integer"):
        RunConfig(**bad)


def test_integer_ga_settings_refuse_fractions_and_elitism_binds_only_the_ga():
    with pytest.raises(ConfigError, match="tournament size"):
        GAConfig(tournament_size=2.5)
    with pytest.raises(ConfigError, match="elitism"):
        GAConfig(elitism=1.5)
    with pytest.raises(ConfigError, match="elitism"):
        RunConfig(algorithm="ga", population=2)
    assert RunConfig(algorithm="cmaes", population=2).population == 2  # CMA-ES keeps no elites


def test_checkpoints_wait_30_seconds_by_default_and_old_manifests_get_that_default():
    assert RunConfig().checkpoint_seconds == 30.0
    recorded = small().to_dict()
    del recorded["checkpoint_seconds"]  # a manifest written before the setting existed
    assert RunConfig.from_dict(recorded).checkpoint_seconds == 30.0


def test_migration_mode_defaults_to_async_and_old_manifests_and_checkpoints_stay_valid():
    import hashlib
    import json

    from islands.config import MigrationConfig

    cfg = RunConfig()
    assert cfg.migration.mode == "async"
    old = cfg.to_dict()
    for key in ("mode", "sync_timeout"):  # what a manifest written before the setting holds
        del old["migration"][key]
    del old["tuner"]  # nor did it have a tuner
    del old["budget_share"]  # nor a budget share (a run of before it reads as "auto": even unless mixed)
    assert RunConfig.from_dict(old).migration.mode == "async"
    assert RunConfig.from_dict(old).budget_share == "auto"
    # An async run hashes as before the setting existed: its checkpoints still resume.
    for k in ("generations", "target", "stagnation_limit", "checkpoint_every", "checkpoint_seconds",
              "max_evaluations", "evaluation_budget", "stop_when"):
        old.pop(k)
    # How the budget is shared decides where an island ends, never what it breeds.
    shared = dataclasses.replace(cfg, evaluation_budget=10_000, budget_share="progress")
    assert shared.trajectory_hash() == cfg.trajectory_hash()
    assert cfg.trajectory_hash() == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    sync = dataclasses.replace(cfg, migration=MigrationConfig(mode="sync"))
    assert sync.trajectory_hash() != cfg.trajectory_hash()  # another trajectory
    longer = dataclasses.replace(cfg, migration=MigrationConfig(mode="sync", sync_timeout=999))
    assert longer.trajectory_hash() == sync.trajectory_hash()  # how long it waits is no trajectory
    assert RunConfig.from_dict(sync.to_dict()) == sync


@pytest.mark.parametrize("bad", [{"mode": "lockstep"}, {"sync_timeout": 0}, {"sync_timeout": float("inf")},
                                 {"sync_timeout": True}])
def test_bad_migration_mode_settings_are_refused(bad):
    from islands.config import MigrationConfig

    with pytest.raises(ConfigError):
        MigrationConfig(**bad)
