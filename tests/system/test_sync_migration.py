"""`--migration sync` with real processes: a run is a pure function of its seed and settings,
and a source that dies is skipped and counted, never waited for forever."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from migration_pool.rundir import RunDir
from support.procs import child_env, evolve_cmd, kill_group, start, status_generation, wait_for

LAUNCH = ["-n", "4", "--problem", "rastrigin", "--dim", "10", "--population", "40",
          "--generations", "120", "--target", "1", "--seed", "5", "--migrate-every", "5", "--migration", "sync",
          "--checkpoint-seconds", "0", "--plain"]


def launch(run_dir, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "islands", "launch", "--run-dir", str(run_dir), *args],
                         env=child_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def trajectories(run_dir) -> dict[str, list[tuple]]:
    """Per island: (generation, best, best_ever, foreign) of every history line."""
    rd = RunDir(run_dir)
    return {i: [(r["generation"], r.get("best"), r.get("best_ever"), r.get("foreign"))
                for r in rd.island(i).read_history()] for i in rd.island_ids()}


def migration(run_dir, island: str) -> dict:
    return RunDir(run_dir).island(island).read_status()["migration"]


@pytest.mark.slow
def test_two_sync_launches_with_one_seed_are_bit_identical(tmp_path):
    launch(tmp_path / "a", *LAUNCH)
    launch(tmp_path / "b", *LAUNCH)
    a, b = trajectories(tmp_path / "a"), trajectories(tmp_path / "b")
    assert sorted(a) == ["island-00", "island-01", "island-02", "island-03"]
    assert all(len(lines) > 20 for lines in a.values())
    assert a == b  # every island, every generation: best, best ever and immigrant share
    champ_a, champ_b = RunDir(tmp_path / "a").read_champion(), RunDir(tmp_path / "b").read_champion()
    assert champ_a["fitness"] == champ_b["fitness"] and champ_a["island"] == champ_b["island"]
    assert (champ_a["genome"] == champ_b["genome"]).all()
    for island in a:  # islands did exchange: the sameness is not that of isolated islands
        m = migration(tmp_path / "a", island)
        assert m["received"] > 0 and m["skipped"] == 0


@pytest.mark.slow
def test_a_killed_source_is_skipped_and_counted(tmp_path):
    barrier = tmp_path / "barrier"
    args = ["--problem", "slow_problem:make", "--dim", "6", "--population", "20", "--seed", "3",
            # 0.16 s per generation: island-00 is killed long before it could reach the end
            "--param", "delay=0.008", "--param", f"barrier={barrier}", "--param", "parties=3",
            "--generations", "120", "--migrate-every", "5", "--migration", "sync",
            "--migration-timeout", "60"]
    procs = {i: start(evolve_cmd(i, tmp_path, *args, quiet=False))
             for i in ("island-00", "island-01", "island-02")}
    try:
        wait_for(lambda: status_generation(tmp_path, "island-00") >= 30, what="island-00 at generation 30")
        os.killpg(procs["island-00"].pid, signal.SIGKILL)
        procs["island-00"].wait()
        killed_at = status_generation(tmp_path, "island-00")
        assert killed_at < 100, f"island-00 was killed too late to test a skip (generation {killed_at})"
        outs = {i: procs[i].communicate(timeout=120) for i in ("island-01", "island-02")}
    finally:
        for p in procs.values():
            kill_group(p)
    for i in ("island-01", "island-02"):
        assert procs[i].returncode == 0, outs[i]
        assert status_generation(tmp_path, i) == 120
    # island-01 reads island-00 (ring): the skip is logged and counted, not waited out
    assert "skipped island-00 (process gone" in outs["island-01"][0] + outs["island-01"][1], outs["island-01"]
    assert migration(tmp_path, "island-01")["skipped"] >= 1
    assert migration(tmp_path, "island-02")["skipped"] == 0  # it reads island-01, alive throughout


@pytest.mark.slow
def test_a_stopped_and_resumed_sync_launch_ends_as_an_uninterrupted_one(tmp_path):
    args = ["-n", "3", "--problem", "slow_problem:make", "--dim", "6", "--population", "20",
            "--param", "delay=0.002", "--generations", "100", "--seed", "9", "--migrate-every", "4",
            "--migration", "sync", "--checkpoint-every", "7", "--checkpoint-seconds", "0", "--plain"]
    launch(tmp_path / "whole", *args)
    stopped = tmp_path / "stopped"
    cmd = [sys.executable, "-m", "islands", "launch", "--run-dir", str(stopped), *args]
    proc = start(cmd)
    try:
        wait_for(lambda: min(status_generation(stopped, f"island-0{i}") for i in range(3)) >= 30,
                 what="every island past generation 30")
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
        proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    assert max(status_generation(stopped, f"island-0{i}") for i in range(3)) < 100  # it did stop early
    launch(stopped, *args)  # the same command resumes
    assert trajectories(stopped) == trajectories(tmp_path / "whole")
