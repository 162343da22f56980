"""Differential evolution with self-adapted control parameters (SHADE, and jDE's rand/1).

`current-to-pbest/1` (the default) is SHADE (Tanabe & Fukunaga 2013): every trial draws its
own F from a Cauchy and CR from a normal distribution around a randomly chosen entry of a
success-history memory of H pairs; after selection, the entry at a moving index k becomes
the improvement-weighted Lehmer mean of the successful F and weighted arithmetic mean of
the successful CR, so the parameters follow what produced improvements. Mutation is
x + F (x_pbest - x) + F (x_r1 - x_r2) with x_pbest one of the best p*P (p uniform in
[2/P, p_best]) and x_r2 drawn from the population joined with an archive of parents that
lost to their trials (as many as the population times `archive_rate`; random ones are
dropped when it is full), which keeps directions diverse after the population contracts.

`rand/1` is the classic x_r1 + F (x_r2 - x_r3) with jDE's self-adaptation (Brest et al.
2006): each individual carries its own F and CR, a trial renews them with probability 0.1
(F uniform in [0.1, 1], CR uniform in [0, 1]) and keeps them only if the trial survives.
It needs no memory and no archive; we chose jDE over fixed F/CR because no fixed pair suits
both separable and rotated problems.

Both use binomial crossover with one forced gene (j_rand) and SHADE's bound rule: a gene
that leaves the box lands halfway between its parent's gene and the violated bound.

The island loop evaluates after `step`, so `step` only draws the trials (kept beside the
parents, which it never changes) together with every random number the selection needs;
`evaluate` then evaluates the trials and does the selection (trial >= parent), the memory
update and the archive update. `population(state)` is therefore always the selected
population, and statistics, emigrants and checkpoints see it.

Migration: immigrants replace residents per the run's replacement policy (the island's
`islands.policies`); in `with_population` an immigrant takes the population's median F and CR (its own
parameters, under jDE). The memory and archive are left alone: they describe this island's
search, and the archive only supplies difference vectors.

Default population 5 D within [20, 100], H = 6 (L-SHADE's choice). Evaluations until f < 1e-8
(3 seeds, float64; every run that reached 1e-8 ended below 1e-20 at 2e4 D evaluations):

    D   P            sphere  rosenbrock     rastrigin  schwefel  ackley
    10  20 (SHADE)   3k      10k (2 seeds stuck at 3.99)  7k  7k (1 seed stuck)  6k
    10  50 (SHADE)   8k      18k            19k        18k       15k
    10  100 (SHADE)  15k     30k            39k        34k       28k
    10  100 (jDE)    20k     124k           44k        33k       39k
    20  100 (SHADE)  18k     60k            67k        55k       32k
    10  20 pygmo sade   5k   41k            7k         7k (1 seed stuck)  10k
    10  20 pygmo de1220 4k   37k            10k        8k        8k
    20  20 pygmo sade   10k  204k           15k        15k       19k
    20  20 pygmo de1220 8k   121k           19k        16k       17k

P = 20 is fastest but lost Rosenbrock on 2 seeds of 3; 50 solved all at D=10 in half
the evaluations of 100. pygmo's sade and de1220 (population 20, same budget) need about half
of ours on the separable problems.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from islands import operators as ops
from islands.algorithms.params import config_from_params
from islands.algorithms.vector import VectorAlgorithm, VectorPopulation
from islands.errors import ConfigError
from islands.population import Population
from islands.problems import Problem

STRATEGIES = ("current-to-pbest/1", "rand/1")
_SCALE_F, _SCALE_CR = 0.1, 0.1  # SHADE's Cauchy and normal scales
_JDE_TAU = 0.1  # jDE: probability that a trial renews F (and, independently, CR)


@dataclass(frozen=True)
class DEConfig:
    """Settings of differential evolution (`--algorithm-param KEY=VALUE`).

    Attributes:
        strategy: "current-to-pbest/1" (SHADE) or "rand/1" (jDE).
        memory_size: H, entries of SHADE's success-history memory.
        archive_rate: archive capacity as a share of the population (0 disables it).
        p_best: the largest share of the population x_pbest is drawn from (the smallest is 2/P).
    """

    strategy: str = "current-to-pbest/1"
    memory_size: int = 6
    archive_rate: float = 1.0
    p_best: float = 0.2

    def __post_init__(self) -> None:
        def need(cond: bool, what: str, value: Any) -> None:
            if not cond:
                raise ConfigError(f"de: {what}, got {value!r}")

        need(self.strategy in STRATEGIES, f"strategy must be one of {', '.join(STRATEGIES)}", self.strategy)
        need(isinstance(self.memory_size, int) and not isinstance(self.memory_size, bool)
             and 1 <= self.memory_size <= 10_000, "memory_size must be an integer in [1, 10000]", self.memory_size)
        need(isinstance(self.archive_rate, float) and 0.0 <= self.archive_rate <= 10.0,
             "archive_rate must be a number in [0, 10]", self.archive_rate)
        need(isinstance(self.p_best, float) and 0.0 < self.p_best <= 1.0,
             "p_best must be a number in (0, 1]", self.p_best)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "DEConfig":
        """Build from `--algorithm-param` values (strings or numbers); unknown keys are refused."""
        return config_from_params(cls, params, "de")

@dataclass(frozen=True)
class Trials:
    """Trial vectors awaiting evaluation, with what selection needs to judge them."""

    pop: VectorPopulation  # trial genomes; provenance of the parent they compete with
    f: Tensor  # [P] F each trial was made with
    cr: Tensor  # [P] CR each trial was made with
    keys: Tensor  # [A + P] random keys that decide which archive rows survive an overflow


@dataclass(frozen=True)
class DEState:
    """The selected population, the adapted parameters and (between step and evaluate) trials."""

    pop: VectorPopulation
    f: Tensor  # [P] each individual's F (jDE) / the F of the trial that made it (SHADE)
    cr: Tensor  # [P] likewise for CR
    memory_f: Tensor  # [H] SHADE's M_F
    memory_cr: Tensor  # [H] SHADE's M_CR
    k: Tensor  # int64 scalar: the memory entry the next success updates
    archive: Tensor  # [A, D]; rows [0, archive_size) are filled
    archive_size: Tensor  # int64 scalar
    trials: Trials | None = None


def update_memory(memory_f: Tensor, memory_cr: Tensor, k: Tensor, f: Tensor, cr: Tensor,
                  gain: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """SHADE's memory update: entry k <- weighted Lehmer mean of F, weighted mean of CR.

    `gain` [P] is each trial's improvement over its parent (0 for trials that did not
    improve); the weights are gain / sum(gain). When nothing improved, the memory and k stay.
    Returns new `(memory_f, memory_cr, k)`; the inputs are not modified.
    """
    total = gain.sum()
    any_success = total > 0
    w = gain / torch.where(any_success, total, torch.ones_like(total))
    wf = (w * f).sum()
    lehmer = (w * f * f).sum() / torch.where(wf > 0, wf, torch.ones_like(wf))
    mean_cr = (w * cr).sum()
    slot = (torch.arange(memory_f.shape[0], device=memory_f.device) == k) & any_success
    return (torch.where(slot, lehmer, memory_f), torch.where(slot, mean_cr, memory_cr),
            (k + any_success.to(k.dtype)) % memory_f.shape[0])


def draw_excluding(n: Tensor | int, excluded: list[Tensor], gen: torch.Generator, size: int,
                   device: torch.device) -> Tensor:
    """[size] indices uniform in [0, n) that differ from every row's `excluded` indices.

    The shift trick: draw in [0, n - len(excluded)), then step over the excluded values in
    ascending order; the excluded values of a row must be distinct and below n.
    """
    u = torch.rand(size, generator=gen, device=device, dtype=torch.float64)
    r = (u * (n - len(excluded))).long()
    for e in torch.sort(torch.stack(excluded, dim=1), dim=1).values.unbind(1):
        r = r + (r >= e).long()
    return r


def truncated_cauchy(loc: Tensor, scale: float, gen: torch.Generator) -> Tensor:
    """Cauchy(loc, scale) conditioned on > 0, capped at 1: SHADE's "redraw until F > 0".

    Drawn in one pass by inverting the CDF on (CDF(0), 1], not by a loop of redraws.
    """
    low = 0.5 + torch.atan(-loc / scale) / math.pi
    u = 1.0 - torch.rand(loc.shape, generator=gen, device=loc.device, dtype=loc.dtype)  # (0, 1]
    f = loc + scale * torch.tan(math.pi * (low + (1.0 - low) * u - 0.5))
    return f.clamp(torch.finfo(loc.dtype).tiny, 1.0)


class DifferentialEvolution(VectorAlgorithm[DEState]):
    """SHADE / jDE on a vector problem, in the run's dtype on the problem's device."""

    def __init__(self, problem: Problem, cfg: DEConfig, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(problem, device, dtype)
        self.cfg = cfg
        self.shade = cfg.strategy == "current-to-pbest/1"

    def default_population(self) -> int:
        # 5 D within [20, 100]: the smallest that solved every benchmark (module docstring).
        return int(min(100, max(20, 5 * self.problem.dim)))

    # -- immigrants ----------------------------------------------------------------------
    def with_population(self, state: DEState, pop: Population, new_rows: np.ndarray) -> DEState:
        """Immigrants take the median F and CR: they bring no parameters of their own."""
        if not new_rows.size:
            return dataclasses.replace(state, pop=VectorPopulation.of(pop))
        rows = torch.as_tensor(new_rows, device=self.device)
        f = state.f.index_fill(0, rows, float(state.f.median()))
        cr = state.cr.index_fill(0, rows, float(state.cr.median()))
        return dataclasses.replace(state, pop=VectorPopulation.of(pop), f=f, cr=cr)

    # -- Algorithm interface -----------------------------------------------------------------
    def init(self, size: int, island: int, gen: torch.Generator) -> DEState:
        need = 3 if self.shade else 4
        if size < need:
            raise ConfigError(f"de: strategy {self.cfg.strategy} needs a population of at least {need}, got {size}")
        pop = self.uniform_population(size, island, gen)
        h, a = self.cfg.memory_size, self._archive_capacity(size)
        full = lambda n, v: torch.full((n,), v, device=self.device, dtype=self.dtype)  # noqa: E731
        return DEState(
            pop=pop, f=full(size, 0.5), cr=full(size, 0.5 if self.shade else 0.9),
            memory_f=full(h, 0.5), memory_cr=full(h, 0.5),
            k=torch.zeros((), device=self.device, dtype=torch.int64),
            archive=torch.zeros((a, self.problem.dim), device=self.device, dtype=self.dtype),
            archive_size=torch.zeros((), device=self.device, dtype=torch.int64),
        )

    def _archive_capacity(self, size: int) -> int:
        return int(round(self.cfg.archive_rate * size)) if self.shade else 0

    def step(self, state: DEState, generation: int, gen: torch.Generator) -> DEState:
        pop = state.pop
        assert pop.fitness is not None and state.trials is None, "step needs an evaluated, selected population"
        size, dim = pop.genomes.shape
        x, dev = pop.genomes, self.device
        rows = torch.arange(size, device=dev)
        if self.shade:
            pick = torch.randint(self.cfg.memory_size, (size,), generator=gen, device=dev)
            cr = (state.memory_cr[pick] + _SCALE_CR * torch.randn(
                size, generator=gen, device=dev, dtype=self.dtype)).clamp(0.0, 1.0)
            f = truncated_cauchy(state.memory_f[pick], _SCALE_F, gen)
            p_min = 2.0 / size
            p = p_min + torch.rand(size, generator=gen, device=dev, dtype=torch.float64) * max(0.0, self.cfg.p_best - p_min)
            n_top = torch.ceil(p * size).clamp(1, size)
            order = torch.argsort(ops.rankable(pop.fitness), descending=True, stable=True)
            best = order[(torch.rand(size, generator=gen, device=dev, dtype=torch.float64) * n_top).long()]
            r1 = draw_excluding(size, [rows], gen, size, dev)
            r2 = draw_excluding(size + state.archive_size, [rows, r1], gen, size, dev)
            pool = torch.cat([x, state.archive])
            mutant = x + f[:, None] * (x[best] - x) + f[:, None] * (x[r1] - pool[r2])
        else:
            renew_f = torch.rand(size, generator=gen, device=dev) < _JDE_TAU
            new_f = 0.1 + 0.9 * torch.rand(size, generator=gen, device=dev, dtype=self.dtype)
            renew_cr = torch.rand(size, generator=gen, device=dev) < _JDE_TAU
            new_cr = torch.rand(size, generator=gen, device=dev, dtype=self.dtype)
            f, cr = torch.where(renew_f, new_f, state.f), torch.where(renew_cr, new_cr, state.cr)
            r1 = draw_excluding(size, [rows], gen, size, dev)
            r2 = draw_excluding(size, [rows, r1], gen, size, dev)
            r3 = draw_excluding(size, [rows, r1, r2], gen, size, dev)
            mutant = x[r1] + f[:, None] * (x[r2] - x[r3])
        cross = torch.rand((size, dim), generator=gen, device=dev, dtype=self.dtype) < cr[:, None]
        forced = torch.randint(dim, (size, 1), generator=gen, device=dev)
        cross = cross | (torch.arange(dim, device=dev) == forced)
        trial = torch.where(cross, mutant, x)
        trial = torch.where(trial < self.lower, 0.5 * (x + self.lower), trial)
        trial = torch.where(trial > self.upper, 0.5 * (x + self.upper), trial)
        keys = torch.rand(state.archive.shape[0] + size, generator=gen, device=dev, dtype=torch.float64)
        born = VectorPopulation(genomes=trial, fitness=None, origin=pop.origin, lineage=pop.lineage,
                                birth=torch.full_like(pop.birth, generation + 1))
        return dataclasses.replace(state, trials=Trials(born, f, cr, keys))

    def evaluate(self, state: DEState) -> DEState:
        if state.trials is None:  # a new population (init): just its fitness
            return super().evaluate(state)
        parents, t = state.pop, state.trials
        assert parents.fitness is not None
        fit = self.problem.evaluate(t.pop.genomes).to(self.dtype)
        old, new = ops.rankable(parents.fitness), ops.rankable(fit)
        accept = new >= old  # ties move: DE drifts across plateaus
        better = new > old
        take = lambda a, b: torch.where(accept.view(-1, *([1] * (a.ndim - 1))), a, b)  # noqa: E731
        pop = VectorPopulation(
            genomes=take(t.pop.genomes, parents.genomes), fitness=take(fit, parents.fitness),
            origin=parents.origin, lineage=parents.lineage, birth=take(t.pop.birth, parents.birth),
        )
        state = dataclasses.replace(state, pop=pop, f=take(t.f, state.f), cr=take(t.cr, state.cr), trials=None)
        if not self.shade:
            return state
        memory_f, memory_cr, k = update_memory(state.memory_f, state.memory_cr, state.k, t.f, t.cr,
                                               _gain(new, old, better))
        archive, archive_size = self._archived(state.archive, state.archive_size, parents.genomes, better, t.keys)
        return dataclasses.replace(state, memory_f=memory_f, memory_cr=memory_cr, k=k,
                                   archive=archive, archive_size=archive_size)

    def _archived(self, archive: Tensor, filled: Tensor, parents: Tensor, lost: Tensor,
                  keys: Tensor) -> tuple[Tensor, Tensor]:
        """The archive with the parents that lost to their trials; random rows go when full.

        Filled rows and new ones get keys in [1, 2), empty rows 0: the top A keys keep every
        row when they fit and a uniform random subset otherwise, filled rows sorted first.
        """
        cap = archive.shape[0]
        if cap == 0:
            return archive, filled
        valid = torch.cat([torch.arange(cap, device=self.device) < filled, lost])
        chosen = torch.topk(torch.where(valid, 1.0 + keys, torch.zeros_like(keys)), cap).indices
        size = torch.clamp(filled + lost.sum(), max=cap)
        kept = torch.cat([archive, parents])[chosen]
        kept = torch.where((torch.arange(cap, device=self.device) < size)[:, None], kept, torch.zeros_like(kept))
        return kept, size

    def info(self, state: DEState) -> dict[str, float | int]:
        if self.shade:
            return {"F": float(state.memory_f.mean()), "CR": float(state.memory_cr.mean())}
        return {"F": float(state.f.mean()), "CR": float(state.cr.mean())}

    # -- checkpoints ---------------------------------------------------------------------------
    def to_record(self, state: DEState) -> dict[str, Any]:
        cpu = lambda t: t.detach().cpu().numpy()  # noqa: E731
        record = self.population_record(state.pop)
        record.update(
            f=cpu(state.f), cr=cpu(state.cr), memory_f=cpu(state.memory_f), memory_cr=cpu(state.memory_cr),
            k=int(state.k), archive=cpu(state.archive), archive_size=int(state.archive_size), trials=None,
        )
        if state.trials is not None:
            t = state.trials
            record["trials"] = {"pop": self.population_record(t.pop), "f": cpu(t.f), "cr": cpu(t.cr),
                                "keys": cpu(t.keys)}
        return record

    def from_record(self, record: dict[str, Any]) -> DEState:
        pop = self.population_from_record(record)
        size = pop.genomes.shape[0]
        h, cap = self.cfg.memory_size, self._archive_capacity(size)
        shapes = {"f": (size,), "cr": (size,), "memory_f": (h,), "memory_cr": (h,), "archive": (cap, self.problem.dim)}
        for name, shape in shapes.items():
            if name not in record or np.asarray(record[name]).shape != shape:
                raise ValueError(f"de: {name} is missing or not of shape {shape}")
        k, filled = int(record.get("k", -1)), int(record.get("archive_size", -1))
        if not 0 <= k < h or not 0 <= filled <= cap:
            raise ValueError(f"de: memory index {k} or archive size {filled} out of range")
        trials = None
        if record.get("trials") is not None:
            t = record["trials"]
            tpop = self.population_from_record(t["pop"])
            if tpop.genomes.shape[0] != size or np.asarray(t["f"]).shape != (size,) \
                    or np.asarray(t["cr"]).shape != (size,) or np.asarray(t["keys"]).shape != (cap + size,):
                raise ValueError("de: pending trials do not fit the population")
            trials = Trials(tpop, self.tensor(t["f"]), self.tensor(t["cr"]), self.tensor(t["keys"], torch.float64))
        scalar = lambda v: torch.tensor(v, device=self.device, dtype=torch.int64)  # noqa: E731
        return DEState(
            pop=pop, f=self.tensor(record["f"]), cr=self.tensor(record["cr"]),
            memory_f=self.tensor(record["memory_f"]), memory_cr=self.tensor(record["memory_cr"]),
            k=scalar(k), archive=self.tensor(record["archive"]), archive_size=scalar(filled), trials=trials,
        )


def _gain(new: Tensor, old: Tensor, better: Tensor) -> Tensor:
    """Improvements of the successful trials, finite: a trial that beats a NaN (-inf) parent
    weighs as much as the largest finite improvement (or 1 when there is none)."""
    gain = torch.where(better, new - old, torch.zeros_like(new))
    finite = torch.isfinite(gain)
    top = torch.where(finite, gain, torch.zeros_like(gain)).max()
    return torch.where(finite, gain, torch.where(top > 0, top, torch.ones_like(top)))
