"""Launcher planning: cores, GPUs, --vary sampling, and what the manifest records."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from islands.config import RunConfig
from launcher.errors import PlanError
from launcher.plan import (
    assign_devices, check_overrides, format_cores, island_ids, make_plan, parse_cores,
    parse_vary, plan_from_manifest, sample_overrides,
)
from migration_pool import format as fmt


# -- cores ----------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, want", [
    ("0", (0,)), ("0-3,6", (0, 1, 2, 3, 6)), ("6,0-1", (0, 1, 6)), (" 2 , 2-3 ", (2, 3)),
])
def test_parse_cores(spec, want):
    assert parse_cores(spec, range(8)) == want


@pytest.mark.parametrize("spec, words", [
    ("0-9", "core(s) 8-9 do not exist"), ("3-1", "not a valid range"), ("a", "not a core number"),
    ("", "not a core number"), ("-1", "not a core number"), ("0,,1", "not a core number"),
])
def test_parse_cores_refuses_with_one_line(spec, words):
    with pytest.raises(PlanError) as e:
        parse_cores(spec, range(8))
    assert words in str(e.value) and "\n" not in str(e.value)
    assert repr(spec) in str(e.value)


@given(st.sets(st.integers(0, 300), min_size=1))
def test_format_cores_round_trips(cores):
    assert parse_cores(format_cores(sorted(cores)), range(301)) == tuple(sorted(cores))


# -- devices --------------------------------------------------------------------------------
def test_cpu_plan_round_robins_cores_and_leaves_gpus_alone():
    plan = make_plan(island_ids(5), (2, 5), "cpu")
    assert [p.cores for p in plan.islands] == [(2,), (5,), (2,), (5,), (2,)]
    assert {p.device for p in plan.islands} == {"cpu"} and {p.cuda_visible for p in plan.islands} == {None}


def test_cuda_gives_each_island_one_gpu_round_robin():
    assert assign_devices(5, "cuda", ["0", "1"]) == [("cuda:0", g) for g in "01010"]
    assert assign_devices(3, "cuda", ["4", "7"]) == [("cuda:0", "4"), ("cuda:0", "7"), ("cuda:0", "4")]
    assert assign_devices(2, "cuda:1", ["4", "7"]) == [("cuda:0", "7")] * 2
    fields = make_plan(island_ids(2), (0,), "cuda", ["0", "1"]).manifest_fields()
    assert fields["devices"] == {"island-00": "cuda:0", "island-01": "cuda:1"}
    assert fields["plan"]["cuda_visible_devices"] == {"island-00": "0", "island-01": "1"}


@pytest.mark.parametrize("device, gpus, words", [
    ("cuda", [], "CUDA is not available"), ("cuda:2", ["0", "1"], "GPU 2 does not exist"),
    ("tpu", ["0"], "expected cpu, cuda or cuda:N"), ("cuda:x", ["0"], "expected cpu"),
])
def test_bad_devices(device, gpus, words):
    with pytest.raises(PlanError, match=words):
        assign_devices(2, device, gpus)


def test_island_ids_widen_for_many_islands():
    assert island_ids(3) == ["island-00", "island-01", "island-02"]
    assert island_ids(101)[-1] == "island-100" and island_ids(101)[0] == "island-00"
    with pytest.raises(PlanError, match="at least 1"):
        make_plan([], (0,))


# -- --vary ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("nosuch=1:2", "cannot vary 'nosuch'"), ("seed=1:2", "cannot vary 'seed'"),
    ("mutation_rate", "expected NAME=LOW:HIGH"), ("mutation_rate=0.1", "expected NAME=LOW:HIGH"),
    ("mutation_rate=0.1:0.2:cube", "expected NAME=LOW:HIGH"), ("mutation_rate=a:b", "must be numbers"),
    ("mutation_rate=0.5:0.1", "must be below HIGH"), ("mutation_rate=0.2:0.2", "must be below HIGH"),
    ("mutation_sigma=0:1:log", "LOW > 0"), ("mutation_rate=nan:1", "finite"),
    ("population=10.2:10.8", "no integer"),
])
def test_parse_vary_refuses_nonsense(text, words):
    with pytest.raises(PlanError, match=words):
        parse_vary(text)


def test_vary_names_accept_dashes_and_print_canonically():
    assert str(parse_vary("mutation-sigma=0.01:0.2:log")) == "mutation_sigma=0.01:0.2:log"
    assert str(parse_vary("tournament_size=2:6")) == "tournament_size=2:6"


def test_sampling_is_seeded_stratified_and_in_range():
    ids = island_ids(8)
    specs = [parse_vary("mutation_sigma=0.01:0.3:log"), parse_vary("crossover_rate=0.2:1")]
    a = sample_overrides(specs, ids, seed=7)
    assert a == sample_overrides(list(reversed(specs)), ids, seed=7)  # option order is irrelevant
    assert a != sample_overrides(specs, ids, seed=8)
    sig = sorted(v["mutation_sigma"] for v in a.values())
    rate = sorted(v["crossover_rate"] for v in a.values())
    assert all(0.01 <= s <= 0.3 for s in sig) and all(0.2 <= r <= 1 for r in rate)
    # Stratified: exactly one island in each eighth of the (log-)range.
    assert sorted(int(8 * (math.log(s) - math.log(0.01)) / (math.log(0.3) - math.log(0.01))) for s in sig) == list(range(8))
    assert sorted(min(7, int(8 * (r - 0.2) / 0.8)) for r in rate) == list(range(8))


def test_integer_settings_are_rounded_and_cover_the_range():
    ids = island_ids(5)
    vals = sorted(v["tournament_size"] for v in sample_overrides([parse_vary("tournament_size=2:6")], ids, 0).values())
    assert vals == [2, 3, 4, 5, 6]
    pops = [v["population"] for v in sample_overrides([parse_vary("population=10:1000:log")], island_ids(20), 0).values()]
    assert all(isinstance(p, int) and 10 <= p <= 1000 for p in pops)


@pytest.mark.parametrize("text", ["mutation_rate=0:2", "population=1:50", "elitism=0:200"])
def test_ranges_that_make_invalid_settings_are_refused(text):
    spec = parse_vary(text)
    config = RunConfig(population=100)
    with pytest.raises(PlanError, match=r"--vary"):
        check_overrides(config, sample_overrides([spec], island_ids(4), 0), [spec])


def test_plan_is_recorded_and_rebuilt_from_the_manifest():
    specs = [parse_vary("mutation_sigma=0.01:0.2")]
    ids = island_ids(3)
    plan = make_plan(ids, (0, 1), "cpu", None, sample_overrides(specs, ids, 3), specs)
    fields = plan.manifest_fields()
    manifest = fmt.decode(fmt.encode("manifest", fields), "manifest")  # msgpack-safe
    again = plan_from_manifest(manifest, (1,), None)
    assert again.ids == ids and again.vary == plan.vary
    assert [dict(p.overrides) for p in again.islands] == [dict(p.overrides) for p in plan.islands]
    assert [p.cores for p in again.islands] == [(1,)] * 3  # cores are today's, not recorded ones
    text = "\n".join(plan.describe())
    assert "3 island(s) on 2 core(s) [0-1]" in text and "oversubscribed" in text and "mutation_sigma=" in text


def test_vary_lists_of_integer_settings_take_integers_only():
    assert parse_vary("population=8,1e1").values == (8, 10)
    with pytest.raises(PlanError, match="population takes integers, got 16.5"):
        parse_vary("population=8,16.5")
    with pytest.raises(PlanError, match="takes integers"):
        parse_vary("tournament_size=2,3.5")


# -- the run's evaluation budget ----------------------------------------------------------------
def test_a_launch_splits_the_runs_budget_over_the_islands_it_plans(tmp_path):
    from islands.errors import ConfigError
    from launcher.plan import settings_lines
    from launcher.request import LaunchRequest, new_run_config

    given = RunConfig(algorithm="cmaes", evaluation_budget=4000)
    config = new_run_config(LaunchRequest(tmp_path, given, islands=2), cores=(0, 1, 2, 3))
    assert (config.max_evaluations, config.evaluation_budget, config.generations) == (2000, 4000, None)
    assert new_run_config(LaunchRequest(tmp_path, given), cores=(0, 1, 2, 3)).max_evaluations == 1000  # one per core
    assert "budget 4,000 evaluations (2,000 per island), no generation limit, " in settings_lines(config, 2)[0]
    assert "population 100, 200 generations, target: the problem's, stop: each island at its target, dtype the " \
           "problem's" in settings_lines(RunConfig(), 2)[0]
    with pytest.raises(ConfigError, match="but --max-evaluations-per-island says 1500"):
        new_run_config(LaunchRequest(tmp_path, RunConfig(evaluation_budget=4000, max_evaluations=1500), islands=2),
                       cores=(0,))


def test_the_settings_line_of_a_mixed_archipelago_names_each_algorithms_population():
    from launcher.plan import settings_lines

    groups = [{"algorithm": a, "population": p, "target": -1e-4, "target_given": False, "dtype": "float64",
               "islands": ids} for a, p, ids in (("ga", 100, ["island-02"]), ("cmaes", 10, ["island-00", "island-03"]))]
    lines = settings_lines(RunConfig(stop_when="first", stagnation_limit=7), 3, groups)
    assert lines[0] == ("settings: problem rastrigin, dim 10, 200 generations, target -0.0001 (the problem's), stop: the "
                        "run once any island reaches its target or after 7 generations without progress, dtype float64")
    assert lines[1:] == ["  algorithm cmaes, population 10  (2 island(s): 00, 03)",
                         "  algorithm ga, population 100  (1 island(s): 02)"]


def test_the_settings_line_says_where_cmaes_islands_start_on_the_ipop_ladder():
    """An island high on the ladder runs 8x the population the line names: the line says so,
    from the check's group (plancheck asks the built algorithm), also for a resumed plan."""
    from islands.plancheck import check
    from launcher.plan import plan_from_manifest, settings_lines

    groups: list = []
    config = RunConfig(algorithm="cmaes", dim=10)
    assert check(config.to_dict(), {f"island-0{i}": {} for i in range(4)}, groups=groups) is None
    line = settings_lines(config, 4, groups)[0]
    assert "population 10 (first runs at 10, 20, 40, 80: the IPOP ladder)" in line, line
    sized: list = []  # --population is the ladder's foot
    check(RunConfig(algorithm="cmaes", dim=10, population=30).to_dict(), {"island-00": {}, "island-03": {}}, groups=sized)
    assert sized[0]["population_note"] == "first runs at 30, 240: the IPOP ladder"
    manifest = {"islands": ["island-00"], "plan": {"device": "cpu", "groups": groups}}
    assert plan_from_manifest(manifest, [0], None).groups[0]["population_note"] == groups[0]["population_note"]
    flat: list = []  # no ladder; and an island at its foot only (island-04) needs no note
    check(RunConfig(algorithm="cmaes", dim=10, algorithm_params={"ladder": 1}).to_dict(), {"island-01": {}}, groups=flat)
    check(config.to_dict(), {"island-04": {}}, groups=flat)
    assert flat[0]["population_note"] is None and flat[1]["population_note"] is None
    assert "IPOP" not in settings_lines(config, 4, flat[:1])[0]


def test_a_resumed_plan_takes_the_recorded_settings_groups_and_drops_malformed_ones():
    from launcher.plan import plan_from_manifest

    good = {"algorithm": "cmaes", "population": 10, "target": 0, "target_given": False, "dtype": "float64",
            "islands": ["island-00"], "unknown": 1}
    manifest = {"islands": ["island-00"], "plan": {"device": "cpu", "groups": [good]}}
    (group,) = plan_from_manifest(manifest, [0], None).groups
    assert group == {k: v for k, v in good.items() if k != "unknown"}
    bad = {**good, "population": "10", "islands": "island-00"}  # wrong types: left out, the rest kept
    (group,) = plan_from_manifest({**manifest, "plan": {"groups": [bad]}}, [0], None).groups
    assert "population" not in group and "islands" not in group and group["algorithm"] == "cmaes"
    for raw in (None, "x", [1], {"a": 1}):
        assert plan_from_manifest({**manifest, "plan": {"groups": raw}}, [0], None).groups == ()
