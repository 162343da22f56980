"""What an island publishes: the shortcuts of the migration step (a batch finite throughout
cleared at once, fitness compared first to tell a changed batch) decide as the full checks do."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from islands.algorithms import make_algorithm
from islands.checkpoint import Progress
from islands.config import MigrationConfig, RunConfig
from islands.island import IslandSpec
from islands.migration import PoolMigrator
from islands.population import Migrants
from islands.problems.registry import make_problem
from migration_pool.pool import Pool
from migration_pool.rundir import RunDir

RUN, DIM = "glue", 3


def migrator(tmp_path: Path) -> tuple[PoolMigrator, Pool]:
    cfg = RunConfig(problem="rastrigin", dim=DIM, population=10,
                    migration=MigrationConfig(every=1, migrants=3, topology="ring"))
    ids = ("island-00", "island-01")
    rundir = RunDir(tmp_path)
    rundir.ensure("island-00")
    mig = PoolMigrator(IslandSpec(island="island-00", run_dir=tmp_path, run_id=RUN, config=cfg, planned=ids),
                       rundir, lambda _m: None)
    algo = make_algorithm(cfg, make_problem("rastrigin", DIM))
    state = algo.evaluate(algo.init(10, 0, torch.Generator().manual_seed(0)))
    return mig, mig._pool(algo, policies_select(algo, state))


def policies_select(algo, state) -> Migrants:
    from islands import policies
    return policies.emigrate(algo, state, 3, "best", torch.Generator())


def batch(genomes: np.ndarray, fitness: np.ndarray) -> Migrants:
    n = len(fitness)
    return Migrants(genomes, fitness, np.zeros(n, np.int64), np.zeros(n, np.int64), np.arange(n, dtype=np.int64))


def published(tmp_path: Path) -> list:
    return Pool(RunDir(tmp_path), RUN, gene_shape=(DIM,)).read_new(["island-00"])[0]


def test_finite_genes_whose_sum_overflows_are_published(tmp_path):
    mig, pool = migrator(tmp_path)
    genomes = np.full((2, DIM), 1.5e308)  # finite, though their sum is not
    assert mig._publish(pool, batch(genomes, np.array([-1.0, -2.0])), Progress()) == 2
    got = published(tmp_path)
    assert len(got) == 1 and (got[0].genomes == 1.5e308).all()


def test_an_inf_gene_or_fitness_holds_back_its_row_only(tmp_path):
    mig, pool = migrator(tmp_path)
    genomes = np.zeros((3, DIM))
    genomes[0, 1] = -np.inf
    assert mig._publish(pool, batch(genomes, np.array([-1.0, -2.0, np.inf])), Progress()) == 1
    assert published(tmp_path)[0].lineage.tolist() == [1]


def test_the_same_fitness_with_other_genomes_is_a_new_batch(tmp_path):
    mig, pool = migrator(tmp_path)
    fitness = np.array([-1.0, -2.0])
    progress = Progress()
    assert mig._publish(pool, batch(np.zeros((2, DIM)), fitness.copy()), progress) == 2
    progress.generation = 1
    assert mig._publish(pool, batch(np.zeros((2, DIM)), fitness.copy()), progress) == 0  # unchanged
    progress.generation = 2
    assert mig._publish(pool, batch(np.ones((2, DIM)), fitness.copy()), progress) == 2
    assert published(tmp_path)[0].generation == 2
    # -0.0 is 0.0: a batch equal as numbers is the same batch, as before.
    progress.generation = 3
    assert mig._publish(pool, batch(np.ones((2, DIM)) * 1.0, np.array([-1.0, -2.0]) + 0.0), progress) == 0
