"""A generational genetic algorithm on real vectors, as pure tensor functions.

`breed` is the whole generation: tournaments, crossover, mutation, bound handling and elitism
in a handful of tensor operations over the population. `GeneticAlgorithm` wraps it in the
`Algorithm` interface and carries each individual's provenance (origin island, birth
generation, lineage) so reports can tell where every genome came from.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from islands import operators as ops
from islands.algorithms.base import Algorithm, Migrants, Stats
from islands.config import GAConfig
from islands.problems import Problem
from migration_pool import policies


@dataclass(frozen=True)
class VectorPopulation:
    """A population of real vectors; `fitness` is None until evaluated."""

    genomes: Tensor  # [P, D]
    fitness: Tensor | None  # [P], same dtype as genomes
    origin: Tensor  # [P] int64 island number where the lineage began
    birth: Tensor  # [P] int64 generation of birth
    lineage: Tensor  # [P] int64


def breed(
    genomes: Tensor,
    fitness: Tensor,
    cfg: GAConfig,
    lower: Tensor,
    upper: Tensor,
    gen: torch.Generator,
) -> tuple[Tensor, Tensor, int]:
    """One generation of the GA.

    Returns `(children, parents, n_elite)`: the new population `[P, D]` whose first
    `n_elite` rows are the unchanged elites, and for each row the index of the individual it
    descends from (its first parent), so provenance can follow.
    """
    size, dim = genomes.shape
    n_elite = min(cfg.elitism, size)
    n_kids = size - n_elite
    n_pairs = (n_kids + 1) // 2
    picks = ops.tournament(fitness, 2 * n_pairs, cfg.tournament_size, gen)
    a, b = genomes[picks[:n_pairs]], genomes[picks[n_pairs:]]
    if cfg.crossover == "sbx":
        c1, c2 = ops.sbx(a, b, cfg.sbx_eta, gen)
    elif cfg.crossover == "blx":
        c1, c2 = ops.blx_alpha(a, b, cfg.blx_alpha, gen)
    else:
        c1, c2 = ops.uniform_crossover(a, b, gen)
    mate = torch.rand((n_pairs, 1), generator=gen, device=genomes.device) < cfg.crossover_rate
    kids = torch.cat([torch.where(mate, c1, a), torch.where(mate, c2, b)])[:n_kids]
    rate = 1.0 / dim if cfg.mutation_rate is None else cfg.mutation_rate
    kids = ops.gaussian_mutation(kids, rate, cfg.mutation_sigma * (upper - lower), gen)
    kids = ops.BOUND_HANDLERS[cfg.bounds](kids, lower, upper)
    elite = ops.top_k(fitness, n_elite)
    parents = torch.cat([elite, picks[:n_pairs], picks[n_pairs:]])[: n_elite + n_kids]
    return torch.cat([genomes[elite], kids]), parents, n_elite


class GeneticAlgorithm(Algorithm[VectorPopulation]):
    """The GA on a vector problem, in float32 on the problem's device."""

    genome_kind = "vector"

    def __init__(
        self,
        problem: Problem,
        cfg: GAConfig,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.problem, self.cfg = problem, cfg
        self.device, self.dtype = torch.device(device), dtype
        self.lower, self.upper = problem.bounds(self.device, dtype)
        self.host_bounds = (self.lower.cpu().numpy(), self.upper.cpu().numpy())  # for immigrants

    def init(self, size: int, island: int, gen: torch.Generator) -> VectorPopulation:
        u = torch.rand((size, self.problem.dim), generator=gen, device=self.device, dtype=self.dtype)
        idx = torch.arange(size, device=self.device, dtype=torch.int64)
        return VectorPopulation(
            genomes=self.lower + u * (self.upper - self.lower),
            fitness=None,
            origin=torch.full_like(idx, island),
            birth=torch.zeros_like(idx),
            lineage=(island << 32) + idx,
        )

    def evaluate(self, state: VectorPopulation) -> VectorPopulation:
        fit = self.problem.evaluate(state.genomes).to(self.dtype)
        return dataclasses.replace(state, fitness=fit)

    def step(self, state: VectorPopulation, generation: int, gen: torch.Generator) -> VectorPopulation:
        assert state.fitness is not None, "step needs an evaluated population"
        children, parents, n_elite = breed(
            state.genomes, state.fitness, self.cfg, self.lower, self.upper, gen
        )
        birth = state.birth[parents].clone()
        birth[n_elite:] = generation + 1
        return VectorPopulation(
            genomes=children,
            fitness=None,
            origin=state.origin[parents],
            birth=birth,
            lineage=state.lineage[parents],
        )

    def stats(self, state: VectorPopulation) -> Stats:
        fit = ops.rankable(state.fitness)
        best = int(torch.argmax(fit))
        finite = state.fitness[torch.isfinite(state.fitness)]
        mean = float(finite.mean()) if finite.numel() else float("nan")
        return Stats(best=float(fit[best]), mean=mean, best_index=best)

    def genome(self, state: VectorPopulation, index: int) -> np.ndarray:
        return state.genomes[index].detach().cpu().numpy().copy()

    def emigrants(self, state: VectorPopulation, k: int, policy: str, gen: torch.Generator) -> Migrants:
        fit = _host(state.fitness).astype(np.float64)  # a copy: the state stays untouched
        rng = _numpy_rng(gen) if policy == "tournament" else None  # "best" draws nothing
        idx = policies.select_emigrants(fit, k, policy, rng, self.cfg.tournament_size)
        return Migrants(
            genomes=_take(state.genomes, idx),
            fitness=fit[idx],
            origin=_take(state.origin, idx),
            birth=_take(state.birth, idx),
            lineage=_take(state.lineage, idx),
        )

    def immigrate(
        self, state: VectorPopulation, incoming: Migrants, policy: str, gen: torch.Generator
    ) -> tuple[VectorPopulation, int]:
        n = len(incoming)
        if n == 0:
            return state, 0
        # The K immigrants are checked in numpy on the host, where a handful of small array
        # operations costs microseconds; torch's per-operation overhead dominated here.
        imm = np.asarray(incoming.genomes).reshape(n, self.problem.dim).astype(_NUMPY[self.dtype], copy=False)
        lower, upper = self.host_bounds
        # Drop immigrants out of bounds (NaN included) or equal to a resident or to an earlier
        # immigrant: a genome already present is not adopted twice.
        ok = ((imm >= lower) & (imm <= upper)).all(axis=1)
        ok &= ~_rows_present(imm, state.genomes)
        ok &= ~_repeats(imm)
        fresh = np.flatnonzero(ok)
        if fresh.size == 0:
            return state, 0
        genomes = torch.as_tensor(imm[fresh], device=self.device)
        fitness = self.problem.evaluate(genomes).to(self.dtype)  # never trust a claimed fitness
        slots, chosen = policies.replacement_plan(
            _host(state.fitness),  # policies rank in float64: same order as .double()
            _host(fitness),
            policy,
            _numpy_rng(gen) if policy == "random" else None,
            protect=self.cfg.elitism,
        )
        if slots.size == 0:
            return state, 0
        keep = fresh[chosen]
        rows = (imm[keep], _host(fitness)[chosen], np.asarray(incoming.origin)[keep],
                np.asarray(incoming.birth)[keep], np.asarray(incoming.lineage)[keep])
        columns = (state.genomes, state.fitness, state.origin, state.birth, state.lineage)
        # Out of place, so the old state stays valid.
        if self.device.type == "cpu":  # numpy writes into torch clones: no per-op overhead
            new = [t.clone() for t in columns]
            for t, r in zip(new, rows):
                t.numpy()[slots] = r  # same dtypes: imm and fitness are in self.dtype
        else:
            s = torch.as_tensor(slots, device=self.device)
            new = [t.index_copy(0, s, torch.as_tensor(r, device=self.device).to(t.dtype))
                   for t, r in zip(columns, rows)]
        return VectorPopulation(*new), int(slots.size)

    def diversity(self, state: VectorPopulation) -> float:
        spread = state.genomes.std(dim=0, unbiased=False) / (self.upper - self.lower)
        return float(spread.mean())

    def foreign_share(self, state: VectorPopulation, island: int) -> float:
        return float((state.origin != island).double().mean())

    def centroid(self, state: VectorPopulation) -> np.ndarray:
        norm = (state.genomes.mean(dim=0) - self.lower) / (self.upper - self.lower)
        return norm.double().cpu().numpy()

    def to_record(self, state: VectorPopulation) -> dict[str, Any]:
        cpu = lambda t: t.detach().cpu().numpy()  # noqa: E731
        return {
            "genomes": cpu(state.genomes),
            "fitness": None if state.fitness is None else cpu(state.fitness),
            "origin": cpu(state.origin),
            "birth": cpu(state.birth),
            "lineage": cpu(state.lineage),
        }

    def from_record(self, record: dict[str, Any]) -> VectorPopulation:
        genomes = np.asarray(record["genomes"])
        size = genomes.shape[0] if genomes.ndim == 2 else -1
        if genomes.ndim != 2 or genomes.shape[1] != self.problem.dim:
            raise ValueError(f"genomes of shape {genomes.shape} do not fit dimension {self.problem.dim}")
        for name in ("origin", "birth", "lineage"):
            if np.asarray(record[name]).shape != (size,):
                raise ValueError(f"{name} does not have {size} entries")
        to = lambda a, dt: torch.as_tensor(np.asarray(a), device=self.device).to(dt)  # noqa: E731
        fit = record.get("fitness")
        return VectorPopulation(
            genomes=to(genomes, self.dtype),
            fitness=None if fit is None else to(fit, self.dtype),
            origin=to(record["origin"], torch.int64),
            birth=to(record["birth"], torch.int64),
            lineage=to(record["lineage"], torch.int64),
        )


def _rows_present(rows: np.ndarray, residents: Tensor) -> np.ndarray:
    """For each row of `rows` [K, D], whether `residents` [P, D] holds an equal row (exactly).

    Compares first genes, then whole rows only for the pairs that agree there:
    O(K*P + hits*D) instead of O(K*P*D).
    """
    host = residents.detach().numpy() if residents.device.type == "cpu" else None
    first = host[:, 0] if host is not None else residents[:, 0].cpu().numpy()
    i, j = np.nonzero(rows[:, None, 0] == first[None, :])
    present = np.zeros(rows.shape[0], dtype=bool)
    if i.size:
        others = host[j] if host is not None else _take(residents, j)
        same = (rows[i] == others).all(axis=1)
        present[i[same]] = True
    return present


def _repeats(rows: np.ndarray) -> np.ndarray:
    """For each row of `rows` [K, D], whether an earlier row equals it (as numbers).

    Rows are compared by their bytes after `+ 0.0`, which turns -0.0 into 0.0: for
    floats that are not NaN, equal values then have equal bytes. A NaN row may be
    matched by its bytes where `==` would not match it, but NaN rows are out of bounds and
    refused anyway. K is a handful, so a set of byte strings beats a [K, K, D] comparison.
    """
    seen: set[bytes] = set()
    repeated = np.zeros(rows.shape[0], dtype=bool)
    for i, row in enumerate(rows + 0.0):
        key = row.tobytes()
        if key in seen:
            repeated[i] = True
        else:
            seen.add(key)
    return repeated


def _host(t: Tensor) -> np.ndarray:
    """`t` as a numpy array: a view (no copy) of a CPU tensor, a host copy otherwise."""
    return t.detach().numpy() if t.device.type == "cpu" else t.detach().cpu().numpy()


def _take(t: Tensor, idx: np.ndarray) -> np.ndarray:
    """Rows `idx` of `t` as a new host array (never a view of the population)."""
    if t.device.type == "cpu":
        return t.detach().numpy()[idx]  # fancy indexing copies
    return t[torch.as_tensor(idx, device=t.device)].cpu().numpy()


_NUMPY = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _numpy_rng(gen: torch.Generator) -> np.random.Generator:
    """A numpy generator seeded from the torch one, so policies stay reproducible."""
    seed = torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item()
    return np.random.default_rng(seed)
