"""Careless input and hostile run directories (issue 17, items 5-9): every mistake ends in one
clear line and a documented exit code, and nothing is written or lost."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from islands.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# -- item 8: nonsense numbers ------------------------------------------------------------------

@pytest.mark.parametrize("command, args, option", [
    ("launch", ["--grace", "nan"], "--grace"),
    ("launch", ["--grace", "inf"], "--grace"),
    ("launch", ["--hang-timeout", "nan"], "--hang-timeout"),
    ("launch", ["--progress-every", "nan"], "--progress-every"),
    ("launch", ["--progress-every", "-1"], "--progress-every"),
    ("launch", ["--progress-every", "0"], "--progress-every"),
    ("launch", ["-n", "1000000000"], "--islands"),
    ("launch", ["--cores", ""], "--cores"),
    ("launch", ["--generations", str(2**64)], "--generations"),
    ("evolve", ["--generations", str(2**64)], "--generations"),
    ("evolve", ["--checkpoint-every", str(2**70)], "--checkpoint-every"),
    ("evolve", ["--checkpoint-seconds", "-1"], "--checkpoint-seconds"),
    ("evolve", ["--checkpoint-seconds", "nan"], "--checkpoint-seconds"),
    ("launch", ["--checkpoint-seconds", "inf"], "--checkpoint-seconds"),
    ("evolve", ["--seed", str(2**64)], "--seed"),
    ("evolve", ["--population", str(2**64)], "--population"),
    ("evolve", ["--mutation-sigma", "inf"], "--mutation-sigma"),
    ("evolve", ["--mutation-sigma", "nan"], "--mutation-sigma"),
    ("evolve", ["--migration-probability", "nan"], "--migration-probability"),
    ("evolve", ["--target", "nan"], "--target"),
])
def test_nonsense_numbers_exit_2_naming_the_option(tmp_path, command, args, option):
    run_dir = tmp_path / "run"
    head = [command, "island-00"] if command == "evolve" else [command]
    result = invoke(*head, "--run-dir", str(run_dir), "--problem", "sphere", *args)
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "Traceback" not in result.output
    assert not run_dir.exists()


def test_status_stale_after_nan_exits_2(tmp_path):
    result = invoke("status", "--run-dir", str(tmp_path), "--stale-after", "nan")
    assert result.exit_code == 2 and "--stale-after" in result.output, result.output


# -- item 5: careless run directories ----------------------------------------------------------

@pytest.mark.parametrize("command", [["evolve", "island-00"], ["launch"]])
def test_empty_run_dir_is_refused(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = invoke(*command, "--run-dir", "", "--problem", "sphere", "--generations", "2")
    assert result.exit_code == 2 and "--run-dir" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["evolve", "island-00"], ["launch", "-n", "1"]])
def test_nonempty_directory_without_a_run_is_refused(tmp_path, command):
    (tmp_path / "notes.txt").write_text("mine")
    result = invoke(*command, "--run-dir", str(tmp_path), "--problem", "sphere", "--generations", "2")
    assert result.exit_code == 2, result.output
    assert "--allow-nonempty" in result.output and "notes.txt" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_root_is_refused_as_a_run_dir():
    result = invoke("evolve", "island-00", "--run-dir", "/", "--problem", "sphere")
    assert result.exit_code == 2 and "holds no run" in result.output, result.output


def test_allow_nonempty_creates_the_run_and_a_run_dir_is_rejoined(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    args = ["evolve", "island-00", "--quiet", "--run-dir", str(tmp_path), "--problem", "sphere", "--generations", "2"]
    assert invoke(*args, "--allow-nonempty").exit_code == 0
    assert (tmp_path / "manifest.isld").is_file()
    rerun = invoke(*args)  # a directory that holds a run needs no flag
    assert rerun.exit_code == 0, rerun.output


# -- item 9: a deleted manifest ------------------------------------------------------------------

@pytest.mark.parametrize("command", [["evolve", "island-00", "--quiet"], ["launch", "-n", "1", "--plain"]])
def test_deleted_manifest_is_not_replaced_over_checkpoints(tmp_path, command):
    run_dir = tmp_path / "run"
    first = invoke("evolve", "island-00", "--quiet", "--run-dir", str(run_dir), "--problem", "sphere",
                   "--generations", "4", "--checkpoint-every", "2")
    assert first.exit_code == 0, first.output
    (run_dir / "manifest.isld").unlink()
    before = sorted(p.name for p in (run_dir / "islands" / "island-00").iterdir())
    result = invoke(*command, "--run-dir", str(run_dir), "--problem", "sphere", "--generations", "8")
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "hold checkpoints" in lines[0] and "restore manifest.isld" in lines[0], lines
    assert not (run_dir / "manifest.isld").exists()
    assert sorted(p.name for p in (run_dir / "islands" / "island-00").iterdir()) == before


def test_library_join_refuses_orphaned_checkpoints(tmp_path):
    from islands.runs import join_run
    from migration_pool.errors import RunDirError
    from migration_pool.rundir import RunDir
    from support.factories import small_config

    rundir = RunDir(tmp_path)
    rundir.ensure("island-00")
    (rundir.island("island-00").dir / "checkpoint-00000010.isld").write_bytes(b"x")
    with pytest.raises(RunDirError, match="hold checkpoints"):
        join_run(tmp_path, small_config(), {})
    assert rundir.read_manifest() is None
