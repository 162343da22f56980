"""Starting a run over (issue 14, item 1): `islands launch --fresh` and `islands evolve
--fresh-run` delete the run's files through `RunDir.reset_run`, only after every option was
checked, only with a confirmation (a y/N question on a terminal, --yes otherwise), only in a
folder that looks like a run, and never while a launcher or an island of the run is alive.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import islands.cli as cli
import islands.cli_run_dir as cli_run_dir
from migration_pool.errors import IslandBusy, LauncherBusy, RunDirError
from migration_pool.rundir import RunDir
from support.procs import child_env, evolve_cmd, run, status_generation, wait_for

TINY = ["--dim", "3", "--population", "6", "--generations", "3", "--seed", "1"]
HOLD = ("import sys, time\nfrom migration_pool.rundir import RunDir\n"
        "rd = RunDir(sys.argv[1])\n"
        "lock = rd.island(sys.argv[3]).claim() if sys.argv[2] == 'claim' else getattr(rd, sys.argv[2])()\n"
        "print('held', flush=True)\ntime.sleep(120)  # the holding: until the test kills it\n")


def evolve(root: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(cli.main, ["evolve", "island-00", "--run-dir", str(root), "--quiet", *TINY, *args],
                              input=input)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the folder and its bytes (lock files aside: opening one creates it)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in (".claim", ".launcher.lock", ".manifest.lock")}


def made_run(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    res = evolve(root, "--problem", "sphere")
    assert res.exit_code == 0, res.output
    return root


def test_evolve_fresh_run_needs_a_yes_without_a_terminal_and_a_typo_deletes_nothing(tmp_path):
    root = made_run(tmp_path)
    before = snapshot(root)
    assert any("checkpoint-" in name for name in before)

    res = evolve(root, "--problem", "rastrigin", "--fresh-run")
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "--yes" in res.output, res.output
    res = evolve(root, "--problem", "rastrign", "--fresh-run", "--yes")  # checked before anything goes
    assert res.exit_code == 2 and "unknown problem 'rastrign'" in res.output
    assert snapshot(root) == before

    old_id = RunDir(root).read_manifest()["run_id"]
    res = evolve(root, "--problem", "rastrigin", "--fresh-run", "--yes")
    assert res.exit_code == 0, res.output
    manifest = RunDir(root).read_manifest()
    assert manifest["config"]["problem"] == "rastrigin" and manifest["run_id"] != old_id
    history = RunDir(root).island("island-00").read_history()
    assert [h["generation"] for h in history] == [0, 1, 2, 3]  # the old run's lines are gone


def test_a_terminal_is_asked_and_no_keeps_the_run(tmp_path, monkeypatch):
    root = made_run(tmp_path)
    before = snapshot(root)
    monkeypatch.setattr(cli_run_dir, "_interactive", lambda: True)
    res = evolve(root, "--problem", "rastrigin", "--fresh-run", input="n\n")
    assert res.exit_code == 2 and "[y/N]" in res.output and "nothing was deleted" in res.output
    assert snapshot(root) == before
    res = evolve(root, "--problem", "rastrigin", "--fresh-run", input="y\n")
    assert res.exit_code == 0, res.output
    assert RunDir(root).read_manifest()["config"]["problem"] == "rastrigin"


def test_launch_fresh_asks_for_yes_and_checks_every_option_before_deleting(tmp_path):
    from launcher.cli import launch

    root = made_run(tmp_path)
    before = snapshot(root)
    args = ["-n", "2", "--run-dir", str(root), "--plain", *TINY]
    res = CliRunner().invoke(launch, [*args, "--problem", "rastrigin", "--fresh"])
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "add --yes" in res.output, res.output
    res = CliRunner().invoke(launch, [*args, "--problem", "rastrign", "--fresh", "--yes"])
    assert res.exit_code == 2 and "unknown problem 'rastrign'" in res.output, res.output
    assert snapshot(root) == before


def test_a_new_folder_needs_no_confirmation(tmp_path):
    res = evolve(tmp_path / "new", "--problem", "sphere", "--fresh-run")
    assert res.exit_code == 0, res.output


def test_reset_removes_only_what_a_run_creates(tmp_path):
    root = made_run(tmp_path)
    (root / "notes.txt").write_text("mine")
    removed = RunDir(root).reset_run()
    assert "manifest.isld" in removed and "islands" in removed and "pool" in removed
    assert sorted(p.name for p in root.iterdir()) == [".launcher.lock", ".manifest.lock", "notes.txt"]


def test_reset_never_deletes_through_a_link(tmp_path):
    root = made_run(tmp_path)
    outside = tmp_path / "outside"
    (outside / "island-00").mkdir(parents=True)
    (outside / "island-00" / "keep.isld").write_text("not the run's")
    shutil.rmtree(root / "pool")
    (root / "pool").symlink_to(outside)  # a link where the run keeps its pool
    with pytest.raises(RunDirError, match="symlink"):
        RunDir(root).reset_run()
    assert (outside / "island-00" / "keep.isld").read_text() == "not the run's"
    assert RunDir(root).is_run()


def test_the_resume_hint_of_a_fresh_launch_never_starts_over(monkeypatch):
    from launcher.cli import _resume_hint

    monkeypatch.setattr(sys, "argv", ["islands", "launch", "-n", "2", "--fresh", "--yes"])
    assert _resume_hint(Path("/r")) == "islands launch -n 2 --run-dir /r"


def test_reset_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "islands").mkdir()
    (tmp_path / "thesis.tex").write_text("x")
    with pytest.raises(RunDirError, match="does not look like a run"):
        RunDir(tmp_path).reset_run()
    assert (tmp_path / "thesis.tex").exists() and (tmp_path / "islands").is_dir()
    assert RunDir(tmp_path / "missing").reset_run() == []


@pytest.mark.parametrize("lock, args, error", [("claim", ["island-00"], IslandBusy),
                                               ("claim_launcher", [], LauncherBusy)])
def test_reset_refuses_while_an_island_or_a_launcher_holds_the_run(tmp_path, spawn, lock, args, error):
    root = made_run(tmp_path)
    holder = spawn(HOLD, str(root), lock, *args, stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"held"
    before = snapshot(root)  # after the claim: an island's claim writes its lease file
    with pytest.raises(error):
        RunDir(root).reset_run()
    assert snapshot(root) == before


@pytest.mark.slow
def test_launch_fresh_in_real_processes(tmp_path, reaper):
    """A live island refuses the reset (exit 4); no terminal and no --yes refuses it (exit 2);
    then --fresh --yes starts the run over with other settings."""
    root = tmp_path / "run"
    island = reaper.start(evolve_cmd("island-00", root, "--problem", "slow_problem:make", "--param", "delay=0.05",
                                     "--dim", "3", "--population", "6", "--generations", "100000"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: status_generation(root, "island-00") >= 1, timeout=120, what="the island's first status")
    launch = [sys.executable, "-m", "islands", "launch", "-n", "2", "--run-dir", str(root), "--plain",
              "--problem", "sphere", *TINY]
    busy = run([*launch, "--fresh", "--yes"])
    assert busy.returncode == 4 and "island-00" in busy.stderr, busy.stderr
    assert RunDir(root).read_manifest()["config"]["problem"] == "slow_problem:make"

    island.kill()
    island.wait()
    unasked = subprocess.run([*launch, "--fresh"], env=child_env(), stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=120, start_new_session=True)
    assert unasked.returncode == 2 and "add --yes" in unasked.stderr, unasked.stderr
    assert RunDir(root).read_manifest()["config"]["problem"] == "slow_problem:make"

    done = run([*launch, "--fresh", "--yes"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert RunDir(root).read_manifest()["config"]["problem"] == "sphere"
    assert [h["generation"] for h in RunDir(root).island("island-00").read_history()] == [0, 1, 2, 3]
