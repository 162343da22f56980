"""The Python API: problems given as Python objects, conflicts as strict as the CLI's, and the
champion file of an `evolve`-only run."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from islands.cli import main
from islands.config import RunConfig
from islands.errors import ConfigError, ProblemNotFound
from islands.problems import Problem, make_problem
from islands.results import open_run
from islands.runs import evolve
from migration_pool.errors import ManifestConflict
from migration_pool.rundir import RunDir
from support.factories import QUIET, small_config


def sphere(x: torch.Tensor) -> torch.Tensor:
    return -(x ** 2).sum(dim=1)


def shifted(x: torch.Tensor) -> torch.Tensor:
    return -((x - 1.0) ** 2).sum(dim=1)


CFG = RunConfig(dim=4, population=20, generations=8, seed=2, checkpoint_every=4, checkpoint_seconds=0)


def _empty(root) -> bool:
    return not root.exists() or not any(root.iterdir())


def test_a_fitness_function_runs_in_process_and_is_recorded_by_name_only(tmp_path):
    result = evolve("island-00", tmp_path, CFG, problem=sphere, bounds=(-3, 3), **QUIET)
    assert result.reason == "generations" and result.evaluations == 20 * 9
    run = open_run(tmp_path)
    assert run.config.problem == f"<python:{__name__}.sphere>"
    assert dict(run.config.problem_params) == {"lower": -3.0, "upper": 3.0}
    # The champion file holds a genome inside the bounds whose fitness the function gives.
    champ = RunDir(tmp_path).read_champion()
    genome = torch.as_tensor(np.asarray(champ["genome"]))
    assert genome.shape == (4,) and bool((genome.abs() <= 3).all())
    assert float(sphere(genome[None])[0]) == pytest.approx(champ["fitness"])
    assert champ["fitness"] == pytest.approx(result.best) or champ["fitness"] > result.best
    # The same function resumes the run; a run from another process cannot be rebuilt without it.
    again = evolve("island-00", tmp_path, CFG, problem=sphere, bounds=(-3, 3), **QUIET)
    assert again.resumed_from == 8
    with pytest.raises(ConfigError, match=r"pass the same function again"):
        evolve("island-00", tmp_path, **QUIET)
    with pytest.raises(ManifestConflict, match="problem") as info:
        evolve("island-00", tmp_path, CFG, problem=shifted, bounds=(-3, 3), **QUIET)
    assert info.value.recorded == f"<python:{__name__}.sphere>"
    with pytest.raises(ManifestConflict, match="problem-params"):
        evolve("island-00", tmp_path, CFG, problem=sphere, bounds=(-2, 2), **QUIET)
    with pytest.raises(ProblemNotFound, match="Python function"):
        open_run(tmp_path).problem()
    # Its champion still exports (a plain vector).
    out = CliRunner().invoke(main, ["export", str(tmp_path), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "champion.json").stat().st_size > 0


def test_a_problem_object_runs_and_a_named_run_refuses_it(tmp_path):
    prob = Problem(name="bowl", dim=3, lower=-1.0, upper=(1.0, 2.0, 3.0), fn=functools.partial(shifted))
    result = evolve("island-00", tmp_path / "obj", CFG, problem=prob, **QUIET)
    recorded = open_run(tmp_path / "obj").config
    assert recorded.dim == 3 and recorded.problem == f"<python:{__name__}.shifted>"
    assert dict(recorded.problem_params) == {"lower": -1.0, "upper": [1.0, 2.0, 3.0]}
    assert result.best > -0.1  # seeds 0-9: -0.022 at worst
    evolve("island-00", tmp_path / "named", small_config(generations=2), **QUIET)
    with pytest.raises(ManifestConflict, match="problem"):
        evolve("island-01", tmp_path / "named", small_config(generations=2), problem=sphere, bounds=(-1, 1), **QUIET)
    assert not (RunDir(tmp_path / "named").island("island-01").dir).exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(problem=lambda x: x, bounds=(-1, 1)), r"must return shape \[2\]"),
    (dict(problem=lambda x: 1 / 0, bounds=(-1, 1)), "ZeroDivisionError"),
    (dict(problem=sphere), r"needs bounds=\(lower, upper\)"),
    (dict(problem=sphere, bounds=(1, -1)), "must be below"),
    (dict(problem=42, bounds=(-1, 1)), "must be a Problem or a fitness function"),
    (dict(problem=make_problem("sphere", 4), bounds=(-1, 1)), "a Problem carries its own"),
])
def test_a_bad_python_problem_writes_nothing(tmp_path, kwargs, message):
    root = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        evolve("island-00", root, CFG, **kwargs, **QUIET)
    assert _empty(root)
    evolve("island-00", root, CFG, problem=sphere, bounds=(-1, 1), **QUIET)  # the corrected call


def test_the_command_line_and_the_launcher_refuse_a_python_problem(tmp_path):
    from launcher.errors import PlanError
    from launcher.session import LaunchRequest, launch

    evolve("island-00", tmp_path, CFG, problem=sphere, bounds=(-1, 1), **QUIET)
    res = CliRunner().invoke(main, ["evolve", "island-01", "--run-dir", str(tmp_path)])
    assert res.exit_code == 2 and "error: this run's problem <python:" in res.output
    assert "Traceback" not in res.output
    with pytest.raises(PlanError, match="import path"):
        launch(LaunchRequest(tmp_path, islands=1))
    with pytest.raises(ConfigError, match=r"import path 'module:factory'.*islands.runs.evolve"):
        RunConfig(problem=sphere)  # what `launch(LaunchRequest(root, RunConfig(problem=fn)))` meets first
    assert sorted(RunDir(tmp_path).island_ids()) == ["island-00"]


def test_a_different_run_config_on_an_existing_run_is_a_conflict(tmp_path):
    evolve("island-00", tmp_path, small_config(generations=3), **QUIET)
    with pytest.raises(ManifestConflict, match="population"):
        evolve("island-00", tmp_path, small_config(generations=3, population=40), **QUIET)
    with pytest.raises(ManifestConflict, match="mutation-sigma"):
        cfg = small_config(generations=3)
        import dataclasses

        evolve("island-00", tmp_path, dataclasses.replace(cfg, ga=dataclasses.replace(cfg.ga, mutation_sigma=0.5)), **QUIET)
    assert evolve("island-00", tmp_path, small_config(generations=3), **QUIET).resumed_from == 3
    with pytest.raises(ManifestConflict, match="problem"):  # named without a config: still checked
        evolve("island-00", tmp_path, problem="sphere", **QUIET)


def test_evolve_only_islands_keep_the_better_champion(tmp_path):
    """Each island rewrites champion.isld at its end, never with a worse one than it holds."""
    evolve("island-00", tmp_path, small_config(generations=20), **QUIET)
    first = RunDir(tmp_path).read_champion()
    assert first["island"] == "island-00"
    evolve("island-01", tmp_path, small_config(generations=20), **QUIET)
    second = RunDir(tmp_path).read_champion()
    statuses = [RunDir(tmp_path).island(i).read_status() for i in ("island-00", "island-01")]
    assert second["fitness"] == max(s["best_ever"] for s in statuses)
    assert second["fitness"] >= first["fitness"]


def test_the_evolve_command_writes_the_champion_file(tmp_path):
    res = CliRunner().invoke(main, ["evolve", "island-00", "--run-dir", str(tmp_path), "--generations", "3",
                                    "--dim", "4", "--population", "10", "--quiet"])
    assert res.exit_code == 0, res.output
    champ = RunDir(tmp_path).read_champion()
    status = RunDir(tmp_path).island("island-00").read_status()
    assert champ["island"] == "island-00" and champ["fitness"] == status["best_ever"]
    assert champ["run_id"] == open_run(tmp_path).run_id and champ["dim"] == 4


def test_launch_from_python_meets_the_same_conflicts(tmp_path):
    """A LaunchRequest with a config counts it as given in full; without one it resumes."""
    from launcher.session import LaunchRequest, launch

    evolve("island-00", tmp_path, small_config(generations=2), **QUIET)
    with pytest.raises(ManifestConflict, match="population"):
        launch(LaunchRequest(tmp_path, small_config(generations=2, population=40), islands=1))
    assert LaunchRequest(tmp_path).explicit == {} and LaunchRequest(tmp_path).config == RunConfig()
    assert LaunchRequest(tmp_path, small_config(), explicit={"seed": 3}).explicit == {"seed": 3}
    assert RunDir(tmp_path).island_ids() == ["island-00"]  # nothing started
