"""Runners for search-quality benchmarks: islands algorithms and archipelagos, and the peers.

Every runner spends at most `budget` evaluations of one problem (a built-in problem's name, or a
`Problem` whose optimum is known, e.g. a COCO function in bench_coco.py) and reports through a
`Trace`: the best f - f_opt seen after each evaluation count, so evaluations to any target
and the final precision come from the same record for every method.

- `run_islands`: N islands of one (or several) islands algorithms in one process, ring
  migration every `every` generations with the run's default migration policies, the same
  algorithm code and the same `emigrants`/`immigrate` calls the island process makes; only
  the file exchange is replaced by handing the batch over in memory (what the files add is
  measured by bench_migration.py). Immigrants are counted as evaluations (they are
  re-evaluated on arrival).
- `run_pycma`: pycma's `fmin2` with BIPOP restarts, the whole population evaluated per call.
- `run_pygmo`: N pygmo populations evolved by `de` or `sade` for `every` generations at a
  time, then the best of each replaces the worst of the next on a ring if it is better
  (pygmo's default `select_best(1)` / `fair_replace(1)` over a ring). Run one population at a
  time in this process: pygmo's own archipelago would put a Python problem in worker
  processes, which measures pickling rather than search.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from islands import basins as basin_records, budget_share, policies
from islands.algorithms import Migrants, make_algorithm
from islands.config import MigrationConfig, RunConfig, island_id, island_seed
from islands.problems import Problem, make_problem

TARGETS = tuple(10.0 ** e for e in range(2, -9, -1))  # 1e2 ... 1e-8, as COCO's runtime targets
FLOOR = 1e-8  # precision below this counts as solved: runs stop there
BASINS_EVERY = 25  # generations between basin exchanges (an island's default checkpoint interval)


class BudgetSpent(Exception):
    """Raised inside a peer's objective once the budget is spent or the floor reached."""


@dataclass
class Trace:
    """Best precision (f - f_opt >= 0) against evaluations spent."""

    budget: int
    evaluations: int = 0
    best: float = math.inf
    hits: dict[float, int] = field(default_factory=dict)  # target -> evaluations to reach it
    floor: float = FLOOR  # precision that counts as solved and stops the run (-inf: never)

    def add(self, f: np.ndarray) -> None:
        """Record one batch of f - f_opt values (in evaluation order)."""
        f = np.asarray(f, dtype=np.float64).ravel()
        f = np.where(np.isnan(f), np.inf, f)
        running = np.minimum.accumulate(f)
        for t in TARGETS:
            if t not in self.hits and self.best > t:
                idx = np.flatnonzero(running <= t)
                if idx.size:
                    self.hits[t] = self.evaluations + int(idx[0]) + 1
        self.best = min(self.best, float(running[-1]) if f.size else self.best)
        self.evaluations += f.size

    @property
    def done(self) -> bool:
        return self.evaluations >= self.budget or self.best <= self.floor

    def summary(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations, "precision": max(self.best, 0.0),
                "hits": {f"{t:.0e}": e for t, e in sorted(self.hits.items(), reverse=True)}}


def precision(problem: Problem, fitness: torch.Tensor) -> np.ndarray:
    """f - f_opt from a maximised fitness (optimum 0 for every benchmark here)."""
    return (problem.optimum or 0.0) - fitness.detach().double().cpu().numpy()


@dataclass
class Archipelago:
    """What an in-process archipelago run leaves: the trace and where its lineages began."""

    trace: Trace
    origins: dict[int, int]  # origin island -> individuals descended from it, over all islands
    timeline: list[tuple[int, float]]  # (generation, effective origins) every `sample_every`
    events: int = 0  # migration events (island x due generation that happened)
    received: int = 0
    adopted: int = 0


def effective_origins(counts: dict[int, int] | np.ndarray) -> float:
    """exp(Shannon entropy) of the origin distribution: how many equally common lineages it is worth."""
    c = np.asarray(list(counts.values()) if isinstance(counts, dict) else counts, dtype=np.float64)
    c = c[c > 0]
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return float(math.exp(-(p * np.log(p)).sum()))


def _origin_counts(islands: list[list[Any]]) -> dict[int, int]:
    origin = torch.cat([isl[0].population(isl[2]).origin.reshape(-1).cpu() for isl in islands])
    values, counts = torch.unique(origin, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def problem_of(problem: str | Problem, dim: int) -> Problem:
    """A built-in problem by name (no early stop of its own), or the `Problem` given."""
    return problem if isinstance(problem, Problem) else make_problem(problem, dim, solved_at=None)


def run_archipelago(problem_name: str | Problem, dim: int, budget: int, seed: int, algorithms: Sequence[str],
                    migration: MigrationConfig | None = None, params: dict[str, Any] | None = None,
                    population: int | None = None, sample_every: int = 0,
                    floor: float = FLOOR, share: str = "auto", shared_basins: bool = True) -> Archipelago:
    """len(algorithms) islands (one algorithm each) sharing `budget`, migrating on a ring.

    Migration follows `migration` exactly as an island process does: the same due rule
    (`MigrationConfig.due`, with the island's seed), emigrant and replacement policies, and
    near-duplicate threshold (`mig.min_distance`). `population`
    overrides every island's population (for one big population at equal evaluations).

    `share` is how the islands spend the budget between them: "rounds" steps every island once
    per round out of one pool (equal generations: an island with a larger population spends
    more); "even" gives each island its equal part of the budget, as a launch's
    `--max-evaluations` does (an island past its part is not stepped); "progress" weights those
    parts by each island's progress per evaluation (`islands.budget_share`, as
    `--budget-share progress` does); "auto", like a launch's default, is "progress" when the
    islands run different algorithms and "even" otherwise. `shared_basins`: every
    BASINS_EVERY generations each island is told the basins the others' restarts found, as an
    island process is at its checkpoints (`islands.basin_exchange`).
    """
    if share == "auto":
        share = "progress" if len(set(algorithms)) > 1 else "even"
    mig = migration or MigrationConfig()
    trace = Trace(budget, floor=floor)
    islands = []
    for n, algo_name in enumerate(algorithms):
        problem = problem_of(problem_name, dim)
        cfg = RunConfig(problem=problem.name, dim=dim, algorithm=algo_name, seed=seed,
                        population=population, migration=mig,
                        algorithm_params=(params or {}).get(algo_name, {}))
        algo = make_algorithm(cfg, problem)
        gen = torch.Generator()
        key = island_seed(seed, island_id(n))
        gen.manual_seed(key)
        state = algo.evaluate(algo.init(cfg.population or algo.default_population(), n, gen))
        trace.add(precision(problem, algo.population(state).fitness))
        islands.append([algo, gen, state, problem, key])
    spent = [algo_state_evals(isl) for isl in islands]
    meters = [budget_share.RateMeter() for _ in islands]
    for meter, isl, n in zip(meters, islands, spent):
        meter.add(n, float(isl[0].population(isl[2]).fitness.max()))
    out = Archipelago(trace, {}, [])
    outbox: list[list[Migrants]] = [[] for _ in islands]
    generation = 0
    while not trace.done:
        if sample_every and generation % sample_every == 0:
            out.timeline.append((generation, effective_origins(_origin_counts(islands))))
        live = [True] * len(islands)
        if share == "progress":  # parts by weight, and each island's pace (`budget_share.pace`)
            weight = budget_share.weights([m.rate() for m in meters])
            allowed = [min(a, p) for a, p in zip(budget_share.allowances(spent, weight, live, budget),
                                                  budget_share.paced(spent, weight, live, budget))]
        else:
            allowed = budget_share.allowances(spent, [1.0] * len(islands), live, budget)
        for i, isl in enumerate(islands):
            if share != "rounds" and spent[i] >= allowed[i]:
                continue
            algo, gen, state, problem, _ = isl
            state = algo.evaluate(algo.step(state, generation, gen))
            fitness = algo.population(state).fitness
            trace.add(precision(problem, fitness))
            spent[i] += int(fitness.numel())
            meters[i].add(spent[i], max(meters[i].marks[-1][1], float(fitness.max())))
            isl[2] = state
            if trace.done:
                break
        if trace.done:
            break
        generation += 1
        if shared_basins and len(islands) > 1 and generation % BASINS_EVERY == 0:
            share_basins(islands)
        if len(islands) > 1:
            events, received, adopted = ring_exchange(islands, outbox, mig, generation)
            out.events, out.received, out.adopted = out.events + events, out.received + received, out.adopted + adopted
            trace.add(np.full(received, np.inf))  # re-evaluated on arrival: count them
    out.origins = _origin_counts(islands)
    if sample_every:
        out.timeline.append((generation, effective_origins(out.origins)))
    return out


def share_basins(islands: list[list[Any]]) -> None:
    """Tell each in-process island `[algo, gen, state, ...]` the basins the others recorded."""
    own = [isl[0].basins(isl[2]) for isl in islands]
    for i, isl in enumerate(islands):
        if own[i] is not None:
            others = [o for j, o in enumerate(own) if j != i and o is not None and o.shape[1] == own[i].shape[1]]
            isl[2] = isl[0].with_basins(isl[2], basin_records.merged(others, own[i].shape[1] - 2))


def algo_state_evals(isl: list[Any]) -> int:
    """Evaluations an in-process island's current population cost."""
    return int(isl[0].population(isl[2]).fitness.numel())


def ring_exchange(islands: list[list[Any]], outbox: list[list[Migrants]], mig: MigrationConfig, generation: int,
                  on_arrival: Any = None) -> tuple[int, int, int]:
    """One generation's migration among in-process islands `[algo, gen, state, problem, key]`
    on a ring, as through the pool: an island publishes at its own events (`mig.due` with its
    seed), and at its next event island i adopts what island i-1 published since (the last
    `keep_batches` batches at most). `on_arrival(island)` runs before an island adopts (e.g. to
    reseed its episodes). States are updated in place; returns (events, received, adopted).
    """
    due = [mig.due(generation, isl[4]) for isl in islands]
    for j, isl in enumerate(islands):
        if due[j]:
            outbox[j].append(policies.emigrate(isl[0], isl[2], mig.migrants, mig.emigrants, isl[1]))
            del outbox[j][:-mig.keep_batches]
    events = received = adopted = 0
    for i, isl in enumerate(islands):
        if not due[i]:
            continue
        events += 1
        unread, outbox[i - 1] = outbox[i - 1], []
        if not unread:
            continue
        incoming = unread[0] if len(unread) == 1 else Migrants(
            *(np.concatenate([getattr(b, f) for b in unread])
              for f in ("genomes", "fitness", "origin", "birth", "lineage")))
        if on_arrival is not None:
            on_arrival(isl)
        isl[2], n = policies.immigrate(isl[0], isl[2], incoming, mig.replacement, isl[1], mig.min_distance)
        received, adopted = received + len(incoming), adopted + n
    return events, received, adopted


def run_islands(problem_name: str | Problem, dim: int, budget: int, seed: int, algorithms: Sequence[str],
                every: int = 10, migration: MigrationConfig | None = None,
                params: dict[str, Any] | None = None, share: str = "auto", shared_basins: bool = True) -> Trace:
    """len(algorithms) islands (one algorithm each) sharing `budget`, ring migration every `every`."""
    mig = dataclasses.replace(migration or MigrationConfig(), every=every)
    return run_archipelago(problem_name, dim, budget, seed, algorithms, mig, params, share=share,
                           shared_basins=shared_basins).trace


def _objective(problem: Problem, trace: Trace):
    def f(xs: Any) -> list[float]:
        if trace.done:
            raise BudgetSpent
        x = torch.as_tensor(np.atleast_2d(np.asarray(xs, dtype=np.float64)))
        values = precision(problem, problem.evaluate(x))
        trace.add(values)
        return values.tolist()
    return f


def run_pycma(problem_name: str | Problem, dim: int, budget: int, seed: int) -> Trace:
    """pycma with BIPOP restarts from a uniform random start in the box, sigma0 = 0.3 x width."""
    import cma

    problem = problem_of(problem_name, dim)
    trace = Trace(budget)
    lower, upper = (b.double().numpy() for b in problem.bounds(dtype=torch.float64))
    rng = np.random.default_rng(seed)
    objective = _objective(problem, trace)
    opts = {"bounds": [lower.tolist(), upper.tolist()], "seed": seed + 1, "verbose": -9,
            "maxfevals": budget, "ftarget": FLOOR}
    try:
        cma.fmin2(None, lambda: lower + (upper - lower) * rng.random(dim), 0.3 * float(np.mean(upper - lower)),
                  opts, restarts=9, bipop=True, parallel_objective=lambda xs: objective(xs))
    except BudgetSpent:
        pass
    return trace


class _PygmoProblem:
    """A problem as pygmo's user-defined problem (minimisation of f - f_opt)."""

    def __init__(self, problem: Problem, trace: Trace) -> None:
        self.problem, self.trace = problem, trace
        lo, hi = problem.bounds(dtype=torch.float64)
        self.lo, self.hi = lo.numpy(), hi.numpy()
        self.f = _objective(problem, trace)

    def fitness(self, x: np.ndarray) -> list[float]:
        return self.f(x)

    def get_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lo, self.hi


def run_pygmo(problem_name: str | Problem, dim: int, budget: int, seed: int, algorithm: str = "de",
              islands: int = 4, pop: int = 20, every: int = 10) -> Trace:
    """`islands` pygmo populations of `pop` evolved by `algorithm`, ring migration every `every`."""
    import pygmo as pg

    problem = problem_of(problem_name, dim)
    trace = Trace(budget)
    prob = pg.problem(_PygmoProblem(problem, trace))
    make = {"de": lambda s: pg.de(gen=every, seed=s), "sade": lambda s: pg.sade(gen=every, seed=s)}[algorithm]
    try:
        pops = [pg.population(prob, pop, seed=seed * 100 + i) for i in range(islands)]
        algos = [pg.algorithm(make(seed * 100 + i)) for i in range(islands)]
        while not trace.done:
            pops = [a.evolve(p) for a, p in zip(algos, pops)]
            best = [(p.get_x()[p.best_idx()], p.get_f()[p.best_idx()]) for p in pops]
            for i, p in enumerate(pops):
                x, f = best[i - 1]
                worst = p.worst_idx()
                if f[0] < p.get_f()[worst][0]:
                    p.set_xf(worst, x, f)  # fair_replace: only if better than the one it replaces
    except (BudgetSpent, RuntimeError) as e:  # pygmo re-raises the objective's exception as RuntimeError
        if not trace.done:
            raise RuntimeError(f"pygmo {algorithm} failed on {problem.name}: {e}") from None
    return trace


def method_runner(name: str):
    """A callable (problem, dim, budget, seed) -> Trace for a method name of the benchmark.

    Islands methods may end with KEY=VALUE settings, given to every island's algorithm as
    `--algorithm-param` would ('cmaes x4 restarts=ipop'), except `share=` (auto,
    rounds, even or progress: how the islands share the budget, `run_archipelago`) and
    `shared_basins=0` (islands keep their basins to themselves).
    """
    if name == "pycma-bipop":
        return run_pycma
    if name.startswith("pygmo-"):
        algorithm = name.split("-", 1)[1].split(" ")[0]
        return lambda p, d, b, s: run_pygmo(p, d, b, s, algorithm)
    settings = dict(t.split("=", 1) for t in name.split() if "=" in t)
    share = settings.pop("share", "auto")
    shared = settings.pop("shared_basins", "1") != "0"
    algorithms = _archipelago(" ".join(t for t in name.split() if "=" not in t))
    params = {a: settings for a in algorithms} if settings else None
    return lambda p, d, b, s: run_islands(p, d, b, s, algorithms, params=params, share=share, shared_basins=shared)


def _archipelago(name: str) -> list[str]:
    """'cmaes' -> one island; 'de x4' -> four; 'cmaes+de+ga x6' -> the three cycled over six."""
    parts = name.split()
    count = int(parts[-1][1:]) if parts[-1].startswith("x") else 1
    algos = parts[0].split("+")
    return [algos[i % len(algos)] for i in range(count)]

