"""The population as the island sees it, whatever the algorithm and the genome kind.

An algorithm keeps its population inside its own state (CMA-ES beside its distribution, DE
beside its parameter memory). `Algorithm.population(state)` shows it as a `Population`: the
genomes with their fitness and provenance, and the few facts the island's migration policies
(`islands.policies`) and figures (`islands.figures`) need. The island changes a view (emigrants
leave as copies, immigrants replace rows) and hands it back with `Algorithm.with_population`;
it never looks inside a state.

What "a genome" is differs by kind: a row of a [P, D] tensor for vector genomes, a packed graph
for NEAT. A `GenomeKind` knows how to copy, check, write and measure its genomes; the policies
and figures call it, so a new kind plugs in without touching either.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

ADOPTS = ("replace", "queue", "center")
"""How an algorithm takes immigrants (see `Population.adopts`)."""


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
class Screened:
    """Immigrants that may be adopted, with their fitness recomputed on this island.

    `genomes` are in the population's own representation (a numpy [k, D] array in the
    algorithm's dtype for vectors, packed `Genomes` for NEAT); `rows` are their indices in the
    incoming batch, whose provenance columns they keep.
    """

    genomes: Any
    fitness: np.ndarray  # [k]
    rows: np.ndarray  # [k] int64

    def __len__(self) -> int:
        return int(self.rows.size)


@dataclass(frozen=True, eq=False)
class Population:
    """One evaluated (or freshly bred) population, seen from outside the algorithm.

    Columns are torch tensors for vector algorithms and numpy arrays for NEAT; `fitness` is
    None until evaluated.
    """

    kind: "GenomeKind"
    genomes: Any  # Tensor [P, D], or packed NEAT Genomes
    fitness: Any  # [P] or None
    origin: Any  # [P] int64 island number where each lineage began
    birth: Any  # [P] int64 generation of birth
    lineage: Any  # [P] int64
    evaluations: int  # fitness evaluations the last `evaluate` cost (IPOP changes P as it runs)
    elites: int = 0  # the best residents a replacement never touches (the GA's elitism)
    tournament: int = 3  # tournament size of the "tournament" emigrant policy
    adopts: str = "replace"  # "replace": immigrants take residents' rows per the run's policy;
    # "queue": they wait in `queued` for the next generation (CMA-ES injection); "center": the
    # best one, if it beats every resident, takes the worst row and recentres the search (ES)
    queued: "Population | None" = None  # immigrants waiting for the next generation
    centre: Callable[[], Any] | None = None  # the search distribution's mean, normalised to the
    # box, where the algorithm has one; computed on demand (status reports only)

    def __len__(self) -> int:
        return int(self.origin.shape[0])

    @property
    def pending(self) -> int:
        """Immigrants that join only at the next `step`: its gain is then theirs."""
        return 0 if self.queued is None else len(self.queued)


class GenomeKind(ABC):
    """What the policies and figures need to know about one kind of genome."""

    name: str = "vector"
    seed_always: bool = False
    """Whether selection and replacement seed a numpy generator from the island's generator
    whatever the policy (NEAT does, vector kinds only when the policy draws); kept per kind so
    a run replays the very draws it made before."""

    @abstractmethod
    def take(self, pop: Population, idx: np.ndarray) -> Migrants:
        """Copies of rows `idx` as host data (emigrants), fitness in float64."""

    @abstractmethod
    def screen(self, pop: Population, incoming: Migrants, min_distance: float) -> Screened:
        """The immigrants that may join `pop`, their fitness recomputed here.

        Refused: genomes that do not fit (out of bounds, NaN, malformed), copies of a resident
        or of an earlier immigrant, and (where the kind has a distance and `min_distance` > 0)
        near-duplicates of a resident. A neighbour's claimed fitness is never trusted.
        """

    @abstractmethod
    def put(self, pop: Population, slots: np.ndarray, found: Screened, chosen: np.ndarray,
            incoming: Migrants) -> Population:
        """`pop` with immigrant `found[chosen[i]]` in row `slots[i]`, provenance included.

        Out of place: the old population (and the state holding it) stays valid.
        """

    @abstractmethod
    def diversity(self, pop: Population) -> float:
        """Spread of the genomes in [0, 1]-ish units (0 for clones)."""

    @abstractmethod
    def centroid(self, pop: Population) -> np.ndarray | None:
        """Mean genome in normalised units, for between-island diversity (None if meaningless)."""

    @abstractmethod
    def genome(self, pop: Population, index: int) -> Any:
        """One genome as numpy data, for champions and reports."""
