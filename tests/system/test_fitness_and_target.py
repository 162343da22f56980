"""Fitness values and targets a problem cannot give: a fitness that is NaN or infinite is never a
champion and is said during the run, and an island that never saw a finite fitness ends with
reason `no-finite-fitness` and exit 5; a target above a problem's known optimum is named when
the island starts.

The problem module is written into the test's folder and put on the children's PYTHONPATH.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from islands.exit_codes import EXIT_NO_FITNESS, EXIT_STOPPED, EXIT_USAGE, MEANING, NO_RESTART
from migration_pool.rundir import RunDir
from support.procs import child_env, evolve_cmd, kill_group, wait_for

pytestmark = pytest.mark.timeout(300)

PROBLEM = '''
import torch
from islands.problems import Problem

def make(dim=3, value="nan", finite_from=-1, half=False):
    calls = [0]
    def fn(genomes):
        calls[0] += 1
        f = -(genomes ** 2).sum(dim=1)
        if half:
            return torch.where(torch.arange(len(f)) % 2 == 0, f, torch.full_like(f, float(value)))
        if finite_from >= 0 and calls[0] > finite_from:
            return f
        return torch.full_like(f, float(value))
    return Problem(name="bad-fitness", dim=dim, lower=-5.0, upper=5.0, fn=fn, optimum=0.0)
'''


def evolve(tmp_path, *params: str, generations: int = 15, quiet: bool = False) -> subprocess.CompletedProcess:
    (tmp_path / "bad_fitness.py").write_text(PROBLEM)
    args = ["--problem", "bad_fitness:make", "--population", "8", "--generations", str(generations),
            *[x for p in params for x in ("--param", p)]]
    return subprocess.run(evolve_cmd("island-00", tmp_path / "run", *args, quiet=quiet),
                          env=child_env(PYTHONPATH=str(tmp_path)), capture_output=True, text=True,
                          timeout=240, start_new_session=True)


def status(tmp_path) -> dict:
    return RunDir(tmp_path / "run").island("island-00").read_status()


def test_the_exit_code_is_documented_and_never_restarted():
    assert EXIT_NO_FITNESS not in (0, 1, EXIT_USAGE) and EXIT_NO_FITNESS in NO_RESTART
    assert "finite" in MEANING[EXIT_NO_FITNESS]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_an_island_that_never_saw_a_finite_fitness_says_so_and_exits_5(tmp_path, value):
    out = evolve(tmp_path, f"value={value}")
    assert out.returncode == EXIT_NO_FITNESS, out.stdout + out.stderr
    assert out.stderr.count("no finite fitness") >= 2, out.stderr  # the warning at once, the error at the end
    assert out.stderr.count("warning:") == 1, out.stderr
    assert "Traceback" not in out.stderr
    st = status(tmp_path)
    assert (st["state"], st["reason"], st["generation"]) == ("finished", "no-finite-fitness", 15), st
    assert st["best_genome"] is None and st["best_ever"] in (None, float("-inf")), st
    history = RunDir(tmp_path / "run").island("island-00").read_history()
    assert len(history) == 16 and all(h["best_ever"] is None for h in history)
    # Run again: the same end, not a restart from scratch nor a silent exit 0.
    again = evolve(tmp_path, quiet=True)
    assert again.returncode == EXIT_NO_FITNESS and "no finite fitness" in again.stderr, again.stderr


def test_a_first_generation_without_finite_fitness_is_warned_once_and_the_run_goes_on(tmp_path):
    out = evolve(tmp_path, "finite_from=3", generations=20)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr.count("no finite fitness") == 1, out.stderr
    st = status(tmp_path)
    assert st["reason"] == "generations" and st["best_ever"] is not None and st["best_ever"] <= 0.0, st


def test_some_nan_or_inf_is_neither_warned_about_nor_a_champion(tmp_path):
    out = evolve(tmp_path, "half=True", "value=inf")
    assert out.returncode == 0 and "no finite fitness" not in out.stderr, out.stderr
    st = status(tmp_path)
    assert st["best_ever"] is not None and st["best_ever"] <= 0.0, st  # +inf never won


def test_a_launch_marks_such_an_island_failed_without_restarting_it(tmp_path):
    (tmp_path / "bad_fitness.py").write_text(PROBLEM)
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "islands", "launch", "--plain", "-n", "1", "--run-dir", str(run),
                          "--problem", "bad_fitness:make", "--population", "8", "--generations", "10"],
                         env=child_env(PYTHONPATH=str(tmp_path)), capture_output=True, text=True, timeout=240,
                         start_new_session=True)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "no finite fitness" in text and "restarts 0" in text, text
    summary = json.loads((run / "summary.json").read_text())
    assert summary["islands"]["island-00"]["state"] == "failed", summary["islands"]
    assert "champion" not in summary or summary["champion"] is None, summary.get("champion")
    # The same command again: the island stays failed (before: "already finished", exit 0),
    # with the way out, and is not rerun.
    again = subprocess.run(out.args, env=child_env(PYTHONPATH=str(tmp_path)), capture_output=True, text=True,
                           timeout=240, start_new_session=True)
    text = again.stdout + again.stderr
    assert again.returncode == 1, text
    assert "island-00: FAILED earlier" in text and "--fresh" in text and "already finished" not in text, text
    assert json.loads((run / "summary.json").read_text())["islands"]["island-00"]["state"] == "failed"
    assert RunDir(run).island("island-00").read_status()["generation"] == 10  # not rerun


# island-00 (bad=1) never sees a finite fitness and fails within a second; island-01 (bad=0)
# evaluates slowly (the scenario: it is still running when the launch is stopped).
MIXED = '''
import time
import torch
from islands.problems import Problem

def make(dim=3, bad=0):
    def fn(genomes):
        if bad:
            return torch.full((len(genomes),), float("nan"))
        if len(genomes) > 2:  # not the launch's two-genome check
            time.sleep(0.2)
        return -(genomes ** 2).sum(dim=1)
    return Problem(name="mixed", dim=dim, lower=-5.0, upper=5.0, fn=fn, optimum=0.0)
'''


def test_a_stop_signal_outranks_a_failed_island_the_launch_is_stopped_and_resumable(tmp_path):
    """A launch stopped by SIGTERM while one island had failed ends stopped (exit 75, the way to
    resume the others), not failed: the scheduler's stop is what ended it."""
    (tmp_path / "mixed.py").write_text(MIXED)
    run = tmp_path / "run"
    log = tmp_path / "launcher.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "islands", "launch", "--plain", "-n", "2", "--run-dir", str(run),
                                 "--problem", "mixed:make", "--vary", "param.bad=1,0", "--population", "8",
                                 "--generations", "1000", "--checkpoint-every", "1000", "--checkpoint-seconds", "0"],
                                env=child_env(PYTHONPATH=str(tmp_path)), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        def both_seen() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"launcher exited {proc.returncode}:\n{log.read_text()}")
            st = RunDir(run).island("island-01").read_status() if (run / "islands").exists() else None
            return "island-00: FAILED" in log.read_text() and st is not None and st.get("generation", 0) >= 2
        wait_for(both_seen, 120, "island-00 failed and island-01 running")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == EXIT_STOPPED, log.read_text()
    finally:
        kill_group(proc)
    text = log.read_text()
    assert "stopped; to resume from the islands' checkpoints, run the same command" in text, text
    summary = json.loads((run / "summary.json").read_text())
    assert summary["state"] == "stopped", summary
    assert summary["islands"]["island-00"]["state"] == "failed", summary["islands"]
    assert summary["islands"]["island-01"]["state"] == "stopped", summary["islands"]


def test_a_target_above_the_known_optimum_is_warned_about_when_the_island_starts(tmp_path):
    run = tmp_path / "run"
    out = subprocess.run(evolve_cmd("island-00", run, "--problem", "sphere", "--dim", "3", "--population", "8",
                                    "--generations", "5", "--target", "0.5", quiet=False),
                         env=child_env(), capture_output=True, text=True, timeout=120, start_new_session=True)
    assert out.returncode == 0, out.stdout + out.stderr
    warned = [ln for ln in out.stderr.splitlines() if "--target 0.5 is above the best fitness sphere" in ln]
    assert len(warned) == 1 and warned[0].startswith("warning: island-00: "), out.stderr
    assert RunDir(run).island("island-00").read_status()["reason"] == "generations"
    # At the optimum itself: reachable in principle, nothing to say.
    at = subprocess.run(evolve_cmd("island-00", tmp_path / "at", "--problem", "sphere", "--dim", "3",
                                   "--generations", "2", "--target", "0", quiet=False),
                        env=child_env(), capture_output=True, text=True, timeout=120, start_new_session=True)
    assert at.returncode == 0 and "above the best fitness" not in at.stderr, at.stderr
