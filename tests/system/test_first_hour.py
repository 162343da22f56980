"""A new user's first hour (issue 14, items 2, 6 and 7): defaults shown, one folder per
run's settings, a plug-in module in the current folder found by every entry point, an unused --dim
said aloud, and status reports that do not mislead (genome size, progress, plots).

Real processes where the entry point matters: the console script is reproduced by a shim
that, like pip's, runs `islands.cli:main` from a file in another folder, so the current
folder is not on its sys.path (`python -m` and `python -c` would put it there).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from islands.cli import RUN_OPTIONS, main
from islands.cli_types import INT64_MAX
from islands.config import GAConfig, MigrationConfig, RunConfig
from islands.status import report as rep
from islands.status.cli import status as status_cmd
from islands.status.schema import SCHEMA
from migration_pool.rundir import RunDir
from support.procs import child_env, run

TINY = ["--generations", "2", "--population", "6", "--seed", "1"]
PLUGIN = '''from islands.problems import make_problem


def make(dim=10, **params):
    """A factory that fixes its own genome length, whatever --dim asks."""
    return make_problem("sphere", dim=3)
'''


def console_script(tmp_path: Path) -> list[str]:
    """The `islands` console script: a file outside the current folder running islands.cli:main."""
    shim = tmp_path / "bin" / "islands"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text("import sys\nfrom islands.cli import main\nsys.exit(main())\n")
    return [sys.executable, str(shim)]


def user_folder(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "myprob.py").write_text(PLUGIN)
    return work


def run_in(cwd: Path, cmd: list[str], timeout: float = 180, **env: str):
    import subprocess

    return subprocess.run(cmd, cwd=cwd, env=child_env(**env), capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


# -- item 2: defaults and folders --------------------------------------------------------
def _help_of(command: str) -> dict[str, str]:
    """Each option's help text, by its long flag."""
    import click

    cmd = main.get_command(click.Context(main), command)
    ctx = click.Context(cmd, info_name=command)
    return {p.opts[-1]: p.get_help_record(ctx)[1] for p in cmd.params if isinstance(p, click.Option) and p.help}


@pytest.mark.parametrize("command", ["evolve", "launch"])
def test_help_shows_every_run_default(command):
    helps = _help_of(command)
    for flag, _path, _typ, _help in RUN_OPTIONS:
        assert "[default: " in helps[flag], (flag, helps[flag])
    run, mig, ga = RunConfig(), MigrationConfig(), GAConfig()
    expect = {"--problem": run.problem, "--dim": run.dim, "--generations": run.generations,
              "--algorithm": run.algorithm, "--migrate-every": mig.every, "--topology": mig.topology,
              "--migrants": mig.migrants, "--tournament-size": ga.tournament_size, "--crossover": ga.crossover,
              "--elitism": ga.elitism, "--mutation-sigma": f"{ga.mutation_sigma:g}"}
    for flag, value in expect.items():
        assert f"[default: {value}]" in helps[flag], (flag, helps[flag])
    assert "[default: the algorithm's default]" in helps["--population"]
    assert "resume" in helps["--run-dir"]
    assert "named by the run's settings" in helps["--run-dir"] and "--new" in helps
    # The help is what the user sees: the rendered text carries them too.
    out = CliRunner().invoke(main, [command, "--help"]).output
    assert out.count("[default:") >= len(RUN_OPTIONS) and "x<=None" not in out
    # The 64-bit ceiling is enforced, not shown: no [x<=9223372036854775807] on every count.
    assert str(INT64_MAX) not in out and "[x>=1]" in out
    too_big = CliRunner().invoke(main, [command, "--generations", str(INT64_MAX + 1)])
    assert too_big.exit_code == 2 and f"x<={INT64_MAX}" in too_big.output, too_big.output
    # Options in sections, the problem's first; the scheduler's last.
    heads = [out.index(f"\n{s} options:\n") for s in ("Problem", "Algorithm", "Migration", "Run", "Scheduler")]
    assert heads == sorted(heads) and heads[0] < out.index("  --problem") < heads[1] < out.index("  --population") \
        < heads[2] < out.index("  --topology") < heads[3] < out.index("  --generations") < heads[4], out
    if command == "evolve":  # ISLAND is needed (unless --slurm names it): not shown as optional
        assert " evolve [OPTIONS] ISLAND\n" in out, out[:200]


def test_runs_without_run_dir_get_a_printed_folder_per_settings(tmp_path):
    data = tmp_path / "data"
    env = {"XDG_DATA_HOME": str(data), "ISLANDS_RUN_DIR": ""}
    cmd = [sys.executable, "-m", "islands", "evolve", "island-00", *TINY]
    first = run_in(tmp_path, [*cmd, "--dim", "3"], **env)
    second = run_in(tmp_path, [*cmd, "--dim", "4"], **env)  # other settings: another folder, no conflict
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    folders = []
    for res in (first, second):
        m = re.search(r"^new run (\S+) \(folder (\S+); the same command resumes it", res.stderr, re.M)
        assert m, res.stderr
        assert Path(m.group(2)).name == m.group(1)
        folders.append(Path(m.group(2)))
    runs = sorted((data / "islands" / "runs").iterdir())
    assert folders[0] != folders[1] and set(folders) == set(runs)
    assert [f.name.split("-")[:4] for f in folders] == [["rastrigin", "ga", "d3", "s1"], ["rastrigin", "ga", "d4", "s1"]]
    assert all(RunDir(f).read_manifest() for f in folders)
    # `islands status` without --run-dir reads the most recently active run.
    res = CliRunner().invoke(status_cmd, ["--json"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["run"]["dim"] == 4 and "most recently active" in res.stderr


def test_islands_run_dir_stays_an_explicit_choice(tmp_path):
    root = tmp_path / "chosen"
    res = run_in(tmp_path, [sys.executable, "-m", "islands", "evolve", "island-00", *TINY],
                 XDG_DATA_HOME=str(tmp_path / "data"), ISLANDS_RUN_DIR=str(root))
    assert res.returncode == 0, res.stderr
    assert RunDir(root).read_manifest() is not None and not (tmp_path / "data").exists()


# -- item 6: plug-ins in the current folder, --dim said aloud ------------------------------
def test_console_script_finds_a_plugin_in_the_current_folder_and_says_dim_is_unused(tmp_path):
    work = user_folder(tmp_path)
    res = run_in(work, [*console_script(tmp_path), "evolve", "island-00", "--run-dir", str(tmp_path / "run"),
                        "--problem", "myprob:make", "--dim", "5", *TINY])
    assert res.returncode == 0, res.stderr
    notes = [ln for ln in res.stderr.splitlines() if "--dim" in ln]
    assert notes == ["note: problem 'myprob:make' fixes its own genome length (3 genes); --dim 5 is not used"]
    status = RunDir(tmp_path / "run").island("island-00").read_status()
    assert np.asarray(status["best_genome"]).size == 3


def test_no_dim_notice_when_dim_is_not_typed_or_is_used(tmp_path):
    work = user_folder(tmp_path)
    res = run_in(work, [*console_script(tmp_path), "evolve", "island-00", "--run-dir", str(tmp_path / "a"),
                        "--problem", "myprob:make", *TINY])
    res2 = run_in(work, [*console_script(tmp_path), "evolve", "island-00", "--run-dir", str(tmp_path / "b"),
                         "--problem", "sphere", "--dim", "4", *TINY])
    assert res.returncode == 0 and res2.returncode == 0, res.stderr + res2.stderr
    assert "note:" not in res.stderr and "note:" not in res2.stderr


def test_launched_islands_find_a_plugin_in_the_current_folder(tmp_path):
    work = user_folder(tmp_path)
    root = tmp_path / "run"
    res = run_in(work, [*console_script(tmp_path), "launch", "-n", "2", "--run-dir", str(root), "--plain",
                        "--problem", "myprob:make", "--dim", "5", "--generations", "3", "--population", "6"],
                 timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "settings: problem myprob:make, dim 3, algorithm ga, population 6, 3 generations" in out  # its own
    assert "note: problem 'myprob:make' fixes its own genome length (3 genes); --dim 5 is not used" in out
    finish = re.findall(r"island-0\d: finished \(\w+\) at generation \d+, best (\S+)", out)
    assert len(finish) == 2, out
    for best in finish:  # rounded to 6 significant digits, not a raw float
        assert len(re.sub(r"[^0-9]", "", best.split("e")[0]).lstrip("0")) <= 6, best
    assert all(RunDir(root).island(i).read_status()["state"] == "finished" for i in ("island-00", "island-01"))


# -- item 7: status reports ----------------------------------------------------------------
def test_network_task_header_names_the_real_genome_size_and_the_plot_path_is_printed(tmp_path):
    root = tmp_path / "run"
    res = run(evolve_args(root, "--problem", "xor", "--generations", "3", "--population", "6"))
    assert res.returncode == 0, res.stderr
    genes = np.asarray(RunDir(root).island("island-00").read_status()["best_genome"]).size
    assert genes != RunConfig().dim
    report = rep.build_report(root)
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    assert (report["run"]["genome_kind"], report["run"]["genome_size"]) == ("vector", genes)
    plot = tmp_path / "fig.png"
    out = CliRunner().invoke(status_cmd, ["--run-dir", str(root), "--plot", str(plot)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert f"xor dim {genes}" in out.output and "xor dim 10" not in out.output
    assert f"plot written to {plot.resolve()}" in out.output and plot.stat().st_size > 0
    timed = tmp_path / "time.png"
    out = CliRunner().invoke(status_cmd, ["--run-dir", str(root), "--plot", str(timed), "--plot-x", "time", "--json"])
    assert out.exit_code == 0 and timed.stat().st_size > 0, out.output


def test_problem_label_of_a_neat_run_counts_its_connections():
    assert rep.problem_label({"problem": "xor", "dim": 10, "genome_kind": "neat", "genome_size": 12}) \
        == "xor NEAT 12 connections"
    assert rep.problem_label({"problem": "sphere", "dim": 10, "genome_kind": None, "genome_size": None}) \
        == "sphere dim 10"


def test_an_island_stopped_by_its_target_is_100_percent_done(tmp_path):
    root = tmp_path / "run"
    # Any rastrigin point in 3 dimensions is above -130: the target is met at once.
    res = run(evolve_args(root, "--problem", "rastrigin", "--dim", "3", "--target", "-130", "--generations", "400"))
    assert res.returncode == 0, res.stderr
    report = rep.build_report(root)
    (isl,) = report["islands"]
    assert isl["reason"] == "target" and isl["generation"] < 400 * 0.05
    assert isl["progress"] == 1.0 and report["totals"]["progress"] == 1.0
    out = CliRunner().invoke(status_cmd, ["--run-dir", str(root)], env={"COLUMNS": "200"})
    assert "100% done" in out.output, out.output


def evolve_args(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "islands", "evolve", "island-00", "--run-dir", str(root), "--quiet",
            "--seed", "1", *args]
