"""A tuned archipelago of real island processes: an island SIGKILLed mid-run is restarted by the
launcher and takes up its segment from its checkpoint; the segments stay one consistent record
and `islands status` ranks them under the report's schema."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import jsonschema
import pytest

from islands.status.schema import SCHEMA
from islands.tuning import segments
from migration_pool.rundir import RunDir
from support.procs import child_env, kill_group, status_generation, wait_for

pytestmark = pytest.mark.timeout(300)


def test_a_killed_tuned_island_resumes_its_segments_and_status_ranks_them(tmp_path):
    run = tmp_path / "run"
    args = ["-n", "3", "--run-dir", str(run), "--problem", "slow_problem:make", "--dim", "4",
            "--param", "delay=0.003", "--population", "10", "--generations", "80", "--migrate-every", "0",
            "--vary", "mutation_sigma=0.01:0.5:log", "--vary", "crossover_rate=0.1:0.9",
            "--tuner", "pbt", "--ready", "10", "--pbt-fraction", "0.34", "--plain", "--progress-every", "60"]
    proc = subprocess.Popen([sys.executable, "-m", "islands", "launch", *args], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for(lambda: status_generation(run, "island-01") >= 25, what="island-01 past its second decision")
        pid = RunDir(run).island("island-01").read_status()["pid"]
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=240)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, out
    assert "tuner: pbt, every 10 generations" in out  # the plan says what the tuner will do
    log = RunDir(run).island("island-01").log_path.read_text()
    assert "resuming from generation" in log, log
    by_island = segments.read_run(RunDir(run))
    assert set(by_island) == {"island-00", "island-01", "island-02"}
    for island, segs in by_island.items():
        assert [s.index for s in segs] == list(range(len(segs))), island  # one record, no gap, no repeat
        assert [s.start for s in segs] == sorted(s.start for s in segs)
        assert [s.end for s in segs][-1] == "ended" and all(s.end == "exploited" for s in segs[:-1])
        assert sum(s.generations for s in segs) == 80
    report = json.loads(subprocess.run([sys.executable, "-m", "islands", "status", "--run-dir", str(run), "--json"],
                                       env=child_env(), capture_output=True, text=True, timeout=60).stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    tuning = report["tuning"]
    assert tuning["tuner"] == "pbt" and tuning["segments"] == sum(len(s) for s in by_island.values())
    bests = [s["best"] for s in tuning["best"]]
    assert bests == sorted(bests, reverse=True) and bests[0] == pytest.approx(report["archipelago"]["champion"]["fitness"])
    assert tuning["champion_schedule"] and report["settings"] is None  # segments, not first settings, are ranked


def test_the_same_tuned_command_resumes_and_a_changed_schedule_is_refused(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "islands", "launch", "-n", "2", "--run-dir", str(run), "--problem", "sphere", "--dim",
           "3", "--population", "10", "--generations", "20", "--vary", "mutation_sigma=0.01:0.5:log", "--tuner", "asha",
           "--rung", "5", "--plain"]
    first = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stdout + first.stderr
    again = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=240)
    assert again.returncode == 0 and "contradicts" not in again.stdout + again.stderr, again.stdout + again.stderr
    changed = subprocess.run([*cmd, "--rung", "6"], env=child_env(), capture_output=True, text=True, timeout=240)
    assert changed.returncode == 2 and "rung=6 contradicts the run manifest" in changed.stderr, changed.stderr


def test_launch_request_takes_a_tuner_over_its_vary_space(tmp_path):
    from pathlib import Path

    from islands.config import RunConfig
    from launcher.errors import PlanError
    from launcher.request import LaunchRequest

    req = LaunchRequest(Path(tmp_path / "run"), RunConfig(problem="sphere"), islands=2,
                        vary=("mutation_sigma=0.01:0.5:log",), tuner={"kind": "pbt", "ready": 4})
    assert (req.config.tuner.kind, req.config.tuner.ready, req.config.tuner.space) == \
        ("pbt", 4, ("mutation_sigma=0.01:0.5:log",))
    assert req.explicit["tuner.kind"] == "pbt" and req.explicit["tuner.space"] == ["mutation_sigma=0.01:0.5:log"]
    with pytest.raises(PlanError, match="unknown tuner setting"):
        LaunchRequest(Path(tmp_path / "run"), RunConfig(problem="sphere"), vary=("mutation_sigma=0.01:0.5",),
                      tuner={"kind": "asha", "rungs": 5})
