"""The island's recorders: what observes the loop's events (`islands.events`) and writes.

    HistoryRecorder  one `HistoryLine` per generation, buffered, appended with each status
                     write and durably before each checkpoint; after each append, the
                     history's summary (`islands.status.summary`) the status report reads
    Checkpointer     the checkpoint, when both `checkpoint_every` and `checkpoint_seconds` say so
    Heartbeat        the status file (an `IslandStatus`), at most every STATUS_INTERVAL_S of wall
                     time, on a crowded machine also of STATUS_CPU_S of the island's CPU (but at
                     least every STATUS_MAX_S), and at every checkpoint and end; renews the
                     island's lease; tells `on_status`
    TargetMarker     with `--stop-when first`: the run's target marker, written and looked for
    FitnessCheck     one warning on the island's log the first time a generation has no finite fitness

and, after them, the user's loggers (`islands.loggers.LoggerRecorder`), which write nothing
into the run directory and are detached at their first failure.

The island builds them in that order (`islands.island`), which is the order of the writes
that crash safety relies on: a resume cuts the history back to the checkpoint and replays
from there, so every line up to a checkpoint is on disk before the checkpoint is, and a
status never reports a generation whose lines are not written. Files are written through
`migration_pool.rundir.RunDir` only.
"""
from __future__ import annotations

import math
import os
import resource
import socket
import time
from typing import Any, Callable

import torch

from islands import checkpoint as ckpt
from islands import figures
from islands.events import Recorder
from islands.status import summary as hsummary
from islands.status.reader import sample_records
from islands.status.record import STATUS_FIELDS, HistoryLine, IslandStatus, MigrationEvent
from migration_pool.errors import FormatError
from migration_pool.lease import Claim
from migration_pool.rundir import RunDir

STATUS_INTERVAL_S = 0.5  # status/heartbeat rewrites at most this often (and at every event) ...
# ... and, while the machine is crowded (the island was preempted more often than it blocked
# since the last write), only once the island has used STATUS_CPU_S of CPU since then, or
# STATUS_MAX_S of wall time passed. A write with its history flush costs 1.5-2.6 ms of CPU:
# paced by the wall clock alone, an island with a tenth of a core (20 islands on 2 cores)
# spent 5% of its CPU on them, more the more crowded the machine (scripts/bench_engine.py
# --crowd). An island that waits (a sleeping or external evaluation, a device) is not
# crowded and keeps the wall-clock pace. Liveness needs far less: a status is stale after
# 30 s, a lease after 60 s.
STATUS_CPU_S = 0.2
STATUS_MAX_S = 5.0
MARKER_CHECK_S = 0.5  # with --stop-when first, look for another island's target marker this often
DIVERSITY_EVERY = 10  # every 10th history line carries diversity, foreign share, origins, algorithm figures

# Counters the checkpoint's Progress and the status record share by name: copied field by field.
SHARED = tuple(f for f in ckpt.Progress.__dataclass_fields__ if f in STATUS_FIELDS)


def sampled_figures(algo: Any, state: Any, number: int) -> tuple[float, float, dict[int, int], dict[str, Any]]:
    """The population's diversity, foreign share, origin counts and the algorithm's own figures."""
    pop = algo.population(state)
    return figures.diversity(pop), figures.foreign_share(pop, number), figures.origins(pop), algo.info(state)


class HistoryRecorder(Recorder):
    """history.jsonl: lines buffered per generation, written in one append; then its summary."""

    def __init__(self, rundir: RunDir, island: str, algo: Any, number: int, run_id: str = "") -> None:
        self.rundir, self.island, self.algo, self.number = rundir, island, algo, number
        self.summary = hsummary.HistorySummary(run_id, island)
        self.summary_changed = False
        self.pending: list[HistoryLine] = []
        self.last: HistoryLine | None = None  # the latest line, flushed or not (user loggers get it)
        self.event: MigrationEvent | None = None  # last migration, for the next history line
        self.claim: Claim | None = None  # checked before each append (island.run_island sets it)

    def migration(self, event: MigrationEvent | None) -> None:
        self.event = event

    def generation(self, state: Any, progress: ckpt.Progress, stats: Any) -> None:
        sampled = progress.generation % DIVERSITY_EVERY == 0
        diversity, foreign, origins, info = sampled_figures(self.algo, state, self.number) if sampled else (None, None, {}, {})
        self.last = HistoryLine(
            generation=progress.generation,
            best=_finite(stats.best),
            mean=_finite(stats.mean),
            best_ever=_finite(progress.best_ever),
            evaluations=progress.evaluations,
            time=round(time.time(), 3),
            migration=self.event,
            diversity=round(diversity, 6) if sampled else None,
            foreign=round(foreign, 4) if sampled else None,
            origins=origins,
            algo=info,  # step size, restarts: on sampled lines
        )
        self.pending.append(self.last)
        self.event = None

    def checkpoint(self, state: Any, progress: ckpt.Progress) -> None:
        self.flush(durable=True)  # every line up to the checkpoint on disk before it

    def end(self, state: Any, progress: ckpt.Progress, phase: str, reason: str) -> None:
        self.flush(durable=True)

    def resume(self, generation: int, migrated: bool) -> None:
        """Take the summary up where the history was cut back to (its file, else the history)."""
        files = self.rundir.island(self.island)
        try:
            view = hsummary.from_body(files.read_summary())
        except (FormatError, OSError):
            view = None
        taken = hsummary.resumed(view, self.summary.run_id, self.island, generation)
        if taken is None:  # none, unreadable or not this island's: rebuilt once from the history
            try:
                lines = sample_records(files.history_lines(), 1 << 62, hsummary.DIVERSITY_KEY)
            except (FormatError, OSError):
                lines = []
            taken = hsummary.HistorySummary.from_lines(self.summary.run_id, self.island, lines)
        self.summary, self.summary_changed = taken, False
        files.write_summary(taken.to_body())  # now: the file is never ahead of the cut history

    def flush(self, durable: bool = False) -> None:
        """Append the buffered history lines (one write; fsynced only when `durable`), then
        rewrite the summary if one of them changed it: never a point before its line."""
        files = self.rundir.island(self.island)
        if self.claim is not None and self.pending:
            self.claim.check()  # a copy that lost the island to another appends nothing
        files.append_history([line.to_body() for line in self.pending], durable=durable)
        for line in self.pending:
            self.summary_changed |= self.summary.add(line)
        self.pending = []
        if self.summary_changed:
            files.write_summary(self.summary.to_body(), durable=durable)
            self.summary_changed = False


class Checkpointer(Recorder):
    """The island's checkpoint: its algorithm state, generator and progress counters."""

    def __init__(self, rundir: RunDir, run_id: str, island: str, settings_hash: str, algo: Any,
                 gen: torch.Generator, every: int, seconds: float) -> None:
        self.rundir, self.run_id, self.island, self.hash = rundir, run_id, island, settings_hash
        self.algo, self.gen, self.every, self.seconds = algo, gen, every, seconds
        self.last = time.monotonic()  # a resumed island's checkpoint is as fresh as now
        self.claim: Claim | None = None  # checked before each checkpoint (island.run_island sets it)

    def due(self, generation: int, resumed: int | None) -> bool:
        """A periodic checkpoint at `generation`? At a multiple of `checkpoint_every` once
        `checkpoint_seconds` have passed since the last: an fsync'd checkpoint every few
        generations would cost a fast island more than its evolution."""
        return (generation > 0 and generation % self.every == 0 and generation != resumed
                and time.monotonic() - self.last >= self.seconds)

    def checkpoint(self, state: Any, progress: ckpt.Progress) -> None:
        self.save(state, progress)

    def end(self, state: Any, progress: ckpt.Progress, phase: str, reason: str) -> None:
        self.save(state, progress)

    def save(self, state: Any, progress: ckpt.Progress) -> None:
        if self.claim is not None:
            self.claim.check()  # a copy that lost the island publishes no checkpoint
        body = ckpt.make_record(self.run_id, self.island, self.hash, self.algo.to_record(state), self.gen, progress)
        self.rundir.island(self.island).save_checkpoint(progress.generation, body)
        self.last = time.monotonic()


class Heartbeat(Recorder):
    """status.isld: the island's latest state for other processes, and its lease renewal."""

    def __init__(self, spec: Any, generations: int | None, rundir: RunDir, algo: Any, number: int,
                 target: float | None, history: HistoryRecorder,
                 on_status: Callable[[IslandStatus], None] | None) -> None:
        self.spec, self.generations, self.rundir, self.algo, self.number = spec, generations, rundir, algo, number
        self.target, self.history, self.on_status = target, history, on_status
        self.last = 0.0
        self.usage_last = _usage()  # (CPU seconds, voluntary, involuntary switches) at the last write
        self.beat = 0
        self.started = time.time()
        self.evals_at_start = 0  # set once the island knows where it starts (a resume's count)
        self.claim: Claim | None = None  # its lease is renewed with every status rewrite

    def generation(self, state: Any, progress: ckpt.Progress, stats: Any) -> None:
        waited = time.monotonic() - self.last
        if waited >= STATUS_INTERVAL_S and (waited >= STATUS_MAX_S or not self._crowded_and_early()):
            self.write(state, progress, "running", None)

    def _crowded_and_early(self) -> bool:
        """Preempted more often than it blocked since the last write (waiting for a core, not
        for its evaluation), and less than STATUS_CPU_S of CPU used since then?"""
        cpu, voluntary, preempted = _usage()
        cpu0, voluntary0, preempted0 = self.usage_last
        return preempted - preempted0 > voluntary - voluntary0 and cpu - cpu0 < STATUS_CPU_S

    def checkpoint(self, state: Any, progress: ckpt.Progress) -> None:
        self.write(state, progress, "running", None)

    def end(self, state: Any, progress: ckpt.Progress, phase: str, reason: str) -> None:
        self.write(state, progress, phase, reason)

    def write(self, state: Any, progress: ckpt.Progress, phase: str, reason: str | None) -> None:
        """Flush pending history lines and rewrite the status file (the heartbeat)."""
        diversity, foreign, origins, info = sampled_figures(self.algo, state, self.number)
        self.history.flush()  # a status never reports a generation whose line is not written
        now = time.time()
        elapsed = max(now - self.started, 1e-9)
        stats = figures.stats(self.algo.population(state))
        self.beat += 1
        self.last = time.monotonic()
        status = IslandStatus(
            **IslandStatus.taken(progress, SHARED),
            island=self.spec.island,
            run_id=self.spec.run_id,
            state=phase,
            reason=reason,
            generations=self.generations,
            best=_finite(stats.best),
            mean=_finite(stats.mean),
            best_genome=progress.best_ever_genome,
            evals_per_sec=(progress.evaluations - self.evals_at_start) / elapsed,
            diversity=diversity,
            foreign_share=foreign,
            centroid=figures.centroid(self.algo.population(state)),
            origins=origins,
            overrides={**self.spec.overrides, **progress.best_ever_settings},  # a tuned island: its best's
            device=self.spec.device,
            torch_threads=torch.get_num_threads(),
            pid=os.getpid(),
            host=socket.gethostname(),
            started=self.started,
            heartbeat=now,
            beat=self.beat,
            target=self.target,
            algo=info,
        )
        self.rundir.island(self.spec.island).write_status(status.to_body())
        if self.claim is not None:
            self.claim.refresh()  # at most every lease.REFRESH_S; IslandBusy if another copy took over
        if self.on_status is not None:
            self.on_status(status)
        self.usage_last = _usage()  # after the write: its own blocking I/O is not the evaluation's


class TargetMarker(Recorder):
    """`--stop-when first`: the run's target marker, which tells the other islands to stop.

    A marker counts only when it is this run's record of one of its islands reaching the
    target (`RunDir.target_marker`); any other file there is ignored, counted in `ignored`
    (once per file), and warned about once.
    """

    def __init__(self, rundir: RunDir, run_id: str, island: str, log: Callable[[str], None],
                 target: float | None = None) -> None:
        self.rundir, self.run_id, self.island, self.log = rundir, run_id, island, log
        self.goal = target
        self.checked = float("-inf")  # first check at once, so a resumed island sees it
        self.ignored = 0  # marker files that were not a record of this run reaching the target
        self._bad: tuple[int, int, int] | None = None  # the stamp of the last one, counted once

    def target(self, progress: ckpt.Progress) -> None:
        body = {"island": self.island, "run_id": self.run_id, "generation": progress.generation,
                "evaluations": progress.evaluations, "best_ever": progress.best_ever,
                "target": self.goal, "time": time.time()}
        try:
            if self.rundir.mark_target_reached(body):
                self.log(f"{self.island}: target reached; asking the other islands to stop")
        except OSError as e:  # the others then run to their own ends: wasteful, not wrong
            self.log(f"warning: cannot write the target marker: {e}")

    def elsewhere(self) -> bool:
        """At most every MARKER_CHECK_S (one stat while there is no marker): has another island
        of this run reached the target?"""
        now = time.monotonic()
        if now - self.checked < MARKER_CHECK_S:
            return False
        self.checked = now
        body, why = self.rundir.target_marker(self.run_id, self.goal)
        if why is not None:
            self._ignore(why)
        return body is not None

    def _ignore(self, why: str) -> None:
        try:
            st = os.stat(self.rundir.target_marker_path, follow_symlinks=False)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp is not None and stamp == self._bad:
            return
        self._bad = stamp
        self.ignored += 1
        if self.ignored == 1:
            self.log(f"warning: {self.island}: ignoring a target marker that is not this run's "
                     f"record of an island reaching the target ({why}); evolving on")


class FitnessCheck(Recorder):
    """Says once, on the island's log, that a generation had no finite fitness (every value NaN
    or infinite): a problem that returns nothing usable is named during the run, not after it."""

    def __init__(self, island: str, log: Callable[[str], None]) -> None:
        self.island, self.log = island, log
        self.warned = False

    def generation(self, state: Any, progress: ckpt.Progress, stats: Any) -> None:
        if not self.warned and not math.isfinite(stats.best):
            self.warned = True
            self.log(f"warning: {self.island}: generation {progress.generation} has no finite fitness "
                     "(every value NaN or infinite): check the problem's fitness function")


def _usage() -> tuple[float, int, int]:
    """This process's CPU seconds and its voluntary and involuntary context switches."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_nvcsw, r.ru_nivcsw


def _finite(x: float) -> float | None:
    """JSON-friendly: None for NaN/inf (history lines must stay valid JSON)."""
    return x if math.isfinite(x) else None
