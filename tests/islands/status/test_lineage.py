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
