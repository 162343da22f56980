"""What every algorithm on real vectors shares: the population type and its bookkeeping.

A `VectorPopulation` is the genomes of one generation with their fitness and provenance
(origin island, birth generation, lineage). `VectorAlgorithm` finds it inside a state
(`members`, `with_members`: the `pop` field by default), shows it to the island as a
`Population` view whose genome kind is a `VectorKind`, evaluates it and writes its checkpoint
records, so an algorithm with more state (CMA-ES's distribution, DE's parameter memory) writes
only what is its own.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import Tensor

from islands.algorithms.base import Algorithm
from islands.algorithms.vector_kind import VectorKind, host, take  # noqa: F401  (host, take: for subclasses)
from islands.population import Population
from islands.problems import Problem

S = TypeVar("S")

DTYPES = {"float32": torch.float32, "float64": torch.float64}


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

    @classmethod
    def of(cls, pop: Population) -> "VectorPopulation":
        """The columns of a view (what `with_population` gets back)."""
        return cls(pop.genomes, pop.fitness, pop.origin, pop.birth, pop.lineage)


class VectorAlgorithm(Algorithm[S], Generic[S]):
    """Shared half of every vector-genome algorithm; subclasses add init/step/records."""

    genome_kind = "vector"
    emigrant_tournament = 3  # tournament size of the "tournament" emigrant policy
    elites = 0  # residents an immigrant never replaces
    adopts = "replace"  # how immigrants join (`Population.adopts`)

    def __init__(self, problem: Problem, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.problem = problem
        self.device, self.dtype = torch.device(device), dtype
        self.lower, self.upper = problem.bounds(self.device, dtype)
        self.width = self.upper - self.lower
        self.kind = VectorKind(problem, self.device, dtype, self.lower, self.upper)

    # -- where the population lives in the state -------------------------------------------
    def members(self, state: S) -> VectorPopulation:
        return state.pop  # type: ignore[attr-defined]

    def with_members(self, state: S, pop: VectorPopulation) -> S:
        return dataclasses.replace(state, pop=pop)  # type: ignore[type-var]

    def view(self, pop: VectorPopulation, **extra: Any) -> Population:
        """`pop` as the island sees it (`extra`: a queue, a centre)."""
        return Population(self.kind, pop.genomes, pop.fitness, pop.origin, pop.birth, pop.lineage,
                          evaluations=int(pop.genomes.shape[0]), elites=self.elites,
                          tournament=self.emigrant_tournament, adopts=self.adopts, **extra)

    def population(self, state: S) -> Population:
        return self.view(self.members(state))

    def with_population(self, state: S, pop: Population, new_rows: np.ndarray) -> S:
        return self.with_members(state, VectorPopulation.of(pop))

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

    def evaluate(self, state: S) -> S:
        pop = self.members(state)
        fit = self.problem.evaluate(pop.genomes).to(self.dtype)
        return self.with_members(state, dataclasses.replace(pop, fitness=fit))

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
