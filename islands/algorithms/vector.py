"""What every algorithm on real vectors shares: the population type and its bookkeeping.

A `VectorPopulation` is the genomes of one generation with their fitness and provenance
(origin island, birth generation, lineage). `VectorAlgorithm` implements the parts of the
`Algorithm` interface that only look at that population (statistics, emigrants, diversity,
checkpoint records of the population, row-replacing immigration), so an algorithm with more
state (CMA-ES's distribution, DE's parameter memory) writes only what is its own: it says how
to find the population inside its state (`population`) and how to put one back
(`with_population`).

Immigrants are screened once here for every vector algorithm: out of bounds (NaN
included), already present, or repeated in the same batch means not adopted, and their
fitness is recomputed locally (a neighbour's claim is never trusted).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import Tensor

from islands import operators as ops
from islands.algorithms.base import Algorithm, Migrants, Stats, numpy_rng
from islands.problems import Problem
from migration_pool import policies

S = TypeVar("S")

DTYPES = {"float32": torch.float32, "float64": torch.float64}
_NUMPY = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


@dataclass(frozen=True)
class VectorPopulation:
    """A population of real vectors; `fitness` is None until evaluated."""

    genomes: Tensor  # [P, D]
    fitness: Tensor | None  # [P], same dtype as genomes
    origin: Tensor  # [P] int64 island number where the lineage began
    birth: Tensor  # [P] int64 generation of birth
    lineage: Tensor  # [P] int64

    def take(self, rows: Tensor) -> "VectorPopulation":
        """The individuals at `rows` (fitness included when evaluated)."""
        return VectorPopulation(
            genomes=self.genomes[rows],
            fitness=None if self.fitness is None else self.fitness[rows],
            origin=self.origin[rows], birth=self.birth[rows], lineage=self.lineage[rows],
        )


@dataclass(frozen=True)
class Screened:
    """Immigrants that may be adopted: genomes in the algorithm's dtype, fitness recomputed."""

    genomes: np.ndarray  # [k, D]
    fitness: np.ndarray  # [k], recomputed here
    rows: np.ndarray  # [k] their indices in the incoming batch

    def __len__(self) -> int:
        return int(self.rows.size)


class VectorAlgorithm(Algorithm[S], Generic[S]):
    """Shared half of every vector-genome algorithm; subclasses add init/step/records."""

    genome_kind = "vector"
    emigrant_tournament = 3  # tournament size of the "tournament" emigrant policy
    min_distance = 0.0  # near-duplicate threshold of `screen`; make_algorithm sets the run's

    def __init__(self, problem: Problem, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.problem = problem
        self.device, self.dtype = torch.device(device), dtype
        self.lower, self.upper = problem.bounds(self.device, dtype)
        self.width = self.upper - self.lower
        self.host_bounds = (self.lower.cpu().numpy(), self.upper.cpu().numpy())  # for immigrants

    # -- where the population lives in the state (identity for a plain population) --------
    def population(self, state: S) -> VectorPopulation:
        return state  # type: ignore[return-value]

    def with_population(self, state: S, pop: VectorPopulation) -> S:
        return pop  # type: ignore[return-value]

    # -- building blocks for subclasses ----------------------------------------------------
    def uniform_population(self, size: int, island: int, gen: torch.Generator) -> VectorPopulation:
        """`size` genomes uniform in the box, each the start of its own lineage."""
        u = torch.rand((size, self.problem.dim), generator=gen, device=self.device, dtype=self.dtype)
        return self.newborn(self.lower + u * self.width, island, 0, first_lineage=0)

    def newborn(self, genomes: Tensor, island: int, generation: int, first_lineage: int) -> VectorPopulation:
        """Genomes sampled afresh on `island` (not bred from a parent), with new lineages."""
        idx = torch.arange(genomes.shape[0], device=self.device, dtype=torch.int64)
        return VectorPopulation(
            genomes=genomes, fitness=None,
            origin=torch.full_like(idx, island),
            birth=torch.full_like(idx, generation),
            lineage=(island << 32) + first_lineage + idx,
        )

    # -- Algorithm interface ---------------------------------------------------------------
    def evaluate(self, state: S) -> S:
        pop = self.population(state)
        fit = self.problem.evaluate(pop.genomes).to(self.dtype)
        return self.with_population(state, dataclasses.replace(pop, fitness=fit))

    def evaluated(self, state: S) -> int:
        return int(self.population(state).genomes.shape[0])

    def stats(self, state: S) -> Stats:
        """Best (NaN ranks last, the first of ties), its index, and the mean of the finite fitness.

        Called every generation. For the usual population sizes in plain Python on one
        `tolist()` (one transfer from a GPU): measured inside the island loop at P=100 this
        costs ~5 us where five torch ops cost ~50 us and numpy, interleaved with torch, more
        (issue 16). Same results as the torch path below.
        """
        fitness = self.population(state).fitness
        assert fitness is not None, "stats need an evaluated population"
        if 0 < fitness.numel() <= 4096:
            vals = fitness.tolist()
            total = sum(vals)
            if math.isfinite(total):  # no NaN and no infinity: the common case
                best = max(vals)
                return Stats(best=best, mean=total / len(vals), best_index=vals.index(best))
            ranked = [v if v == v else -math.inf for v in vals]  # NaN ranks last
            best = max(ranked)
            finite = [v for v in vals if math.isfinite(v)]
            return Stats(best=best, mean=sum(finite) / len(finite) if finite else math.nan,
                         best_index=ranked.index(best))
        fit = ops.rankable(fitness)
        best = int(torch.argmax(fit))
        finite = fitness[torch.isfinite(fitness)]
        mean = float(finite.mean()) if finite.numel() else float("nan")
        return Stats(best=float(fit[best]), mean=mean, best_index=best)

    def genome(self, state: S, index: int) -> np.ndarray:
        return self.population(state).genomes[index].detach().cpu().numpy().copy()

    def emigrants(self, state: S, k: int, policy: str, gen: torch.Generator) -> Migrants:
        pop = self.population(state)
        fit = host(pop.fitness).astype(np.float64)  # a copy: the state stays untouched
        rng = numpy_rng(gen) if policy == "tournament" else None  # "best" draws nothing
        idx = policies.select_emigrants(fit, k, policy, rng, self.emigrant_tournament)
        return Migrants(
            genomes=take(pop.genomes, idx), fitness=fit[idx], origin=take(pop.origin, idx),
            birth=take(pop.birth, idx), lineage=take(pop.lineage, idx),
        )

    def screen(self, state: S, incoming: Migrants, min_distance: float | None = None) -> Screened:
        """The immigrants worth adopting, with fitness recomputed here.

        Drops immigrants out of bounds (NaN included) or equal to a resident or to an
        earlier immigrant: a genome already present is not adopted twice. With
        `min_distance` > 0 (default: the run's `migration.min_distance`) it also drops a
        near-duplicate: an immigrant whose RMS distance over genes, as a share of the box
        width, to its nearest resident is below it; such an immigrant adds no diversity, only
        more copies of a lineage the island already has. The K immigrants are checked in
        numpy on the host, where a handful of small array operations costs microseconds;
        torch's per-operation overhead dominated here.
        """
        n = len(incoming)
        empty = Screened(np.zeros((0, self.problem.dim)), np.zeros(0), np.zeros(0, dtype=np.int64))
        if n == 0:
            return empty
        imm = np.asarray(incoming.genomes).reshape(n, self.problem.dim).astype(_NUMPY[self.dtype], copy=False)
        lower, upper = self.host_bounds
        ok = ((imm >= lower) & (imm <= upper)).all(axis=1)
        ok &= ~_rows_present(imm, self.population(state).genomes)
        ok &= ~_repeats(imm)
        threshold = self.min_distance if min_distance is None else min_distance
        if threshold > 0 and ok.any():
            ok &= self._nearest_resident(state, imm) >= threshold
        fresh = np.flatnonzero(ok)
        if fresh.size == 0:
            return empty
        genomes = torch.as_tensor(imm[fresh], device=self.device)
        fitness = self.problem.evaluate(genomes).to(self.dtype)  # never trust a claimed fitness
        return Screened(imm[fresh], host(fitness), fresh)

    def _nearest_resident(self, state: S, imm: np.ndarray) -> np.ndarray:
        """For each immigrant, the normalised (by box width) RMS distance to its nearest resident."""
        width = np.where(self.host_bounds[1] > self.host_bounds[0],
                         self.host_bounds[1] - self.host_bounds[0], 1.0).astype(np.float64)
        a = imm.astype(np.float64, copy=False)
        b = host(self.population(state).genomes).astype(np.float64, copy=False)
        # A box of one width for every gene (the usual case) scales the distances once at the
        # end instead of dividing the [P, D] residents at each event (issue 16: the largest
        # single cost of a migration event at D=100, P=500).
        uniform = width.size > 0 and (width == width.flat[0]).all()
        if not uniform:
            a, b = a / width, b / width
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: a [K, P] matrix, never [K, P, D]
        sq = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * (a @ b.T)
        nearest = np.maximum(sq.min(axis=1), 0.0)
        if uniform:
            nearest = nearest / (width.flat[0] * width.flat[0])
        return np.sqrt(nearest / imm.shape[1])

    def immigrate(self, state: S, incoming: Migrants, policy: str, gen: torch.Generator,
                  protect: int = 0) -> tuple[S, int]:
        """Replace residents by immigrants per `policy`; the `protect` best are never replaced."""
        found = self.screen(state, incoming)
        if not len(found):
            return state, 0
        pop = self.population(state)
        slots, chosen = policies.replacement_plan(
            host(pop.fitness),  # policies rank in float64: same order as .double()
            found.fitness,
            policy,
            numpy_rng(gen) if policy == "random" else None,
            protect=protect,
        )
        if slots.size == 0:
            return state, 0
        keep = found.rows[chosen]
        rows = (found.genomes[chosen], found.fitness[chosen], np.asarray(incoming.origin)[keep],
                np.asarray(incoming.birth)[keep], np.asarray(incoming.lineage)[keep])
        columns = (pop.genomes, pop.fitness, pop.origin, pop.birth, pop.lineage)
        # Out of place, so the old state stays valid.
        if self.device.type == "cpu":  # numpy writes into torch clones: no per-op overhead
            new = [t.clone() for t in columns]
            for t, r in zip(new, rows):
                t.numpy()[slots] = r  # same dtypes: genomes and fitness are in self.dtype
        else:
            s = torch.as_tensor(slots, device=self.device)
            new = [t.index_copy(0, s, torch.as_tensor(r, device=self.device).to(t.dtype))
                   for t, r in zip(columns, rows)]
        return self.with_immigrants(state, VectorPopulation(*new), slots), int(slots.size)

    def with_immigrants(self, state: S, pop: VectorPopulation, slots: np.ndarray) -> S:
        """`state` with `pop`, whose rows `slots` are new immigrants (a hook for per-row state)."""
        return self.with_population(state, pop)

    def diversity(self, state: S) -> float:
        genomes = self.population(state).genomes
        if genomes.numel() >= 4096 and genomes.device.type == "cpu" and genomes.dtype in (torch.float32, torch.float64):
            # torch's column-wise std runs single-threaded at ~5x numpy's (1.7 ms at P=500, D=100)
            lo, hi = self.host_bounds
            return float((genomes.detach().numpy().std(axis=0) / (hi - lo)).mean())
        spread = genomes.std(dim=0, unbiased=False) / self.width
        return float(spread.mean())

    def foreign_share(self, state: S, island: int) -> float:
        origin = self.population(state).origin
        if 0 < origin.numel() <= 4096:  # in Python: a tenth of torch's time at P=100 (see `stats`)
            return (origin.numel() - origin.tolist().count(island)) / origin.numel()
        return float((origin != island).double().mean())

    def origins(self, state: S) -> dict[int, int]:
        origin = self.population(state).origin
        if origin.numel() <= 4096:
            counts: dict[int, int] = {}
            for o in origin.tolist():
                counts[o] = counts.get(o, 0) + 1
            return dict(sorted(counts.items()))  # sorted, as torch.unique's
        keys, counts_t = torch.unique(origin, return_counts=True)
        return dict(zip(keys.tolist(), counts_t.tolist()))

    def centroid(self, state: S) -> np.ndarray:
        norm = (self.population(state).genomes.mean(dim=0) - self.lower) / self.width
        return norm.double().cpu().numpy()

    # -- checkpoint records of the population -----------------------------------------------
    def population_record(self, pop: VectorPopulation) -> dict[str, Any]:
        cpu = lambda t: t.detach().cpu().numpy()  # noqa: E731
        return {
            "genomes": cpu(pop.genomes),
            "fitness": None if pop.fitness is None else cpu(pop.fitness),
            "origin": cpu(pop.origin),
            "birth": cpu(pop.birth),
            "lineage": cpu(pop.lineage),
        }

    def population_from_record(self, record: dict[str, Any]) -> VectorPopulation:
        """Rebuild a population; raises ValueError if it does not fit this problem."""
        genomes = np.asarray(record["genomes"])
        if genomes.ndim != 2 or genomes.shape[1] != self.problem.dim:
            raise ValueError(f"genomes of shape {genomes.shape} do not fit dimension {self.problem.dim}")
        size = genomes.shape[0]
        for name in ("origin", "birth", "lineage"):
            if np.asarray(record[name]).shape != (size,):
                raise ValueError(f"{name} does not have {size} entries")
        fit = record.get("fitness")
        if fit is not None and np.asarray(fit).shape != (size,):
            raise ValueError(f"fitness does not have {size} entries")
        return VectorPopulation(
            genomes=self.tensor(genomes),
            fitness=None if fit is None else self.tensor(fit),
            origin=self.tensor(record["origin"], torch.int64),
            birth=self.tensor(record["birth"], torch.int64),
            lineage=self.tensor(record["lineage"], torch.int64),
        )

    def tensor(self, value: Any, dtype: torch.dtype | None = None) -> Tensor:
        """A checkpointed array back on this algorithm's device, in its dtype by default."""
        return torch.as_tensor(np.asarray(value), device=self.device).to(dtype or self.dtype)

    def to_record(self, state: S) -> dict[str, Any]:
        return self.population_record(self.population(state))

    def from_record(self, record: dict[str, Any]) -> S:
        return self.population_from_record(record)  # type: ignore[return-value]


def _rows_present(rows: np.ndarray, residents: Tensor) -> np.ndarray:
    """For each row of `rows` [K, D], whether `residents` [P, D] holds an equal row (exactly).

    Compares first genes, then whole rows only for the pairs that agree there:
    O(K*P + hits*D) instead of O(K*P*D).
    """
    resident_rows = host(residents)
    i, j = np.nonzero(rows[:, None, 0] == resident_rows[None, :, 0])
    present = np.zeros(rows.shape[0], dtype=bool)
    if i.size:
        same = (rows[i] == resident_rows[j]).all(axis=1)
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


def host(t: Tensor) -> np.ndarray:
    """`t` as a numpy array: a view (no copy) of a CPU tensor, a host copy otherwise."""
    return t.detach().numpy() if t.device.type == "cpu" else t.detach().cpu().numpy()


def take(t: Tensor, idx: np.ndarray) -> np.ndarray:
    """Rows `idx` of `t` as a new host array (never a view of the population)."""
    if t.device.type == "cpu":
        return t.detach().numpy()[idx]  # fancy indexing copies
    return t[torch.as_tensor(idx, device=t.device)].cpu().numpy()


