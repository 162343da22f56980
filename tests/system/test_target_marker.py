"""`--stop-when first` with a target marker that no island of the run wrote: real islands
ignore it (one warning) and evolve on, and a run that such a marker ended is rerun.

The target is unreachable (rastrigin at 1e-12 in a few dozen generations), so any island that
stops early was stopped by the marker.
"""
from __future__ import annotations

import sys

import pytest

from migration_pool import format as fmt
from migration_pool.rundir import RunDir
from support.procs import evolve_cmd, kill_group, run, start, status_generation, wait_for

pytestmark = pytest.mark.timeout(300)

SLOW = ["--problem", "slow_problem:make", "--param", "delay=0.01", "--dim", "4", "--population", "10",
        "--target", "-1e-12", "--stop-when", "first", "--seed", "3"]


def final(run_dir, island="island-00") -> dict:
    return RunDir(run_dir).island(island).read_status()


def test_an_empty_marker_before_the_start_does_not_stop_an_island(tmp_path):
    tmp_path.joinpath("target-reached.isld").write_bytes(b"")
    done = run(evolve_cmd("island-00", tmp_path, *SLOW, "--generations", "30", quiet=False))
    assert done.returncode == 0, done.stderr
    st = final(tmp_path)
    assert (st["reason"], st["generation"]) == ("generations", 30), st
    assert done.stderr.count("target marker") == 1, done.stderr  # warned once, not every poll


def test_an_empty_marker_written_during_the_run_does_not_stop_it(tmp_path):
    proc = start(evolve_cmd("island-00", tmp_path, *SLOW, "--generations", "300"))
    try:
        wait_for(lambda: status_generation(tmp_path, "island-00") >= 5, what="generation 5")
        tmp_path.joinpath("target-reached.isld").write_bytes(b"")
        proc.wait(timeout=240)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, proc.stderr
    st = final(tmp_path)
    assert (st["reason"], st["generation"]) == ("generations", 300), st


def test_a_run_that_a_forged_marker_ended_is_rerun_by_the_launcher(tmp_path):
    # A record that an island of the run reached the target stops the island.
    proc = start(evolve_cmd("island-00", tmp_path, *SLOW, "--generations", "300"))
    try:
        wait_for(lambda: status_generation(tmp_path, "island-00") >= 3, what="generation 3")
        rundir = RunDir(tmp_path)
        rundir.ensure("island-05")
        forged = {"island": "island-05", "run_id": rundir.read_manifest()["run_id"], "generation": 1,
                  "evaluations": 1, "best_ever": 0.0, "target": -1e-12, "time": 0.0}
        rundir.target_marker_path.write_bytes(fmt.encode("target", forged))
        proc.wait(timeout=240)
    finally:
        kill_group(proc)
    assert proc.returncode == 0 and final(tmp_path)["reason"] == "target-elsewhere", proc.stderr
    at = final(tmp_path)["generation"]
    assert at < 300
    # That marker turns out to be nothing (emptied): the launcher reruns the island.
    rundir.target_marker_path.write_bytes(b"")
    again = run([sys.executable, "-m", "islands", "launch", "--plain", "-n", "1", "--run-dir", str(tmp_path)],
                timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already finished" not in again.stdout + again.stderr
    st = final(tmp_path)
    assert (st["reason"], st["generation"]) == ("generations", 300), st
