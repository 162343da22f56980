"""`islands launch` on bad input and on contradictions of the manifest: one clear line, the
documented exit code, and nothing started (no process, no run directory, no log)."""
from __future__ import annotations

import subprocess
import sys

import psutil
import pytest
from click.testing import CliRunner

from islands.cli import main
from islands.config import RunConfig
from islands.runs import join_run, new_manifest
from launcher.plan import island_ids, make_plan, parse_vary, sample_overrides
from migration_pool.rundir import RunDir
from support import cli_output
from support.procs import child_env, unreadable_files_possible


def run_cli(*args):
    before = {p.pid for p in psutil.Process().children()}
    result = CliRunner().invoke(main, ["launch", *args], catch_exceptions=False)
    assert {p.pid for p in psutil.Process().children()} <= before, "a bad launch started processes"
    return result


def one_error_line(result):
    """The one line of a refusal (the launch's step lines before it are progress, not the error)."""
    return cli_output.one_error_line(result.output)


@pytest.mark.parametrize("args, words", [
    (["-n", "0"], "-n/--islands must be at least 1, got 0"),
    (["-n", "-3"], "at least 1"),
    (["--cores", "0-4096"], "do not exist"),
    (["--cores", "zero"], "not a core number"),
    (["--vary", "nosuch=1:2"], "cannot vary 'nosuch'"),
    (["--vary", "mutation_rate=0.5:0.1"], "must be below HIGH"),
    (["--vary", "mutation_rate=0:2"], "mutation rate must be in [0, 1]"),
    (["--vary", "mutation_sigma=0:1:log"], "LOW > 0"),
    (["--vary", "population=1:40"], "population must be >= 2"),
    (["--vary", "elitism=0:3", "--vary", "elitism=1:2"], "twice"),
    (["--device", "tpu"], "expected cpu, cuda or cuda:N"),
    (["--max-restarts", "-1"], "--max-restarts"),
    (["--hang-timeout", "-1"], "--hang-timeout"),
    (["--population", "1"], "population must be >= 2"),
    (["--tuner", "asha"], "--tuner asha needs --vary"),
    (["--tuner", "pbt", "--vary", "mutation_sigma=0.01:0.3", "--generations", "10", "--ready", "10"],
     "--ready 10 is not below the run's 10 generations"),
    (["--tuner", "asha", "--vary", "mutation_sigma=0.01:0.3", "--generations", "20", "--rung", "30"],
     "--rung 30 is not below"),
    (["--tuner", "asha", "--vary", "mutation_sigma=0.01:0.3", "--vary", "mutation_sigma=0.1:0.2"], "twice"),
    (["--tuner", "asha", "--vary", "nosuch=1:2"], "cannot vary 'nosuch'"),
])
def test_bad_input_exits_2_and_starts_nothing(tmp_path, args, words):
    run_dir = tmp_path / "run"
    result = run_cli("--run-dir", str(run_dir), "--problem", "sphere", *args)
    assert result.exit_code == 2, result.output
    assert words in one_error_line(result)
    assert not run_dir.exists()


@pytest.mark.parametrize("args, words", [
    (["-n", "0"], "-n/--islands must be at least 1, got 0"),
    (["--vary", "nosuch=1:2"], "cannot vary 'nosuch'"),
    (["--problem", "rastrign"], "unknown problem 'rastrign'"),  # refused by the settings check
])
def test_bad_input_without_run_dir_says_only_its_error_and_names_no_run(tmp_path, monkeypatch, args, words):
    """The settings-named run folder is said once the launch is accepted, never before a refusal."""
    monkeypatch.delenv("ISLANDS_RUN_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    result = run_cli("--problem", "sphere", *args)
    assert result.exit_code == 2, result.output
    assert words in one_error_line(result)  # no "new run ..." line before it
    assert not (tmp_path / "data").exists()


def test_tpe_without_optuna_names_the_extra_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # as on a machine without the extra
    run_dir = tmp_path / "run"
    result = run_cli("--run-dir", str(run_dir), "--problem", "sphere", "-n", "2", "--tuner", "tpe",
                     "--vary", "mutation_sigma=0.01:0.3")
    assert result.exit_code == 2, result.output
    assert "islands[optuna]" in one_error_line(result)
    assert not run_dir.exists()


@pytest.mark.skipif(sys.platform != "linux", reason="needs a CUDA-less Linux box")
def test_cuda_asked_for_without_cuda_exits_2(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_cli("--run-dir", str(tmp_path / "run"), "--device", "cuda", "-n", "2")
    assert result.exit_code == 2 and "CUDA is not available" in one_error_line(result)
    assert not (tmp_path / "run" / "manifest.isld").exists()


def test_run_dir_that_cannot_be_written_exits_1(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    result = run_cli("--run-dir", str(tmp_path / "afile" / "run"), "-n", "2")
    assert result.exit_code == 1 and "cannot use run directory" in one_error_line(result)


def test_read_only_run_dir_exits_1(tmp_path):
    """A real `islands launch` on a read-only directory; as root the child drops the
    capabilities that let root ignore file modes, so the check holds in CI too."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    possible, preexec, reason = unreadable_files_possible(tmp_path)
    assert possible, f"cannot make file modes bind here: {reason}"
    try:
        done = subprocess.run([sys.executable, "-m", "islands", "launch", "--run-dir", str(ro / "run"), "-n", "2"],
                              env=child_env(), preexec_fn=preexec, capture_output=True, text=True, timeout=60,
                              start_new_session=True)
    finally:
        ro.chmod(0o700)
    assert done.returncode == 1, done.stderr
    assert "cannot use run directory" in done.stderr and "Traceback" not in done.stderr
    assert not (ro / "run").exists()


def recorded_run(root, n=2, vary=("mutation_sigma=0.01:0.2",), device="cpu"):
    """A run as an earlier launch would have recorded it (without starting islands)."""
    config = RunConfig(problem="sphere", dim=5, population=20, generations=50)
    ids = island_ids(n)
    specs = [parse_vary(v) for v in vary]
    plan = make_plan(ids, (0,), device, ["0"], sample_overrides(specs, ids, config.seed), specs)
    join_run(root, config, {}, make_manifest=lambda: new_manifest(config, **plan.manifest_fields()))
    return RunDir(root).read_manifest()


@pytest.mark.parametrize("args, words", [
    (["-n", "3"], "islands=3 contradicts the run manifest, which records islands=2"),
    (["--population", "40"], "population=40 contradicts the run manifest, which records population=20"),
    (["--problem", "rastrigin"], "records problem='sphere'"),
    (["--vary", "mutation_sigma=0.01:0.3"], "records vary=['mutation_sigma=0.01:0.2']"),
    (["--device", "cuda"], "records device='cpu'"),
])
def test_resume_refuses_options_that_contradict_the_manifest(tmp_path, args, words):
    before = recorded_run(tmp_path)
    result = run_cli("--run-dir", str(tmp_path), *args)
    assert result.exit_code == 2, result.output
    assert words in one_error_line(result)
    assert RunDir(tmp_path).read_manifest() == before
    assert RunDir(tmp_path).island_ids() == [] and not list(tmp_path.rglob("island.log"))


def test_a_second_launcher_on_the_same_run_exits_4(tmp_path, spawn):
    import subprocess

    # The holder's sleep is the holding: it keeps the lock until the test kills it.
    holder = spawn("import sys, time; from migration_pool.rundir import RunDir; "
                   "lock = RunDir(sys.argv[1]).claim_launcher(); print('held', flush=True); time.sleep(60)",
                   str(tmp_path), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    result = run_cli("--run-dir", str(tmp_path), "-n", "1", "--problem", "sphere")
    assert result.exit_code == 4 and "another launcher" in one_error_line(result)
    assert RunDir(tmp_path).read_manifest() is None


def test_help_lists_the_launch_options():
    result = CliRunner().invoke(main, ["launch", "--help"])
    assert result.exit_code == 0
    for flag in ("--islands", "--cores", "--device", "--vary", "--max-restarts", "--hang-timeout",
                 "--migrate-every", "--run-dir", "--grace"):
        assert flag in result.output


def test_an_island_still_running_from_before_is_refused_with_exit_4(tmp_path, spawn):
    import subprocess

    recorded_run(tmp_path)
    # The holder's sleep is the holding: it keeps the claim until the test kills it.
    holder = spawn("import sys, time; from migration_pool.rundir import RunDir; "
                   "lock = RunDir(sys.argv[1]).island('island-01').claim(); print('held', flush=True); time.sleep(60)",
                   str(tmp_path), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    result = run_cli("--run-dir", str(tmp_path))
    assert result.exit_code == 4 and "already running" in one_error_line(result) and "island-01" in result.output
    assert "island-00" not in result.output and not list(tmp_path.rglob("island.log"))


def test_a_typo_in_the_problem_starts_nothing_and_exits_2(tmp_path):
    root = tmp_path / "run"
    result = run_cli("--run-dir", str(root), "-n", "2", "--problem", "rastrign", "--generations", "2")
    assert result.exit_code == 2 and "unknown problem 'rastrign'" in result.output
    assert "Did you mean 'rastrigin'" in result.output and not root.exists()


def test_a_manifest_island_id_that_is_a_path_is_refused_before_anything_is_opened(tmp_path):
    root = tmp_path / "a" / "b" / "run"
    root.parent.mkdir(parents=True)
    recorded_run(root)
    RunDir(root).update_manifest(lambda m: {**m, "islands": ["../../../x", "island-01"]})
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run_cli("--run-dir", str(root))
    assert result.exit_code == 1 and "'../../../x', which is not an island id" in one_error_line(result)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")
                  if ".launcher.lock" not in p.name) == [p for p in before if ".launcher.lock" not in p.name]


@pytest.mark.parametrize("what", ["directory", "manifest"])
def test_a_run_others_can_write_is_refused_unless_allowed(tmp_path, what):
    root = tmp_path / "run"
    recorded_run(root)
    (root if what == "directory" else root / "manifest.isld").chmod(0o777 if what == "directory" else 0o666)
    result = run_cli("--run-dir", str(root))
    assert result.exit_code == 1 and "writable by other users" in one_error_line(result)
    assert "--allow-shared-run" in result.output
    evolve = CliRunner().invoke(main, ["evolve", "island-00", "--run-dir", str(root), "--quiet"])
    assert evolve.exit_code == 1 and "writable by other users" in evolve.output
    assert not RunDir(root).island("island-00").dir.exists()  # refused before anything was written
    allowed = subprocess.run([sys.executable, "-m", "islands", "evolve", "island-00", "--run-dir",
                              str(root), "--quiet", "--allow-shared-run"], env=child_env(),
                             capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr
