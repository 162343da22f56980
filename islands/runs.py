"""Starting or joining a run: the manifest every island of a run agrees on.

`join_run` is the one place that decides the effective settings of an island: the manifest
when one exists (refusing explicit options that contradict it), otherwise the given settings,
recorded as a new manifest. `evolve` is the library form of `islands evolve`.

The launcher joins runs through this module, so it imports torch only inside `evolve`
(through `islands.island`): a launcher never loads torch (docs/DESIGN.md, "Layers").
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from islands import budget
from islands.config import RunConfig, is_inline, island_number, not_rebuildable
from islands.errors import ConfigError
from islands.loggers import CallbackLogger, Logger, LoggerSpec, build_loggers, parse_logger
from migration_pool.errors import FormatError, LauncherBusy, PoolError, RunDirError
from migration_pool.rundir import RunDir
from islands.manifest import (MANIFEST_SCHEMA, PLANNED_KEY, Run, check_against, flatten_config,  # noqa: F401
                              new_manifest, planned_islands, run_from_manifest)
from islands.tuning.tuner import check_tuner
from islands.status.reader import RunReader
from islands.status.record import champion, champion_record

if TYPE_CHECKING:
    from islands.island import IslandResult, StopFlag
    from islands.status.record import HistoryLine, IslandStatus

def check_run_dir(root: str | Path, allow_nonempty: bool = False) -> None:
    """Refuse a run directory that would scatter run files where they do not belong.

    An empty path (which would mean the current directory) always; a directory holding no
    run but other files (`/`, a home folder) unless `allow_nonempty`. Called before anything
    is written, so a refusal leaves the directory as it was.
    """
    if str(root) == "":
        raise ConfigError("--run-dir is empty; name a directory for the run")
    rundir = RunDir(root)
    try:
        if rundir.read_manifest() is not None:
            return
    except (OSError, FormatError):  # unusable or corrupt: joining the run says so in one line
        return
    _refuse_orphaned_checkpoints(root)
    if allow_nonempty:
        return
    if rundir.root.exists() and not rundir.root.is_dir():
        raise ConfigError(f"--run-dir {root} is not a directory")
    foreign = rundir.foreign_entries()
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ConfigError(f"--run-dir {root} holds no run but other files ({shown}); name an empty "
                          "or new directory, or pass --allow-nonempty to create the run there anyway")


BYTES_PER_GENE = 8 * 6  # float64 genomes, offspring, provenance and the breeding step's temporaries


def machine_memory() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(config: RunConfig, memory: int | None = None) -> None:
    """Refuse a population that cannot fit in memory before anything is allocated or written
    (`--population 1000000000` would otherwise be recorded, then die allocating).

    The estimate is a floor (genes only, a few copies); None for the algorithm's default
    population, which is always small.
    """
    memory = memory if memory is not None else machine_memory()
    if config.population is None or memory is None:
        return
    need = config.population * (config.dim * BYTES_PER_GENE + 64)
    if need > memory:
        raise ConfigError(
            f"population {config.population} x dim {config.dim} needs at least {need / 2**30:,.1f} GiB, "
            f"more than this machine's {memory / 2**30:,.1f} GiB; lower --population or --dim")


def _refuse_orphaned_checkpoints(root: str | Path) -> None:
    """A run whose manifest was deleted must not be silently restarted over its checkpoints
    (the new run id would make every checkpoint "another run's", and --fresh would delete them)."""
    held = RunDir(root).islands_with_checkpoints()
    if held:
        raise RunDirError(
            f"{root} has no manifest but {len(held)} island(s) hold checkpoints ({held[0]}, ...): "
            f"restore {RunDir(root).manifest_path.name} from a backup to resume, or move the islands/ "
            "folder aside (nothing was changed)")


def join_run(
    root: str | Path,
    config: RunConfig,
    explicit: Mapping[str, Any],
    make_manifest: Callable[[], dict[str, Any]] | None = None,
    allow_shared: bool = False,
) -> tuple[Run, bool]:
    """The run at `root`, created from `config` if it has no manifest yet.

    Returns the run and whether this call created it. Unless `allow_shared`, a run directory
    or manifest that other users can write is refused (RunDirError): its manifest decides
    what code the islands import.
    """
    check_memory(config)
    check_tuner(config.tuner)
    rundir = RunDir(root)
    # A run without a plan: a lone island's budget is the run's (resolved only if this call
    # creates the run; joining one compares typed budgets with its record below).
    make = make_manifest or (lambda: new_manifest(budget.for_islands(config, 1)))

    def make_checked() -> dict[str, Any]:  # under the manifest lock, before anything is written
        _refuse_orphaned_checkpoints(root)
        return make()

    if not allow_shared:
        rundir.check_private()
    manifest, created = rundir.create_or_read_manifest(make_checked)
    if not allow_shared:
        rundir.check_private()
    run = run_from_manifest(Path(root), manifest)
    if not created:  # a typed total budget stands for its share of the run's planned islands
        check_against(run.config, budget.explicit_for(run.config, len(run.planned()) or 1, explicit))
    return run, created


def _has_manifest(root: str | Path) -> bool:
    """Whether `root` already holds a run; an unusable path is left to `join_run` to report."""
    try:
        return RunDir(root).read_manifest() is not None
    except OSError:
        return True


def evolve(
    island: str,
    root: str | Path,
    config: RunConfig | None = None,
    *,
    problem: Any = None,
    bounds: tuple[Any, Any] | None = None,
    explicit: Mapping[str, Any] | None = None,
    device: str | None = None,
    fresh: bool = False,
    fresh_run: bool = False,
    allow_shared: bool = False,
    stop: StopFlag | None = None,
    log: Callable[[str], None] = print,
    on_status: Callable[[IslandStatus], None] | None = None,
    on_time_limit: Callable[[IslandResult], None] | None = None,
    on_generation: Callable[[str, HistoryLine], None] | None = None,
    loggers: Sequence[Logger | LoggerSpec | str] = (),
) -> IslandResult:
    """Run (or resume) one island of the run at `root`, creating the run if needed.

    `explicit` names the settings the caller chose on purpose (the CLI passes the options
    typed); without it every field of a given `config` counts, so a different `RunConfig` on an
    existing run raises ManifestConflict as the CLI does, instead of silently running the
    recorded one. `problem` runs a `Problem` or a fitness function (genomes [P, D] -> fitness
    [P], with `bounds=(lower, upper)` and D = `config.dim`) in this process; the manifest
    records it as "<python:module.qualname>" (`islands.problems.inline`) and resuming needs the
    same function again. At the end the run's `champion.isld` is (re)written.

    `fresh` starts this island over (its checkpoints, history and status go); `fresh_run` the
    whole run (`RunDir.reset_run`: every island's files and the manifest go, after `config`
    has been checked as a new run's, so a typo deletes nothing).

    `on_time_limit`: see `islands.island.run_island` (a scheduler backend's requeue hook).

    `on_generation(island, record)` is called after every generation with its history line
    (`islands.status.record.HistoryLine`; `record.to_body()` is the history.jsonl dict), and
    `loggers` are `islands.loggers.Logger` objects, or specs such as "jsonl:FOLDER" or
    "tensorboard:FOLDER" (built for this island). Both run in the island's loop after its own
    files are written; one that raises is reported once on `log` and detached, and the island
    evolves on (docs/DESIGN.md, "Recorders").
    """
    island_number(island)  # validate the id before touching the disk
    loggers = [parse_logger(x) if isinstance(x, str) else x for x in loggers]  # a typo: ConfigError, nothing written
    for spec_ in loggers:
        if isinstance(spec_, LoggerSpec):
            spec_.check()  # buildable (importable, its extra installed) before anything is written
    given = config
    config = config or RunConfig()
    built = None
    if problem is not None:
        config, built = _inline(config, problem, bounds)
    elif bounds is not None:
        raise ConfigError("bounds= goes with problem=fn (a fitness function); named problems have their own")
    dim_typed = explicit is not None and "dim" in explicit  # a --dim a problem may not use: say so
    if explicit is None:
        explicit = flatten_config(config) if given is not None else {}
    if built is not None:
        explicit = {**explicit, "problem": config.problem, "dim": config.dim,
                    "problem_params": dict(config.problem_params)}
    elif isinstance(problem, str):  # named on purpose: it must match an existing run's
        explicit = {**explicit, "problem": config.problem}
    notes: list[str] | None = [] if dim_typed and built is None else None
    if fresh_run or not _has_manifest(root):
        # A new run: build its problem and algorithm first, so a typo writes no manifest that
        # the corrected command would then contradict. Without a plan, the run is this island.
        config = budget.for_islands(config, 1)
        if built is not None:
            from islands.problems.inline import check_runs  # lazy: loads torch; the launcher imports this module and never does

            check_runs(config, built)
        else:
            from islands.plancheck import check  # lazy: loads torch and sets the thread variables (limit_env)

            error = check(config.to_dict(), {}, notes)
            if error is not None:
                raise ConfigError(error)
    for note in notes or ():
        log(note)
    if fresh_run:
        if not allow_shared:
            RunDir(root).check_private()  # whoever else can write it may have put code there
        RunDir(root).reset_run()
    run, _ = join_run(root, config, explicit, allow_shared=allow_shared)
    _check_inline_resume(run, built)
    _refuse_unplanned(run, island)
    if fresh:
        RunDir(root).island(island).reset_island()
    from islands.island import IslandSpec, run_island  # lazy: loads torch; the launcher imports this module and never does
    from islands.migration import PoolMigrator  # lazy: as above

    recorded = run.config
    if recorded.max_evaluations is None and recorded.evaluation_budget is not None:  # a manifest written by hand
        recorded = dataclasses.replace(recorded, max_evaluations=budget.share(recorded.evaluation_budget,
                                                                               len(run.planned()) or 1))
    spec = IslandSpec(
        island=island,
        run_dir=Path(root),
        run_id=run.run_id,
        config=recorded,
        overrides=run.overrides(island),
        device=device or run.device(island),
        planned=run.planned(),
        problem=built,
        loggers=(*build_loggers(island, loggers, log),
                 *([CallbackLogger(island, on_generation)] if on_generation is not None else [])),
    )
    result = run_island(spec, stop=stop, log=log, migrator_factory=PoolMigrator, on_status=on_status,
                        on_time_limit=on_time_limit)
    try:
        write_champion(run)
    except (OSError, PoolError) as e:  # the island's own files are complete; only the summary file is missing
        log(f"{island}: could not write {Path(root) / 'champion.isld'}: {getattr(e, 'strerror', None) or e}")
    return result


def _inline(config: RunConfig, problem: Any, bounds: tuple[Any, Any] | None) -> tuple[RunConfig, Any]:
    """The config recording a Python problem, and the Problem built from it."""
    from islands.problems import inline  # lazy: loads torch; the launcher imports this module and never does

    if isinstance(problem, str):
        if bounds is not None:
            raise ConfigError("bounds= goes with problem=fn (a fitness function); named problems have their own")
        return dataclasses.replace(config, problem=problem), None
    if config.problem_params:
        raise ConfigError("problem_params are for named problems; a Python problem takes its settings itself")
    built = inline.build(problem, config.dim, bounds)
    recorded = dataclasses.replace(config, problem=inline.label(inline.fn_of(problem)), dim=built.dim,
                                   problem_params=inline.recorded_params(built))
    return recorded, built


def _refuse_unplanned(run: Run, island: str) -> None:
    """An island the plan does not name may not join a planned run while its launcher runs it
    (the launcher starts, counts and stops only the planned islands)."""
    planned = run.planned()
    if not planned or island in planned:
        return
    try:
        RunDir(run.root).claim_launcher().release()
    except LauncherBusy:
        names = ", ".join(planned) if len(planned) <= 8 else f"{', '.join(planned[:4])}, ..., {planned[-1]}"
        raise ConfigError(f"{island} is not one of the {len(planned)} island(s) this run's launcher runs ({names}); "
                          "evolve one of those, or wait until the launcher has ended") from None
    except OSError:
        return  # the lock cannot be taken here (a read-only run): no launcher check to make


def _check_inline_resume(run: Run, built: Any) -> None:
    """A run made from a Python problem resumes only with one (the label was checked already)."""
    if built is None and is_inline(run.config.problem):
        raise ConfigError(not_rebuildable(run.config.problem))


def write_champion(run: Run) -> None:
    """(Re)write `champion.isld` from the islands' statuses, as the launcher does at its end.

    An `evolve`-only run gets its champion file too. The file is replaced only by a better (or
    the same island's newer) champion, so an island ending later with an older view of the
    others cannot undo one another island wrote.
    """
    reader = RunReader(RunDir(run.root), run.manifest)
    best = champion(reader.statuses().values(), run.run_id)  # torn or foreign files are left out
    if best is None:
        return
    held = reader.champion_file()
    if (held is not None and held.get("run_id") == run.run_id and held.get("island") != best.island
            and float(held.get("fitness", float("-inf"))) > float(best.best_ever)):  # type: ignore[arg-type]
        return
    reader.rundir.write_champion(champion_record(best, run.config.problem, run.config.dim, run.run_id,
                                                       config=run.config))


__all__ = ["planned_islands", "PLANNED_KEY", "check_memory", "check_run_dir", "Run", "new_manifest", "check_against", "flatten_config", "run_from_manifest", "join_run", "evolve", "write_champion", "ConfigError"]
