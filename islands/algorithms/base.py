"""The algorithm interface the island loop drives.

An algorithm object holds static configuration only; everything that changes lives in an
immutable state passed in and returned (`init`, `evaluate`, `step`). The island loop never
looks inside a state: it asks the algorithm for statistics, emigrants, checkpoint records
and for immigrants to be merged, so a new genome kind (NEAT) plugs in without touching it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch

State = TypeVar("State")


@dataclass(frozen=True)
class Migrants:
    """Genomes leaving or entering an island, with their provenance, as numpy arrays.

    `genomes` is an array `[K, ...]` for vector genomes; other genome kinds may use a list of
    per-genome records (the pool format documents each kind).
    """

    genomes: Any
    fitness: np.ndarray  # [K] float64
    origin: np.ndarray  # [K] int64 island numbers
    birth: np.ndarray  # [K] int64 generation of birth
    lineage: np.ndarray  # [K] int64

    def __len__(self) -> int:
        return int(self.fitness.shape[0])


@dataclass(frozen=True)
class Stats:
    """Per-generation summary of a population."""

    best: float
    mean: float
    best_index: int


class Algorithm(ABC, Generic[State]):
    """What the island loop needs from an evolutionary algorithm."""

    genome_kind: str = "vector"

    @abstractmethod
    def init(self, size: int, island: int, gen: torch.Generator) -> State:
        """A random, not yet evaluated population of `size` born on island number `island`."""

    @abstractmethod
    def evaluate(self, state: State) -> State:
        """The state with the fitness of every individual filled in."""

    @abstractmethod
    def evaluated(self, state: State) -> int:
        """How many fitness evaluations the last `evaluate` of `state` cost.

        The island loop counts evaluations with this, not with the configured population:
        an algorithm may change its population size as it runs (IPOP restarts).
        """

    def default_population(self) -> int:
        """Population size used when the run does not set one (`--population`)."""
        return 100

    def pending_immigrants(self, state: State) -> int:
        """Immigrants adopted into `state` that join the population only at the next `step`.

        Most algorithms place immigrants at once (0); CMA-ES injects them into its next
        generation, whose gain the island then credits to migration.
        """
        return 0

    def info(self, state: State) -> dict[str, float | int]:
        """Algorithm-specific figures for history lines (step size, restarts, ...).

        Small scalars only; the default has none.
        """
        return {}

    @abstractmethod
    def step(self, state: State, generation: int, gen: torch.Generator) -> State:
        """The next, not yet evaluated, generation bred from an evaluated state."""

    @abstractmethod
    def stats(self, state: State) -> Stats:
        """Best and mean fitness of an evaluated state (NaN counts as worst)."""

    @abstractmethod
    def genome(self, state: State, index: int) -> Any:
        """One genome as numpy data, for champions and reports."""

    @abstractmethod
    def emigrants(self, state: State, k: int, policy: str, gen: torch.Generator) -> Migrants:
        """Copies of `k` individuals chosen by `policy` ("best" or "tournament")."""

    @abstractmethod
    def immigrate(
        self, state: State, incoming: Migrants, policy: str, gen: torch.Generator
    ) -> tuple[State, int]:
        """Merge immigrants per replacement `policy`; returns the state and how many were adopted.

        Immigrants are re-evaluated locally: a neighbour's claimed fitness is not trusted.
        Genomes already present are not adopted twice.
        """

    @abstractmethod
    def diversity(self, state: State) -> float:
        """Spread of the population in [0, 1]-ish units (normalised by the genome bounds)."""

    @abstractmethod
    def foreign_share(self, state: State, island: int) -> float:
        """Share of the population whose lineage began on another island."""

    @abstractmethod
    def origins(self, state: State) -> dict[int, int]:
        """How many individuals descend from each origin island (island number -> count).

        The archipelago's lineage diversity (`islands.status.lineage`) is built from these.
        """

    @abstractmethod
    def centroid(self, state: State) -> np.ndarray | None:
        """Mean genome in normalised units, for between-island diversity (None if meaningless)."""

    @abstractmethod
    def to_record(self, state: State) -> dict[str, Any]:
        """The state as a dict of numpy arrays and scalars for a checkpoint."""

    @abstractmethod
    def from_record(self, record: dict[str, Any]) -> State:
        """Rebuild a state from `to_record` output; raises ValueError if it does not fit."""


def numpy_rng(gen: torch.Generator) -> np.random.Generator:
    """A numpy generator seeded from the torch one, so a checkpointed torch state replays it."""
    seed = torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item()
    return np.random.default_rng(seed)
