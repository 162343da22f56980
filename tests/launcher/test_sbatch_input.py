"""What reaches the SLURM batch script is checked first: the manifest's fields, the SLURM
options and the paths. sbatch reads `#SBATCH` lines with getopt (a prefix of a long option is
that option) and stops at the first command line, so one newline, one unexpected word or one
abbreviation would let a value run as a command or override an option the script owns."""
from __future__ import annotations

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


# -- SLURM options: one printable token each, never an option the script owns ------------------------

@pytest.mark.parametrize("value", ["\n10", "10\n", " 10", "10 ", "10\r", "\u0661\u0660", "1-\n2", "10\x00"])
def test_a_time_limit_is_taken_exactly_as_sbatch_would_read_it_or_refused(value):
    with pytest.raises(PlanError, match="--time") as e:
        SlurmOptions(time=value)
    assert "\n" not in str(e.value) and "\r" not in str(e.value)


def test_a_good_time_limit_is_written_as_given(tmp_path):
    for value in ("10", "1:30", "2:00:00", "1-2:03"):
        text = render(SlurmOptions(time=value), run_dir=str(tmp_path / "run"), run_id="ab" * 16, indices=[0],
                      planned=["island-00"], python="python3", cwd=str(tmp_path), env={})
        assert f"#SBATCH --time={value}" in text.splitlines()


@pytest.mark.parametrize("arg, owned", [
    ("--outp=/tmp/x", "--output"), ("--chd=/", "--chdir"), ("--sig=KILL@1", "--signal"), ("--ar=0-99", "--array"),
    ("--par=debug", "--partition"), ("--ti=1", "--time"), ("--acc=x", "--account"), ("--e=/x", "--error"),
    ("--open=truncate", "--open-mode"), ("--test", "--test-only"), ("--wr=id", "--wrap"), ("--nta=9", "--ntasks"),
    ("--cpus-per=9", "--cpus-per-task"), ("--gpus-per-t=2", "--gpus-per-task"), ("--no-req", "--no-requeue"),
    ("--req", "--requeue"), ("--pars", "--parsable"), ("--o", "--output"),
    ("-vo/tmp/x", "-o"), ("-Qt1", "-t"), ("-HD/", "-D"), ("-a1", "-a"), ("-pdebug", "-p"),
])
def test_an_abbreviated_or_clustered_option_the_script_owns_is_refused(arg, owned):
    with pytest.raises(PlanError) as e:
        SlurmOptions(sbatch_args=(arg,))
    message = str(e.value)
    assert f"{owned} is set by islands" in message or ("abbreviates" in message and owned in message), message


@pytest.mark.parametrize("arg", ["--gpus=2", "--time-min=30", "--qos=long", "--mem=4G", "--ntasks-per-node=1",
                                 "--cpus-per-gpu=2", "-G2", "-Jname", "-J-o", "-k", "--mail-user=a@b.org",
                                 "--constraint=[rack1|rack2]", "--export=ALL,OMP_PROC_BIND=true"])
def test_other_sbatch_options_pass_and_are_written_as_given(tmp_path, arg):
    text = render(SlurmOptions(sbatch_args=(arg,)), run_dir=str(tmp_path / "run"), run_id="ab" * 16, indices=[0],
                  planned=["island-00"], python="python3", cwd=str(tmp_path), env={})
    assert f"#SBATCH {arg}" in text.splitlines()


@pytest.mark.parametrize("arg", ["--qos=a\rb", "--qos=a\vb", "--qos=a\fb", "--qos=a\u2028b", "--qos=a\u0085b",
                                 "--qos=a\x1bb", "--qos=a\tb", "--qos=a\xa0b", "--qos=long --output=/tmp/x",
                                 "--comment=\"x\"", "--comment='x'", "--comment=a\\b", "--comment=a#b", "--", "-",
                                 "--=x", "---output=/x", "--qos=x\n"])
def test_an_sbatch_arg_sbatch_would_split_or_read_specially_is_refused(arg):
    with pytest.raises(PlanError, match="--sbatch-arg") as e:
        SlurmOptions(sbatch_args=(arg,))
    assert len(str(e.value).splitlines()) == 1


@pytest.mark.parametrize("args", [["--time", "\n10"], ["--sbatch-arg=--outp=/tmp/x"], ["--sbatch-arg=--chd=/"],
                                  ["--sbatch-arg=--sig=KILL@1"], ["--sbatch-arg", "--qos=a\rb"],
                                  ["--sbatch-arg", "--qos=a\vb"], ["--sbatch-arg", "--qos=a\u2028b"],
                                  ["--partition", "a\u2028b"]])
def test_the_command_refuses_them_in_one_line_with_exit_2_and_prints_no_script(tmp_path, args):
    planned_run(tmp_path / "run")
    out = slurm_script(tmp_path / "run", *args)
    assert out.returncode == 2 and out.stdout == "", out.stdout
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize("where", ["run_dir", "cwd"])
@pytest.mark.parametrize("bad", ["%j", "a%%b", "x\x1by", "x\u2028y"])
def test_a_path_sbatch_would_expand_or_split_is_refused(tmp_path, where, bad):
    """sbatch expands %-patterns (%j, %A, %a, ...) in --output and --chdir paths."""
    paths = {"run_dir": str(tmp_path / "run"), "cwd": str(tmp_path)}
    paths[where] = str(tmp_path / bad)
    with pytest.raises(PlanError, match="must not contain"):
        render(SlurmOptions(), indices=[0], planned=["island-00"], run_id="ab" * 16, python="python3", env={}, **paths)


def test_the_interpreter_path_is_shell_quoted_in_the_batch_script(tmp_path):
    """Run the script for real: an interpreter under a path with spaces and shell syntax runs
    as itself, and nothing in its path runs as a command."""
    pwned = tmp_path / "pwned"
    odd = tmp_path / "my env; touch pwned; $(touch pwned) `touch pwned`"
    odd.mkdir()
    python = odd / "python3"
    python.write_text("#!/bin/sh\necho \"interpreter ran: $*\"\n")
    python.chmod(0o755)
    text = render(SlurmOptions(warn_s=0), run_dir=str(tmp_path / "run"), run_id="ab" * 16, indices=[0],
                  planned=["island-00"], python=str(python), cwd=str(tmp_path), env={"PYTHONPATH": "/a b;$(id)"})
    env = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "0"}
    out = subprocess.run(["bash", "-c", text, "job.sbatch"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"interpreter ran: -m islands evolve --slurm --run-dir {tmp_path / 'run'}" in out.stdout
    assert out.stdout.rstrip().endswith("islands: task ended: 7_0 exit 0") and not pwned.exists()
