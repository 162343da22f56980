"""Run directories that fail under an island (issue 17, item 7; RELIABILITY.md R18): a full
disk, a directory made read-only mid-run, files replaced by directories, hand-edited history.
Each ends in one clear line and a documented exit code, and nothing is lost: the same command
resumes once the cause is gone."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from click.testing import CliRunner

from islands.cli import main
from islands.exit_codes import EXIT_CHECKPOINT, EXIT_ERROR, EXIT_USAGE
from migration_pool.rundir import RunDir
from support.procs import (child_env, evolve_cmd, kill_group, run, status_generation,
                           unreadable_files_possible, wait_for)

BIG = ["--dim", "100", "--population", "200", "--generations", "40", "--checkpoint-every", "5", "--checkpoint-seconds", "0", "--seed", "3"]


def error_lines(text: str) -> list[str]:
    assert "Traceback" not in text, text
    return [ln for ln in text.splitlines() if ln.startswith("error: ")]


def _tmpfs_unavailable() -> str | None:
    """Why no tmpfs can be mounted here (not root, or no mount capability), else None.

    Tried once at collection with a throwaway mount, so the disk-full tests are skipped with
    the reason only where the machine cannot mount, and fail loudly if a mount fails later.
    """
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    import tempfile

    with tempfile.TemporaryDirectory() as probe:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
        subprocess.run(["umount", "-l", probe], check=False)
    return None


NO_TMPFS = _tmpfs_unavailable()
needs_tmpfs = pytest.mark.skipif(NO_TMPFS is not None, reason=f"needs a small tmpfs: {NO_TMPFS}")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 400 KiB tmpfs: two checkpoints of BIG fit, a third does not."""
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], check=True,
                   capture_output=True, text=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _grow(mnt) -> None:
    subprocess.run(["mount", "-o", "remount,size=20m", str(mnt)], check=True)


def _all_files_readable(run_dir) -> None:
    rundir = RunDir(run_dir)
    record, errors = rundir.island("island-00").load_checkpoint()
    assert record is not None and not errors
    assert rundir.read_manifest() is not None
    leftovers = [p for p in run_dir.rglob(".tmp-*")]
    assert leftovers == []


@needs_tmpfs
def test_disk_full_under_evolve_is_one_line_and_resumes_after_space_is_freed(small_tmpfs):
    run_dir = small_tmpfs / "run"
    full = run(evolve_cmd("island-00", run_dir, *BIG))
    assert full.returncode == EXIT_ERROR, full.stderr
    (line,) = error_lines(full.stderr)
    assert "No space left on device" in line and "run the same command again" in line
    _all_files_readable(run_dir)
    _grow(small_tmpfs)
    again = run(evolve_cmd("island-00", run_dir, *BIG))
    assert again.returncode == 0, again.stderr
    assert [r["generation"] for r in RunDir(run_dir).island("island-00").iter_history()] == list(range(41))


@needs_tmpfs
def test_disk_full_under_launch_is_one_line_per_process(small_tmpfs):
    run_dir = small_tmpfs / "run"
    cmd = [sys.executable, "-m", "islands", "launch", "-n", "1", "--plain", "--max-restarts", "0",
           "--run-dir", str(run_dir), *BIG]
    full = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=120, start_new_session=True)
    assert full.returncode == EXIT_ERROR, full.stdout + full.stderr
    assert "Traceback" not in full.stdout + full.stderr
    log = RunDir(run_dir).island("island-00").log_path.read_text(errors="replace")
    assert "Traceback" not in log and len(error_lines(log)) == 1, log
    _all_files_readable(run_dir)


def test_run_dir_made_read_only_mid_run(tmp_path):
    possible, preexec, reason = unreadable_files_possible(tmp_path)
    assert possible, f"cannot make file modes bind here: {reason}"
    cmd = evolve_cmd("island-00", tmp_path, "--problem", "slow_problem:make", "--dim", "10",
                     "--population", "20", "--generations", "400", "--checkpoint-every", "5", "--checkpoint-seconds", "0")
    proc = subprocess.Popen(cmd, env=child_env(), start_new_session=True, preexec_fn=preexec,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    island_dir = RunDir(tmp_path).island("island-00").dir
    try:
        wait_for(lambda: status_generation(tmp_path, "island-00") >= 12, what="generation 12")
        island_dir.chmod(0o555)
        _out, err = proc.communicate(timeout=120)
    finally:
        island_dir.chmod(0o755)
        kill_group(proc)
    assert proc.returncode == EXIT_ERROR, err
    (line,) = error_lines(err)
    assert "Permission denied" in line and "writable" in line
    again = run(evolve_cmd("island-00", tmp_path))
    assert again.returncode == 0, again.stderr
    gens = [r["generation"] for r in RunDir(tmp_path).island("island-00").iter_history()]
    assert gens == list(range(401))


def _finished_run(tmp_path):
    args = ["evolve", "island-00", "--quiet", "--run-dir", str(tmp_path), "--problem", "sphere",
            "--generations", "20", "--checkpoint-every", "5", "--checkpoint-seconds", "0"]
    assert CliRunner().invoke(main, args).exit_code == 0
    return RunDir(tmp_path)


def test_history_lines_with_null_or_huge_generations_do_not_break_resume_or_status(tmp_path):
    rundir = _finished_run(tmp_path)
    newest = rundir.island("island-00").checkpoint_paths()[0]
    newest.unlink()  # resume from generation 15 replays 16..20 and truncates the history first
    with open(rundir.island("island-00").history_path, "ab") as f:
        f.write(b'{"generation": null, "best": 1.0}\n')
        f.write(b'{"generation": ' + str(2**70).encode() + b', "best": 1.0}\n')
    resumed = CliRunner().invoke(main, ["evolve", "island-00", "--quiet", "--run-dir", str(tmp_path)])
    assert resumed.exit_code == 0, resumed.output
    assert [r["generation"] for r in rundir.island("island-00").iter_history()] == list(range(21))
    with open(rundir.island("island-00").history_path, "ab") as f:
        f.write(b'{"generation": ' + str(2**70).encode() + b', "best": 1.0}\n')
        f.write(b'{"generation": null, "best": 1.0}\n')
    report = CliRunner().invoke(main, ["status", "--run-dir", str(tmp_path), "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["islands"][0]["island"] == "island-00"
    pytest.importorskip("matplotlib")
    plot = CliRunner().invoke(main, ["status", "--run-dir", str(tmp_path), "--plot", str(tmp_path / "p.png")])
    assert plot.exit_code == 0, plot.output


def test_plot_with_an_unknown_suffix_exits_2_naming_the_option(tmp_path):
    _finished_run(tmp_path)
    result = CliRunner().invoke(main, ["status", "--run-dir", str(tmp_path), "--plot", str(tmp_path / "x.txt")])
    assert result.exit_code == EXIT_USAGE and "--plot" in result.output, result.output
    assert not (tmp_path / "x.txt").exists()


def test_status_file_replaced_by_a_directory(tmp_path):
    rundir = _finished_run(tmp_path)
    rundir.ensure("island-01")
    rundir.island("island-01").status_path.mkdir()
    result = run(evolve_cmd("island-01", tmp_path))
    assert result.returncode == EXIT_ERROR, result.stderr
    (line,) = error_lines(result.stderr)
    assert "Is a directory" in line and "status.isld" in line
    report = CliRunner().invoke(main, ["status", "--run-dir", str(tmp_path), "--json"])
    assert report.exit_code == 0, report.output


def test_checkpoint_replaced_by_a_directory(tmp_path):
    rundir = _finished_run(tmp_path)
    rundir.ensure("island-02")
    (rundir.island("island-02").dir / "checkpoint-00000005.isld").mkdir()
    result = run(evolve_cmd("island-02", tmp_path))
    assert result.returncode == EXIT_CHECKPOINT, result.stderr
    (line,) = error_lines(result.stderr)
    assert "not a regular file" in line


@pytest.mark.parametrize("command", [["evolve", "island-00"], ["launch"]])
def test_population_that_cannot_fit_is_refused_before_the_manifest(tmp_path, command):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(main, [*command, "--run-dir", str(run_dir), "--population", "1000000000"])
    assert result.exit_code == EXIT_USAGE, result.output
    (line,) = error_lines(result.output)
    assert "GiB" in line and "--population" in line
    assert not run_dir.exists()


def test_check_memory_estimate():
    from islands.runs import check_memory
    from islands.config import RunConfig
    from islands.errors import ConfigError

    check_memory(RunConfig(population=100, dim=10), memory=1 << 30)
    with pytest.raises(ConfigError, match="population 1000000"):
        check_memory(RunConfig(population=1_000_000, dim=100), memory=1 << 30)
