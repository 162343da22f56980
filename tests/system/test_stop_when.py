"""`--stop-when first`: the whole run stops once one island reaches the target.

Three real islands on a slow sphere, started together (a barrier): one converges (self-adaptive
GA steps), two cannot reach the target (fixed steps stall above it). With `all` the two run to
their generation limit; with `first` they stop soon after the first island's marker appears.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from islands.config import RunConfig
from islands.errors import ConfigError
from launcher.plan import island_ids
from launcher.summary import time_to_target
from migration_pool.rundir import RunDir
from support.procs import child_env

pytestmark = pytest.mark.timeout(300)


def test_stop_when_is_validated_and_not_part_of_the_trajectory():
    with pytest.raises(ConfigError, match="stop-when must be one of all, first, got 'some'"):
        RunConfig(stop_when="some")
    assert RunConfig(stop_when="first").trajectory_hash() == RunConfig().trajectory_hash()


def test_the_marker_is_written_once(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.ensure("island-01")
    rundir.ensure("island-02")
    mark = {"run_id": "r", "evaluations": 50, "best_ever": 0.0, "target": -1e-6, "time": 0.0}
    assert not rundir.target_reached("r") and rundir.read_target_reached() is None
    assert rundir.mark_target_reached({**mark, "island": "island-01", "generation": 7})
    assert not rundir.mark_target_reached({**mark, "island": "island-02", "generation": 9})
    assert rundir.target_reached("r") and rundir.read_target_reached()["island"] == "island-01"


def test_time_to_target_sums_every_island_at_the_first_hit():
    hist = {
        "island-00": [{"generation": 0, "best_ever": -5, "evaluations": 10, "time": 100.0},
                      {"generation": 1, "best_ever": -0.1, "evaluations": 20, "time": 101.0},
                      {"generation": 2, "best_ever": 0.0, "evaluations": 30, "time": 103.0}],
        "island-01": [{"generation": 0, "best_ever": -3, "evaluations": 10, "time": 100.5},
                      {"generation": 1, "best_ever": 0.5, "evaluations": 20, "time": 102.0}],
        "island-02": [{"generation": 0, "best_ever": -3, "evaluations": 40, "time": 100.2}],
    }
    hit = time_to_target(hist, {"island-00": 0.0, "island-01": 0.0, "island-02": 0.0}, started=99.0)
    assert {k: hit[k] for k in ("island", "generation", "evaluations", "wall_s")} == \
        {"island": "island-01", "generation": 1, "evaluations": 20 + 20 + 40, "wall_s": 3.0}
    # Milestones: decades of distance to the target not reached at the start (best -3 there).
    first = hit["milestones"][0]
    assert first == {"level": -1.0, "island": "island-00", "generation": 1, "evaluations": 20 + 10 + 40,
                     "wall_s": 2.0}
    assert [m["level"] for m in hit["milestones"]][:3] == [-1.0, -0.1, -0.01]
    assert hit["milestones"][2]["island"] == "island-01"  # -0.01 first reached by island-01's 0.5
    assert time_to_target(hist, {"island-00": 9.0, "island-01": None, "island-02": 9.0}, 99.0) is None


def launch(run: Path, barrier: Path, stop_when: str) -> subprocess.CompletedProcess:
    args = ["-n", "3", "--run-dir", str(run), "--problem", "slow_problem:make", "--param", "base=sphere",
            "--param", "delay=0.01", "--param", f"barrier={barrier}", "--param", "parties=3", "--dim", "4",
            "--population", "20", "--generations", "600", "--target", "-1e-10", "--checkpoint-every", "50",
            "--vary", "mutation=self-adaptive,fixed,fixed", "--stop-when", stop_when]
    return subprocess.run([sys.executable, "-m", "islands", "launch", "--plain", "--progress-every", "60", *args],
                          env=child_env(), capture_output=True, text=True, timeout=240, start_new_session=True)


def run_twice(tmp_path: Path, stop_when: str) -> tuple[Path, dict]:
    run, barrier = tmp_path / stop_when, tmp_path / f"barrier-{stop_when}"
    barrier.mkdir()
    out = launch(run, barrier, stop_when)
    assert out.returncode == 0, out.stdout + out.stderr
    return run, json.loads((run / "summary.json").read_text())


def test_first_stops_every_island_soon_after_one_reaches_the_target(tmp_path):
    run, first = run_twice(tmp_path, "first")
    rundir = RunDir(run)
    marker = rundir.read_target_reached()
    assert marker is not None and marker["island"] == "island-00"
    reasons = {isl: rundir.island(isl).read_status()["reason"] for isl in island_ids(3)}
    assert reasons == {"island-00": "target", "island-01": "target-elsewhere", "island-02": "target-elsewhere"}
    assert all(rundir.island(isl).read_status()["state"] == "finished" for isl in island_ids(3))
    assert first["to_target"]["island"] == "island-00"
    assert 0 < first["to_target"]["evaluations"] <= first["evaluations"]

    _, every = run_twice(tmp_path, "all")
    assert every["to_target"]["island"] == "island-00"
    assert every["islands"]["island-01"]["reason"] == "generations"
    assert first["evaluations"] < 0.6 * every["evaluations"], (first["evaluations"], every["evaluations"])

    # Resuming the stopped run does not evolve again: the launcher reruns no island, and an
    # island resumed by hand sees the marker before its first generation.
    generations = {isl: rundir.island(isl).read_status()["generation"] for isl in island_ids(3)}
    again = launch(run, tmp_path / "barrier-first", "first")
    assert again.returncode == 0 and (again.stdout + again.stderr).count("already finished") == 3, again.stderr
    res = subprocess.run([sys.executable, "-m", "islands", "evolve", "island-01", "--run-dir", str(run), "--quiet"],
                         env=child_env(), capture_output=True, text=True, timeout=120, start_new_session=True)
    assert res.returncode == 0 and "target-elsewhere" in res.stdout, res.stdout + res.stderr
    assert {isl: rundir.island(isl).read_status()["generation"] for isl in island_ids(3)} == generations
