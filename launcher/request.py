"""What a launch was asked to do (`LaunchRequest`), and the run and plan it resolves to.

A new run's plan is checked in full before anything is written: every island's problem and
algorithm are built once in a child (`launcher.torch_jobs`; the launcher has no torch), so a
typo in --problem, --param or --vary starts nothing. A resumed run's plan is the one its
manifest records, on today's cores; options that contradict it are refused
(`ManifestConflict`). `launcher.session.launch` uses these before it supervises anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from islands import budget
from islands.tuning.config import TunerConfig
from islands.config import RunConfig, is_inline, not_rebuildable
from islands.loggers import parse_logger
from islands.runs import Run, flatten_config, join_run, new_manifest, planned_islands
from launcher import plan as planning
from launcher.errors import PlanError
from launcher.supervise import RestartPolicy
from launcher.template_client import ForkServer
from launcher.torch_jobs import check_islands_build, view_steps
from migration_pool.errors import FormatError, ManifestConflict
from migration_pool.island_ids import valid_island_id
from migration_pool.rundir import RunDir


@dataclass(frozen=True)
class LaunchRequest:
    """What `islands launch` was asked to do; None means "not given" (so it never conflicts)."""

    root: Path
    # None: resume with the manifest's settings (a new run gets RunConfig()). A config given
    # with no `explicit` counts as given in full, so it must match an existing run's manifest.
    # Its `evaluation_budget` is the whole run's (split over the planned islands when the run
    # is planned, `new_run_config`); its `max_evaluations` each island's.
    config: RunConfig = None  # type: ignore[assignment]  # None until __post_init__
    explicit: Mapping[str, Any] = None  # type: ignore[assignment]
    islands: int | None = None
    cores: str | None = None
    device: str | None = None
    vary: tuple[str, ...] = ()
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    grace_s: float = 30.0
    poll_s: float = 0.2
    resume_hint: str | None = None  # the command to print for resuming
    # Which run folder a launch without --run-dir picked (new, resumed or finished), said only once
    # the launch is accepted, so a refused one prints its error alone
    start_line: str | None = None
    allow_shared_run: bool = False  # accept a run others can write (they can run code in it)
    evaluate_episodes: int = 100  # unseen starts for the champion after a finished run (0: none)
    fresh: bool = False  # start the run over (`RunDir.reset_run`), once every input is checked
    fork_server: bool = True  # fork CPU islands from a pre-imported template (launcher.template_client)
    # `--logger` specs ("jsonl:FOLDER", "tensorboard:FOLDER", "module:factory"): each island
    # builds its own in its process (islands.loggers), told through the environment
    loggers: tuple[str, ...] = ()
    # `--tuner` and its schedule, e.g. {"kind": "asha", "rung": 5}: searches the `vary` space
    # (None: the config's own tuner, static unless it names one)
    tuner: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.config is None:
            object.__setattr__(self, "config", RunConfig())
            object.__setattr__(self, "explicit", dict(self.explicit or {}))
        elif self.explicit is None:
            object.__setattr__(self, "explicit", flatten_config(self.config))
        for text in self.loggers:
            parse_logger(text)  # syntax here (ConfigError); a factory is imported by each island
        if self.tuner is not None:  # as --tuner: its schedule, searching the --vary space
            unknown = sorted(set(self.tuner) - {f.name for f in fields(TunerConfig)} - {"space"})
            if unknown:
                raise PlanError(f"unknown tuner setting(s): {', '.join(map(str, unknown))}")
            tuner = TunerConfig(**{**dict(self.tuner), "space": tuple(self.vary)})
            object.__setattr__(self, "config", replace(self.config, tuner=tuner))
            object.__setattr__(self, "explicit", {**self.explicit, **{f"tuner.{f.name}": getattr(tuner, f.name)
                                                                      for f in fields(tuner)},
                                                     "tuner.space": list(tuner.space)})
        if self.islands is not None and self.islands < 1:
            raise PlanError(f"-n/--islands must be at least 1, got {self.islands}")
        if self.grace_s < 0:
            raise PlanError(f"--grace must be >= 0 seconds, got {self.grace_s}")



def new_run_config(request: LaunchRequest, cores: Sequence[int]) -> RunConfig:
    """A new run's config for the islands it plans (one per core unless -n says otherwise)."""
    return planned_config(request, request.islands or len(cores))


def planned_config(request: LaunchRequest, islands: int) -> RunConfig:
    """A new run's config: its total evaluation budget split over `islands`, and
    `--budget-share auto` resolved: by progress when the islands run different algorithms (a
    portfolio: the budget should go to whichever is improving), evenly otherwise.
    ConfigError when the budget cannot be split."""
    config = request.config
    if config.budget_share == "auto":
        mixed = any(spec.name == "algorithm" and len(set(spec.values or ())) > 1
                    for spec in map(planning.parse_vary, request.vary))
        config = replace(config, budget_share="progress" if mixed and config.evaluation_budget else "even")
    return budget.for_islands(config, islands)


def planned_count(rundir: RunDir) -> int:
    """How many islands a resumed run's manifest lists (0 for a new run)."""
    try:
        return len(planned_islands(rundir.read_manifest() or {}))
    except (FormatError, OSError, TypeError):
        return 0


def refuse_inline(rundir: RunDir, config: RunConfig) -> None:
    """Islands are new processes that import their problem: a Python object given to one
    process (`islands.runs.evolve(problem=fn)`, recorded as "<python:...>") cannot reach them."""
    try:
        manifest = rundir.read_manifest()
    except (OSError, FormatError):
        manifest = None  # joining the run reports it
    recorded = (manifest or {}).get("config", {}).get("problem") if isinstance(manifest, dict) else None
    for name in (config.problem, recorded):
        if is_inline(name):
            raise PlanError(f"the launcher needs an import path for the problem (--problem module:factory); "
                            f"{not_rebuildable(name)}")


def _gpus(device: str) -> list[str] | None:
    return None if device == "cpu" else planning.visible_gpus()


def join(rundir: RunDir, request: LaunchRequest, cores: Sequence[int], specs: list,
         fresh: planning.Plan | None, forks: ForkServer | None = None, view: Any = None) -> tuple[Run, planning.Plan]:
    """The run (created with the `fresh` plan if new) and the plan to run it with; `view`
    (the launcher's) is told what the settings check is waiting for."""
    if rundir.read_manifest() is None:
        config = new_run_config(request, cores)
        plan = fresh or new_plan(config, request, cores, specs, forks, view)
        run, created = join_run(rundir.root, config, request.explicit,
                                make_manifest=lambda: new_manifest(config, **plan.manifest_fields()),
                                allow_shared=request.allow_shared_run)
        if created:
            return run, plan
    else:
        run, _ = join_run(rundir.root, request.config, request.explicit,
                          allow_shared=request.allow_shared_run)
    return run, _resume_plan(rundir, run, request, cores, specs, forks, view)


def new_plan(config: RunConfig, request: LaunchRequest, cores: Sequence[int], specs: list,
             forks: ForkServer | None = None, view: Any = None) -> planning.Plan:
    """The plan of a run with `config` (a new run's from `new_run_config`, or a run that
    `islands evolve` started and this launch adopts: its recorded budget stays as it is)."""
    ids = planning.island_ids(request.islands or len(cores))
    overrides = planning.sample_overrides(specs, ids, config.seed)
    planning.check_overrides(config, overrides, specs)
    # Every island's problem and algorithm are built once (in a child: no torch here) before
    # anything is written, so a typo in --problem, --param or --algorithm-param starts nothing.
    notes: list[str] | None = [] if "dim" in request.explicit else None
    steps = view_steps(view)
    groups: list[dict[str, Any]] = []
    named = {i: overrides.get(i, {}) for i in ids}  # every island named: the check says where each starts
    error = check_islands_build(config.to_dict(), named, notes, forks, groups=groups, **steps)
    if error is not None:
        varied = any(s.name == "algorithm" or s.name.startswith(("algo.", "param.")) for s in specs)
        raise PlanError(f"--vary: {error}" if varied else error)
    device = request.device or "cpu"
    plan = planning.make_plan(ids, cores, device, _gpus(device), overrides, specs)
    return replace(plan, notes=tuple(notes or ()), groups=tuple(groups))


def _resume_plan(rundir: RunDir, run: Run, request: LaunchRequest, cores: Sequence[int], specs: list,
                 forks: ForkServer | None = None, view: Any = None) -> planning.Plan:
    """The recorded plan on today's cores, refusing -n, --vary or --device that contradict it."""
    m = run.manifest
    recorded = m.get("plan") or {}
    if not m.get("islands"):
        # A run started by `islands evolve`: adopt it and record this launcher's plan.
        if specs and rundir.island_ids():
            raise PlanError("--vary cannot be added to a run whose islands have already started")
        plan = new_plan(run.config, request, cores, specs, forks, view)
        rundir.update_manifest(lambda cur: cur if cur.get("islands") else {**cur, **plan.manifest_fields()})
        return plan
    planned = list(m["islands"])
    for island in planned:  # ids become paths (island.log is opened before a child checks)
        if not isinstance(island, str) or not valid_island_id(island):
            raise FormatError(f"manifest lists island {str(island)[:40]!r}, which is not an "
                              f"island id like 'island-03'", str(rundir.manifest_path))
    if request.islands is not None and request.islands != len(planned):
        raise ManifestConflict("islands", len(planned), request.islands)
    rec_vary = list(recorded.get("vary", []))
    if specs and sorted(str(s) for s in specs) != sorted(rec_vary):
        raise ManifestConflict("vary", rec_vary, [str(s) for s in specs])
    device = recorded.get("device", "cpu")
    if request.device is not None and request.device != device:
        raise ManifestConflict("device", device, request.device)
    return planning.plan_from_manifest(m, cores, _gpus(device))
