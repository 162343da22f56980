"""The one factory of hand-made records for tests: migrant batches, island statuses, small runs.

Each test passes only what it is about; everything else takes a plain default here (a
batch's fitness 0, its migrants born on its source island at generation 0; a status of a
finished island of run "r1"). Children started by tests import it too (tests/support is on
their PYTHONPATH).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from islands.config import RunConfig
from islands.status.record import IslandStatus
from islands.stopping import StopFlag
from migration_pool import batches


QUIET = dict(log=lambda _m: None)  # `evolve(..., **QUIET)`: no progress lines in the test output


class StopAfter(StopFlag):
    """A stop request that turns on after the loop has asked `checks` times (a few generations)."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def __bool__(self) -> bool:
        self.left -= 1
        return self.left < 0


def small_config(**changes: Any) -> RunConfig:
    """A run that evolves in well under a second: 30 x Rastrigin-8 for 60 generations.

    Checkpoints by generations alone (`checkpoint_seconds=0`): resume tests need them every
    `checkpoint_every` generations, not once 30 s have passed."""
    base: dict[str, Any] = dict(problem="rastrigin", dim=8, population=30, generations=60, seed=3,
                                checkpoint_every=10, checkpoint_seconds=0)
    return RunConfig(**{**base, **changes})


def grown_neat_run(root: Any) -> Any:
    """A finished NEAT XOR island in `root` whose champion has grown hidden nodes (target 5 is
    above XOR's optimum 4, so all 30 generations run); for export and drawing tests."""
    from islands.runs import evolve

    cfg = RunConfig(problem="xor", algorithm="neat", population=50, generations=30, seed=1, target=5.0,
                    checkpoint_seconds=0)
    evolve("island-00", root, cfg, **QUIET)
    return root


def migrant_batch(genomes: Any, *, run_id: str = "run-a", source: str = "island-01", generation: int = 10,
                  created: float = 1.7e9, genome_kind: str = "vector", fitness: Any = None,
                  origin: Sequence[str] | None = None, birth: Any = None, lineage: Any = None) -> batches.MigrantBatch:
    """A batch of `genomes` (an array of k rows, or k per-genome maps for NEAT).

    `genomes` may be anything at all (a test of what the format refuses); it then counts as 0.
    """
    try:
        k = len(genomes)
    except TypeError:
        k = 0
    return batches.MigrantBatch(
        run_id=run_id, source=source, generation=generation, created=created, genome_kind=genome_kind,
        genomes=genomes,
        fitness=np.zeros(k) if fitness is None else fitness,
        origin=[source] * k if origin is None else origin,
        birth=np.zeros(k, np.int64) if birth is None else birth,
        lineage=np.zeros(k, np.int64) if lineage is None else lineage,
    )


def status_body(island: str = "island-00", **changes: Any) -> dict[str, Any]:
    """The map an island writes into status.isld (through `IslandStatus.to_body`), with `changes`."""
    base = IslandStatus(island=island, run_id="r1", state="finished", reason="generations", generation=10,
                        generations=10, best_ever_generation=7, evaluations=100, overrides={"mutation_sigma": 0.1})
    return {**base.to_body(), **changes}


def status(island: str = "island-00", **changes: Any) -> IslandStatus:
    """An `IslandStatus` as a reader decodes it from `status_body(island, **changes)`."""
    return IslandStatus.from_body(status_body(island, **changes))


def timeless_history(root, island: str = "island-00", drop: tuple[str, ...] = ("time",)) -> list[dict]:
    """An island's history lines without wall-clock fields (a migration event's duration too),
    for comparing a resumed run with an uninterrupted one."""
    from migration_pool.rundir import RunDir

    rows = [{k: v for k, v in r.items() if k not in drop} for r in RunDir(root).island(island).read_history()]
    for r in rows:
        if "migration" in r:
            r["migration"] = {k: v for k, v in r["migration"].items() if k != "seconds"}
    return rows

