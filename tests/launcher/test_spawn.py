"""What a child island is started with, and how the launcher recognises its status."""
from __future__ import annotations

import sys
import types

from islands.threads import THREAD_VARS
from islands.status.record import IslandStatus
from launcher.child_setup import NO_PDEATHSIG_ENV, child_command, child_env, pdeathsig_wanted
from launcher.spawn import Child


def test_child_env_limits_threads_sets_the_gpu_and_drops_the_test_switch():
    base = {"PATH": "/bin", "OMP_NUM_THREADS": "64", NO_PDEATHSIG_ENV: "1"}
    env = child_env(base, cuda_visible="3")
    assert all(env[v] == "1" for v in THREAD_VARS) and env["PATH"] == "/bin"
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and NO_PDEATHSIG_ENV not in env
    assert "CUDA_VISIBLE_DEVICES" not in child_env({"PATH": "/bin"})
    assert base["OMP_NUM_THREADS"] == "64"  # the launcher's own environment is left alone


def test_child_command_runs_islands_evolve_with_this_python(tmp_path):
    cmd = child_command("island-03", tmp_path, "cuda:0")
    assert cmd[:5] == [sys.executable, "-m", "islands", "evolve", "island-03"]
    assert cmd[5:] == ["--run-dir", str(tmp_path), "--device", "cuda:0"]
    assert "--device" not in child_command("island-03", tmp_path, None)


def test_pdeathsig_switch():
    assert pdeathsig_wanted({}) == sys.platform.startswith("linux")
    assert not pdeathsig_wanted({NO_PDEATHSIG_ENV: "1"})


def test_a_status_belongs_to_the_incarnation_with_its_pid_started_after_it():
    child = Child("island-00", types.SimpleNamespace(pid=4242), create_time=1000.0)
    assert child.owns(IslandStatus(pid=4242, started=1001.5))
    assert not child.owns(IslandStatus(pid=4243, started=1001.5))  # another process
    assert not child.owns(IslandStatus(pid=4242, started=900.0))  # an earlier process with a reused pid
    assert not child.owns(IslandStatus(pid=4242))
