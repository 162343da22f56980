"""`islands confirm`: the run's top settings re-run alone on new seeds, beside the run's ranking."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from islands.config import MigrationConfig, RunConfig
from islands.tuning.confirm import isolated_config, ranks, spearman
from islands.tuning.config import TunerConfig
from support.procs import child_env


def test_rank_correlation():
    assert ranks([3.0, 1.0, 2.0, 2.0]) == [1.0, 4.0, 2.5, 2.5]
    assert spearman([3, 2, 1], [30, 20, 10]) == pytest.approx(1.0)
    assert spearman([3, 2, 1], [10, 20, 30]) == pytest.approx(-1.0)
    assert spearman([4, 3, 2, 1], [40, 10, 30, 20]) == pytest.approx(0.4)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_a_rerun_is_one_isolated_untuned_island_on_the_given_budget():
    run = RunConfig(problem="sphere", generations=50, migration=MigrationConfig(every=5),
                    tuner=TunerConfig(kind="asha", space=("mutation_sigma=0.01:0.5",)))
    cfg = isolated_config(run, {"mutation_sigma": 0.2}, seed=7, evaluations=999)
    assert (cfg.migration.every, cfg.tuner.kind, cfg.seed, cfg.max_evaluations, cfg.generations) == (0, "static", 7, 999, None)
    assert cfg.ga.mutation_sigma == 0.2


def test_confirm_reruns_the_top_settings_of_a_real_launch(tmp_path):
    run = tmp_path / "run"
    launch = subprocess.run([sys.executable, "-m", "islands", "launch", "-n", "3", "--run-dir", str(run), "--problem",
                             "sphere", "--dim", "3", "--population", "10", "--generations", "10", "--migrate-every", "0",
                             "--vary", "mutation_sigma=0.001,0.05,0.5", "--plain"],
                            env=child_env(), capture_output=True, text=True, timeout=240)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    out = subprocess.run([sys.executable, "-m", "islands", "confirm", str(run), "--top", "3", "--seeds", "2",
                          "--workers", "2"], env=child_env(), capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line for line in out.stdout.splitlines() if re.match(r"\s+\d+\s+island-0\d", line)]
    assert [int(r.split()[0]) for r in rows] == [1, 2, 3]
    assert {re.search(r"mutation_sigma=(\S+)", r).group(1) for r in rows} == {"0.001", "0.05", "0.5"}
    assert "Spearman, the run's ranking against the re-runs' medians:" in out.stdout
    assert "re-runs 6/6" in out.stderr
    bad = subprocess.run([sys.executable, "-m", "islands", "confirm", str(tmp_path / "nothing")], env=child_env(),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_a_vary_launch_writes_an_optuna_study_unless_told_not_to(tmp_path):
    optuna = pytest.importorskip("optuna", reason="the optuna extra is not installed")
    from islands.results import open_run

    def launch(run, *extra):
        out = subprocess.run([sys.executable, "-m", "islands", "launch", "-n", "3", "--run-dir", str(run), "--problem",
                              "sphere", "--dim", "3", "--population", "10", "--generations", "6", "--plain",
                              "--vary", "mutation_sigma=0.001,0.05,0.5", *extra],
                             env=child_env(), capture_output=True, text=True, timeout=240)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    shown = launch(tmp_path / "run")
    assert "optuna study:" in shown
    study = open_run(tmp_path / "run").study()
    assert sorted(t.params["mutation_sigma"] for t in study.trials) == [0.001, 0.05, 0.5]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert "optuna study:" not in launch(tmp_path / "off", "--optuna-journal", "false")
    assert not (tmp_path / "off" / "optuna.journal").exists()
