"""The launcher with real island processes (orphans, signals, restarts, pinning), sized for 2 cores.

Islands run `slow_problem:make` (tests/support) as a sphere that sleeps per evaluation, so they
live long enough to be signalled mid-run without loading the CPU. Every launcher runs in its
own session (the `spawn` fixture kills its group at teardown); islands are in their own
process groups, so the `islands` fixture kills any island a test leaves behind.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from islands.threads import THREAD_VARS
from migration_pool.errors import FormatError
from islands.exit_codes import EXIT_STOPPED
from migration_pool.rundir import RunDir
from support.procs import alive, wait_for

LAUNCH = "import sys; sys.argv[0] = 'islands'; from islands.cli import main; main()"
pytestmark = pytest.mark.timeout(180)


def launch_args(run_dir: Path, n: int, generations: int, *extra: str, delay: float = 0.01) -> list[str]:
    return ["launch", "-n", str(n), "--run-dir", str(run_dir),
            "--problem", "slow_problem:make", "--param", "base=sphere", "--param", f"delay={delay}",
            "--dim", "5", "--population", "20", "--generations", str(generations),
            "--checkpoint-every", "10", "--checkpoint-seconds", "0", "--migrate-every", "10", "--plain", "--progress-every", "5",
            *extra]


@pytest.fixture
def islands():
    """Record island processes as (pid, create_time); kill any still alive at teardown."""
    seen: dict[int, float] = {}

    def of(launcher: subprocess.Popen) -> list[psutil.Process]:
        found = []
        try:
            kids = psutil.Process(launcher.pid).children(recursive=True)  # forked islands: the template's
        except psutil.Error:
            return []
        for p in kids:
            try:
                if "evolve" in p.cmdline():
                    seen.setdefault(p.pid, p.create_time())
                    found.append(p)
            except psutil.Error:
                pass
        return found

    of.seen = seen
    yield of
    for pid, created in seen.items():
        if alive(pid, created):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def start(spawn, tmp_path):
    def run(args: list[str], env: dict | None = None) -> subprocess.Popen:
        out = tmp_path / f"launcher-{time.monotonic_ns()}.out"
        with open(out, "wb") as f:
            proc = spawn(LAUNCH, *args, env=env, stdout=f, stderr=subprocess.STDOUT)
        proc.out = out
        return proc
    return run


def output(proc: subprocess.Popen) -> str:
    return proc.out.read_text(errors="replace")


def wait_until(pred, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """`wait_for` that fails at once, with the launcher's output, if the launcher exits first."""

    def check() -> bool:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"launcher exited ({proc.returncode}) while waiting for {what}:\n{output(proc)}")
        return False

    try:
        wait_for(check, timeout, what, interval=0.05)
    except AssertionError as e:
        pytest.fail(f"{e}" + (f":\n{output(proc)}" if proc else ""))


def status(run: Path, island: str) -> dict:
    try:
        return RunDir(run).island(island).read_status() or {}
    except FormatError:
        return {}


def finish(proc: subprocess.Popen, timeout: float = 120) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"launcher still running after {timeout} s:\n{output(proc)}")


def test_four_islands_on_two_cores_are_pinned_single_threaded_and_finish(tmp_path, start, islands):
    run = tmp_path / "run"
    proc = start(launch_args(run, 4, 150))
    sampled: dict[str, tuple[list[int], dict]] = {}

    def sample() -> bool:
        for p in islands(proc):
            try:
                isl = next(a for a in p.cmdline() if a.startswith("island-"))
                sampled[isl] = (p.cpu_affinity(), p.environ())
            except (psutil.Error, StopIteration):
                pass
        return len(sampled) == 4

    wait_until(sample, 60, "four running islands", proc)
    assert finish(proc) == 0, output(proc)
    planned = RunDir(run).read_manifest()["plan"]["cores"]
    assert {tuple(c) for c in planned.values()} == ({(0,), (1,)} if len(os.sched_getaffinity(0)) > 1 else {(0,)})
    for isl, (affinity, env) in sampled.items():
        assert affinity == planned[isl], isl
        assert all(env.get(v) == "1" for v in THREAD_VARS), (isl, {v: env.get(v) for v in THREAD_VARS})
    for isl in planned:
        st = status(run, isl)
        assert st["state"] == "finished" and st["generation"] == 150
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] == 4 and summary["failed"] == 0 and summary["evaluations"] == 4 * 151 * 20
    champion = RunDir(run).read_champion()
    assert champion["genome"].shape == (5,) and champion["fitness"] == max(status(run, i)["best_ever"] for i in planned)
    assert "plan: 4 island(s) on" in output(proc) and "champion: island-" in output(proc)


@pytest.mark.parametrize("max_restarts", [5, 0])
def test_sigkilled_island_is_restarted_from_its_checkpoint(tmp_path, start, islands, max_restarts):
    run = tmp_path / "run"
    proc = start(launch_args(run, 2, 200, "--max-restarts", str(max_restarts)))
    wait_until(lambda: status(run, "island-01").get("generation", 0) >= 45, 60, "island-01 past a checkpoint", proc)
    victim = status(run, "island-01")["pid"]
    os.kill(victim, signal.SIGKILL)
    if max_restarts:
        wait_until(lambda: status(run, "island-01").get("pid") not in (None, victim), 60, "the restart", proc)
        # The launcher reaped the killed island before restarting it: no zombie is left.
        assert victim not in [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    rc = finish(proc)
    state = RunDir(run).read_launcher_state()["islands"]
    assert status(run, "island-00")["state"] == "finished"  # the others go on either way
    if max_restarts == 0:  # control: without restarts the killed island stays dead
        assert rc == 1 and state["island-01"]["state"] == "failed" and state["island-01"]["restarts"] == 0
        assert "island-01: FAILED" in output(proc)
        return
    assert rc == 0, output(proc)
    st = status(run, "island-01")
    assert st["state"] == "finished" and st["generation"] == 200 and st["pid"] != victim
    assert state["island-01"]["restarts"] == 1 and state["island-00"]["restarts"] == 0
    # Resumed from a checkpoint, not from 0: the history is one unbroken run of generations.
    assert [r["generation"] for r in RunDir(run).island("island-01").read_history()] == list(range(201))
    log = RunDir(run).island("island-01").read_log_tail(100_000)
    assert log.count("--- launcher: start") == 2 and "resuming from generation" in log


def stopped_cleanly(run: Path, n: int, pids: dict[int, float]) -> None:
    assert pids and not [pid for pid, ct in pids.items() if alive(pid, ct)], "islands left running"
    for i in range(n):
        isl = f"island-{i:02d}"
        st = status(run, isl)
        record, errors = RunDir(run).island(isl).load_checkpoint()
        assert st["state"] == "stopped" and not errors and record["generation"] == st["generation"]


def test_sigterm_to_the_launcher_stops_every_island_and_the_same_command_resumes(tmp_path, start, islands):
    run = tmp_path / "run"
    args = launch_args(run, 3, 250)
    proc = start(args)
    wait_until(lambda: all(status(run, f"island-0{i}").get("generation", 0) >= 15 for i in range(3)),
               60, "three islands running", proc)
    islands(proc)
    proc.send_signal(signal.SIGTERM)
    assert finish(proc, 60) == EXIT_STOPPED
    stopped_cleanly(run, 3, islands.seen)
    assert "--run-dir" in output(proc).split("same command:")[-1]
    again = start(args)
    assert finish(again) == 0, output(again)
    for i in range(3):
        st = status(run, f"island-0{i}")
        assert st["state"] == "finished" and st["generation"] == 250
        assert [r["generation"] for r in RunDir(run).island(f"island-0{i}").read_history()] == list(range(251))
    assert "resuming from generation" in RunDir(run).island("island-00").read_log_tail(100_000)


def test_sigint_to_the_process_group_stops_every_island(tmp_path, start, islands):
    run = tmp_path / "run"
    proc = start(launch_args(run, 2, 2000))
    wait_until(lambda: all(status(run, f"island-0{i}").get("generation", 0) >= 15 for i in range(2)),
               60, "two islands running", proc)
    islands(proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
    assert finish(proc, 60) == EXIT_STOPPED
    stopped_cleanly(run, 2, islands.seen)
    summary = RunDir(run).read_launcher_state()
    assert summary["state"] == "stopped"


@pytest.mark.parametrize("pdeathsig", [True, False])
def test_islands_die_with_a_sigkilled_launcher(tmp_path, start, islands, pdeathsig):
    run = tmp_path / "run"
    env = {} if pdeathsig else {"ISLANDS_TEST_NO_PDEATHSIG": "1"}
    proc = start(launch_args(run, 2, 5000), env)
    wait_until(lambda: all(status(run, f"island-0{i}").get("generation", 0) >= 5 for i in range(2)),
               60, "two islands running", proc)
    islands(proc)
    assert len(islands.seen) == 2
    proc.kill()
    proc.wait()
    orphans = lambda: [pid for pid, ct in islands.seen.items() if alive(pid, ct)]  # noqa: E731
    if pdeathsig:
        wait_for(lambda: not orphans(), 30, "the islands to die with their launcher")
    else:  # control: without the parent-death signal the islands outlive the launcher, evolving on
        after = {i: status(run, f"island-0{i}").get("generation", 0) + 20 for i in range(2)}
        wait_for(lambda: all(status(run, f"island-0{i}").get("generation", 0) >= g for i, g in after.items()),
                 60, "the islands to evolve 20 generations more without their launcher")
        assert len(orphans()) == 2


@pytest.mark.slow
@pytest.mark.parametrize("hang_timeout", [8.0, 0.0])  # above the 5 s a crowded island's heartbeats may be apart
def test_a_hung_island_is_killed_and_restarted(tmp_path, start, islands, hang_timeout):
    run = tmp_path / "run"
    proc = start(launch_args(run, 1, 200, "--hang-timeout", str(hang_timeout)))
    wait_until(lambda: status(run, "island-00").get("generation", 0) >= 25, 60, "island running", proc)
    frozen = status(run, "island-00")["pid"]
    os.kill(frozen, signal.SIGSTOP)  # alive, but its heartbeat stops
    if hang_timeout == 0:  # control: with detection off nobody notices the frozen island
        # ... even once the launcher has supervised it for longer than an 8 s timeout would allow
        # (its state file says when it last went round its loop; heartbeats are read every 0.5 s).
        seen_by = time.time() + 8.0 + 1.0
        wait_until(lambda: (RunDir(run).read_launcher_state() or {}).get("updated", 0) > seen_by, 60,
                   "the launcher to supervise the frozen island for 9 s", proc)
        assert status(run, "island-00")["pid"] == frozen
        assert RunDir(run).read_launcher_state()["islands"]["island-00"]["hangs"] == 0
        os.kill(frozen, signal.SIGCONT)
    assert finish(proc) == 0, output(proc)
    state = RunDir(run).read_launcher_state()["islands"]["island-00"]
    assert (state["hangs"], state["restarts"]) == ((1, 1) if hang_timeout else (0, 0))
    assert status(run, "island-00")["generation"] == 200


@pytest.mark.slow
def test_32_islands_on_two_cores_all_finish(tmp_path, start, islands):
    run = tmp_path / "run"
    proc = start(["launch", "-n", "32", "--run-dir", str(run), "--problem", "sphere", "--dim", "5",
                  "--population", "20", "--generations", "20", "--migrate-every", "5",
                  "--checkpoint-every", "10", "--plain", "--progress-every", "5"])
    assert finish(proc, 170) == 0, output(proc)
    ids = [f"island-{i:02d}" for i in range(32)]
    assert RunDir(run).island_ids() == ids
    assert all(status(run, i)["state"] == "finished" for i in ids)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] == 32 and summary["restarts"] == 0 and summary["migration"]["events"] > 0
