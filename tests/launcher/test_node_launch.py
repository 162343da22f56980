"""Whole-node SLURM jobs without SLURM: the node's slice, its environment, the batch script and
the options that ask for it (the real thing runs on the multi-host cluster: test_slurm_multi_host)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from launcher.errors import PlanError
from launcher.node_launch import node_slice, rank_from_env
from launcher.sbatch import SlurmOptions, render
from support.procs import child_env

PLANNED = [f"island-{i:02d}" for i in range(10)]


@pytest.mark.parametrize("indices, ranks", [(list(range(10)), 3), ([1, 4, 7], 2), ([0, 2], 4), (list(range(10)), 1)])
def test_node_slices_are_disjoint_cover_every_index_and_differ_by_at_most_one(indices, ranks):
    slices = [node_slice(PLANNED, indices, r, ranks) for r in range(ranks)]
    flat = [i for s in slices for i in s]
    assert sorted(flat) == sorted(PLANNED[i] for i in indices) and len(set(flat)) == len(flat)
    assert max(map(len, slices)) - min(map(len, slices)) <= 1
    with pytest.raises(PlanError):
        node_slice(PLANNED, indices, ranks, ranks)


@pytest.mark.parametrize("env, want", [
    ({"SLURM_NODEID": "1", "SLURM_NNODES": "3", "ISLANDS_SLURM_INDICES": "0,1,5"}, (1, 3, [0, 1, 5])),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "ISLANDS_SLURM_INDICES": "4"}, (0, 2, [4])),
])
def test_the_node_rank_comes_from_slurms_environment(env, want):
    assert rank_from_env(env) == want


@pytest.mark.parametrize("env, message", [
    ({"ISLANDS_SLURM_INDICES": "0"}, "not a task of a whole-node SLURM job"),
    ({"SLURM_NODEID": "0", "SLURM_NNODES": "0", "ISLANDS_SLURM_INDICES": "0"}, "not a task"),
    ({"SLURM_NODEID": "0", "SLURM_NNODES": "2", "ISLANDS_SLURM_INDICES": "0;rm -rf"}, "not a list of island indices"),
    ({"SLURM_NODEID": "0", "SLURM_NNODES": "2"}, "not a list of island indices"),
])
def test_a_bad_node_environment_is_one_line(env, message):
    with pytest.raises(PlanError, match=message):
        rank_from_env(env)


def test_the_node_script_asks_whole_nodes_a_core_per_island_and_runs_one_launcher_per_node(tmp_path):
    text = render(SlurmOptions(pattern="node", nodes=3), run_dir=str(tmp_path / "run"), run_id="ab" * 16,
                  indices=[0, 1, 2, 3, 4, 5, 6], planned=PLANNED, python="/usr/bin/python3", cwd=str(tmp_path), env={})
    lines = text.splitlines()
    for want in ("#SBATCH --nodes=3", "#SBATCH --ntasks-per-node=1", "#SBATCH --cpus-per-task=3",
                 "export ISLANDS_SLURM_INDICES=0,1,2,3,4,5,6"):
        assert want in lines, want
    assert (f"srun --ntasks-per-node=1 --cpus-per-task=3 --cpu-bind=cores /usr/bin/python3 -m launcher.node_launch "
            f"{tmp_path}/run &") in lines
    assert "--array" not in text and "islands evolve" not in text
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"pattern": "node"}, "--pattern node needs --nodes"),
    ({"pattern": "array", "nodes": 2}, "--nodes is for --pattern node"),
    ({"pattern": "node", "nodes": 0}, "expected 1 to 65535"),
    ({"pattern": "node", "nodes": 2, "device": "cuda"}, "runs CPU islands"),
])
def test_node_options_are_checked(kwargs, message):
    with pytest.raises(PlanError, match=message):
        SlurmOptions(**kwargs)


def test_a_node_launcher_outside_a_job_or_run_says_so_in_one_line(tmp_path):
    def node(*args, **env):
        return subprocess.run([sys.executable, "-m", "launcher.node_launch", *args], env=child_env(**env),
                              capture_output=True, text=True, timeout=120)

    out = node(str(tmp_path / "run"))
    assert out.returncode == 2 and out.stderr.startswith("error: not a task of a whole-node SLURM job"), out.stderr
    out = node(str(tmp_path / "run"), SLURM_NODEID="0", SLURM_NNODES="1", ISLANDS_SLURM_INDICES="0")
    assert out.returncode == 2 and "no run in" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()
    assert node().returncode == 2


@pytest.mark.parametrize("scontrol", [
    "exit 1",  # the controller refuses
    "printf 'JobId=\\0garbage Restarts=x ArrayTaskId=[ BatchHost\\n%s\\n' \"$(head -c 300 /dev/urandom | base64)\"",
    "sleep 30",  # a controller that does not answer: the query's own timeout
])
def test_status_survives_a_scheduler_that_answers_badly_or_not_at_all(tmp_path, scontrol):
    """`islands status` of a SLURM run whose scontrol fails, prints garbage or hangs: one table,
    exit 0, SLURM's view left out (heartbeats alone), never a traceback or a hang."""
    from migration_pool.rundir import RunDir
    from support.factories import small_config
    from islands.runs import evolve

    evolve("island-00", tmp_path / "run", small_config(generations=3), log=lambda _m: None)
    RunDir(tmp_path / "run").scheduler.record_slurm_job({"job_id": "5", "pattern": "array", "islands": {"0": "island-00"}})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\n{scontrol}\n")
    (bin_dir / "scontrol").chmod(0o755)
    env = child_env(PATH=f"{bin_dir}:{child_env()['PATH']}")
    out = subprocess.run([sys.executable, "-c", "import islands.scheduler_state as s, sys; s.QUERY_TIMEOUT_S = 2.0; "  # the hang: 2 s
                          "from islands.cli import main; sys.exit(main())", "status", "--run-dir", str(tmp_path / "run")],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert "island-00" in out.stdout and "finished" in out.stdout, out.stdout
