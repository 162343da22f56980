"""`islands launch --backend slurm` against a real SLURM (scripts/slurm-local start), not a mock.

Skipped at collection, with the reason, where no SLURM controller answers (.ci/run starts one
where it can be installed; it exports ISLANDS_SLURM_UNAVAILABLE with the reason where not).
Problems are tiny and islands sleep per evaluation (tests/support/slow_problem.py), so the
tasks cost little CPU on a 2-core machine; most of the time is torch's import in each task.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from islands import scheduler_state as sched
from islands.status.record import HistoryLine
from islands.status.report import build_report
from launcher.cli import launch
from launcher.slurm import ended_code
from migration_pool.rundir import RunDir
from support.cli_output import error_lines
from support.procs import island_status, child_env, wait_for


def _unavailable() -> str | None:
    if os.environ.get("ISLANDS_SLURM_UNAVAILABLE"):
        return os.environ["ISLANDS_SLURM_UNAVAILABLE"]
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return "SLURM is not installed (scripts/slurm-local start installs a one-machine SLURM, as root)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError) as e:
        return f"scontrol ping failed ({e})"
    if "UP" not in ping.stdout:
        return "no SLURM controller answers (run scripts/slurm-local start)"
    return None


REASON = _unavailable()
pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=REASON or "")]

TINY = ["--problem", "slow_problem:make", "--dim", "4", "--population", "8", "--checkpoint-every", "5", "--checkpoint-seconds", "0",
        "--plain", "--progress-every", "1"]


def launch_cmd(run: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "islands", "launch", "--backend", "slurm", "--run-dir", str(run), *TINY, *args]


def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


def report(run: Path) -> dict:
    """`islands status --json`'s islands, built in this process (the CLI adds only printing)."""
    return {i["island"]: i for i in build_report(run)["islands"]}


def jobs(run: Path) -> list[str]:
    return [str(r["job_id"]) for r in RunDir(run).scheduler.read_slurm_jobs()]


def generations(run: Path, island: str) -> list[int]:
    return [HistoryLine.from_body(r).generation for r in RunDir(run).island(island).iter_history()]


def slurm_out(run: Path) -> str:
    """Every task's output, once each island's latest task has ended (an island writes its
    finished status a moment before its last line)."""
    wait_for(lambda: all(ended_code(RunDir(run), t) is not None for t in sched.island_jobs(RunDir(run)).values()),
             timeout=60, interval=0.1, what="the tasks' last lines")
    return "".join(p.read_text(errors="replace") for p in sorted((run / "slurm").glob("*.out")))


def queue(workdir: Path) -> set[str]:
    """The jobs SLURM knows that run in `workdir` (a batch script's --chdir: the launch's folder),
    so that another suite sharing this SLURM does not count."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-r", "-o", "%i %Z"], capture_output=True, text=True, timeout=30)
    return {job for job, _, where in (line.partition(" ") for line in out.stdout.splitlines())
            if Path(where.strip()) == workdir}


@pytest.fixture
def run_dir(tmp_path):
    """The run directory; every job recorded in it is cancelled at teardown."""
    run = tmp_path / "run"
    yield run
    if jobs(run):
        subprocess.run(["scancel", *jobs(run)], capture_output=True, timeout=30)


def test_eight_islands_as_a_job_array_finish_with_one_manifest_and_migrants_across_all(run_dir, tmp_path):
    barrier = tmp_path / "barrier"  # the islands evolve together whatever their start-up skew
    cmd = launch_cmd(run_dir, "-n", "8", "--generations", "40", "--migrate-every", "5",
                     "--param", "delay=0.002", "--param", f"barrier={barrier}", "--param", "parties=8")
    out = finish(start(cmd, tmp_path))
    assert "all 8 island(s) finished" in out, out
    assert len(jobs(run_dir)) == 1  # one array, not eight jobs
    manifest = RunDir(run_dir).read_manifest()
    ids = [f"island-{i:02d}" for i in range(8)]
    assert manifest["planned_islands"] == ids
    statuses = {i: island_status(run_dir, i) for i in ids}
    assert {s.run_id for s in statuses.values()} == {manifest["run_id"]}  # every task joined one run
    assert all(s.state == "finished" and s.generation == 40 for s in statuses.values())
    assert all(s.migration.sent > 0 and s.migration.received > 0 for s in statuses.values()), \
        {i: (s.migration.sent, s.migration.received) for i, s in statuses.items()}
    seen = report(run_dir)  # its task may still be ending: SLURM's state is any of these
    assert {seen[i]["scheduler"]["state"] for i in ids} <= {"running", "stopping", "completed"}
    assert {seen[i]["scheduler"]["job"] for i in ids} == {f"{jobs(run_dir)[0]}_{n}" for n in range(8)}
    assert {seen[i]["state"] for i in ids} == {"finished"}


def test_scancel_then_the_same_command_resumes_and_a_killed_task_is_resubmitted(run_dir, tmp_path):
    # The islands start together (a barrier), so under load neither has run its 200 generations
    # while the other still imports torch when the job is cancelled.
    cmd = launch_cmd(run_dir, "-n", "2", "--generations", "200", "--param", "delay=0.004",
                     "--param", f"barrier={tmp_path / 'barrier'}", "--param", "parties=2")
    ids = ["island-00", "island-01"]
    first = start(cmd, tmp_path)
    wait_for(lambda: all((island_status(run_dir, i).generation or 0) >= 15 for i in ids) or first.poll() is not None,
             timeout=90, what="every island at generation 15")
    subprocess.run(["scancel", jobs(run_dir)[0]], check=True, timeout=30)
    out = finish(first)
    assert first.returncode == 75, out  # EXIT_STOPPED: stopped, not finished
    # SLURM's word for the ended task depends on when it is asked (CANCELLED, or COMPLETED once the
    # batch script has reported the island's own exit 75 under load): either is a stop.
    assert len(re.findall(r"island-0[01]: stopped \((?:CANCELLED|COMPLETED)\); not resubmitted", out)) == 2, out
    assert "run the same command" in out
    stopped = {i: island_status(run_dir, i) for i in ids}
    assert all(s.state == "stopped" for s in stopped.values()), {i: s.state for i, s in stopped.items()}
    assert all(s.generation < 200 for s in stopped.values())

    second = start(cmd, tmp_path)  # the same command: resumes every island
    wait_for(lambda: len(jobs(run_dir)) == 2 and all(
        (island_status(run_dir, i).generation or 0) > stopped[i].generation + 5 for i in ids) or second.poll() is not None,
        timeout=90, what="every island running again")
    victim = island_status(run_dir, "island-01")
    assert victim.state == "running" and victim.host == socket.gethostname()
    os.kill(victim.pid, signal.SIGKILL)  # as the kernel's OOM killer or a node's cleanup would
    wait_for(lambda: report(run_dir)["island-01"]["state"] == "dead" or second.poll() is not None,
             timeout=60, interval=0.2, what="island-01 reported dead")
    out = finish(second)
    assert second.returncode == 0, out
    assert "island-01: its SLURM task ended" in out and "(dead); resubmitting" in out
    assert len(jobs(run_dir)) == 3  # the resumed array, then island-01 alone
    log = slurm_out(run_dir)
    for i in ids:
        assert island_status(run_dir, i).state == "finished"
        assert f"{i}: generations at generation 200" in log
        assert generations(run_dir, i) == list(range(generations(run_dir, i)[0], 201))  # no gap, no repeat
    resumed = {i: int(log.split(f"{i}: generations at generation 200")[1].split("resumed from generation ")[1]
                      .split(")")[0]) for i in ids}
    assert 0 < resumed["island-00"] <= stopped["island-00"].generation  # from its checkpoint
    assert resumed["island-01"] > stopped["island-01"].generation  # from its checkpoint after the kill


def test_bad_options_submit_nothing_and_write_nothing(run_dir, tmp_path, monkeypatch):
    before = queue(tmp_path)
    bad = [
        (["-n", "2", "--partition", "no-such-partition"], "sbatch refuses the job"),  # sbatch --test-only
        (["-n", "2", "--time", "0"], "--time '0'"),
        (["-n", "2", "--time", "an hour"], "--time 'an hour'"),
        (["-n", "2", "--sbatch-arg=--array=0-99"], "--array is set by islands"),
        (["-n", "2", "--pattern", "tree"], "'tree' is not one of"),
        (["-n", "2", "--cores", "0"], "--cores applies to local launches"),
        (["-n", "2", "--device", "cuda:1"], "--device 'cuda:1'"),
        (["--generations", "5"], "needs -n/--islands"),  # a new run under SLURM
    ]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])  # the settings check's child finds slow_problem
    for args, why in bad:  # in this process (click's runner): the checks, not the start-up, are under test
        out = CliRunner().invoke(launch, launch_cmd(run_dir, "--generations", "5", *args)[4:])
        assert out.exit_code == 2 and why in out.output, (args, out.output)
        assert error_lines(out.output)[0].startswith(("error: ", "Usage: ")), (args, out.output)  # step lines may come first
        assert "Traceback" not in out.output, (args, out.output)
        assert not run_dir.exists(), args
    assert queue(tmp_path) == before


def test_status_shows_pending_requeued_and_a_warned_task_requeues_and_resumes(run_dir, tmp_path):
    logs = tmp_path / "logs"  # --logger reaches the tasks (through the environment sbatch passes on)
    cmd = launch_cmd(run_dir, "-n", "2", "--generations", "60", "--param", "delay=0.006", "--detach",
                     "--sbatch-arg=--hold", "--logger", f"jsonl:{logs}")
    out = finish(start(cmd, tmp_path))
    assert "detached" in out, out
    (job,) = jobs(run_dir)
    held = report(run_dir)
    assert {held[i]["state"] for i in held} == {"pending"}
    assert {held[i]["scheduler"]["state"] for i in held} == {"pending"}
    subprocess.run(["scontrol", "release", job], check=True, timeout=30)
    wait_for(lambda: (island_status(run_dir, "island-00").generation or 0) >= 10, timeout=90, what="island-00 running")
    # What SLURM sends --warn-before seconds before a time limit: USR1 to the batch shell only.
    subprocess.run(["scancel", "--batch", "--signal=USR1", f"{job}_0"], check=True, timeout=30)
    wait_for(lambda: (sched.island_states(RunDir(run_dir)) or {}).get("island-00", sched.TaskState("", "")).state
             == "requeued", timeout=60, what="island-00 requeued")
    assert report(run_dir)["island-00"]["state"] == "requeued"
    assert island_status(run_dir, "island-00").state == "stopped"  # it checkpointed before requeueing
    # A requeued task waits ~2 minutes before it may start again; let it start now.
    # Not at once: a task restarted on the same node within a second or so of its requeue is
    # killed by slurmd ("Job credential revoked", seen here), which is why SLURM waits: the first
    # nudge comes 3 s after the requeue was seen, inside the wait below. Then repeated every 5 s:
    # an update that lands before SLURM has set the requeue's begin time is overwritten.
    nudged = [time.monotonic() - 2.0]

    def both_finished() -> bool:
        if time.monotonic() - nudged[0] > 5:
            nudged[0] = time.monotonic()
            subprocess.run(["scontrol", "update", f"JobId={job}_0", "StartTime=now"], timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return all(island_status(run_dir, i).state == "finished" for i in ("island-00", "island-01"))

    wait_for(both_finished, timeout=180, what="both islands finished")
    log = slurm_out(run_dir)
    assert f"requeueing {job}_0 (requeue 1 of 3)" in log
    assert "resumed from generation" in log
    assert generations(run_dir, "island-00") == list(range(generations(run_dir, "island-00")[0], 61))
    # The requeued island's log was cut back to its checkpoint on resume: each generation once.
    for island in ("island-00", "island-01"):
        logged = [json.loads(x) for x in (logs / f"{island}.jsonl").read_text().splitlines()]
        assert [x["generation"] for x in logged if x["kind"] == "generation"] == list(range(61)), island
