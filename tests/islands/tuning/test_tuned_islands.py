"""Tuned islands in this process (`islands.runs.evolve`): what they record, how they resume, and
that records other islands wrote (segments, checkpoints) never move them outside the space."""
from __future__ import annotations

import math

import pytest

from islands.config import RunConfig
from islands.runs import evolve
from islands.stopping import StopFlag
from islands.tuning import segments, space
from islands.tuning.config import TunerConfig
from islands.tuning.segments import Segment
from migration_pool.rundir import RunDir

VARY = ("mutation_sigma=0.01:0.5:log", "crossover_rate=0.1:0.9")


def config(kind: str, **tuner) -> RunConfig:
    return RunConfig(problem="rastrigin", dim=4, population=20, generations=40, seed=3, checkpoint_seconds=0,
                     tuner=TunerConfig(kind=kind, space=VARY, **tuner))


def dominating(root, island="island-09", rungs=6, many=12) -> None:
    """Another island's records, `many` segments that beat every rung (fitness 0 is rastrigin's
    optimum): enough to fill the top third of every rung the tests' island reaches."""
    RunDir(root).ensure(island)
    segments.write(RunDir(root), island, [Segment(island, i, {}, 0, 100, 2000, 0.0, (0.0,) * rungs)
                                          for i in range(many)])


def finished_donor(root, cfg):
    """island-01 run to its end: the run directory, its last checkpoint record and its segment."""
    evolve("island-01", root, cfg, log=lambda m: None)
    rundir = RunDir(root)
    record, _ = rundir.island("island-01").load_checkpoint()
    (ended,) = segments.read(rundir, "island-01")
    return rundir, record, ended


def test_an_island_outside_the_top_at_each_rung_restarts_with_drawn_settings(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    dominating(root)
    lines: list[str] = []
    result = evolve("island-00", root, config("asha", rung=5, reduction=3), log=lines.append)
    mine = segments.read(RunDir(root), "island-00")
    assert [s.start for s in mine] == [0, 5, 10, 15, 20, 25, 30, 35]  # halved at each first rung
    assert [s.end for s in mine] == ["halved"] * 7 + ["ended"]  # none begun at the run's last generation
    assert all("rung 0 (5 generations)" in s.why for s in mine[:-1])
    specs = space.parse_space(VARY)
    assert all(space.contains(specs, dict(s.settings)) for s in mine[1:])
    assert len({tuple(sorted(s.settings.items())) for s in mine}) == len(mine)  # each restart draws anew
    assert sum(s.evaluations for s in mine) == result.evaluations  # every evaluation belongs to a segment
    assert sum("segment" in line for line in lines) == 7


def test_a_stopped_tuned_island_resumes_its_segment_bit_exactly(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    for root in (whole, parts):
        root.mkdir()
        dominating(root)
    cfg = config("asha", rung=5, reduction=3)
    straight = evolve("island-00", whole, cfg, log=lambda m: None)
    stop = StopFlag()
    first = evolve("island-00", parts, cfg, log=lambda m: None, stop=stop,
                   on_generation=lambda isl, line: stop.request() if line.generation == 13 else None)
    assert first.reason == "stopped" and first.generation < 40
    resumed = evolve("island-00", parts, cfg, log=lambda m: None)
    assert resumed.resumed_from is not None
    assert (resumed.best, resumed.evaluations, resumed.generation) == (straight.best, straight.evaluations, 40)
    assert segments.read(RunDir(parts), "island-00") == segments.read(RunDir(whole), "island-00")


def test_pbt_copies_a_better_islands_population_and_explores_its_settings(tmp_path):
    root = tmp_path / "run"
    cfg = config("pbt", ready=10, fraction=0.5)
    donor = evolve("island-01", root, cfg, log=lambda m: None)  # its final checkpoint: state and segment
    rundir = RunDir(root)
    (ended,) = segments.read(rundir, "island-01")
    segments.write(rundir, "island-01", [Segment(**{**ended.__dict__, "end": "running", "best": 0.0})])  # "still running, best"
    lines: list[str] = []
    evolve("island-00", root, cfg, log=lines.append)
    mine = segments.read(rundir, "island-00")
    assert mine[0].end == "exploited" and mine[1].parent == "island-01#0"
    assert space.contains(space.parse_space(VARY), dict(mine[1].settings))
    assert mine[1].settings != ended.settings  # explored around the donor's settings
    assert mine[1].best >= donor.best - 1e-12  # it holds the donor's population from generation 10 on
    assert any("copied island-01#0" in line for line in lines)


def test_a_forged_donor_checkpoint_outside_the_space_is_not_copied(tmp_path):
    root = tmp_path / "run"
    cfg = config("pbt", ready=10, fraction=0.5)
    rundir, record, _ = finished_donor(root, cfg)
    forged = Segment("island-01", 0, {"mutation_sigma": 50.0, "crossover_rate": 0.5}, 0, 40, 800, 0.0)
    rundir.island("island-01").save_checkpoint(41, {**record, "segment": forged.to_body()})
    segments.write(rundir, "island-01", [forged])
    lines: list[str] = []
    result = evolve("island-00", root, cfg, log=lines.append)
    assert [s.end for s in segments.read(rundir, "island-00")] == ["ended"]  # never copied
    assert any("outside the --vary space; not copied" in line for line in lines)
    assert math.isfinite(result.best)


def test_a_donor_s_claimed_fitness_is_evaluated_again_before_it_can_be_the_island_s_best(tmp_path):
    """A donor's population is copied with its genomes; its fitness, another process's claim (and on
    an episodic task measured on the donor's episodes), is not: here it claims the optimum."""
    root = tmp_path / "run"
    cfg = config("pbt", ready=10, fraction=0.5)
    rundir, record, ended = finished_donor(root, cfg)
    good = Segment(**{**ended.__dict__, "end": "running", "best": 0.0})
    state = dict(record["state"])
    state["fitness"] = state["fitness"] * 0.0  # every genome claims rastrigin's optimum, 0
    rundir.island("island-01").save_checkpoint(41, {**record, "segment": good.to_body(), "state": state})
    segments.write(rundir, "island-01", [good])
    result = evolve("island-00", root, cfg, log=lambda m: None)
    mine = segments.read(rundir, "island-00")
    assert mine[1].parent == "island-01#0"  # it did copy the population
    assert result.best < -1e-6 and mine[1].best < -1e-6  # the genomes' true fitness, not the claim


def test_a_tuned_islands_status_and_champion_carry_the_settings_its_best_was_found_with(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    dominating(root)
    evolve("island-00", root, config("asha", rung=5, reduction=3), log=lambda m: None)
    rundir = RunDir(root)
    mine = segments.read(rundir, "island-00")
    status = rundir.island("island-00").read_status()
    found_in = max(mine, key=lambda s: s.best)  # the segment that holds the island's best-ever
    assert status["best_ever"] == found_in.best
    assert status["overrides"] == dict(found_in.settings)
    assert rundir.read_champion()["overrides"] == dict(found_in.settings)


def test_pbt_copies_with_the_donors_own_settings_when_explored_ones_do_not_fit_its_state(tmp_path):
    """DE's memory_size sizes its state: an explored size cannot hold the copied memory, so the
    copy runs with the donor's settings rather than not at all."""
    root = tmp_path / "run"
    cfg = RunConfig(problem="rastrigin", dim=4, algorithm="de", population=20, generations=30, seed=5,
                    checkpoint_seconds=0, tuner=TunerConfig(kind="pbt", ready=10, fraction=0.5,
                                                           space=("algo.memory_size=2:20", "algo.p_best=0.05:0.5:log")))
    evolve("island-01", root, cfg, log=lambda m: None)
    rundir = RunDir(root)
    (ended,) = segments.read(rundir, "island-01")
    segments.write(rundir, "island-01", [Segment(**{**ended.__dict__, "end": "running", "best": 0.0})])
    lines: list[str] = []
    evolve("island-00", root, cfg, log=lines.append)
    mine = segments.read(rundir, "island-00")
    assert mine[1].parent == "island-01#0" and dict(mine[1].settings) == dict(ended.settings)
    assert "not explored" in mine[0].why
    assert not any("warning" in line for line in lines), lines


def test_a_forged_donor_state_that_does_not_fit_is_not_copied_and_the_island_runs_on(tmp_path):
    root = tmp_path / "run"
    cfg = config("pbt", ready=10, fraction=0.5)
    rundir, record, ended = finished_donor(root, cfg)
    good = Segment(**{**ended.__dict__, "end": "running", "best": 0.0})
    rundir.island("island-01").save_checkpoint(41, {**record, "segment": good.to_body(),
                                                    "state": {"genomes": "not an array", "size": -1}})
    segments.write(rundir, "island-01", [good])
    lines: list[str] = []
    result = evolve("island-00", root, cfg, log=lines.append)
    assert result.reason == "generations" and result.generation == 40
    assert [s.end for s in segments.read(rundir, "island-00")] == ["ended"]
    assert any("cannot start segment" in line for line in lines)


def test_tpe_leaves_no_trial_running_when_a_rung_falls_on_the_last_generation(tmp_path):
    optuna = pytest.importorskip("optuna", reason="the optuna extra is not installed")
    from islands.tuning import tpe

    root = tmp_path / "run"
    root.mkdir()
    dominating(root)  # halved at every rung: a rung falls on generation 40, the last
    evolve("island-00", root, config("tpe", rung=5, reduction=3), log=lambda m: None)
    study = tpe.open_study(root / tpe.JOURNAL)
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states, states
    assert states.count(optuna.trial.TrialState.FAIL) == 1  # asked at generation 40, never started
    mine = segments.read(RunDir(root), "island-00")
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == len(mine)
