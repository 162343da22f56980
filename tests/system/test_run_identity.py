"""Run identity: a run without --run-dir lives in a folder named by its settings, so the same
command resumes it (up-arrow after Ctrl+C), --new starts another beside it, `islands runs`
lists and prunes runs, and `islands status` without --run-dir shows the current folder's run
or the most recently active one, saying which.

Every command is the real CLI in a child process whose HOME points into tmp_path (and
XDG_DATA_HOME is empty), so the runs folder is tmp_path/home/.local/share/islands/runs.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import islands.cli as cli
import islands.cli_run_dir as cli_run_dir
from islands.exit_codes import EXIT_STOPPED, EXIT_USAGE
from migration_pool.rundir import RunDir
from support.procs import child_env, kill_group, status_generation, wait_for

SLOW = ["--problem", "slow_problem:make", "--dim", "3", "--population", "6", "--generations", "150"]
LONG = [*SLOW[:-1], "100000"]  # runs until stopped


def env_of(tmp_path: Path, **extra: str) -> dict[str, str]:
    return child_env(**{"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": "", "ISLANDS_RUN_DIR": "", **extra})


def runs_folder(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".local" / "share" / "islands" / "runs"


def islands(tmp_path: Path, *args: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "islands", *args], env=env_of(tmp_path, **extra), cwd=cwd or tmp_path,
                          capture_output=True, text=True, timeout=180, start_new_session=True)


def folders(tmp_path: Path) -> list[Path]:
    root = runs_folder(tmp_path)
    return sorted(p for p in root.iterdir()) if root.is_dir() else []


def start_evolve(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "islands", "evolve", "island-00", "--quiet", *args],
                            env=env_of(tmp_path), cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupted(tmp_path: Path, args: list[str], folder: Path | None, at: int = 5) -> tuple[str, str, int]:
    """Run `evolve args` until its island passes generation `at`, Ctrl+C it; (stdout, stderr, generation).
    `folder` None: the run's folder is the one that appears."""
    before = set(folders(tmp_path))
    proc = start_evolve(tmp_path, *args)
    try:
        def where() -> Path | None:
            if folder is not None:
                return folder
            new = set(folders(tmp_path)) - before
            return next(iter(new)) if new else None

        wait_for(lambda: ((f := where()) is not None and status_generation(f, "island-00") >= at)
                 or proc.poll() is not None, what=f"generation {at}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == EXIT_STOPPED, err
    status = RunDir(where()).island("island-00").read_status()
    assert status["state"] == "stopped"
    return out, err, int(status["generation"])


def runs_table(tmp_path: Path, *args: str) -> dict[str, str]:
    """`islands runs` as {run name: state}."""
    res = islands(tmp_path, "runs", *args)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:7] == ["run", "state", "islands", "best", "gen", "active", "size"]
    return {ln.split()[0]: ln.split()[1] for ln in lines[1:] if len(ln.split()) >= 7
            and "run(s)" not in ln}


def test_the_same_command_resumes_new_starts_another_and_runs_lists_and_prunes(tmp_path):
    args = [*LONG, "--seed", "3"]
    _out, err, stopped_at = interrupted(tmp_path, args, None)
    (folder,) = folders(tmp_path)
    name = folder.name
    assert name.startswith("slow_problem-ga-d3-s3-"), name
    assert err.splitlines()[0].startswith(f"new run {name} (folder {folder}; the same command resumes it"), err

    # Up-arrow: the very same command resumes the run where it stopped.
    out, err, again_at = interrupted(tmp_path, args, folder, at=stopped_at + 3)
    assert f"resuming run {name} (stopped at generation {stopped_at}; folder {folder})" in err
    assert f"(resumed from generation {stopped_at})" in out and again_at > stopped_at
    assert "run the same command to resume" in out and folders(tmp_path) == [folder]

    # --new starts another run beside it.
    out, err, new_at = interrupted(tmp_path, [*args, "--new"], folder.with_name(f"{name}-2"))
    assert f"new run {name}-2 (folder {folder.with_name(name + '-2')}; the same command without --new resumes it" in err
    assert "run the same command without --new to resume" in out

    # A finished run's command says so and leaves it as it is.
    quick = ["--problem", "sphere", "--dim", "3", "--population", "6", "--generations", "3", "--seed", "3"]
    res = islands(tmp_path, "evolve", "island-00", "--quiet", *quick)
    assert res.returncode == 0, res.stderr
    (done,) = set(folders(tmp_path)) - {folder, folder.with_name(f"{name}-2")}
    res = islands(tmp_path, "evolve", "island-00", "--quiet", *quick)
    assert res.returncode == 0 and f"run {done.name} finished at generation 3" in res.stderr, res.stderr

    res = islands(tmp_path, "runs")
    assert runs_table(tmp_path) == {name: "stopped", f"{name}-2": "stopped", done.name: "finished"}
    assert re.search(rf"^{re.escape(done.name)}\s+finished\s+1\s+\S+\s+3\s+\S+ ago\s+[\d.]+ [kM]?B$", res.stdout,
                     re.M), res.stdout
    assert res.stdout.splitlines()[-1].startswith("3 run(s), ")
    # --prune without a terminal needs --yes and deletes nothing.
    res = islands(tmp_path, "runs", "--prune")
    assert res.returncode == EXIT_USAGE and "--yes" in res.stderr and len(folders(tmp_path)) == 3, res.stderr

    # Another seed: another folder, naturally. While it runs, --prune --yes takes only the finished run.
    before = set(folders(tmp_path))
    proc = start_evolve(tmp_path, *LONG, "--seed", "4")
    try:
        wait_for(lambda: any(status_generation(f, "island-00") >= 2 for f in set(folders(tmp_path)) - before)
                 or proc.poll() is not None, what="the seed-4 run's generation 2")
        (other,) = set(folders(tmp_path)) - before
        assert "-s4-" in other.name
        assert runs_table(tmp_path)[other.name] == "running"
        res = islands(tmp_path, "runs", "--prune", "--yes")
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"deleted {done.name} (finished)" in res.stdout and other.name not in res.stdout.split("run(s)")[-1]
        assert sorted(folders(tmp_path)) == sorted([folder, folder.with_name(f"{name}-2"), other])
        os.killpg(proc.pid, signal.SIGKILL)  # killed: abandoned
        proc.wait(timeout=30)
    finally:
        kill_group(proc)
    assert runs_table(tmp_path) == {name: "stopped", f"{name}-2": "stopped", other.name: "abandoned"}
    res = islands(tmp_path, "runs", "--prune", "--yes")
    assert res.returncode == 0 and f"deleted {other.name} (abandoned)" in res.stdout, res.stdout + res.stderr
    assert folders(tmp_path) == [folder, folder.with_name(f"{name}-2")]
    # The stopped runs kept: the same command without --new resumes the newest of them.
    _out, err, _gen = interrupted(tmp_path, args, folder.with_name(f"{name}-2"), at=new_at + 2)
    assert f"resuming run {name}-2 (stopped at generation {new_at};" in err, err


def test_status_shows_the_current_folders_run_else_the_most_recently_active(tmp_path):
    res = islands(tmp_path, "status")
    assert res.returncode == EXIT_USAGE and res.stderr.count("\n") == 1, res.stderr
    assert "no runs yet" in res.stderr and "islands launch" in res.stderr
    res = islands(tmp_path, "runs")
    assert res.returncode == 0 and "no runs under" in res.stdout

    quick = ["--problem", "sphere", "--dim", "3", "--population", "6", "--generations", "3"]
    _out, _err, _gen = interrupted(tmp_path, [*LONG, "--seed", "1"], None)  # made first
    (first,) = folders(tmp_path)
    res = islands(tmp_path, "evolve", "island-00", "--quiet", *quick, "--seed", "2")  # made, and active, later
    assert res.returncode == 0, res.stderr
    (second,) = set(folders(tmp_path)) - {first}
    res = islands(tmp_path, "status", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["run_dir"] == str(second), res.stderr
    assert f"showing run {second.name} (most recently active; islands runs lists all)" in res.stderr

    # The first run resumed (same command) and stopped again: now it is the most recently active.
    _out, err, _gen = interrupted(tmp_path, [*LONG, "--seed", "1"], first, at=_gen + 3)
    assert f"resuming run {first.name}" in err
    res = islands(tmp_path, "status", "--json")
    assert json.loads(res.stdout)["run_dir"] == str(first) and "most recently active" in res.stderr

    # Inside a run's folder, that run; $ISLANDS_RUN_DIR keeps winning.
    res = islands(tmp_path, "status", "--json", cwd=second)
    assert Path(json.loads(res.stdout)["run_dir"]).resolve() == second.resolve()
    assert f"showing run {second.name} (the current folder)" in res.stderr
    res = islands(tmp_path, "status", "--json", ISLANDS_RUN_DIR=str(second))
    assert json.loads(res.stdout)["run_dir"] == str(second) and "showing" not in res.stderr


def test_new_is_refused_with_a_named_folder_and_nothing_is_written(tmp_path):
    quick = ["--problem", "sphere", "--dim", "3", "--population", "6", "--generations", "3"]
    res = islands(tmp_path, "evolve", "island-00", *quick, "--new", "--run-dir", str(tmp_path / "r"))
    assert res.returncode == EXIT_USAGE and res.stderr.count("error:") == 1 and "--run-dir" in res.stderr
    res = islands(tmp_path, "launch", "-n", "1", *quick, "--new", ISLANDS_RUN_DIR=str(tmp_path / "r"))
    assert res.returncode == EXIT_USAGE and "$ISLANDS_RUN_DIR" in res.stderr, res.stderr
    assert not (tmp_path / "r").exists() and folders(tmp_path) == []


def test_runs_imports_no_torch(tmp_path):
    code = ("import sys\nfrom islands.cli import main\ntry:\n    main(['runs'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    res = subprocess.run([sys.executable, "-c", code], env=env_of(tmp_path), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_launch_resumes_by_the_same_command(tmp_path):
    cmd = ["launch", "-n", "2", "--plain", "--problem", "sphere", "--dim", "3", "--population", "6",
           "--generations", "3", "--seed", "1", "--evaluate", "0"]
    first = islands(tmp_path, *cmd)
    assert first.returncode == 0, first.stderr
    (folder,) = folders(tmp_path)
    assert f"new run {folder.name} (folder {folder}" in first.stderr + first.stdout
    second = islands(tmp_path, *cmd)
    assert second.returncode == 0, second.stderr
    assert f"run {folder.name} finished at generation 3" in second.stderr + second.stdout
    assert folders(tmp_path) == [folder]
    # The resumed plan line says what the new run's said: its effective settings were recorded
    # in the manifest (before: "population the algorithm's default", "dtype the problem's").
    said = [[ln for ln in (out.stderr + out.stdout).splitlines() if ln.startswith("settings:")] for out in (first, second)]
    assert said[0] == said[1] and len(said[0]) == 1, said
    assert "population 6" in said[0][0] and "dtype float" in said[0][0], said
    third = islands(tmp_path, *cmd[:2], "3", *cmd[3:])  # another island count: another run
    assert third.returncode == 0 and len(folders(tmp_path)) == 2, third.stderr


def test_prune_asks_on_a_terminal_and_no_keeps_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("ISLANDS_RUN_DIR", raising=False)
    monkeypatch.setattr(cli_run_dir, "_interactive", lambda: True)
    quick = ["--problem", "sphere", "--dim", "3", "--population", "6", "--generations", "3", "--quiet"]
    res = CliRunner().invoke(cli.main, ["evolve", "island-00", *quick])
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / "data" / "islands" / "runs").iterdir()
    res = CliRunner().invoke(cli.main, ["runs", "--prune"], input="n\n")
    assert res.exit_code == EXIT_USAGE and "Delete them? [y/N]" in res.output and run.is_dir(), res.output
    res = CliRunner().invoke(cli.main, ["runs", "--prune"], input="y\n")
    assert res.exit_code == 0 and f"deleted {run.name} (finished)" in res.output and not run.exists(), res.output
