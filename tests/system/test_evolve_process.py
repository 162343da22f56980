"""`islands evolve` as a real process: SIGKILL and resume, signals, threads, bad input."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import numpy as np
import psutil
import pytest

from islands.exit_codes import EXIT_STOPPED
from migration_pool.rundir import RunDir
from support.procs import (child_env, evolve_cmd, kill_group, run, sigkill_at_generation, signal_at_generation, start,
                           status_generation, wait_for)

SLOW = ["--problem", "slow_problem:make", "--dim", "10", "--population", "40", "--seed", "11",
        "--checkpoint-every", "10", "--checkpoint-seconds", "0"]


def population(run_dir, island="island-00") -> np.ndarray:
    record, errors = RunDir(run_dir).island(island).load_checkpoint()
    assert record is not None and not errors
    return np.asarray(record["state"]["genomes"])


def checkpoint_generations(run_dir, island="island-00") -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in RunDir(run_dir).island(island).checkpoint_paths())


def test_sigkill_mid_run_then_the_same_command_resumes_from_the_checkpoint(tmp_path):
    cmd = evolve_cmd("island-00", tmp_path, *SLOW, "--generations", "150")
    proc = start(cmd)
    sigkill_at_generation(proc, tmp_path, 45)
    assert proc.returncode == -signal.SIGKILL
    saved = checkpoint_generations(tmp_path)
    assert saved and saved[-1] >= 40
    done = run(cmd)
    assert done.returncode == 0, done.stderr
    assert f"resumed from generation {saved[-1]}" in done.stdout
    assert "at generation 150" in done.stdout
    gens = [r["generation"] for r in RunDir(tmp_path).island("island-00").read_history()]
    assert gens == list(range(151))  # no restart from 0, no duplicated lines


def test_resume_equivalence_under_repeated_sigkill(tmp_path):
    """Crash-safe (docs/DESIGN.md): killed at random generations and resumed, it ends exactly as an uninterrupted run."""
    rng = random.Random(7)
    killed, uninterrupted = tmp_path / "killed", tmp_path / "whole"
    # The uninterrupted run, in its own folder, meanwhile: it shares nothing with the killed one.
    whole = start(evolve_cmd("island-00", uninterrupted, *SLOW, "--generations", "200"))
    try:
        cmd = evolve_cmd("island-00", killed, *SLOW, "--generations", "200")
        for kill_at in sorted(rng.sample(range(15, 190), 4)):
            proc = start(cmd)
            try:
                wait_for(lambda: status_generation(killed, "island-00") >= kill_at or proc.poll() is not None,
                         what=f"generation {kill_at}")
                os.killpg(proc.pid, signal.SIGKILL)
            finally:
                kill_group(proc)
            gens = checkpoint_generations(killed)
            assert gens == sorted(gens)
        record, _ = RunDir(killed).island("island-00").load_checkpoint()
        assert record["generation"] >= 10  # some progress survived the kills
        assert run(cmd).returncode == 0
        whole.communicate(timeout=120)
        assert whole.returncode == 0
    finally:
        kill_group(whole)
    assert np.array_equal(population(killed), population(uninterrupted))


def test_sigint_checkpoints_exits_75_and_resumes(tmp_path):
    cmd = evolve_cmd("island-00", tmp_path, *SLOW, "--generations", "400")
    proc = start(cmd)
    out, err = signal_at_generation(proc, tmp_path, 25, signal.SIGINT, timeout=30)
    assert proc.returncode == EXIT_STOPPED, err
    assert "stopped" in out and "run the same command to resume" in out
    status = RunDir(tmp_path).island("island-00").read_status()
    assert status["state"] == "stopped"
    assert checkpoint_generations(tmp_path)[-1] == status["generation"]  # checkpoint at the stop
    resumed = run(cmd)
    assert f"resumed from generation {status['generation']}" in resumed.stdout


def test_an_island_has_at_most_four_threads_at_population_500(tmp_path):
    cmd = evolve_cmd("island-00", tmp_path, "--problem", "slow_problem:make", "--dim", "100",
                     "--population", "500", "--generations", "100000", "--param", "delay=0.0005")
    env = child_env(OMP_NUM_THREADS="8")  # the island must override what it inherits
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: status_generation(tmp_path, "island-00") >= 20, what="generation 20")
        p = psutil.Process(proc.pid)
        counts = []

        def sampled_over_5_generations() -> bool:
            counts.append(p.num_threads())
            return status_generation(tmp_path, "island-00") >= 25 and len(counts) >= 10

        wait_for(sampled_over_5_generations, what="10 thread counts over 5 generations", interval=0.05)
    finally:
        kill_group(proc)
    # With OMP_NUM_THREADS=8 inherited and not overridden, torch would use 8 intra-op threads.
    assert max(counts) <= 4, counts
    assert RunDir(tmp_path).island("island-00").read_status()["torch_threads"] == 1


def test_same_island_twice_in_one_run_is_refused(tmp_path):
    cmd = evolve_cmd("island-00", tmp_path, *SLOW, "--generations", "100000")
    proc = start(cmd)
    try:
        wait_for(lambda: status_generation(tmp_path, "island-00") >= 1, what="first island")
        second = run(cmd)
    finally:
        kill_group(proc)
    assert second.returncode == 4 and "already running" in second.stderr


@pytest.mark.parametrize("args, code, message", [
    (["island-3"], 2, "is not like 'island-03'"),
    (["island-001"], 2, "is not like 'island-03'"),  # island-01's number: one spelling each
    (["island-" + "9" * 29], 2, "at most 6 digits"),
    (["island-00", "--problem", "nosuch"], 2, "rastrigin"),
    (["island-00", "--problem", "nosuch_module_xyz:make"], 2, "nosuch_module_xyz"),
    (["island-00", "--population", "1"], 2, "population must be >= 2"),
    (["island-00", "--generations", "-1"], 2, "generations must be >= 0"),
    (["island-00", "--param", "nonsense"], 2, "KEY=VALUE"),
    (["island-00", "--device", "cuda:7"], 2, "cuda"),
    (["island-00", "--dim", "0"], 2, "0"),
])
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(tmp_path, args, code, message):
    done = run([sys.executable, "-m", "islands", "evolve", *args, "--run-dir", str(tmp_path / "r"),
                "--generations" if "--generations" not in args else "--seed", "5"])
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    if args[0] != "island-00":  # a refused id leaves no island directory behind
        assert not (tmp_path / "r" / "islands").exists() or not os.listdir(tmp_path / "r" / "islands")


def test_unwritable_run_dir_corrupt_checkpoint_and_manifest_conflict(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    bad_dir = run(evolve_cmd("island-00", blocker / "run", "--generations", "5"))
    assert bad_dir.returncode == 1 and "cannot use run directory" in bad_dir.stderr
    assert "Traceback" not in bad_dir.stderr

    root = tmp_path / "run"
    assert run(evolve_cmd("island-00", root, "--generations", "30", "--checkpoint-every", "10")).returncode == 0
    for path in RunDir(root).island("island-00").checkpoint_paths():
        path.write_bytes(b"\x00" * 40)
    corrupt = run(evolve_cmd("island-00", root))
    assert corrupt.returncode == 3
    assert "checkpoint-00000030" in corrupt.stderr and "--fresh" in corrupt.stderr
    assert "Traceback" not in corrupt.stderr
    assert run(evolve_cmd("island-00", root, "--fresh")).returncode == 0

    conflict = run(evolve_cmd("island-01", root, "--population", "77"))
    assert conflict.returncode == 2
    assert "population=77" in conflict.stderr and "population=100" in conflict.stderr
