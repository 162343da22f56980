"""The launcher when its helpers fail or its signals come at bad moments, with real processes.

A stopped (SIGSTOP) island template must not freeze the launcher: the launcher knows its
islands' pids and process groups, signals them itself once the template stops answering, and
notices their deaths on its own. Stop signals are requests from the start of a launch until
its summary is written: repeated SIGTERMs, or one while the launch is still planning, end in
exit 75 with summary.json, never in a death by signal.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from islands.exit_codes import EXIT_STOPPED
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir
from support.procs import alive, wait_for

LAUNCH = "import sys; sys.argv[0] = 'islands'; from islands.cli import main; main()"
pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the island template is Linux-only")]


def launch_args(run_dir: Path, n: int, generations: int, *extra: str) -> list[str]:
    return ["launch", "-n", str(n), "--run-dir", str(run_dir),
            "--problem", "slow_problem:make", "--param", "base=sphere", "--param", "delay=0.01",
            "--dim", "5", "--population", "20", "--generations", str(generations),
            "--checkpoint-every", "10", "--checkpoint-seconds", "0", "--migrate-every", "10", "--plain",
            "--progress-every", "5", *extra]


class Launcher:
    """`islands launch` in its own session, its output in a file; every process it started
    (template, islands) is remembered and SIGKILLed at teardown if still alive."""

    def __init__(self, spawn, tmp_path: Path, args: list[str]) -> None:
        self.out = tmp_path / f"launcher-{time.monotonic_ns()}.out"
        with open(self.out, "wb") as f:
            self.proc = spawn(LAUNCH, *args, stdout=f, stderr=subprocess.STDOUT)
        self.seen: dict[int, float] = {}

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def descendants(self, word: str) -> list[psutil.Process]:
        found = []
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []
        for p in kids:
            try:
                if any(word in a for a in p.cmdline()):
                    self.seen.setdefault(p.pid, p.create_time())
                    found.append(p)
            except psutil.Error:
                pass
        return found

    def wait_until(self, pred, timeout: float, what: str) -> None:
        def check() -> bool:
            if pred():
                return True
            if self.proc.poll() is not None:
                pytest.fail(f"launcher exited ({self.proc.returncode}) while waiting for {what}:\n{self.output()}")
            return False

        try:
            wait_for(check, timeout, what, interval=0.05)
        except AssertionError as e:
            pytest.fail(f"{e}:\n{self.output()}")

    def sigterm(self, timeout: float, what: str = "the launcher is still running") -> int:
        """SIGTERM the launcher and wait for it to exit; its exit code, or the test fails with its output."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{what} {timeout} s after SIGTERM:\n{self.output()}")

    def left_alive(self) -> list[int]:
        return [pid for pid, created in self.seen.items() if alive(pid, created)]

    def cleanup(self) -> None:
        for pid, created in self.seen.items():
            if alive(pid, created) or psutil.pid_exists(pid):
                for kill in (lambda: os.kill(pid, signal.SIGCONT), lambda: os.killpg(pid, signal.SIGKILL),
                             lambda: os.kill(pid, signal.SIGKILL)):
                    try:
                        kill()
                    except OSError:
                        pass


@pytest.fixture
def launcher(spawn, tmp_path):
    made: list[Launcher] = []

    def start(args: list[str]) -> Launcher:
        made.append(Launcher(spawn, tmp_path, args))
        return made[-1]

    yield start
    for one in made:
        one.cleanup()


@pytest.fixture
def run(tmp_path) -> Path:
    return tmp_path / "run"


def status(run: Path, island: str) -> dict:
    try:
        return RunDir(run).island(island).read_status() or {}
    except FormatError:
        return {}


def running(run: Path, n: int, generation: int = 5):
    return lambda: all(status(run, f"island-{i:02d}").get("generation", 0) >= generation for i in range(n))


def two_islands(launcher, run: Path, grace: int, generation: int = 5) -> Launcher:
    """A launch of two slow islands that run until stopped, once both are at `generation`."""
    launch = launcher(launch_args(run, 2, 100_000, "--grace", str(grace)))
    launch.wait_until(running(run, 2, generation), 90, f"two islands at generation {generation}")
    return launch


def template_of(launch: Launcher) -> psutil.Process:
    (template,) = launch.descendants("islands.island_template")
    return template


def test_a_stopped_template_neither_keeps_the_islands_nor_freezes_the_launcher(run, launcher):
    launch = two_islands(launcher, run, grace=2)
    islands = launch.descendants("evolve")
    template = template_of(launch)
    assert {p.ppid() for p in islands} == {template.pid}  # forked: the template is their parent
    os.kill(template.pid, signal.SIGSTOP)
    assert launch.sigterm(60, "the launcher is still running with its template stopped") == EXIT_STOPPED, launch.output()
    assert launch.left_alive() == [], f"left running: {launch.left_alive()}\n{launch.output()}"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["state"] == "stopped"
    state = RunDir(run).read_launcher_state()["islands"]
    assert all(state[f"island-0{i}"]["state"] == "stopped" for i in range(2)), state
    assert "grace period of 2 s over: killing island-00, island-01" in launch.output()
    # Killed by the launcher itself at once, not after the template was found not answering
    # (10 s without an answer, far beyond the 2 s grace) and its signals sent anew.
    assert "island template not answering" not in launch.output()


def test_a_killed_island_is_noticed_and_restarted_while_the_template_is_stopped(run, launcher):
    launch = two_islands(launcher, run, grace=20, generation=15)  # past a checkpoint
    template = template_of(launch)
    victim = status(run, "island-01")["pid"]
    os.kill(template.pid, signal.SIGSTOP)
    os.kill(victim, signal.SIGKILL)  # a zombie of the stopped template: only the launcher can notice
    launch.wait_until(lambda: status(run, "island-01").get("pid") not in (None, victim), 45,
                      "island-01 restarted (as a fresh process)")
    assert "island-01: signal 9 (SIGKILL)" in launch.output()
    assert "note: island template not answering" in launch.output()  # the restart could not be forked
    # Still stoppable, and the other island, still the stopped template's child, checkpoints.
    launch.descendants("evolve")
    assert launch.sigterm(60) == EXIT_STOPPED, launch.output()
    assert launch.left_alive() == []
    for isl in ("island-00", "island-01"):
        record, errors = RunDir(run).island(isl).load_checkpoint()
        assert status(run, isl)["state"] == "stopped" and not errors and record["generation"] == status(run, isl)["generation"]


def test_sigterms_during_the_shutdown_never_kill_the_launcher(run, launcher):
    launch = two_islands(launcher, run, grace=30)
    sent = 0
    deadline = time.monotonic() + 90
    while launch.proc.poll() is None and time.monotonic() < deadline:
        try:
            launch.proc.send_signal(signal.SIGTERM)  # a scheduler repeating itself, all through the shutdown
        except ProcessLookupError:
            break
        sent += 1
        time.sleep(0.005)  # the stimulus' pace, not a wait for anything
    assert launch.proc.poll() is not None, f"launcher still running after {sent} SIGTERMs:\n{launch.output()}"
    assert launch.proc.returncode == EXIT_STOPPED, f"exit {launch.proc.returncode} after {sent} SIGTERMs:\n{launch.output()}"
    assert json.loads((run / "summary.json").read_text())["state"] == "stopped"
    assert sent > 20  # the signals kept coming while it stopped


def test_a_time_limit_warning_sigusr1_to_the_launcher_stops_it_like_sigterm(run, launcher):
    """SIGUSR1, a scheduler's time-limit warning, is a stop request of the launcher too: every
    island checkpoints, and the launch ends in its summary and exit 75, not in a death by signal."""
    launch = two_islands(launcher, run, grace=30)
    launch.proc.send_signal(signal.SIGUSR1)
    try:
        code = launch.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the launcher is still running 120 s after SIGUSR1:\n{launch.output()}")
    assert code == EXIT_STOPPED, launch.output()
    assert "SIGUSR1: asking 2 island(s) to checkpoint and stop" in launch.output()
    assert json.loads((run / "summary.json").read_text())["state"] == "stopped"
    for isl in ("island-00", "island-01"):
        record, errors = RunDir(run).island(isl).load_checkpoint()
        assert status(run, isl)["state"] == "stopped" and not errors and record["generation"] == status(run, isl)["generation"]


def test_a_sigterm_while_the_launch_is_still_planning_stops_it_with_a_summary(run, launcher):
    launch = launcher(launch_args(run, 2, 100_000))
    # The template is started first thing, before the plan is checked and any island starts.
    launch.wait_until(lambda: launch.descendants("islands.island_template"), 60, "the island template")
    assert not (run / "manifest.isld").exists()  # still planning
    assert launch.sigterm(120) == EXIT_STOPPED, launch.output()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["state"] == "stopped" and summary["evaluations"] == 0
    for i in range(2):  # stopped before any island started
        log = RunDir(run).island(f"island-0{i}").log_path
        assert not log.exists() or "--- launcher: start" not in log.read_text(errors="replace"), launch.output()


def test_a_sigterm_during_the_champion_evaluation_ends_it_and_the_launch(run, launcher):
    launch = launcher(["launch", "-n", "1", "--run-dir", str(run), "--problem", "cartpole", "--population", "6",
                       "--generations", "1", "--evaluate", str(2**20), "--plain"])
    launch.wait_until(lambda: launch.descendants("evaluate"), 120, "the champion's evaluation")
    assert launch.sigterm(60, "the launcher is still evaluating") == 0, launch.output()  # every island finished: the run did
    assert "could not evaluate the champion on unseen starts: stopped by a signal" in launch.output()
    assert json.loads((run / "summary.json").read_text())["state"] == "finished"
    assert launch.left_alive() == []
