"""An island's side of observation normalisation (gym:* `obs_norm`, islands.problems.obs_norm).

The task holds the state (its own statistics, the others', the frozen transform); this
recorder is the shell around it, so the island loop only says where:

- before every checkpoint (and at the end) the whole state goes into the checkpoint
  (`Progress.obs_norm`), so a resumed island normalises exactly as it would have;
- at the same points, and after each migration event (checkpoints may be minutes apart: the
  islands would normalise apart until then; measured, no exchange had happened before most
  runs' champions were found), the island's OWN statistics are written to its `obs_stats.isld`
  when they grew, and, in "run" mode where migration is asynchronous and connected (as for
  shared basins: a synchronous or isolated run must stay a function of its seed), the records
  of up to READ_AT_ONCE other islands are read in turn, at most every READ_S seconds, validated
  (`ObsStats.from_body`: another process's file is untrusted) and kept, the latest per island;
  they take effect at the island's next generation;
- `best(progress)` records the transform the island's new best was evaluated with
  (`Progress.best_obs_norm`, copied to its status and so to the champion).

Tasks without normalisation cost one attribute test per checkpoint.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from islands import checkpoint as ckpt
from islands.events import Recorder
from islands.problems.obs_norm import ObsNorm, ObsStats
from migration_pool.rundir import RunDir

READ_S = 5.0  # the other islands' statistics are read at most this often
READ_AT_ONCE = 32  # and at most this many of them at a time, in turn


def task_norm(problem: Any) -> ObsNorm | None:
    """The problem's normalisation state, None where its observations are not normalised."""
    return getattr(getattr(problem, "task", None), "obs_norm", None)


class ObsExchange(Recorder):
    """Checkpoints, publishes and shares one island's observation statistics."""

    def __init__(self, island: str, rundir: RunDir, run_id: str, problem: Any, log: Callable[[str], None],
                 read: bool) -> None:
        self.island, self.rundir, self.run_id, self.log = island, rundir, run_id, log
        self.norm = task_norm(problem)
        self.read = read
        self.published = -1.0  # the own count last written
        self.read_at = -float("inf")
        self.turn = 0
        self.failed = False

    def rebind(self, problem: Any) -> None:
        """A rebuilt problem (a tuned island's new problem settings) takes the state over."""
        norm = task_norm(problem)
        if norm is not None and self.norm is not None and norm is not self.norm and norm.width == self.norm.width:
            norm.restore(self.norm.to_body())
        self.norm = norm

    def restore(self, progress: ckpt.Progress) -> None:
        """Take up a checkpoint's state; ValueError when it does not fit the task."""
        if self.norm is not None and progress.obs_norm:
            self.norm.restore(progress.obs_norm)

    def best(self, progress: ckpt.Progress) -> None:
        """best_ever_genome has just changed: record the transform it was evaluated with."""
        if self.norm is not None:
            progress.best_obs_norm = self.norm.frozen_body()

    # -- recorder events ------------------------------------------------------------------
    def migration(self, event: Any) -> None:
        """Share between checkpoints, at the pace of reads (READ_S)."""
        if self.norm is not None and time.monotonic() - self.read_at >= READ_S:
            self._share()

    def checkpoint(self, state: Any, progress: ckpt.Progress) -> None:
        if self.norm is None:
            return
        if time.monotonic() - self.read_at >= READ_S:
            self._share()
        else:
            self._publish()  # a checkpoint always leaves the island's latest statistics on disk
        progress.obs_norm = self.norm.to_body()

    def end(self, state: Any, progress: ckpt.Progress, phase: str, reason: str) -> None:
        if self.norm is not None:
            self._publish()
            progress.obs_norm = self.norm.to_body()

    # -- files --------------------------------------------------------------------------
    def _publish(self) -> None:
        own = self.norm.own  # type: ignore[union-attr]
        if own.count == self.published or self.failed:
            return
        try:
            self.rundir.island(self.island).write_obs_stats({"run_id": self.run_id, **own.to_body()})
            self.published = own.count
        except OSError as e:
            self.failed = True
            self.log(f"warning: {self.island}: cannot write its observation statistics ({e}); "
                     "the other islands normalise without them")

    def _share(self) -> None:
        """Publish the own statistics; in "run" mode where others are read, read some of theirs."""
        norm = self.norm
        assert norm is not None
        self.read_at = time.monotonic()
        self._publish()
        if not (self.read and norm.mode == "run"):
            return
        bodies, self.turn = self.rundir.read_in_turn(self.island, self.turn, READ_AT_ONCE, lambda f: f.read_obs_stats())
        for other, body in bodies:
            if not isinstance(body, dict) or body.get("run_id") != self.run_id:
                continue  # none yet, or a leftover of another run
            stats = ObsStats.from_body(body, norm.width)
            if stats is not None:
                norm.set_other(other, stats)
