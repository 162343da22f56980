"""The island process: the epoch loop around the pure algorithm core.

One generation, in pagmo's order: read immigrants and replace residents, then evolve
(`migration.exchange`, when due) -> checkpoint when due -> breed -> evaluate -> count. The
evolution itself is the algorithm's `step` and `evaluate`; the loop decides and counts, and
tells its recorders (`islands.events`, `islands.recorders`: history, checkpoint, heartbeat,
target marker) what happened; they write the files, through `migration_pool.RunDir` only.

What an island records for others is declared in `islands.status.record`: an `IslandStatus`
(the heartbeat) and one `HistoryLine` per generation; what it keeps for itself is the
checkpoint (`islands.checkpoint`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from islands import checkpoint as ckpt
from islands import figures
from islands.budget_share import log_gain
from islands.basin_exchange import BasinExchange
from islands.obs_exchange import ObsExchange
from islands.budget_wait import BudgetShare
from islands.algorithms import make_algorithm
from islands.config import RunConfig, episode_seed, island_number, island_seed
from islands.migration import joined_at
from islands.errors import CheckpointError, ConfigError
from islands.events import Recorders
from islands.loggers import LoggerRecorder, close_all
from islands.problems import make_problem
from islands.problems.usercode import USER_FAILURES, failed_mid_run, user_modules
from islands.exit_codes import REASON_NO_FITNESS
from islands.recorders import Checkpointer, FitnessCheck, Heartbeat, HistoryRecorder, TargetMarker
from islands.status.record import IslandStatus
from islands.sync_migration import MigrationInterrupted
from islands.tuning.tuner import Switch, make_tuner
from islands.stopping import STOP_SIGNALS, StopFlag, ignore_stop_signals, install_stop_handlers  # noqa: F401
from migration_pool.lease import TAKEOVER_WAIT_S, scheduler_job_id
from migration_pool.rundir import RunDir


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
    loggers: tuple[Any, ...] = ()  # islands.loggers.Logger objects for this island, told after its own recorders

    @property
    def effective(self) -> RunConfig:
        return self.config.with_overrides(self.overrides)


@dataclass(frozen=True)
class IslandResult:
    island: str
    # "generations", "evaluations", "target", "target-elsewhere", "stagnation", "stopped", or
    # REASON_NO_FITNESS: it ran out of generations, evaluations or patience without one finite fitness
    reason: str
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
    job = scheduler_job_id()  # a scheduler's task outwaits the lease of a crashed holder (migration_pool.lease)
    claim = rundir.island(spec.island).claim(job_id=job, warn=lambda m: log(f"warning: {m}"),
                                             wait_s=TAKEOVER_WAIT_S if job is not None else 0.0)
    loop = None
    try:
        loop = _Loop(spec, cfg, device, rundir, stop, log, migrator_factory, on_status)
        # its lease is renewed with every status rewrite, and checked before history and checkpoints
        loop.heartbeat.claim = loop.history.claim = loop.checkpointer.claim = claim
        try:
            result = loop.run()
        except USER_FAILURES as exc:  # the user's fitness failing mid-run: one line, as at the start
            error = failed_mid_run(
                f"{spec.island}: problem {cfg.problem!r}: its fitness function failed during the run "
                "(fix it; the same command resumes)",
                exc, user_modules(loop.problem, cfg.problem))
            if error is None:
                raise
            raise error from exc
    finally:
        close = getattr(loop.migrator, "close", None) if loop is not None else None
        if close is not None:
            close()  # its ring files: a program running many islands in turn keeps no descriptors
        if loop is not None:
            close_all(loop.recorders.recorders)  # user loggers of an island that ended by an exception
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
        self.device = device
        self.number = island_number(spec.island)
        self.problem = spec.problem if spec.problem is not None else \
            make_problem(cfg.problem, cfg.dim, **dict(cfg.problem_params))
        self.algo = make_algorithm(cfg, self.problem, device)
        self.gen = torch.Generator(device=device)
        self.seed = island_seed(cfg.seed, spec.island)
        self.gen.manual_seed(self.seed)
        self.population = cfg.population or self.algo.default_population()
        self.target = cfg.target if cfg.target is not None else self.problem.solved_at
        note = self.problem.target_note(cfg.target)
        if note is not None:
            log(f"warning: {spec.island}: {note}")
        self.hash = cfg.trajectory_hash()
        self.migrator = None
        if cfg.migration.every and migrator_factory is not None:
            self.migrator = migrator_factory(spec, self.rundir, self.log)
            if hasattr(self.migrator, "stop_requested"):  # a sync wait gives up when asked to stop
                self.migrator.stop_requested = lambda: bool(stop)
        # The recorders, in the order of their writes (islands.recorders).
        self.history = HistoryRecorder(rundir, spec.island, self.algo, self.number, spec.run_id)
        self.checkpointer = Checkpointer(rundir, spec.run_id, spec.island, self.hash, self.algo, self.gen,
                                         cfg.checkpoint_every, cfg.checkpoint_seconds)
        self.heartbeat = Heartbeat(spec, cfg.generations, rundir, self.algo, self.number, self.target,
                                   self.history, on_status)
        self.marker = TargetMarker(rundir, spec.run_id, spec.island, log, self.target) if cfg.stop_when == "first" else None
        self.tuner = make_tuner(cfg.tuner, spec.island, self.seed, rundir, spec.run_id, log) if cfg.tuner.active else None
        mig = cfg.migration  # other islands' basins and statistics are read where migration is asynchronous and connected
        shared = bool(mig.every) and mig.topology != "none" and mig.mode != "sync"
        self.basins = BasinExchange(spec.island, rundir, spec.run_id, self.problem.dim, log, read=shared)
        self.obs = ObsExchange(spec.island, rundir, spec.run_id, self.problem, log, read=shared)
        self.share = BudgetShare(spec.island, rundir, spec.run_id, cfg.evaluation_budget, log, paced=mig.mode != "sync") \
            if cfg.budget_share == "progress" and cfg.evaluation_budget else None
        self.recorders = Recorders([self.obs, FitnessCheck(spec.island, log), self.history, self.checkpointer,
                                    self.heartbeat, *([self.marker] if self.marker is not None else []),
                                    *(LoggerRecorder(spec.island, lg, self.history, log) for lg in spec.loggers)])

    # -- start ----------------------------------------------------------------------------
    def _start(self) -> tuple[Any, ckpt.Progress, int | None]:
        record, errors = self.rundir.island(self.spec.island).load_checkpoint()
        for err in errors:
            self.log(f"warning: skipping unreadable checkpoint: {err}")
        if record is None and errors:
            raise CheckpointError(
                f"every checkpoint of {self.spec.island} is unreadable ({errors[0]}); "
                "run with --fresh, or move them aside, to start this island over"
            )
        if record is not None:
            where = str(self.rundir.island(self.spec.island).checkpoint_paths()[len(errors)])
            state_rec, progress = ckpt.restore(record, self.spec.run_id, self.spec.island, self.hash, self.gen, where)
            self._resume_tuner(progress)
            try:
                state = self.algo.from_record(state_rec)
                self.obs.restore(progress)
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointError(f"checkpoint {where} does not fit this island ({e}); use --fresh") from None
            self.rundir.island(self.spec.island).truncate_history(progress.generation)
            self.recorders.resume(progress.generation,  # user logs that append are cut back alike
                                  progress.migration.get("last_generation") == progress.generation)
            self._episodes(progress.generation)  # immigrants screened before the next step meet these
            self.log(f"{self.spec.island}: resuming from generation {progress.generation}")
            return state, progress, progress.generation
        # No checkpoint: generation 0 again, so lines an earlier attempt wrote before it was
        # killed (before its first checkpoint) would make the history mix two trajectories.
        self.rundir.island(self.spec.island).truncate_history(-1)
        progress = ckpt.Progress(joined_at=joined_at(self.rundir, self.spec.island, self.cfg.migration))
        if self.tuner is not None:  # its first settings: those given, the rest drawn from the space
            self._take_up(self.tuner.begin(self.spec.overrides, 0), progress)
        self._episodes(0)
        state = self.algo.evaluate(self.algo.init(self.population, self.number, self.gen))
        progress.evaluations = self.algo.population(state).evaluations
        self._record(state, progress)
        return state, progress, None

    def _resume_tuner(self, progress: ckpt.Progress) -> None:
        """Take up the segment the checkpoint recorded, with its settings (a tuned island may have
        moved away from the ones it started with)."""
        if self.tuner is not None:
            current = self.tuner.resume(progress.segment, progress.evaluations)
            if current is None:
                current = self.tuner.begin(self.spec.overrides, progress.generation, progress.evaluations)
            self._take_up(current, progress)

    def _take_up(self, segment: Any, progress: ckpt.Progress) -> None:
        """Run with `segment`'s settings from here on (the island's own when they are the same)."""
        if dict(segment.settings) != self.tuner.settings_of(self.spec.overrides):
            self._use(self.spec.config.with_overrides({**self.spec.overrides, **segment.settings}))
        progress.segment = self.tuner.current_body

    # -- loop -----------------------------------------------------------------------------
    def run(self) -> IslandResult:
        state, progress, resumed = self._start()
        self.heartbeat.evals_at_start = progress.evaluations
        reason = self._finished(progress)
        while reason is None:
            g = progress.generation
            self._episodes(g)  # immigrants are evaluated on the episodes of the population they join
            # A periodic checkpoint at g follows g's migration, a checkpoint on stop precedes it:
            # the recorded last migration generation tells a resumed island which one it has.
            if (self.migrator is not None and self.cfg.migration.due(g, self.seed)
                    and progress.migration.get("last_generation") != g):
                try:
                    state = self.migrator.exchange(self.algo, state, progress, self.gen)
                except MigrationInterrupted:  # stopped while waiting: g's event did not happen
                    reason = "stopped"
                    break
                event = self.migrator.last_event
                self.recorders.migration(event)
                if event is None or event.adopted:
                    self._record_best(state, progress, adopted=True)  # nothing adopted: state unchanged
            if self.checkpointer.due(g, resumed):
                state = self.basins.exchange(self.algo, state)  # saved with the checkpoint it precedes
                if self.tuner is not None:
                    progress.segment = self.tuner.current_body  # kept current only where it is written
                self.recorders.checkpoint(state, progress)
            # Immigrants an algorithm keeps for its next generation (CMA-ES injection) make that
            # generation's gain theirs; the count lives in the state, so a resume agrees.
            deferred = self.algo.population(state).pending > 0
            self._episodes(g + 1)
            state = self.algo.evaluate(self.algo.step(state, g, self.gen))
            progress.generation = g + 1
            progress.evaluations += self.algo.population(state).evaluations
            stats = self._record(state, progress, adopted=deferred)
            if self.tuner is not None:
                state = self._tune(state, progress, stats.best)
            reason = self._finished(progress)  # "stopped" only if nothing else ended it
            if reason is None and self.share is not None:  # waits here while past its share
                reason = self.share.after_generation(progress, lambda: bool(self.stop), lambda: self.heartbeat.write(
                    state, progress, "running", None)) or self._finished(progress)
        if reason in ("generations", "evaluations", "stagnation") and not math.isfinite(progress.best_ever):
            reason = REASON_NO_FITNESS  # it found nothing: not a finished run to build on
        if self.tuner is not None:
            if reason != "stopped":
                self.tuner.finish(reason)
            progress.segment = self.tuner.current_body
        self.basins.publish(self.algo, state)
        self.recorders.end(state, progress, "stopped" if reason == "stopped" else "finished", reason)
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
            self.recorders.target(progress)  # with --stop-when first, the marker tells the others
            return "target"
        if self.marker is not None and self.marker.elsewhere():
            return "target-elsewhere"
        if self.cfg.stagnation_limit and progress.stale >= self.cfg.stagnation_limit:
            return "stagnation"
        if self._out_of_budget(progress):
            return "generations" if self.cfg.generations is not None and progress.generation >= self.cfg.generations \
                else "evaluations"
        if self.stop:
            return "stopped"
        return None

    def _out_of_budget(self, progress: ckpt.Progress) -> bool:
        """At the generation limit or the island's share of the budget (none when the run shares
        its budget by progress: `self.share` ends the island when the run's total is spent)."""
        return (self.cfg.generations is not None and progress.generation >= self.cfg.generations) or \
            (self.share is None and self.cfg.max_evaluations is not None and progress.evaluations >= self.cfg.max_evaluations)

    def _record_best(self, state: Any, progress: ckpt.Progress, adopted: bool = False) -> Any:
        """Update best_ever; attribute the gain to immigrants (`adopted`) or to own breeding.

        The first population's best is no gain (best_ever is -inf before it), so own_gain
        measures what the island's settings achieved from where it started.
        """
        stats = figures.stats(self.algo.population(state))
        if stats.best > progress.best_ever:
            gain = stats.best - progress.best_ever
            if math.isfinite(gain):
                decades = log_gain(progress.best_ever, stats.best)
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
            self.obs.best(progress)
            if self.tuner is not None:
                progress.best_ever_settings = dict(self.tuner.segments.current.settings)
        return stats

    def _record(self, state: Any, progress: ckpt.Progress, adopted: bool = False) -> Any:
        """Count a generation (or the first population), then tell the recorders."""
        before = progress.best_ever
        stats = self._record_best(state, progress, adopted=adopted)
        if progress.best_ever == before and progress.generation > 0:
            progress.stale += 1
        self.recorders.generation(state, progress, stats)
        return stats

    # -- tuning (islands.tuning) --------------------------------------------------------------
    def _tune(self, state: Any, progress: ckpt.Progress, best: float) -> Any:
        """Let the tuner decide after a generation; checkpoint at its decision points, so a donor's
        population is at most one decision old and a resume takes up the segment it recorded."""
        switch = self.tuner.after_generation(progress.generation, progress.evaluations, best)
        if switch is not None and self._out_of_budget(progress):  # no new segment at the very end
            self.tuner.drop(switch)
        elif switch is not None:
            state = self._switch(state, progress, switch)
        if self.tuner.decided:
            progress.segment = self.tuner.current_body
            self.recorders.checkpoint(state, progress)
        return state

    def _switch(self, state: Any, progress: ckpt.Progress, switch: Switch) -> Any:
        """Start the segment `switch` names: its settings, and the donor's population or a fresh one."""
        before = (self.cfg, self.problem, self.algo)
        evaluations = progress.evaluations
        tries = [switch] + ([dataclasses.replace(switch, settings=switch.unexplored, why=switch.why + " (the copy "
                                                 "fits only the donor's own settings: not explored)")]
                            if switch.donor_state is not None and switch.unexplored is not None else [])
        new, why = None, ""
        for attempt in tries:
            try:
                self._use(self.spec.config.with_overrides({**self.spec.overrides, **attempt.settings}))
                # A donor's fitness is its claim, measured on its episodes and observation transform:
                # like an immigrant's, it is evaluated again here before it can be this island's best.
                self._episodes(progress.generation)
                new = self.algo.evaluate(self.algo.from_record(attempt.donor_state) if attempt.donor_state is not None
                                         else self.algo.init(self.population, self.number, self.gen))
                progress.evaluations += self.algo.population(new).evaluations
                switch = attempt
                break
            except (ConfigError, ValueError, KeyError, TypeError, RuntimeError, IndexError, AttributeError,
                    OverflowError) as e:  # a donor's state is another process's file: it may not fit
                why = str(e)
        if new is None:
            self.tuner.drop(switch)
            self._use(before[0], problem=before[1], algo=before[2])
            self.log(f"warning: {self.spec.island}: cannot start segment {switch.settings} ({why}); carrying on")
            return state
        segment = self.tuner.start(switch, progress.generation, evaluations, progress.evaluations,
                                   figures.stats(self.algo.population(new)).best)
        self._record_best(new, progress, adopted=switch.donor_state is not None)  # a copied best is adopted
        shown = " ".join(f"{k}={v}" for k, v in sorted(segment.settings.items()))
        self.log(f"{self.spec.island}: segment {segment.index} at generation {progress.generation}: {shown} ({switch.why})")
        return new

    def _use(self, cfg: RunConfig, problem: Any = None, algo: Any = None) -> None:
        """Run on with `cfg`: rebuild the problem (when its parameters changed) and the algorithm,
        and hand the algorithm to the recorders that read the state through it."""
        if problem is None:
            problem = self.problem
            if self.spec.problem is None and dict(cfg.problem_params) != dict(self.cfg.problem_params):
                problem = make_problem(cfg.problem, cfg.dim, **dict(cfg.problem_params))
        self.cfg, self.problem = cfg, problem
        self.obs.rebind(problem)
        self.algo = algo if algo is not None else make_algorithm(cfg, problem, self.device)
        self.population = cfg.population or self.algo.default_population()
        for recorder in (self.history, self.checkpointer, self.heartbeat):
            recorder.algo = self.algo
