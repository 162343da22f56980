"""Bad input and bad surroundings of `islands launch`, from the outside: each ends in one clear
line and the documented exit code, before anything is expanded, written or started.

A core range is bounded before it is expanded; `--migrants` above the population is refused;
an island the plan does not name cannot join a planned run while its launcher runs it; an
island that keeps failing (a full disk, a log that cannot be opened) is given up with the
reason and what to do, in the launcher's line and in its summary.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from islands.cli import main
from islands.exit_codes import EXIT_ERROR, EXIT_STOPPED, EXIT_USAGE
from islands.runs import evolve
from islands.stopping import StopFlag
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir
from support.procs import SUPPORT, child_env, evolve_cmd, run, wait_for

LAUNCH = "import sys; sys.argv[0] = 'islands'; from islands.cli import main; main()"
pytestmark = pytest.mark.timeout(240)


def error_lines(text: str) -> list[str]:
    assert "Traceback" not in text, text
    return [ln for ln in text.splitlines() if ln.startswith("error: ")]


def _limit_memory() -> None:  # preexec: 1 GiB of address space, far more than a launcher needs
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("cores", ["0-99999999", "0,5-4000000000000", "99999999"])
def test_a_huge_core_range_is_refused_in_one_line_before_it_is_expanded(tmp_path, cores):
    run_dir = tmp_path / "run"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "islands", "launch", "--cores", cores, "--run-dir", str(run_dir),
                           "--plain"], env=child_env(), capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_memory, start_new_session=True)
    assert done.returncode == EXIT_USAGE, done.stderr[-2000:]
    (line,) = error_lines(done.stderr)
    assert "--cores" in line and "not available" in line and len(line) < 300, line
    assert time.monotonic() - started < 30 and not run_dir.exists()


@pytest.mark.parametrize("command", [["launch", "-n", "2"], ["evolve", "island-00"]])
def test_more_migrants_than_the_population_is_refused(tmp_path, command):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(main, [*command, "--run-dir", str(run_dir), "--population", "20", "--migrants", "21"])
    assert result.exit_code == EXIT_USAGE, result.output
    (line,) = error_lines(result.output)
    assert "migrants (21)" in line and "population (20)" in line
    assert not run_dir.exists()


def test_as_many_migrants_as_the_population_is_accepted():
    from islands.config import MigrationConfig, RunConfig

    assert RunConfig(population=20, migration=MigrationConfig(migrants=20)).migration.migrants == 20
    assert RunConfig(population=20, migration=MigrationConfig(every=0, migrants=50)).migration.migrants == 50


def status(run_dir: Path, island: str) -> dict:
    try:
        return RunDir(run_dir).island(island).read_status() or {}
    except FormatError:
        return {}


def test_an_unplanned_island_cannot_join_a_planned_run_while_its_launcher_runs(tmp_path, spawn, monkeypatch):
    run_dir = tmp_path / "run"
    launcher = spawn(LAUNCH, "launch", "-n", "2", "--run-dir", str(run_dir), "--problem", "slow_problem:make",
                     "--param", "base=sphere", "--dim", "5", "--population", "20", "--generations", "100000",
                     "--plain", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: status(run_dir, "island-01").get("generation", 0) >= 2 or launcher.poll() is not None, 90,
             "the planned islands running")
    assert launcher.poll() is None
    joined = run(evolve_cmd("island-57", run_dir), timeout=60)
    assert joined.returncode == EXIT_USAGE, joined.stderr
    (line,) = error_lines(joined.stderr)
    assert "island-57" in line and "island-00, island-01" in line
    assert not RunDir(run_dir).island("island-57").dir.exists() or status(run_dir, "island-57") == {}
    planned = run(evolve_cmd("island-01", run_dir), timeout=60)  # control: a planned one is told it is busy
    assert planned.returncode != EXIT_USAGE and "island-57" not in planned.stderr
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=60) == EXIT_STOPPED
    monkeypatch.syspath_prepend(str(SUPPORT))  # slow_problem, in this process
    stop = StopFlag()
    stop.request()  # control: with no launcher running, island-57 may join (and stops at once)
    assert evolve("island-57", run_dir, stop=stop, log=lambda _line: None).reason == "stopped"


def _tmpfs_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    import tempfile

    with tempfile.TemporaryDirectory() as probe:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], capture_output=True, text=True)
        if done.returncode != 0:
            return f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
        subprocess.run(["umount", "-l", probe], check=False)
    return None


NO_TMPFS = _tmpfs_unavailable()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 400 KiB tmpfs: two checkpoints of a dim-100, population-200 island fit, a third does not."""
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], check=True, capture_output=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _launch(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "islands", "launch", "-n", "1", "--plain", "--run-dir", str(run_dir), *extra]
    return subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=180, start_new_session=True)


@pytest.mark.skipif(NO_TMPFS is not None, reason=f"needs a small tmpfs: {NO_TMPFS}")
def test_an_island_failing_on_a_full_disk_is_given_up_saying_why_and_what_to_do(small_tmpfs):
    run_dir = small_tmpfs / "run"
    done = _launch(run_dir, "--dim", "100", "--population", "200", "--generations", "40", "--checkpoint-every", "5",
                   "--checkpoint-seconds", "0", "--seed", "3")
    assert done.returncode == EXIT_ERROR, done.stdout + done.stderr
    # The island's own error line when its log could take it, else what the disk says.
    full = ("No space left on device", "disk is full")
    (failed,) = [ln for ln in done.stdout.splitlines() if ln.startswith("island-00: FAILED")]
    assert "FAILED: exit 1" in failed and "free some space" in failed and any(w in failed for w in full), failed
    (last,) = [ln for ln in done.stdout.splitlines() if ln.startswith("failed: island-00")]
    assert "free some space" in last and any(w in last for w in full), last
    reason = json.loads((run_dir / "summary.json").read_text())["islands"]["island-00"]["reason"]
    assert "free some space" in reason


def test_an_island_that_cannot_be_started_is_given_up_with_the_os_error(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "islands" / "island-00" / "island.log").mkdir(parents=True)  # its log cannot be opened
    done = _launch(run_dir, "--allow-nonempty", "--generations", "5")
    assert done.returncode == EXIT_ERROR, done.stdout + done.stderr
    (last,) = [ln for ln in done.stdout.splitlines() if ln.startswith("failed: island-00")]
    assert "is not a regular file" in last and "island.log" in last and "run the same command again" in last, last
