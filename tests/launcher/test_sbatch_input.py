"""What reaches the SLURM batch script is checked first: the manifest's fields, the SLURM
options and the paths. sbatch reads `#SBATCH` lines with getopt (a prefix of a long option is
that option) and stops at the first command line, so one newline, one unexpected word or one
abbreviation would let a value run as a command or override an option the script owns."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from islands.config import RunConfig
from islands.exit_codes import EXIT_ERROR
from islands.manifest import new_manifest
from launcher.errors import PlanError
from launcher.sbatch import SlurmOptions, render
from migration_pool.rundir import RunDir
from support.procs import child_env


def planned_run(root: Path, **fields) -> RunDir:
    rd = RunDir(root)
    manifest = {**new_manifest(RunConfig(problem="sphere", dim=3, population=8),
                               planned_islands=["island-00", "island-01"]), **fields}
    rd.create_or_read_manifest(lambda: manifest)
    return rd


def slurm_script(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "islands", "slurm-script", "--run-dir", str(root), *args],
                          env=child_env(), capture_output=True, text=True, timeout=120)


def test_a_manifest_run_id_with_a_newline_never_reaches_the_script(tmp_path):
    pwned = tmp_path / "pwned"
    planned_run(tmp_path / "run", run_id=f"abc\ntouch {pwned}\n")
    out = slurm_script(tmp_path / "run")
    assert out.returncode == EXIT_ERROR and out.stdout == "", out.stdout
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1 and "run_id" in err and "Traceback" not in err, err
    assert not pwned.exists()


def test_a_valid_manifest_gives_a_script_naming_its_run(tmp_path):
    rd = planned_run(tmp_path / "run")
    out = slurm_script(tmp_path / "run")
    assert out.returncode == 0, out.stderr
    run_id = rd.read_manifest()["run_id"]
    assert f"#SBATCH --job-name=islands-{run_id[:8]}" in out.stdout.splitlines()
    assert subprocess.run(["bash", "-n"], input=out.stdout, text=True).returncode == 0


@pytest.mark.parametrize("run_id, planned", [("ab\nid", ["island-00"]), ("ab" * 16, ["island-00\nid"])])
def test_render_itself_refuses_a_run_id_or_island_id_that_is_not_plain(tmp_path, run_id, planned):
    with pytest.raises(PlanError, match="refusing to write it into a batch script"):
        render(SlurmOptions(), run_dir=str(tmp_path / "run"), run_id=run_id, indices=[0], planned=planned,
               python="python3", cwd=str(tmp_path), env={})
