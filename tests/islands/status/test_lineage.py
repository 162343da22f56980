"""Lineage diversity: the effective number of origins, from hand-made counts to real runs.

The real runs are small islands evolved in this process with `islands.runs.evolve`, one after
the other: in the takeover run island-00 evolves to the end first, then island-01 migrates
every 2 generations and reads only island-00's far better batches, so island-00's lineage
takes it over; in the isolated run nothing migrates and each island keeps its own lineage.
"""
from __future__ import annotations

import json
import math

import jsonschema
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from islands import figures, policies
from islands.population import Migrants
from islands.algorithms.ga import GeneticAlgorithm
from islands.algorithms.neat.algorithm import NeatAlgorithm
from islands.config import GAConfig, MigrationConfig
from islands.problems import make_problem
from islands.runs import evolve
from islands.status import lineage
from islands.status import report as rep
from islands.status.cli import status as status_cmd
from islands.status.plot import write_plot
from islands.status.record import HistoryLine, IslandStatus
from islands.status.schema import SCHEMA
from launcher.summary import summarize, summary_lines
from migration_pool.rundir import RunDir
from support.factories import QUIET, small_config, status_body

VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


# -- the figure -----------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_equal_origins_count_as_k(k):
    assert lineage.effective_origins({i: 7 for i in range(k)}) == pytest.approx(k)


def test_effective_origins_by_hand():
    assert lineage.effective_origins({"a": 3, "b": 1}) == pytest.approx(
        math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))  # 1.7548...
    assert lineage.effective_origins({"a": 3, "b": 1}) == pytest.approx(1.7547654, rel=1e-6)
    assert lineage.effective_origins({"a": 30}) == 1.0
    assert lineage.effective_origins({"a": 30, "b": 0}) == 1.0  # an origin with nobody left counts for nothing
    assert lineage.effective_origins({}) == 0.0
    assert lineage.effective_origins({"a": 99, "b": 1}) < 1.06  # a straggler barely counts


def test_dominant_pooled_and_takeover():
    counts = lineage.pooled([{0: 20, 1: 5}, {0: 18, 1: 2}, {2: 1}])
    assert counts == {0: 38, 1: 7, 2: 1}
    assert lineage.dominant(counts) == (0, pytest.approx(38 / 46))
    assert lineage.dominant_share({}) is None
    assert lineage.takeover(counts, contributors=3) == (0, pytest.approx(38 / 46))
    assert lineage.takeover(counts, contributors=1) == (None, None)  # a lone island is all one origin
    assert lineage.takeover({0: 10, 1: 10}, contributors=2) == (None, None)  # half is not more than half
    warning = lineage.takeover_warning(lineage.name_origins(counts, ["island-000", "island-001"]), 3)
    assert warning is not None and warning.startswith("warning: island-000's lineage holds 83%")
    assert lineage.name_origins({2: 1, 0: 4}, ["island-000"]) == {"island-000": 4, "island-02": 1}


def test_over_time_pools_each_islands_latest_sample_per_bin():
    points = {"island-00": [(0, {0: 10}), (10, {0: 10}), (20, {0: 10})],
              "island-01": [(0, {1: 10}), (10, {0: 5, 1: 5}), (20, {0: 10})]}
    trend = lineage.over_time(points, bins=3)  # bins of 7 generations: 0-6, 7-13, 14-20
    assert [p["generation"] for p in trend] == [0, 10, 20]
    assert [p["islands"] for p in trend] == [2, 2, 2]
    assert trend[0]["effective_origins"] == pytest.approx(2.0)
    assert trend[1]["effective_origins"] == pytest.approx(lineage.effective_origins({0: 15, 1: 5}))
    assert trend[2]["effective_origins"] == pytest.approx(1.0) and trend[2]["dominant_share"] == 1.0
    assert lineage.over_time({"island-00": []}) == []


def test_records_carry_origins_and_decode_tolerantly():
    st = IslandStatus(island="island-00", origins={3: 5, 0: 2})
    body = st.to_body()
    assert body["origins"] == {"0": 2, "3": 5}  # string keys: msgpack and JSON maps agree
    assert IslandStatus.from_body(body).origins == {0: 2, 3: 5}
    bad = {"origins": {"x": 1, "2": "a", "4": True, "5": -1, "6": 3, "-7": 2}}
    assert IslandStatus.from_body(bad).origins == {6: 3}
    assert IslandStatus.from_body({"origins": [1, 2]}).origins == {}
    assert IslandStatus.from_body({}).origins == {}  # a status of an older island
    line = HistoryLine(generation=10, diversity=0.1, foreign=0.0, origins={1: 3})
    assert json.loads(json.dumps(line.to_body()))["origins"] == {"1": 3}
    assert HistoryLine.from_body(json.loads(json.dumps(line.to_body()))).origins == {1: 3}
    assert "origins" not in HistoryLine(generation=11).to_body()  # unsampled lines stay short


# -- algorithms -------------------------------------------------------------------------------
def test_ga_origins_follow_adopted_migrants():
    algo = GeneticAlgorithm(make_problem("sphere", 4), GAConfig(elitism=1))
    g = torch.Generator().manual_seed(0)
    state = algo.evaluate(algo.init(20, island=2, gen=g))
    assert figures.origins(algo.population(state)) == {2: 20}
    incoming = Migrants(genomes=np.array([[0.0] * 4, [0.1] * 4, [0.2] * 4], np.float64),
                        fitness=np.zeros(3), origin=np.array([5, 5, 7]), birth=np.zeros(3, np.int64),
                        lineage=np.array([1, 2, 3]))
    state, adopted = policies.immigrate(algo, state, incoming, "worst", g)
    assert adopted == 3
    assert figures.origins(algo.population(state)) == {2: 17, 5: 2, 7: 1}
    assert all(isinstance(k, int) and isinstance(v, int) for k, v in figures.origins(algo.population(state)).items())
    assert lineage.effective_origins(figures.origins(algo.population(state))) == pytest.approx(
        math.exp(-sum(p * math.log(p) for p in (17 / 20, 2 / 20, 1 / 20))))


def test_neat_origins_count_the_population():
    from islands.config import RunConfig
    from islands.algorithms import make_algorithm

    cfg = RunConfig(problem="xor", algorithm="neat", population=30)
    algo = make_algorithm(cfg, make_problem("xor"), torch.device("cpu"))
    assert isinstance(algo, NeatAlgorithm)
    state = algo.init(30, 4, torch.Generator().manual_seed(1))
    assert figures.origins(algo.population(state)) == {4: 30}


# -- real runs, in this process -------------------------------------------------------------
def _run(root, migration: MigrationConfig) -> RunDir:
    cfg = small_config(generations=40, migration=migration)
    for island in ("island-00", "island-01"):
        evolve(island, root, cfg, **QUIET)
    return RunDir(root)


@pytest.fixture(scope="module")
def takeover(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("takeover"), MigrationConfig(every=2, migrants=10, topology="ring"))


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("isolated"), MigrationConfig(every=0))


def _statuses(rd: RunDir) -> dict[str, IslandStatus]:
    return {i: IslandStatus.from_body(rd.island(i).read_status()) for i in ("island-00", "island-01")}


def test_takeover_is_measured_and_warned(takeover, tmp_path):
    statuses = _statuses(takeover)
    assert statuses["island-00"].origins == {0: 30}  # it ran alone: nothing to adopt
    assert statuses["island-01"].migration.adopted > 0
    assert statuses["island-01"].origins.get(0, 0) > 15  # island-00's lineage took island-01 over
    report = rep.build_report(takeover.root)
    VALIDATOR.validate(report)
    lin = report["archipelago"]["lineage"]
    assert lin["islands_counted"] == 2 and lin["individuals"] == 60
    assert lin["dominant_origin"] == "island-00" and lin["dominant_share"] > 0.75
    assert 1.0 <= lin["effective_origins"] < 1.8
    assert lin["warning"] and "island-00's lineage holds" in lin["warning"]
    assert lin["over_time"] and lin["over_time"][-1]["effective_origins"] == pytest.approx(lin["effective_origins"])
    assert lin["over_time"][0]["effective_origins"] == pytest.approx(2.0)  # generation 0: each island its own
    by_id = {i["island"]: i for i in report["islands"]}
    assert by_id["island-00"]["effective_origins"] == 1.0
    assert by_id["island-01"]["effective_origins"] == pytest.approx(
        lineage.effective_origins(statuses["island-01"].origins))
    table = CliRunner().invoke(status_cmd, ["--run-dir", str(takeover.root)])
    assert table.exit_code == 0, table.output
    assert "effective origins of 2 islands" in table.output and "takeover" in table.output
    summary = summarize(run_id=statuses["island-00"].run_id, run_dir=str(takeover.root), problem="rastrigin",
                        dim=8, state="finished", wall_s=1.0, statuses=statuses, baseline={}, watches={})
    assert summary["lineage"]["effective_origins"] == pytest.approx(lin["effective_origins"])
    text = "\n".join(summary_lines(summary))
    assert "lineages: " in text and "island-00's lineage holds" in text
    png = write_plot(takeover.root, report, tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_isolated_islands_keep_every_lineage(isolated):
    report = rep.build_report(isolated.root)
    VALIDATOR.validate(report)
    lin = report["archipelago"]["lineage"]
    assert lin["origins"] == {"island-00": 30, "island-01": 30}
    assert lin["effective_origins"] == pytest.approx(2.0) and lin["dominant_share"] == 0.5
    assert lin["warning"] is None
    assert all(i["effective_origins"] == 1.0 for i in report["islands"])
    lines = isolated.island("island-01").history_lines()
    sampled = [HistoryLine.from_body(json.loads(ln)) for ln in lines if b'"origins"' in ln]
    assert [h.generation for h in sampled] == list(range(0, 41, 10)) and all(h.origins == {1: 30} for h in sampled)
    table = CliRunner().invoke(status_cmd, ["--run-dir", str(isolated.root)])
    assert table.exit_code == 0 and "2.0 effective origins" in table.output and "takeover" not in table.output


def _fake_run(root, centroids, diversity) -> RunDir:
    rd = RunDir(root)
    ids = [f"island-{i:02d}" for i in range(len(centroids))]
    rd.create_or_read_manifest(lambda: {"schema": 1, "run_id": "r1", "created": 0.0, "islands": ids,
                                        "config": {"problem": "sphere", "dim": 3, "migration": {"every": 0}}})
    for n, (island, c) in enumerate(zip(ids, centroids)):
        rd.ensure(island)
        rd.island(island).write_status(status_body(island, centroid=np.full(3, c), diversity=diversity,
                                            origins={str(n): 10}))
    return rd


@pytest.mark.parametrize("centroids, diversity, expected", [
    ((0.5, 0.5), 0.1, 0.0),  # every island on one point: no separation
    ((0.0, 1.0), 0.1, 10.0),  # opposite corners (distance sqrt(3) / sqrt(3) = 1) over a spread of 0.1
    ((0.0, 1.0), 0.0, None),  # no spread inside: the ratio means nothing
])
def test_separation_is_between_over_within(tmp_path, centroids, diversity, expected):
    report = rep.build_report(_fake_run(tmp_path, centroids, diversity).root)
    VALIDATOR.validate(report)
    arch = report["archipelago"]
    assert arch["separation"] == (None if expected is None else pytest.approx(expected))
    assert arch["lineage"]["effective_origins"] == pytest.approx(2.0)  # hand-written origins are read back


def test_real_runs_report_separation(takeover, isolated):
    for rd in (takeover, isolated):
        arch = rep.build_report(rd.root)["archipelago"]
        assert arch["separation"] == pytest.approx(arch["between_island_diversity"] / arch["mean_diversity"])
        assert arch["separation"] > 0


# -- like with like, per island, and takeover verdicts -----------------------------------------
def test_over_time_carries_an_ended_island_forward_instead_of_dropping_it():
    # island-00 ends at generation 20, island-01 runs to 60: both keep their own lineage.
    points = {"island-00": [(0, {0: 10}, 100.0), (10, {0: 10}, 101.0), (20, {0: 10}, 102.0)],
              "island-01": [(g, {1: 10}, 100.0 + g) for g in range(0, 61, 10)]}
    trend = lineage.over_time(points, bins=7)  # bins of 9 generations: one sample per island and bin
    assert [p["generation"] for p in trend] == [0, 10, 20, 30, 40, 50, 60]
    # Counting only the islands that sampled in a bin, the curve fell to 1.0 after generation 20.
    assert [p["effective_origins"] for p in trend] == pytest.approx([2.0] * 7)
    assert [p["islands"] for p in trend] == [2] * 7
    assert [p["carried"] for p in trend] == [0, 0, 0, 1, 1, 1, 1]
    assert trend[-1]["time"] == 160.0 and trend[2]["time"] == 120.0  # the latest sample in the bin
    # An island that has not reported yet is not counted; one that samples less often is carried.
    late = {"island-00": [(0, {0: 4}), (30, {0: 4})], "island-01": [(20, {1: 4}), (30, {0: 4})]}
    assert [(p["generation"], p["islands"], p["carried"]) for p in lineage.over_time(late, bins=4)] == \
        [(0, 1, 0), (20, 2, 1), (30, 2, 0)]
    assert lineage.over_time(late, bins=4)[-1]["effective_origins"] == pytest.approx(1.0)
    assert lineage.over_time(late, bins=4)[0]["time"] is None  # pairs: no time recorded


def test_an_islands_own_figure_names_its_largest_lineage():
    assert lineage.island_lineage({"island-03": 30}) == ("island-03", 1.0)
    assert lineage.island_lineage({"island-03": 12, "island-07": 18}) == ("island-07", pytest.approx(0.6))
    assert lineage.island_lineage({}) == (None, None)


def _st(island, **kw):
    return IslandStatus(island=island, run_id="r", **kw)


def test_target_reach_from_status_records():
    none = {"island-00": _st("island-00", target=-1e-8, best_ever=-0.5, reason="generations")}
    assert lineage.target_reach(none) == lineage.TargetReach(-1e-8) and not lineage.target_reach(none).reached
    statuses = {
        "island-00": _st("island-00", target=-1e-8, best_ever=-1e-9, best_ever_generation=80, reason="target"),
        "island-01": _st("island-01", target=-1e-8, best_ever=-2e-9, best_ever_generation=50, reason="target"),
        "island-02": _st("island-02", target=-1e-8, best_ever=-3.0, generation=49, reason="target-elsewhere"),
    }
    assert lineage.target_reach(statuses) == lineage.TargetReach(-1e-8, "island-01", 50)
    # An island that says it ended at its target counts even without a best_ever to compare.
    assert lineage.target_reach({"island-04": _st("island-04", reason="target", generation=9)}).island == "island-04"
    # The time, from the sampled histories (each island against its own target), else from the
    # heartbeat of an island that stopped at its target.
    hist = {"island-00": [(10.0, -3.0), (20.0, -5e-9)], "island-01": [(15.0, -0.1)]}
    timed = lineage.first_reach_time(lineage.target_reach(statuses), statuses, hist)
    assert (timed.island, timed.generation, timed.time) == ("island-00", 80, 20.0)
    beat = {**statuses, "island-01": _st("island-01", target=-1e-8, best_ever=-2e-9, best_ever_generation=50,
                                          reason="target", heartbeat=12.5)}
    assert lineage.first_reach_time(lineage.target_reach(beat), beat, hist).time == 12.5
    assert lineage.first_reach_time(lineage.target_reach(none), none, {}) == lineage.target_reach(none)


def _trend(*points):
    return [{"generation": g, "time": t, "dominant_share": share, "islands": 4} for g, t, share in points]


def test_a_takeover_before_the_target_warns_and_one_after_it_is_a_note():
    counts = {"island-00": 70, "island-01": 10, "island-02": 10, "island-03": 10}
    curve = _trend((0, 100.0, 0.25), (10, 110.0, 0.4), (20, 120.0, 0.6), (30, 130.0, 0.7))
    # Never reached: trouble, and it says since when.
    v = lineage.takeover_verdict(counts, 4, lineage.TargetReach(-1e-8), curve)
    assert v["kind"] == "before-target" and v["generation"] == 20
    line = lineage.verdict_line(v)
    assert line.startswith("warning: island-00's lineage holds 70% of the archipelago from generation 20 on, and "
                           "no island has reached the target (takeover:")
    assert lineage.takeover_warning(counts, 4, lineage.TargetReach(-1e-8), curve) == line
    # Reached at 115 s, after the takeover began (120 s on the curve is later: fine; 110 s not).
    after = lineage.takeover_verdict(counts, 4, lineage.TargetReach(-1e-8, "island-02", 15, 115.0), curve)
    assert after["kind"] == "after-target" and lineage.takeover_warning(counts, 4, lineage.TargetReach(
        -1e-8, "island-02", 15, 115.0), curve) is None
    assert lineage.verdict_line(after).startswith("note: island-00's lineage holds 70% of the archipelago; it "
                                                  "spread after island-02 had reached the target (its generation 15)")
    before = lineage.takeover_verdict(counts, 4, lineage.TargetReach(-1e-8, "island-02", 25, 125.0), curve)
    assert before["kind"] == "before-target"
    assert "before island-02 reached the target at generation 25" in lineage.verdict_line(before)
    # Without times the generations decide; with no curve a reached target is convergence.
    untimed = [{**p, "time": None} for p in curve]
    assert lineage.takeover_verdict(counts, 4, lineage.TargetReach(-1e-8, "island-02", 25), untimed)["kind"] == \
        "before-target"
    assert lineage.takeover_verdict(counts, 4, lineage.TargetReach(-1e-8, "island-02", 25))["kind"] == "after-target"
    # A takeover that came and went counts from where it began for good.
    wavy = _trend((0, 100.0, 0.25), (10, 110.0, 0.6), (20, 120.0, 0.4), (30, 130.0, 0.7))
    assert lineage.takeover_verdict(counts, 4, None, wavy)["generation"] == 30
    # No target at all: still a warning, which says so; no takeover: nothing.
    assert "this run has no target" in lineage.verdict_line(lineage.takeover_verdict(counts, 4))
    assert lineage.takeover_verdict({"island-00": 5, "island-01": 5}, 2) is None


def test_the_report_and_the_summary_show_the_island_lineage_and_the_verdict(tmp_path):
    rd = RunDir(tmp_path)
    ids = ["island-00", "island-01", "island-02"]
    rd.create_or_read_manifest(lambda: {"schema": 1, "run_id": "r1", "created": 0.0, "islands": ids,
                                        "config": {"problem": "sphere", "dim": 3, "migration": {"every": 0}}})
    for n, island in enumerate(ids):
        rd.ensure(island)
        rd.island(island).write_status(status_body(island, origins={"0": 10},
                                                   target=-1e-8, best_ever=-1e-9 if n == 0 else -1.0,
                                                   best_ever_generation=30, reason="target" if n == 0 else
                                                   "target-elsewhere", state="finished"))
    report = rep.build_report(tmp_path)
    VALIDATOR.validate(report)
    by_id = {i["island"]: i for i in report["islands"]}
    assert (by_id["island-00"]["lineage_origin"], by_id["island-00"]["lineage_share"]) == ("island-00", 1.0)
    assert (by_id["island-02"]["lineage_origin"], by_id["island-02"]["lineage_share"]) == ("island-00", 1.0)
    lin = report["archipelago"]["lineage"]
    # No history: no curve, and the target was reached: convergence, a note and no warning.
    assert lin["warning"] is None and lin["note"].startswith("note: island-00's lineage holds 100%")
    assert lin["takeover"]["kind"] == "after-target" and lin["takeover"]["target_island"] == "island-00"
    table = CliRunner().invoke(status_cmd, ["--run-dir", str(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "lineage" in table.output and "own 100%" in table.output and "00 100%" in table.output
    assert "no takeover to worry about" in table.output and "warning" not in table.output
    statuses = {i: IslandStatus.from_body(rd.island(i).read_status()) for i in ids}
    summary = summarize(run_id="r1", run_dir=str(tmp_path), problem="sphere", dim=3, state="finished",
                        wall_s=1.0, statuses=statuses, baseline={}, watches={})
    assert summary["lineage"]["warning"] is None and summary["lineage"]["note"].startswith("note: ")
    assert any(line.startswith("note: island-00's lineage") for line in summary_lines(summary))
    # The same run before any island reached its target: the warning.
    statuses = {i: IslandStatus.from_body({**rd.island(i).read_status(), "reason": "generations",
                                           "best_ever": -1.0}) for i in ids}
    summary = summarize(run_id="r1", run_dir=str(tmp_path), problem="sphere", dim=3, state="finished",
                        wall_s=1.0, statuses=statuses, baseline={}, watches={})
    assert summary["lineage"]["warning"].startswith("warning: island-00's lineage holds 100%")
    assert "no island has reached the target" in summary["lineage"]["warning"]


def test_a_real_run_that_converges_on_its_target_ends_with_a_note_not_a_warning(tmp_path):
    # island-00 evolves to its target first; the other two then adopt its lineage (10 migrants
    # every 2 generations): the lineage spread after the target was reached.
    cfg = small_config(problem="sphere", dim=4, generations=300,
                       migration=MigrationConfig(every=2, migrants=10, topology="ring", min_distance=0.0))
    ends = [evolve(island, tmp_path, cfg, **QUIET) for island in ("island-00", "island-01", "island-02")]
    assert [r.reason for r in ends] == ["target"] * 3
    report = rep.build_report(tmp_path)
    VALIDATOR.validate(report)
    lin = report["archipelago"]["lineage"]
    assert lin["dominant_origin"] == "island-00" and lin["dominant_share"] > 0.5
    assert lin["takeover"]["kind"] == "after-target" and lin["takeover"]["target_island"] == "island-00"
    assert lin["warning"] is None and "no takeover to worry about" in lin["note"]
    assert {i["island"]: i["lineage_origin"] for i in report["islands"]}["island-01"] == "island-00"
    # The curve counts all three islands to the end, though two ended before the last one.
    assert all(p["islands"] == 3 for p in lin["over_time"]) and lin["over_time"][-1]["carried"] == 2
    png = write_plot(tmp_path, report, tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
