"""An island's side of the shared basins: publish its own, hand the other islands' to its algorithm.

An algorithm that keeps basins (`Algorithm.basins`: CMA-ES's restarts) has them written to the
island's `basins.isld` whenever they changed, at the island's checkpoints (a point where it
already writes) and at its end; at the same points, at most every READ_S seconds, the other
islands' records are read through the run directory, validated (`islands.basins.from_body`)
and handed to the algorithm (`Algorithm.with_basins`) before the checkpoint is written, so a
resumed island restarts away from the same basins. Algorithms without basins cost nothing
here. A record that cannot be written is one warning: the run goes on without sharing.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from islands import basins as records
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir

READ_S = 5.0  # the other islands' records are read at most this often


class BasinExchange:
    """Shares one island's basins with the run's other islands."""

    def __init__(self, island: str, rundir: RunDir, run_id: str, dim: int, log: Callable[[str], None]) -> None:
        self.island, self.rundir, self.run_id, self.dim, self.log = island, rundir, run_id, dim, log
        self.written: np.ndarray | None = None
        self.read_at = -float("inf")
        self.failed = False

    def exchange(self, algo: Any, state: Any) -> Any:
        """Publish `state`'s basins if they changed; tell it the others' (at most every READ_S)."""
        if self.publish(algo, state) is None or time.monotonic() - self.read_at < READ_S:
            return state
        self.read_at = time.monotonic()
        found = []
        for other in self.rundir.island_ids():
            if other == self.island:
                continue
            try:
                body = self.rundir.island(other).read_basins()
            except (FormatError, OSError):
                continue
            found.append(records.from_body(body, self.dim, self.run_id))
        return algo.with_basins(state, records.merged(found, self.dim))

    def publish(self, algo: Any, state: Any) -> np.ndarray | None:
        """Write the island's basins when they changed; None when its algorithm keeps none."""
        own = algo.basins(state)
        if own is None or own.shape[1] != self.dim + 2:
            return None
        if self.written is None or not np.array_equal(own, self.written):
            try:
                self.rundir.island(self.island).write_basins(records.to_body(self.island, self.run_id, own))
                self.written = own
            except OSError as e:
                if not self.failed:
                    self.log(f"warning: {self.island}: cannot share its basins ({e}); it goes on without")
                self.failed = True
        return own
