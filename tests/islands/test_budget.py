"""The run's evaluation budget (islands/budget.py, RunConfig's generation limit): a total for the
run split over its planned islands, a budget lifts the default generation limit, contradictions
and budgets below one generation are refused, old manifests keep their per-island meaning."""
from __future__ import annotations

import pytest

from islands import budget
from islands.cli import config_from_options
from islands.config import DEFAULT_GENERATIONS, RunConfig
from islands.errors import ConfigError
from islands.manifest import check_against
from islands.runs import evolve
from islands.status.reader import open_run
from migration_pool.errors import ManifestConflict
from migration_pool.rundir import RunDir
from support.factories import QUIET
from support.factories import small_config as small


def test_a_budget_lifts_the_default_generation_limit_and_an_explicit_one_stays():
    assert RunConfig().generations == DEFAULT_GENERATIONS == 200
    assert RunConfig(max_evaluations=5000).generations is None
    assert RunConfig(evaluation_budget=5000).generations is None
    assert RunConfig(evaluation_budget=5000, generations=300).generations == 300
    assert RunConfig(generations=0).generations == 0  # a limit of 0 stays a limit
    # The limit is resolved when the config is made, so the manifest records what the run does.
    assert RunConfig.from_dict(RunConfig(evaluation_budget=5000).to_dict()).generations is None
    assert RunConfig.from_dict(RunConfig().to_dict()).generations == 200
    for bad in (dict(evaluation_budget=0), dict(max_evaluations=0), dict(evaluation_budget=10.5),
                dict(generations=2.5)):
        with pytest.raises(ConfigError):
            RunConfig(**bad)


def test_options_map_the_total_and_the_per_island_budget():
    config, explicit = config_from_options({"max_evaluations": 5000, "algorithm": "cmaes"})
    assert (config.evaluation_budget, config.max_evaluations, config.generations) == (5000, None, None)
    assert explicit == {"evaluation_budget": 5000, "algorithm": "cmaes"}  # the lifted limit is not typed
    config, explicit = config_from_options({"max_evaluations_per_island": 700, "generations": 50})
    assert (config.evaluation_budget, config.max_evaluations, config.generations) == (None, 700, 50)
    assert explicit == {"max_evaluations": 700, "generations": 50}


def test_the_total_is_split_over_the_planned_islands():
    split = budget.for_islands(RunConfig(algorithm="cmaes", evaluation_budget=4001), 2)
    assert (split.max_evaluations, split.evaluation_budget, split.generations) == (2000, 4001, None)
    assert budget.for_islands(RunConfig(evaluation_budget=4000), 1).max_evaluations == 4000
    # Both options that agree are fine; an explicit generation limit survives the split.
    both = RunConfig(evaluation_budget=4000, max_evaluations=1000, generations=30)
    assert budget.for_islands(both, 4).generations == 30
    with pytest.raises(ConfigError, match="gives each of the 2 island.* 2000 evaluations, but "
                                          "--max-evaluations-per-island says 1000: give one of them"):
        budget.for_islands(both, 2)
    with pytest.raises(ConfigError, match="less than one evaluation for each of 8 islands"):
        budget.for_islands(RunConfig(algorithm="cmaes", evaluation_budget=5), 8)
    unchanged = RunConfig(max_evaluations=300)
    assert budget.for_islands(unchanged, 7) == unchanged


def test_a_budget_below_one_generation_is_refused():
    # The GA's population (100) is known before the algorithm is built.
    with pytest.raises(ConfigError, match=r"--max-evaluations 400 gives each island 100 evaluations, less than one "
                                          r"generation \(population 101\).*use fewer islands"):
        budget.for_islands(RunConfig(evaluation_budget=400, population=101), 4)
    with pytest.raises(ConfigError, match="--max-evaluations-per-island 99 is less than one generation"):
        budget.for_islands(RunConfig(max_evaluations=99), 1)
    assert budget.budget_refusal(100, 100) is None and budget.budget_refusal(None, 100) is None
    assert budget.budget_refusal(50, None) is None  # the algorithm's default: islands.plancheck checks it
    assert "--max-evaluations 9 is less than" in budget.budget_refusal(None, 10, 9)


def test_a_typed_total_is_compared_as_its_share_of_the_recorded_run():
    recorded = budget.for_islands(RunConfig(evaluation_budget=4000), 2)
    same = budget.explicit_for(recorded, 2, {"evaluation_budget": 4000})
    assert same == {"evaluation_budget": 4000, "max_evaluations": 2000}
    check_against(recorded, same)
    with pytest.raises(ManifestConflict, match="max-evaluations=3000 contradicts .* records max-evaluations=4000"):
        check_against(recorded, budget.explicit_for(recorded, 2, {"evaluation_budget": 3000}))
    with pytest.raises(ManifestConflict, match="max-evaluations-per-island=1500 .* max-evaluations-per-island=2000"):
        check_against(recorded, {"max_evaluations": 1500})
    assert budget.explicit_for(recorded, 2, {"population": 3}) == {"population": 3}


def test_an_old_manifest_keeps_its_per_island_budget_and_its_generation_limit():
    old = RunConfig.from_dict({**small().to_dict(), "max_evaluations": 2000, "generations": 200})
    assert (old.max_evaluations, old.generations, old.evaluation_budget) == (2000, 200, None)
    # A lone island: the total it types is its own budget, as the option used to mean.
    assert budget.explicit_for(old, 1, {"evaluation_budget": 2000}) == {"max_evaluations": 2000}
    # Two planned islands: 2000 in all is not 2000 each; the message says which option is which.
    with pytest.raises(ConfigError, match="--max-evaluations 2000 is the run's total \\(1000 for each of its 2 "
                                          "island\\(s\\)\\), but this run records 2000 evaluations per island; "
                                          "leave the option out to resume it, or say "
                                          "--max-evaluations-per-island 2000"):
        budget.explicit_for(old, 2, {"evaluation_budget": 2000})
    # The trajectory never depends on budgets: old checkpoints stay this run's.
    assert old.trajectory_hash() == small().trajectory_hash() == small(evaluation_budget=9000).trajectory_hash()


def test_describe_says_what_stops_the_islands():
    split = budget.for_islands(RunConfig(evaluation_budget=4000), 2)
    assert budget.describe(split, 2) == "budget 4,000 evaluations (2,000 per island), no generation limit"
    assert budget.describe(RunConfig(), 3) == "200 generations"
    assert budget.describe(RunConfig(max_evaluations=500, generations=40), 2) == \
        "budget 500 evaluations per island (1,000 in all), at most 40 generations"
    assert budget.run_total(split, 2) == 4000 and budget.run_total(RunConfig(max_evaluations=500), 3) == 1500
    assert budget.run_total(RunConfig(), 3) is None


def test_an_island_spends_its_budget_past_the_old_generation_limit(tmp_path):
    # 30 individuals x 201 generations would be 6030 evaluations under the old default limit.
    result = evolve("island-00", tmp_path, small(generations=None, evaluation_budget=9000, target=1.0), **QUIET)
    assert result.reason == "evaluations" and 9000 <= result.evaluations < 9000 + 30
    assert result.generation > DEFAULT_GENERATIONS
    run = open_run(tmp_path)
    assert (run.config.max_evaluations, run.config.evaluation_budget, run.config.generations) == (9000, 9000, None)


def test_an_old_manifest_resumes_with_its_recorded_meaning(tmp_path):
    # Written as before run budgets: a per-island budget, a generation limit, two planned islands.
    recorded = {**small(generations=20).to_dict(), "max_evaluations": 100_000}
    del recorded["evaluation_budget"]
    RunDir(tmp_path).create_or_read_manifest(lambda: {
        "schema": 1, "run_id": "a" * 32, "created": 0.0, "config": recorded, "overrides": {},
        "islands": ["island-00", "island-01"], "planned_islands": ["island-00", "island-01"]})
    result = evolve("island-00", tmp_path, **QUIET)
    assert (result.reason, result.generation) == ("generations", 20)  # the recorded limit still stops it
    with pytest.raises(ConfigError, match="records 100000 evaluations per island"):
        evolve("island-01", tmp_path, RunConfig(evaluation_budget=100_000), explicit={"evaluation_budget": 100_000},
               **QUIET)


def test_a_typed_total_joins_a_planned_run_without_judging_the_options_defaults(tmp_path):
    # A planned run of two islands of 20: 100 evaluations in all, 50 each. The command that
    # joins it names only the total; its default population (the GA's 100) is not the run's.
    recorded = budget.for_islands(small(population=20, generations=None, evaluation_budget=100, target=1.0), 2)
    RunDir(tmp_path).create_or_read_manifest(lambda: {
        "schema": 1, "run_id": "b" * 32, "created": 0.0, "config": recorded.to_dict(), "overrides": {},
        "islands": ["island-00", "island-01"], "planned_islands": ["island-00", "island-01"]})
    result = evolve("island-01", tmp_path, RunConfig(evaluation_budget=100), explicit={"evaluation_budget": 100},
                    **QUIET)
    assert result.reason == "evaluations" and 50 <= result.evaluations < 50 + 20
