"""The island process: the epoch loop around the pure algorithm core.

One generation: (migrate when due) -> checkpoint when due -> breed -> evaluate -> record.
Everything here is bookkeeping and I/O at the edge; the evolution itself is the algorithm's
`step` and `evaluate`. Files are written through `migration_pool.RunDir` only.

What an island records for others is declared in `islands.status.record`: an `IslandStatus`
(the heartbeat) and one `HistoryLine` per generation; what it keeps for itself is the
checkpoint (`islands.checkpoint`).
"""
from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from islands import checkpoint as ckpt
from islands import figures
from islands.algorithms import make_algorithm
from islands.config import RunConfig, episode_seed, island_number, island_seed
from islands.errors import CheckpointError, ConfigError
from islands.problems import make_problem
from islands.status.record import HistoryLine, IslandStatus, Migration, MigrationEvent
from islands.stopping import STOP_SIGNALS, StopFlag, ignore_stop_signals, install_stop_handlers  # noqa: F401
from migration_pool.lease import Claim, scheduler_job_id
from migration_pool.rundir import RunDir

STATUS_INTERVAL_S = 0.5  # status/heartbeat rewrites at most this often (and at every event)
MARKER_CHECK_S = 0.5  # with --stop-when first, look for another island's target marker this often
DIVERSITY_EVERY = 10  # every 10th history line carries diversity, foreign share, origins, algorithm figures


@dataclass(frozen=True)
class IslandSpec:
    """What one island process runs: its id, the run's settings and where the run lives."""

    island: str
    run_dir: Path
    run_id: str
    config: RunConfig  # the run's settings, before this island's overrides
    overrides: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    planned: tuple[str, ...] = ()  # islands the launcher planned; others are discovered
    problem: Any = None  # a Problem built in this process (islands.problems.inline); None: from the config

    @property
    def effective(self) -> RunConfig:
        return self.config.with_overrides(self.overrides)


@dataclass(frozen=True)
class IslandResult:
    island: str
    reason: str  # "generations", "evaluations", "target", "target-elsewhere", "stagnation" or "stopped"
    generation: int
    best: float
    evaluations: int
    resumed_from: int | None
    stop_signal: int | None = None  # the signal that stopped it (reason "stopped"), if any


def limit_torch_threads() -> None:
    """One thread per island (docs/DESIGN.md, "One thread per island"); the environment
    variables are set before torch loads (`islands.threads`)."""
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or interop pool already started
        pass


def resolve_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device {device!r} is not a torch device (try cpu or cuda:0)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r} does not exist ({torch.cuda.device_count()} GPU(s) visible)")
    elif dev.type != "cpu":
        raise ConfigError(f"device {device!r} is not supported; use cpu or cuda[:N]")
    return dev


def run_island(
    spec: IslandSpec,
    *,
    stop: StopFlag | None = None,
    log: Callable[[str], None] = print,
    migrator_factory: Callable[..., Any] | None = None,
    on_status: Callable[[IslandStatus], None] | None = None,
    on_time_limit: Callable[[IslandResult], None] | None = None,
) -> IslandResult:
    """Evolve one island to the end (or until `stop`), resuming from its checkpoint if any.

    `on_time_limit` is the requeue hook of a scheduler backend: when a time-limit warning
    (SIGUSR1) stopped the island, it is called with the result once the island has written
    its checkpoint and status and released its claim, so a requeued copy of the island
    (`scontrol requeue`) finds the island free and resumes from that checkpoint. It is not
    called for any other ending; what it raises propagates.
    """
    stop = stop if stop is not None else StopFlag()
    cfg = spec.effective
    device = resolve_device(spec.device)
    rundir = RunDir(spec.run_dir)
    claim = rundir.claim(spec.island, job_id=scheduler_job_id(), warn=lambda m: log(f"warning: {m}"))
    loop = None
    try:
        loop = _Loop(spec, cfg, device, rundir, stop, log, migrator_factory, on_status)
        loop.claim = claim  # its lease is renewed with every status rewrite
        result = loop.run()
    finally:
        close = getattr(loop.migrator, "close", None) if loop is not None else None
        if close is not None:
            close()  # its ring files: a program running many islands in turn keeps no descriptors
        claim.release()
    if result.reason == "stopped" and stop.time_limit and on_time_limit is not None:
        on_time_limit(result)
    return result


class _Loop:
    """State of one run of the loop; split out of `run_island` for readability."""

    def __init__(
        self,
        spec: IslandSpec,
        cfg: RunConfig,
        device: torch.device,
        rundir: RunDir,
        stop: StopFlag,
        log: Callable[[str], None],
        migrator_factory: Callable[..., Any] | None,
        on_status: Callable[[IslandStatus], None] | None,
    ) -> None:
        self.spec, self.cfg, self.rundir, self.stop, self.log = spec, cfg, rundir, stop, log
        self.on_status = on_status
        self.number = island_number(spec.island)
        self.problem = spec.problem if spec.problem is not None else \
            make_problem(cfg.problem, cfg.dim, **dict(cfg.problem_params))
        self.algo = make_algorithm(cfg, self.problem, device)
        self.gen = torch.Generator(device=device)
        self.seed = island_seed(cfg.seed, spec.island)
        self.gen.manual_seed(self.seed)
        self.population = cfg.population or self.algo.default_population()
        self.target = cfg.target if cfg.target is not None else self.problem.solved_at
        self.hash = cfg.trajectory_hash()
        self.migrator = None
        if cfg.migration.every and migrator_factory is not None:
            self.migrator = migrator_factory(spec, self.rundir, self.log)
        self.pending: list[HistoryLine] = []
        self.event: MigrationEvent | None = None  # last migration, for the next history line
        self.last_status = 0.0
        self.beat = 0
        self.started = time.time()
        self.last_checkpoint = time.monotonic()  # a resumed island's checkpoint is as fresh as now
        self.evals_at_start = 0
        self.marker_checked = float("-inf")  # first check at once, so a resumed island sees it
        self.claim: Claim | None = None

    # -- start ----------------------------------------------------------------------------
    def _start(self) -> tuple[Any, ckpt.Progress, int | None]:
        record, errors = self.rundir.load_checkpoint(self.spec.island)
        for err in errors:
            self.log(f"warning: skipping unreadable checkpoint: {err}")
        if record is None and errors:
            raise CheckpointError(
                f"every checkpoint of {self.spec.island} is unreadable ({errors[0]}); "
                "run with --fresh, or move them aside, to start this island over"
            )
        if record is not None:
            where = str(self.rundir.checkpoint_paths(self.spec.island)[len(errors)])
            state_rec, progress = ckpt.restore(record, self.spec.run_id, self.spec.island, self.hash, self.gen, where)
            try:
                state = self.algo.from_record(state_rec)
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointError(f"checkpoint {where} does not fit this island ({e}); use --fresh") from None
            self.rundir.truncate_history(self.spec.island, progress.generation)
            self._episodes(progress.generation)  # immigrants screened before the next step meet these
            self.log(f"{self.spec.island}: resuming from generation {progress.generation}")
            return state, progress, progress.generation
        # No checkpoint: generation 0 again, so lines an earlier attempt wrote before it was
        # killed (before its first checkpoint) would make the history mix two trajectories.
        self.rundir.truncate_history(self.spec.island, -1)
        progress = ckpt.Progress()
        self._episodes(0)
        state = self.algo.evaluate(self.algo.init(self.population, self.number, self.gen))
        progress.evaluations = self.algo.population(state).evaluations
        self._record(state, progress)
        return state, progress, None

    # -- loop -----------------------------------------------------------------------------
    def run(self) -> IslandResult:
        state, progress, resumed = self._start()
        self.evals_at_start = progress.evaluations
        reason = self._finished(progress)
        while reason is None:
            g = progress.generation
            self._episodes(g)  # immigrants are evaluated on the episodes of the population they join
            # A periodic checkpoint at g follows g's migration, a checkpoint on stop precedes it:
            # the recorded last migration generation tells a resumed island which one it has.
            if (self.migrator is not None and self.cfg.migration.due(g, self.seed)
                    and progress.migration.get("last_generation") != g):
                state = self.migrator.exchange(self.algo, state, progress, self.gen)
                self.event = self.migrator.last_event
                if self.event is None or self.event.adopted:
                    self._record_best(state, progress, adopted=True)  # nothing adopted: state unchanged
            if g > 0 and g % self.cfg.checkpoint_every == 0 and g != resumed and self._checkpoint_time():
                self._checkpoint(state, progress)
            # Immigrants an algorithm keeps for its next generation (CMA-ES injection) make that
            # generation's gain theirs; the count lives in the state, so a resume agrees.
            deferred = self.algo.population(state).pending > 0
            self._episodes(g + 1)
            state = self.algo.evaluate(self.algo.step(state, g, self.gen))
            progress.generation = g + 1
            progress.evaluations += self.algo.population(state).evaluations
            self._record(state, progress, adopted=deferred)
            reason = self._finished(progress)  # "stopped" only if nothing else ended it
        self._checkpoint(state, progress, status=False)
        self._status(state, progress, "stopped" if reason == "stopped" else "finished", reason)
        return IslandResult(self.spec.island, reason, progress.generation, progress.best_ever,
                            progress.evaluations, resumed, self.stop.signum if reason == "stopped" else None)

    def _episodes(self, generation: int) -> None:
        """Fresh episode starts for `generation` (problems with `reseed`; docs/DESIGN.md,
        "Episode seeds"): derived from the island's seed and the generation only, so a resumed
        island meets the very starts it would have met."""
        if self.problem.reseed is not None:
            self.problem.reseed(episode_seed(self.seed, generation))

    def _finished(self, progress: ckpt.Progress) -> str | None:
        if self.target is not None and progress.best_ever >= self.target:
            if self.cfg.stop_when == "first":
                self._mark_target(progress)
            return "target"
        if self.cfg.stop_when == "first" and self._target_elsewhere():
            return "target-elsewhere"
        if self.cfg.stagnation_limit and progress.stale >= self.cfg.stagnation_limit:
            return "stagnation"
        if progress.generation >= self.cfg.generations:
            return "generations"
        if self.cfg.max_evaluations is not None and progress.evaluations >= self.cfg.max_evaluations:
            return "evaluations"
        if self.stop:
            return "stopped"
        return None

    def _mark_target(self, progress: ckpt.Progress) -> None:
        """Tell the other islands (`--stop-when first`) that the run's target is reached."""
        body = {"island": self.spec.island, "run_id": self.spec.run_id, "generation": progress.generation,
                "evaluations": progress.evaluations, "best_ever": progress.best_ever, "time": time.time()}
        try:
            if self.rundir.mark_target_reached(body):
                self.log(f"{self.spec.island}: target reached; asking the other islands to stop")
        except OSError as e:  # the others then run to their own ends: wasteful, not wrong
            self.log(f"warning: cannot write the target marker: {e}")

    def _target_elsewhere(self) -> bool:
        """One stat at most every MARKER_CHECK_S: has another island reached the target?"""
        now = time.monotonic()
        if now - self.marker_checked < MARKER_CHECK_S:
            return False
        self.marker_checked = now
        return self.rundir.target_reached()

    def _record_best(self, state: Any, progress: ckpt.Progress, adopted: bool = False) -> Any:
        """Update best_ever; attribute the gain to immigrants (`adopted`) or to own breeding.

        The first population's best is no gain (best_ever is -inf before it), so own_gain
        measures what the island's settings achieved from where it started.
        """
        stats = figures.stats(self.algo.population(state))
        if stats.best > progress.best_ever:
            gain = stats.best - progress.best_ever
            if math.isfinite(gain):
                decades = _decades(progress.best_ever, stats.best)
                if adopted:
                    progress.adopted_gain += gain
                    progress.adopted_log_gain += decades
                    progress.adopted_improvements += 1
                else:
                    progress.own_gain += gain
                    progress.own_log_gain += decades
                    progress.own_improvements += 1
            progress.best_ever = stats.best
            progress.best_ever_genome = figures.genome(self.algo.population(state), stats.best_index)
            progress.best_ever_generation = progress.generation
            progress.stale = 0
        return stats

    def _record(self, state: Any, progress: ckpt.Progress, adopted: bool = False) -> None:
        before = progress.best_ever
        stats = self._record_best(state, progress, adopted=adopted)
        if progress.best_ever == before and progress.generation > 0:
            progress.stale += 1
        sampled = progress.generation % DIVERSITY_EVERY == 0
        self.pending.append(HistoryLine(
            generation=progress.generation,
            best=_finite(stats.best),
            mean=_finite(stats.mean),
            best_ever=_finite(progress.best_ever),
            evaluations=progress.evaluations,
            time=round(time.time(), 3),
            migration=self.event,
            diversity=round(figures.diversity(self.algo.population(state)), 6) if sampled else None,
            foreign=round(figures.foreign_share(self.algo.population(state), self.number), 4) if sampled else None,
            origins=figures.origins(self.algo.population(state)) if sampled else {},
            algo=self.algo.info(state) if sampled else {},  # step size, restarts: on sampled lines
        ))
        self.event = None
        if time.monotonic() - self.last_status >= STATUS_INTERVAL_S:
            self._status(state, progress, "running", None)

    def _checkpoint_time(self) -> bool:
        """Has `checkpoint_seconds` passed since the last checkpoint? Only asked at a multiple
        of `checkpoint_every`, so a checkpoint waits for both: an fsync'd checkpoint every 25
        generations would cost a fast island more than its evolution (issue 16)."""
        return time.monotonic() - self.last_checkpoint >= self.cfg.checkpoint_seconds

    def _checkpoint(self, state: Any, progress: ckpt.Progress, status: bool = True) -> None:
        # History first, and durably: a resume cuts the history back to the checkpoint and
        # replays from there, so every line up to it must be on disk before the checkpoint is.
        self._flush_history(durable=True)
        body = ckpt.make_record(self.spec.run_id, self.spec.island, self.hash,
                                self.algo.to_record(state), self.gen, progress)
        self.rundir.save_checkpoint(self.spec.island, progress.generation, body)
        self.last_checkpoint = time.monotonic()
        if status:
            self._status(state, progress, "running", None)

    def _flush_history(self, durable: bool = False) -> None:
        """Append the buffered history lines (one write; fsynced only when `durable`)."""
        self.rundir.append_history(self.spec.island, [line.to_body() for line in self.pending], durable=durable)
        self.pending = []

    def _status(self, state: Any, progress: ckpt.Progress, phase: str, reason: str | None) -> None:
        """Flush pending history lines and rewrite the status file (the heartbeat)."""
        diversity = figures.diversity(self.algo.population(state))
        foreign = figures.foreign_share(self.algo.population(state), self.number)
        self._flush_history()
        now = time.time()
        elapsed = max(now - self.started, 1e-9)
        stats = figures.stats(self.algo.population(state))
        self.beat += 1
        self.last_status = time.monotonic()
        status = IslandStatus(
            island=self.spec.island,
            run_id=self.spec.run_id,
            state=phase,
            reason=reason,
            generation=progress.generation,
            generations=self.cfg.generations,
            best=_finite(stats.best),
            mean=_finite(stats.mean),
            best_ever=_finite(progress.best_ever),
            best_ever_generation=progress.best_ever_generation,
            best_genome=progress.best_ever_genome,
            evaluations=progress.evaluations,
            evals_per_sec=(progress.evaluations - self.evals_at_start) / elapsed,
            diversity=diversity,
            foreign_share=foreign,
            centroid=figures.centroid(self.algo.population(state)),
            origins=figures.origins(self.algo.population(state)),
            migration=Migration.from_body(progress.migration),
            own_gain=_finite(progress.own_gain),
            adopted_gain=_finite(progress.adopted_gain),
            own_log_gain=_finite(progress.own_log_gain),
            adopted_log_gain=_finite(progress.adopted_log_gain),
            own_improvements=progress.own_improvements,
            adopted_improvements=progress.adopted_improvements,
            overrides=dict(self.spec.overrides),
            device=self.spec.device,
            torch_threads=torch.get_num_threads(),
            pid=os.getpid(),
            host=socket.gethostname(),
            started=self.started,
            heartbeat=now,
            beat=self.beat,
            target=self.target,
            algo=self.algo.info(state),
        )
        self.rundir.write_status(self.spec.island, status.to_body())
        if self.claim is not None:
            self.claim.refresh()  # at most every lease.REFRESH_S; IslandBusy if another copy took over
        if self.on_status is not None:
            self.on_status(status)


LOG_FLOOR = 1e-12  # f(x) counted as reaching this when an improvement reaches the optimum 0 exactly


def _decades(before: float, after: float) -> float:
    """Orders of magnitude of f(x) = -fitness gained from `before` to `after` (fitness <= 0);
    0.0 once fitness is positive (no minimisation scale to measure on)."""
    if not before < 0 or after > 0:
        return 0.0
    # Both ends floored: past the floor an improvement gains nothing rather than a negative amount.
    return math.log10(max(-before, LOG_FLOOR) / max(-after, LOG_FLOOR))


def _finite(x: float) -> float | None:
    """JSON-friendly: None for NaN/inf (history lines must stay valid JSON)."""
    return x if math.isfinite(x) else None
