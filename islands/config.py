"""Frozen, validated settings of a run and of one island.

`RunConfig` is what every island of a run must agree on; it is recorded in the run manifest
(as `to_dict()`) and rebuilt from it (`from_dict`). Per-island differences (the launcher's
`--vary`) are applied as `overrides` on top of it. Bad values raise `ConfigError` quoting the
value, so the CLI can print them as they are.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from islands.algorithms import registry
from islands.errors import ConfigError
from islands.tuning.config import TunerConfig
from migration_pool import island_ids
from migration_pool.island_ids import island_id  # re-exported: callers import the id rule from here
from migration_pool.topology import TOPOLOGIES

CROSSOVERS = ("sbx", "blx", "uniform")
BOUND_HANDLING = ("clip", "reflect")
EMIGRANT_POLICIES = ("best", "tournament")
REPLACEMENT_POLICIES = ("worst", "random", "better")
# The algorithms, from their registry. Population when none is given: fixed for some (the
# registry's `fixed_population`); the others size it from the genome length (CMA-ES 4 + 3 ln D,
# DE 5 D, ...), which only the built problem knows, so they record None.
ALGORITHMS = registry.ALGORITHMS
FIXED_DEFAULT_POPULATION = registry.FIXED_DEFAULT_POPULATION
MUTATIONS = ("self-adaptive", "fixed")
DTYPES = ("float64", "float32")
MIGRATION_MODES = ("async", "sync")  # sync: wait for each source's batch of the generation
NO_LEAD_LIMIT = -1  # MigrationConfig.max_lead: take a neighbour's batch however far ahead it is
STOP_WHEN = ("all", "first")  # first: every island stops once any island reaches its target
# Per-island overrides name an algorithm setting as `algo.KEY` (what --algorithm-param KEY=..
# sets) and a problem parameter as `param.KEY` (what --param KEY=.. sets); plain names are
# `algorithm`, `population` and the GA fields.
ALGO_PREFIX = "algo."
PARAM_PREFIX = "param."


BUDGET_SHARES = ("auto", "even", "progress")
DEFAULT_GENERATIONS = 200  # the generation limit of a run without an evaluation budget


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _is_int(value: Any) -> bool:
    """An integer proper: 16, not 16.0, 16.5 or True (a manifest edited by hand may hold any)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _from_mapping(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Build a dataclass, rejecting unknown keys so a typo never passes silently."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    _check(not unknown, f"unknown {where} setting(s): {', '.join(unknown)}")
    return cls(**dict(data))


def parse_cli_value(raw: str) -> Any:
    """A KEY=VALUE value as the command line means it: int, float, true/false, else text."""
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(raw.lower(), raw)


def island_number(island_id: str) -> int:
    """The integer in an island id (`island-03` -> 3), after validating the id."""
    _check(
        island_ids.valid_island_id(island_id),
        f"island id {island_id[:40]!r} is not like 'island-03' (the word island, a dash, then "
        f"two digits below 100 and no leading zero above, at most 6 digits: island-07, island-100)",
    )
    return island_ids.island_number(island_id)


@dataclass(frozen=True)
class GAConfig:
    """Operators and rates of the genetic algorithm (step sizes relative to the box width).

    `mutation_rate` and `mutation_sigma` set the classic mutation: each gene moves by
    N(0, mutation_sigma) with probability mutation_rate (None: 1/D). With `mutation`
    "self-adaptive" (the default) every other child uses its own self-adapted step instead of
    mutation_sigma (starting at mutation_sigma, never below `step_floor`), which lets the GA
    converge below 1e-8; "fixed" is the classic mutation alone (see islands.algorithms.ga).
    """

    tournament_size: int = 3
    crossover: str = "sbx"
    crossover_rate: float = 0.9
    sbx_eta: float = 15.0
    blx_alpha: float = 0.5
    mutation_rate: float | None = None  # None means 1/D, the classic default
    mutation_sigma: float = 0.05  # the classic step and the initial self-adaptive one, a share of the box
    mutation: str = "self-adaptive"
    step_floor: float = 1e-12  # self-adaptive steps never shrink below this share of the box
    elitism: int = 2
    bounds: str = "clip"

    def __post_init__(self) -> None:
        _check(_is_int(self.tournament_size) and self.tournament_size >= 1,
               f"tournament size must be an integer >= 1, got {self.tournament_size!r}")
        _check(self.crossover in CROSSOVERS, f"crossover must be one of {', '.join(CROSSOVERS)}, got {self.crossover!r}")
        _check(0.0 <= self.crossover_rate <= 1.0, f"crossover rate must be in [0, 1], got {self.crossover_rate}")
        _check(self.sbx_eta >= 0.0, f"SBX eta must be >= 0, got {self.sbx_eta}")
        _check(self.blx_alpha >= 0.0, f"BLX alpha must be >= 0, got {self.blx_alpha}")
        _check(self.mutation_rate is None or 0.0 <= self.mutation_rate <= 1.0,
               f"mutation rate must be in [0, 1], got {self.mutation_rate}")
        _check(0.0 < self.mutation_sigma < math.inf, f"mutation sigma must be a finite number > 0, got {self.mutation_sigma}")
        _check(self.mutation in MUTATIONS, f"mutation must be one of {', '.join(MUTATIONS)}, got {self.mutation!r}")
        _check(0.0 < self.step_floor <= self.mutation_sigma,
               f"step floor must be in (0, mutation sigma], got {self.step_floor}")
        _check(_is_int(self.elitism) and self.elitism >= 0, f"elitism must be an integer >= 0, got {self.elitism!r}")
        _check(self.bounds in BOUND_HANDLING, f"bounds must be one of {', '.join(BOUND_HANDLING)}, got {self.bounds!r}")


@dataclass(frozen=True)
class MigrationConfig:
    """When and how islands exchange genomes; `every == 0` disables migration.

    The defaults were chosen by scripts/bench_diversity.py (in-process, islands in step) and,
    for `max_lead`, on real launches by scripts/bench_diversity_launch.py
    (docs/MIGRATION_DIVERSITY.md): the old ones (every 10, 5 best replacing the 5 worst) let one
    island's lineage take over the archipelago; these keep many lineages alive at no loss in
    median GA quality on 4 of 5 problems (DE and `--vary` studies lose: see there).
    `probability`, `start` and `min_distance` soften migration further: an event that is due
    happens with `probability`, none happens before generation `start`, and an immigrant
    closer than `min_distance` (RMS over genes, as a share of the box width) to a resident is
    rejected as a near-duplicate. `max_lead` (asynchronous runs) refuses a batch published
    more than that many generations after this island's current generation: on a machine whose
    islands run at different speeds a neighbour far ahead sends migrants this island's lineages
    cannot compete with, and they take it over (docs/DESIGN.md, "Asynchronous"); 0
    (the default) takes batches from the same event or earlier, as islands in step would; -1 is
    no limit (every run recorded before the limit existed).
    `mode` "sync" makes a run a pure function of its seed and settings (docs/DESIGN.md,
    "Synchronous migration"): an island waits at each event, up to `sync_timeout` seconds, for
    each source's batch of that generation, and an island may run at most a ring's depth of
    events ahead of the islands that read it. "async" (the default) never waits.
    """

    every: int = 10
    migrants: int = 1
    topology: str = "ring"
    emigrants: str = "best"
    replacement: str = "worst"
    keep_batches: int = 4
    probability: float = 1.0
    start: int = 0
    min_distance: float = 0.05
    max_lead: int = 0
    mode: str = "async"
    sync_timeout: float = 120.0

    def __post_init__(self) -> None:
        _check(self.every >= 0, f"migrate-every must be >= 0, got {self.every}")
        _check(self.migrants >= 1, f"migrants must be >= 1, got {self.migrants}")
        _check(self.topology in TOPOLOGIES, f"topology must be one of {', '.join(TOPOLOGIES)}, got {self.topology!r}")
        _check(self.emigrants in EMIGRANT_POLICIES, f"emigrant policy must be one of {', '.join(EMIGRANT_POLICIES)}, got {self.emigrants!r}")
        _check(self.replacement in REPLACEMENT_POLICIES, f"replacement must be one of {', '.join(REPLACEMENT_POLICIES)}, got {self.replacement!r}")
        _check(self.keep_batches >= 1, f"keep-batches must be >= 1, got {self.keep_batches}")
        _check(isinstance(self.probability, (int, float)) and 0.0 < self.probability <= 1.0,
               f"migration probability must be in (0, 1], got {self.probability}")
        _check(self.start >= 0, f"migration start must be >= 0, got {self.start}")
        _check(isinstance(self.min_distance, (int, float)) and 0.0 <= self.min_distance < math.inf,
               f"migration min-distance must be a finite number >= 0, got {self.min_distance}")
        _check(_is_int(self.max_lead) and self.max_lead >= -1,
               f"migration max-lead must be an integer >= -1 (-1: no limit), got {self.max_lead!r}")
        _check(self.mode in MIGRATION_MODES,
               f"migration must be one of {', '.join(MIGRATION_MODES)}, got {self.mode!r}")
        _check(isinstance(self.sync_timeout, (int, float)) and not isinstance(self.sync_timeout, bool)
               and 0.0 < self.sync_timeout < math.inf,
               f"migration timeout must be a finite number of seconds > 0, got {self.sync_timeout!r}")

    def due(self, generation: int, island_seed: int) -> bool:
        """Whether this island migrates at `generation`: the one rule of the loop and the benchmarks.

        Due every `every` generations from `start` on (never at generation 0); a due event
        then happens with `probability`, drawn from a torch generator seeded by the island's
        seed and the generation. Drawing there rather than from the island's own stream
        keeps the decision a pure function: a resumed island repeats it exactly, and the
        island's breeding stream is the same whatever the probability.
        """
        if not self.every or generation <= 0 or generation < self.start or generation % self.every:
            return False
        if self.probability >= 1.0:
            return True
        import torch  # lazy: the launcher and `islands status` import config torch-free; torch only for a draw

        g = torch.Generator()
        g.manual_seed((island_seed * 1_000_003 + generation) % 2**63)
        return bool(torch.rand((), generator=g) < self.probability)


INLINE_PREFIX = "<python:"  # a problem given as a Python object (islands.problems.inline)


def is_inline(name: object) -> bool:
    """Whether a recorded problem name stands for a Python object given in one process."""
    return isinstance(name, str) and name.startswith(INLINE_PREFIX)


def not_rebuildable(name: str) -> str:
    """Why a process cannot build an inline run's problem from its manifest, and what to do."""
    return (f"this run's problem {name} is a Python function given to islands.runs.evolve(problem=...) "
            "in another process; only that call can run it (pass the same function again to resume), "
            "or start a new run with an import path --problem module:factory")


def _problem_message(problem: Any) -> str:
    """Why a non-name problem is refused, and where a Python function or Problem can run."""
    if isinstance(problem, str):
        return "problem is empty; name a built-in problem or an import path module:factory"
    return (f"problem must be a name or an import path 'module:factory', got {type(problem).__name__} "
            f"{getattr(problem, '__qualname__', getattr(problem, 'name', ''))!r}; a Python function or Problem runs "
            "in this process with islands.runs.evolve(island, run_dir, config, problem=obj), while the launcher "
            "starts islands as new processes, which import the problem: put a factory in a module and pass "
            "'module:factory'")


@dataclass(frozen=True)
class RunConfig:
    """Everything the islands of one run agree on; recorded in the manifest."""

    problem: str = "rastrigin"
    dim: int = 10
    problem_params: Mapping[str, Any] = field(default_factory=dict)
    algorithm: str = "ga"
    population: int | None = None  # None: the algorithm's default (GA 100, CMA-ES 4 + 3 ln D, ...)
    # None: DEFAULT_GENERATIONS, or no generation limit when an evaluation budget is set (a
    # budget is then the limit); resolved here, so a manifest records what the run does.
    generations: int | None = None
    seed: int = 0
    checkpoint_every: int = 25
    # A periodic checkpoint also waits until this many seconds have passed since the last one
    # (0: by generations only), so a fast island does not fsync every 25 generations.
    checkpoint_seconds: float = 30.0
    stagnation_limit: int = 0  # 0: never stop for stagnation
    target: float | None = None  # None: the problem's own "solved" threshold
    max_evaluations: int | None = None  # each island's evaluation budget (None: none)
    # The run's total budget (`--max-evaluations`), recorded as given; `islands.budget` splits it
    # over the planned islands into max_evaluations, which is what an island stops on.
    evaluation_budget: int | None = None
    # How the islands share `evaluation_budget` (`islands.budget_share`): "even" splits it, "progress"
    # weights each island's part by its progress per evaluation; "auto" is "progress" for a launch
    # whose islands run different algorithms (`launcher.request.new_run_config`), else "even".
    budget_share: str = "auto"
    dtype: str | None = None  # None: the problem's own (float64 benchmarks, float32 networks)
    ga: GAConfig = field(default_factory=GAConfig)
    migration: MigrationConfig = field(default_factory=MigrationConfig)
    algorithm_params: Mapping[str, Any] = field(default_factory=dict)
    stop_when: str = "all"  # "first": the whole run stops once one island reaches the target
    tuner: TunerConfig = field(default_factory=TunerConfig)  # islands changing their own settings (islands.tuning)

    def __post_init__(self) -> None:
        _check(isinstance(self.problem, str) and bool(self.problem.strip()), _problem_message(self.problem))
        _check(self.stop_when in STOP_WHEN, f"stop-when must be one of {', '.join(STOP_WHEN)}, got {self.stop_when!r}")
        if self.population is None and self.algorithm in FIXED_DEFAULT_POPULATION:
            object.__setattr__(self, "population", FIXED_DEFAULT_POPULATION[self.algorithm])
        _check(self.dim >= 1, f"dim must be >= 1, got {self.dim}")
        _check(self.algorithm in ALGORITHMS, f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        _check(self.population is None or (_is_int(self.population) and self.population >= 2),
               f"population must be >= 2 and an integer, got {self.population!r}")
        _check(self.max_evaluations is None or (_is_int(self.max_evaluations) and self.max_evaluations >= 1),
               f"max evaluations per island must be an integer >= 1, got {self.max_evaluations!r}")
        _check(self.evaluation_budget is None or (_is_int(self.evaluation_budget) and self.evaluation_budget >= 1),
               f"max evaluations (the run's budget) must be an integer >= 1, got {self.evaluation_budget!r}")
        _check(self.budget_share in BUDGET_SHARES,
               f"budget-share must be one of {', '.join(BUDGET_SHARES)}, got {self.budget_share!r}")
        _check(self.budget_share != "progress" or self.evaluation_budget is not None,
               "--budget-share progress shares the run's budget: give it with --max-evaluations")
        if self.generations is None and self.max_evaluations is None and self.evaluation_budget is None:
            object.__setattr__(self, "generations", DEFAULT_GENERATIONS)
        _check(self.dtype is None or self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        _check(self.generations is None or (_is_int(self.generations) and self.generations >= 0),
               f"generations must be >= 0 and an integer, got {self.generations!r}")
        _check(0 <= self.seed < 2**63, f"seed must be in [0, 2**63), got {self.seed}")
        _check(self.checkpoint_every >= 1, f"checkpoint-every must be >= 1, got {self.checkpoint_every}")
        _check(isinstance(self.checkpoint_seconds, (int, float)) and not isinstance(self.checkpoint_seconds, bool)
               and math.isfinite(self.checkpoint_seconds) and self.checkpoint_seconds >= 0,
               f"checkpoint-seconds must be a finite number >= 0, got {self.checkpoint_seconds!r}")
        _check(self.stagnation_limit >= 0, f"stagnation limit must be >= 0, got {self.stagnation_limit}")
        _check(self.target is None or math.isfinite(self.target), f"target must be a finite number, got {self.target}")
        _check(self.population is None or not registry.uses_ga_options(self.algorithm) or self.ga.elitism < self.population,
               f"elitism ({self.ga.elitism}) must be below the population ({self.population})")
        _check(self.population is None or not self.migration.every or self.migration.migrants <= self.population,
               f"migrants ({self.migration.migrants}) must not exceed the population ({self.population}); lower --migrants")
        if self.tuner.active and self.generations is not None:
            first = self.tuner.first_decision
            _check(first < self.generations, f"--{'ready' if self.tuner.kind == 'pbt' else 'rung'} {first} is not "
                   f"below the run's {self.generations} generations: the tuner would never act")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["problem_params"] = dict(self.problem_params)
        d["algorithm_params"] = dict(self.algorithm_params)
        d["tuner"]["space"] = list(self.tuner.space)  # as a manifest reads back
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        data = dict(data)
        if "ga" in data:
            data["ga"] = _from_mapping(GAConfig, data["ga"], "GA")
        if "migration" in data:
            data["migration"] = _from_mapping(MigrationConfig, data["migration"], "migration")
        if "tuner" in data:
            data["tuner"] = _from_mapping(TunerConfig, data["tuner"], "tuner")
        return _from_mapping(cls, data, "run")

    def with_overrides(self, overrides: Mapping[str, Any]) -> "RunConfig":
        """This config with per-island overrides applied (see `VARIABLE_SETTINGS`).

        `algo.KEY` / `param.KEY` add to (or replace in) `algorithm_params` / `problem_params`.
        An island whose override switches the algorithm away from one with a fixed default
        population (GA 100) gets the new algorithm's default unless `population` is overridden
        too or differs from that default, so `--vary algorithm=cmaes,de,ga` does not run
        CMA-ES with the GA's 100.
        """
        if not overrides:
            return self
        ga_names = {f.name for f in fields(GAConfig)}
        ga = {k: v for k, v in overrides.items() if k in ga_names}
        algo = {k[len(ALGO_PREFIX):]: v for k, v in overrides.items() if k.startswith(ALGO_PREFIX)}
        param = {k[len(PARAM_PREFIX):]: v for k, v in overrides.items() if k.startswith(PARAM_PREFIX)}
        top = {k: v for k, v in overrides.items()
               if k not in ga_names and not k.startswith((ALGO_PREFIX, PARAM_PREFIX))}
        bad = sorted(set(top) - {"population", "algorithm"})
        _check(not bad, f"cannot vary {', '.join(bad)} per island")
        _check(all(k for k in (*algo, *param)), "an algo./param. override needs a name after the dot")
        if ("algorithm" in top and top["algorithm"] != self.algorithm and "population" not in top
                and self.population == FIXED_DEFAULT_POPULATION.get(self.algorithm)):
            top["population"] = None
        extra: dict[str, Any] = {}
        if algo:
            extra["algorithm_params"] = {**dict(self.algorithm_params), **algo}
        if param:
            extra["problem_params"] = {**dict(self.problem_params), **param}
        return dataclasses.replace(self, ga=dataclasses.replace(self.ga, **ga), **top, **extra)

    def trajectory_hash(self) -> str:
        """Hash of the settings that shape an island's trajectory.

        Stopping rules (generations, target, stagnation, checkpoint interval) are left out:
        changing them must not invalidate a checkpoint.
        """
        d = self.to_dict()
        for k in ("generations", "target", "stagnation_limit", "checkpoint_every", "checkpoint_seconds",
                  "max_evaluations", "evaluation_budget", "stop_when", "budget_share"):
            d.pop(k)
        # How long a sync island waits is no trajectory setting, and async (the default, and
        # every run before the mode existed) hashes as before, so old checkpoints still resume.
        d["migration"].pop("sync_timeout")
        if d["migration"]["mode"] == "async":
            d["migration"].pop("mode")
        if d["migration"]["max_lead"] == NO_LEAD_LIMIT:  # runs recorded before the limit hash as before
            d["migration"].pop("max_lead")
        # Untuned runs (every run before tuners existed) hash as before; the journal is no setting.
        if self.tuner.active:
            d["tuner"].pop("optuna_journal")
        else:
            d.pop("tuner")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def island_seed(run_seed: int, island: str) -> int:
    """A 63-bit seed for one island, derived from the run seed and the island id."""
    digest = hashlib.blake2b(f"{run_seed}:{island}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def episode_seed(island_seed: int, generation: int) -> int:
    """The 63-bit seed of the episodes a stochastic problem plays at `generation` on an island.

    A pure function of the island's seed and the generation, not a draw from the island's
    generator: a resumed island gets the same episodes without checkpointing anything, and
    problems without episodes leave the island's random stream exactly as it was.
    """
    digest = hashlib.blake2b(f"episodes:{island_seed}:{generation}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


VARIABLE_SETTINGS = (
    "mutation_sigma",
    "mutation_rate",
    "crossover_rate",
    "tournament_size",
    "sbx_eta",
    "blx_alpha",
    "elitism",
    "population",
    "algorithm",
    "crossover",
    "mutation",
    "bounds",
)
"""Plain names `--vary` accepts; besides these, any `algo.KEY` and `param.KEY`."""
