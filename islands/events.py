"""What the island loop tells its recorders: the events of one island's run.

The loop (`islands.island`) evolves and decides; it does not write records itself. At each
event it calls its recorders (`islands.recorders`: history, heartbeat, checkpointer, target
marker), which observe and write. A `Recorder` overrides the events it cares about; the rest
are no-ops. `Recorders` calls, for each event, only the recorders that override it, in the
order given, so the order of writes that crash safety relies on is the order of the list
(history lines durable before the checkpoint that counts them; the status after both).

Once, before the first generation of a process that resumes from a checkpoint:

    resume(generation, migrated)        the island goes on from `generation`: what it recorded
                                        after it is replayed, and that generation's migration
                                        too unless `migrated` (a log that appends cuts it back)

Events, in the order a generation meets them:

    migration(event)                    a migration event ran (None: nothing was read)
    checkpoint(state, progress)         a periodic checkpoint is due, after the event
    generation(state, progress, stats)  a generation (or the first population) was evaluated
                                        and counted; `stats` is the algorithm's `Stats` of it
    target(progress)                    the run's target is reached
    end(state, progress, phase, reason) the loop ended: phase "finished" or "stopped"
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from islands.status.record import MigrationEvent

if TYPE_CHECKING:  # annotations only: this module stays torch-free for `islands.loggers`, which the launcher reads
    from islands.checkpoint import Progress

EVENTS = ("resume", "migration", "checkpoint", "generation", "target", "end")


class Recorder:
    """An observer of the island loop; each method is one event (see the module docstring)."""

    def resume(self, generation: int, migrated: bool) -> None:
        pass

    def migration(self, event: MigrationEvent | None) -> None:
        pass

    def checkpoint(self, state: Any, progress: Progress) -> None:
        pass

    def generation(self, state: Any, progress: Progress, stats: Any) -> None:
        pass

    def target(self, progress: Progress) -> None:
        pass

    def end(self, state: Any, progress: Progress, phase: str, reason: str) -> None:
        pass


class Recorders:
    """Recorders called in order; per event only those that override it (a generation costs
    one call per interested recorder, nothing for the others)."""

    def __init__(self, recorders: Sequence[Recorder]) -> None:
        self.recorders = tuple(recorders)
        self._on: dict[str, tuple[Callable[..., None], ...]] = {
            name: tuple(getattr(r, name) for r in self.recorders
                        if getattr(type(r), name) is not getattr(Recorder, name))
            for name in EVENTS}

    def resume(self, generation: int, migrated: bool) -> None:
        for call in self._on["resume"]:
            call(generation, migrated)

    def migration(self, event: MigrationEvent | None) -> None:
        for call in self._on["migration"]:
            call(event)

    def checkpoint(self, state: Any, progress: Progress) -> None:
        for call in self._on["checkpoint"]:
            call(state, progress)

    def generation(self, state: Any, progress: Progress, stats: Any) -> None:
        for call in self._on["generation"]:
            call(state, progress, stats)

    def target(self, progress: Progress) -> None:
        for call in self._on["target"]:
            call(progress)

    def end(self, state: Any, progress: Progress, phase: str, reason: str) -> None:
        for call in self._on["end"]:
            call(state, progress, phase, reason)
