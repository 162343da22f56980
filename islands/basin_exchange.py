"""An island's side of the shared basins: publish its own, hand the other islands' to its algorithm.

An algorithm that keeps basins (`Algorithm.basins`: CMA-ES's restarts) has them written to the
island's `basins.isld` whenever they changed, at the island's checkpoints (a point where it
already writes) and at its end; at the same points, at most every READ_S seconds, the records
of up to READ_AT_ONCE other islands (in turn, so a run of thousands of islands costs each
island a bounded number of reads) are read through the run directory, validated
(`islands.basins.from_body`), merged into the KNOWN best basins read so far and handed to the
algorithm (`Algorithm.with_basins`) before the checkpoint is written, so a resumed island
restarts away from the same basins. Isolated islands (`--migrate-every 0`, `--topology none`)
and synchronous runs, which must stay a function of their seed, only publish (for the optima
report): what another island has written by a given moment is timing. Algorithms without basins
cost nothing here. A record that cannot be written is one warning: the run goes on without sharing.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from islands import basins as records
from migration_pool.rundir import RunDir

READ_S = 5.0  # the other islands' records are read at most this often
READ_AT_ONCE = 32  # and at most this many of them at a time, in turn (a run of thousands of islands)
KNOWN = 64  # the best basins of the others an island keeps between reads


class BasinExchange:
    """Shares one island's basins with the run's other islands."""

    def __init__(self, island: str, rundir: RunDir, run_id: str, dim: int, log: Callable[[str], None],
                 read: bool = True) -> None:
        self.island, self.rundir, self.run_id, self.dim, self.log = island, rundir, run_id, dim, log
        self.read = read  # False: publish only (isolated islands, or a sync run that must stay a function of its seed)
        self.written: np.ndarray | None = None
        self.read_at = -float("inf")
        self.failed = False
        self.turn = 0  # where the next read starts in the list of the other islands
        self.known = np.zeros((0, dim + 2))  # the best KNOWN basins read so far

    def exchange(self, algo: Any, state: Any) -> Any:
        """Publish `state`'s basins if they changed; tell it the others' (at most every READ_S)."""
        if self.publish(algo, state) is None or not self.read or time.monotonic() - self.read_at < READ_S:
            return state
        self.read_at = time.monotonic()
        bodies, self.turn = self.rundir.read_in_turn(self.island, self.turn, READ_AT_ONCE, lambda f: f.read_basins())
        found = [self.known, *(records.from_body(body, self.dim, self.run_id) for _, body in bodies)]
        rows = np.unique(np.concatenate(found), axis=0)  # a record read again counts once
        self.known = records.merged([rows], self.dim)[:KNOWN]
        return algo.with_basins(state, self.known)

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
