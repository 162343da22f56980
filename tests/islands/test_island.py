"""The island loop in-process: reproducibility, stopping rules, stop and resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from islands.config import GAConfig, island_seed
from islands.island import StopFlag
from islands.runs import evolve
from migration_pool.island_files import IslandFiles
from migration_pool.rundir import RunDir
from support.factories import QUIET, timeless_history
from support.factories import small_config as small


history = timeless_history


def final_population(root, island="island-00") -> np.ndarray:
    record, errors = RunDir(root).island(island).load_checkpoint()
    assert not errors and record is not None
    return np.asarray(record["state"]["genomes"])


def test_a_run_records_every_generation_and_finishes(tmp_path):
    result = evolve("island-00", tmp_path, small(), **QUIET)
    assert (result.reason, result.generation, result.resumed_from) == ("generations", 60, None)
    assert result.evaluations == 30 * 61
    rows = history(tmp_path)
    assert [r["generation"] for r in rows] == list(range(61))
    assert all(r["best_ever"] >= prev["best_ever"] for prev, r in zip(rows, rows[1:]))
    status = RunDir(tmp_path).island("island-00").read_status()
    assert status["state"] == "finished" and status["generation"] == 60
    assert status["best_ever"] == pytest.approx(result.best) == pytest.approx(rows[-1]["best_ever"])


def test_same_seed_same_history_and_other_islands_draw_other_streams(tmp_path):
    evolve("island-00", tmp_path / "a", small(), **QUIET)
    evolve("island-00", tmp_path / "b", small(), **QUIET)
    evolve("island-01", tmp_path / "a", small(), **QUIET)
    assert history(tmp_path / "a") == history(tmp_path / "b")
    assert history(tmp_path / "a", "island-01") != history(tmp_path / "a")
    assert island_seed(3, "island-00") != island_seed(3, "island-01")


def test_target_and_stagnation_stop_early(tmp_path):
    hit = evolve("island-00", tmp_path / "t", small(target=-80.0, generations=500), **QUIET)
    assert hit.reason == "target" and hit.best >= -80.0 and hit.generation < 500  # seeds 0-9: 1-3
    stuck = evolve("island-00", tmp_path / "s",
                   small(stagnation_limit=5, generations=5000, ga=GAConfig(mutation_rate=0.0, crossover_rate=0.0)),
                   **QUIET)
    assert stuck.reason == "stagnation" and stuck.generation < 5000


def test_the_problem_solved_threshold_is_the_default_target(tmp_path):
    # Seeds 0-9 reach it at generations 24-88.
    result = evolve("island-00", tmp_path, small(problem="sphere", dim=2, generations=130,
                                                ga=GAConfig(mutation_rate=0.5, mutation_sigma=0.01)), **QUIET)
    assert result.reason == "target" and result.best >= -1e-8


def test_stop_flag_checkpoints_and_the_next_call_resumes_to_the_same_end(tmp_path):
    stop = StopFlag()
    seen = []

    def on_status(status):
        seen.append(status.generation)
        if status.generation >= 23:
            stop.requested = True

    first = evolve("island-00", tmp_path / "x", small(), stop=stop, on_status=on_status, **QUIET)
    assert first.reason == "stopped" and 23 <= first.generation < 60
    assert RunDir(tmp_path / "x").island("island-00").read_status()["state"] == "stopped"
    second = evolve("island-00", tmp_path / "x", small(), **QUIET)
    assert second.resumed_from == first.generation and second.generation == 60
    evolve("island-00", tmp_path / "y", small(), **QUIET)
    assert np.array_equal(final_population(tmp_path / "x"), final_population(tmp_path / "y"))
    assert history(tmp_path / "x") == history(tmp_path / "y")


def test_resume_without_the_generator_state_diverges_negative_control(tmp_path):
    """Resume's negative control (docs/DESIGN.md, "Crash-safe"): the generator state in the checkpoint is what makes resume exact."""
    stop = StopFlag()
    evolve("island-00", tmp_path / "x", small(), stop=stop,
           on_status=lambda s: setattr(stop, "requested", s.generation >= 20), **QUIET)
    rundir = RunDir(tmp_path / "x")
    record, _ = rundir.island("island-00").load_checkpoint()
    fresh = torch.Generator()
    fresh.manual_seed(island_seed(3, "island-00"))
    record["generator"] = fresh.get_state().numpy()
    rundir.island("island-00").save_checkpoint(record["generation"], record)
    evolve("island-00", tmp_path / "x", small(), **QUIET)
    evolve("island-00", tmp_path / "y", small(), **QUIET)
    assert not np.array_equal(final_population(tmp_path / "x"), final_population(tmp_path / "y"))


def test_stagnation_counts_generations_since_the_last_improvement(tmp_path):
    """The counter restarts at every improvement: the run stops exactly `limit` generations
    after its last improvement, although it had many more non-improving generations before."""
    limit = 3
    result = evolve("island-00", tmp_path, small(stagnation_limit=limit, generations=5000), **QUIET)
    rows = history(tmp_path)
    improved = [b["generation"] for a, b in zip(rows, rows[1:]) if b["best_ever"] > a["best_ever"]]
    flat = sum(1 for a, b in zip(rows, rows[1:]) if b["best_ever"] == a["best_ever"])
    assert result.reason == "stagnation" and result.generation == improved[-1] + limit
    assert flat - limit > 2 * limit  # a counter that never restarted would have stopped far sooner


def test_a_resumed_island_does_not_repeat_the_migration_of_its_checkpoint(tmp_path):
    """Resume equivalence with migration: the periodic checkpoint at 40 follows generation
    40's migration, so an island resumed from it must not migrate at 40 again."""
    from islands.config import MigrationConfig

    config = small(migration=MigrationConfig(every=10))
    evolve("island-00", tmp_path / "x", config, **QUIET)
    rundir = RunDir(tmp_path / "x")
    checkpoints = rundir.island("island-00").checkpoint_paths()
    assert [p.name for p in checkpoints][-1] == "checkpoint-00000040.isld"
    for newer in checkpoints[:-1]:  # as if killed just after writing the checkpoint at 40
        newer.unlink()
    resumed = evolve("island-00", tmp_path / "x", config, **QUIET)
    assert resumed.resumed_from == 40
    evolve("island-00", tmp_path / "y", config, **QUIET)
    assert np.array_equal(final_population(tmp_path / "x"), final_population(tmp_path / "y"))
    # The line after a migration carries its summary, which the checkpoint does not hold:
    # line 41 of the resumed run lacks it; everything else is identical.
    x, y = history(tmp_path / "x"), history(tmp_path / "y")
    assert "migration" in y[41] and "migration" not in x[41]
    y[41].pop("migration")
    assert x == y
    counters = [{k: v for k, v in RunDir(tmp_path / r).island("island-00").read_status()["migration"].items()
                 if k != "micros"} for r in ("x", "y")]
    assert counters[0] == counters[1] and counters[0]["last_generation"] == 50


def test_periodic_checkpoints_wait_for_checkpoint_seconds_too_and_never_change_the_trajectory(tmp_path):
    by_generations = evolve("island-00", tmp_path / "g", small(checkpoint_seconds=0), **QUIET)
    by_time = evolve("island-00", tmp_path / "t", small(checkpoint_seconds=1e6), **QUIET)
    gens = lambda root: sorted(int(p.stem.split("-")[1]) for p in RunDir(root).island("island-00").checkpoint_paths())
    assert gens(tmp_path / "g")[-2:] == [50, 60]  # every 10 generations, the newest few kept
    assert gens(tmp_path / "t") == [60]  # 1e6 s never pass: only the checkpoint at the end
    assert by_time.best == by_generations.best
    assert history(tmp_path / "t") == history(tmp_path / "g")
    assert np.array_equal(final_population(tmp_path / "t"), final_population(tmp_path / "g"))


def test_every_history_line_up_to_a_checkpoint_is_on_disk_before_the_checkpoint(tmp_path, monkeypatch):
    """A resume cuts the history back to the checkpoint and replays after it: lines still
    buffered when the checkpoint was written would leave a gap after a crash."""
    save = IslandFiles.save_checkpoint
    seen = []

    def checked(self, generation, body):
        on_disk = [r["generation"] for r in self.read_history()]
        seen.append((generation, on_disk[-1] if on_disk else None))
        return save(self, generation, body)

    monkeypatch.setattr(IslandFiles, "save_checkpoint", checked)
    evolve("island-00", tmp_path, small(), **QUIET)
    assert [g for g, _ in seen] == [10, 20, 30, 40, 50, 60]
    assert all(last == g for g, last in seen), seen
