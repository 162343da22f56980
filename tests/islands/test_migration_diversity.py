"""Migration that does not take over: probability, delayed start, near-duplicate rejection, defaults."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from islands import policies
from islands.algorithms import Migrants, make_algorithm
from islands.cli import main as cli_main
from islands.config import MigrationConfig, RunConfig, island_seed
from islands.errors import ConfigError
from islands.island import StopFlag
from islands.problems import make_problem
from islands.runs import evolve
from migration_pool.rundir import RunDir
from support.factories import QUIET
from support.factories import small_config as small

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for scripts/
from scripts.quality_runners import effective_origins, run_archipelago  # noqa: E402


@pytest.mark.parametrize("bad", [
    dict(probability=0.0), dict(probability=1.5), dict(probability=math.nan), dict(probability=-0.1),
    dict(start=-1), dict(min_distance=-0.01), dict(min_distance=math.inf), dict(min_distance=math.nan),
])
def test_bad_migration_settings_are_refused_quoting_the_value(bad):
    with pytest.raises(ConfigError) as e:
        MigrationConfig(**bad)
    assert str(next(iter(bad.values()))) in str(e.value)


@pytest.mark.parametrize("args", [
    ["--migration-probability", "0"], ["--migration-probability", "1.01"], ["--migration-start", "-3"],
    ["--migration-min-distance", "-1"], ["--migration-min-distance", "inf"],
])
def test_bad_migration_options_exit_2_and_write_nothing(tmp_path, args):
    result = CliRunner().invoke(cli_main, ["evolve", "--run-dir", str(tmp_path / "run"), *args])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "run").exists()


def test_the_defaults_migrate_and_the_help_shows_them():
    d = MigrationConfig()
    assert d.every > 0
    result = CliRunner().invoke(cli_main, ["evolve", "--help"])
    text = " ".join(result.output.split())
    for flag in ("--migration-probability", "--migration-start", "--migration-min-distance"):
        assert flag in text
    assert f"[default: {d.every}]" in text and f"[default: {d.replacement}]" in text


def test_due_is_every_from_start_and_never_at_generation_zero():
    m = MigrationConfig(every=5, start=12)
    assert [g for g in range(40) if m.due(g, 7)] == [15, 20, 25, 30, 35]
    assert not any(MigrationConfig(every=0).due(g, 7) for g in range(40))
    assert [g for g in range(12) if MigrationConfig(every=5).due(g, 7)] == [5, 10]


def test_probability_draws_are_reproducible_per_island_and_near_the_probability():
    m = MigrationConfig(every=1, probability=0.3)
    a = [m.due(g, island_seed(1, "island-00")) for g in range(1, 2001)]
    assert a == [m.due(g, island_seed(1, "island-00")) for g in range(1, 2001)]
    b = [m.due(g, island_seed(1, "island-01")) for g in range(1, 2001)]
    assert a != b
    assert 0.25 < np.mean(a) < 0.35


def migration_generations(root, island="island-00") -> list[int]:
    return [h["generation"] for h in RunDir(root).island(island).read_history() if "migration" in h]


def test_delayed_start_no_migration_event_before_it(tmp_path):
    evolve("island-00", tmp_path, small(migration=MigrationConfig(every=5, start=23)), **QUIET)
    gens = migration_generations(tmp_path)
    # The event at generation g is reported on the history line of g + 1.
    assert gens == [26, 31, 36, 41, 46, 51, 56]


def test_a_resumed_island_repeats_the_same_probabilistic_decisions(tmp_path):
    cfg = small(migration=MigrationConfig(every=2, probability=0.5), checkpoint_every=4)
    stop = StopFlag()
    evolve("island-00", tmp_path / "x", cfg, stop=stop,
           on_status=lambda s: setattr(stop, "requested", s.generation >= 21), **QUIET)
    evolve("island-00", tmp_path / "x", cfg, **QUIET)
    evolve("island-00", tmp_path / "y", cfg, **QUIET)
    gens = migration_generations(tmp_path / "y")
    assert gens == migration_generations(tmp_path / "x")
    due = [g + 1 for g in range(2, 60, 2)]
    assert set(gens) < set(due) and len(gens) >= 5  # some due events happened, some did not
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    rx, ry = RunDir(tmp_path / "x").island("island-00").read_history(), RunDir(tmp_path / "y").island("island-00").read_history()
    assert [r.get("best") for r in strip(rx)] == [r.get("best") for r in strip(ry)]


def _ga(min_distance: float):
    cfg = RunConfig(problem="rastrigin", dim=10, population=30, migration=MigrationConfig(min_distance=min_distance))
    algo = make_algorithm(cfg, make_problem("rastrigin", 10, solved_at=None))
    import torch
    gen = torch.Generator()
    gen.manual_seed(5)
    return algo, algo.evaluate(algo.init(30, 0, gen)), gen


def _near(algo, state, offset: float) -> Migrants:
    """Two immigrants: a resident shifted by `offset` of the box width, and the box centre."""
    pop = algo.population(state)
    width = (algo.upper - algo.lower).numpy()
    genomes = np.stack([pop.genomes[0].numpy() + offset * width, np.zeros(10)])
    return Migrants(genomes=genomes, fitness=np.full(2, 1e9), origin=np.array([3, 3]),
                    birth=np.zeros(2, dtype=np.int64), lineage=np.array([3 << 32, (3 << 32) + 1]))


def test_near_duplicates_are_rejected_and_counted(tmp_path):
    algo, state, gen = _ga(0.01)
    _, adopted = policies.immigrate(algo, state, _near(algo, state, 0.001), "worst", gen, min_distance=0.01)
    assert adopted == 1  # the near copy is rejected, the centre is adopted
    assert len(policies.screen(algo.population(state), _near(algo, state, 0.001), min_distance=0.0)) == 2  # 0 turns the rule off
    _, adopted = policies.immigrate(algo, state, _near(algo, state, 0.05), "worst", gen, min_distance=0.01)
    assert adopted == 2  # 0.05 of the width away: not a near-duplicate
    # Through an island: a rejected immigrant is counted in the island's migration counters.
    mig = MigrationConfig(every=5, migrants=3, min_distance=0.5)
    evolve("island-01", tmp_path, small(migration=mig), **QUIET)
    evolve("island-00", tmp_path, small(migration=mig), **QUIET)
    m = RunDir(tmp_path).island("island-00").read_status()["migration"]
    assert m["received"] > 0 and m["rejected"] == m["received"] and m["adopted"] == 0


def test_default_migration_keeps_more_origins_than_the_takeover_policy():
    takeover = MigrationConfig(every=10, migrants=5, emigrants="best", replacement="worst", min_distance=0.0)
    budget = 8 * 100 * 201  # the default run's islands (GA 100 x 200 generations), 8 of them
    figures = {}
    for name, mig in (("default", MigrationConfig()), ("takeover", takeover)):
        runs = [run_archipelago("rastrigin", 10, budget, seed, ["ga"] * 8, mig, population=100, floor=-math.inf)
                for seed in (0, 1)]
        assert all(r.adopted > 0 for r in runs)  # both really migrate
        figures[name] = [effective_origins(r.origins) for r in runs]
    # Measured: default 6.7 and 4.8, takeover 2.6 and 2.5 (of 8).
    assert min(figures["default"]) >= max(figures["takeover"]) + 1.5, figures


def test_the_plan_spells_out_the_effective_migration():
    from launcher.plan import migration_line

    line = migration_line(MigrationConfig(), 20)
    d = MigrationConfig()
    assert line.startswith(f"migration: every {d.every} generations, {d.migrants} migrant(s), topology ring")
    assert f"near-duplicates below {d.min_distance:g} rejected" in line
    assert "probability 0.5" in migration_line(MigrationConfig(probability=0.5), 4)
    assert "from generation 30" in migration_line(MigrationConfig(start=30), 4)
    assert migration_line(MigrationConfig(every=0), 4).startswith("migration: none")
    assert migration_line(MigrationConfig(), 1).startswith("migration: none")
