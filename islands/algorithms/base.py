"""The algorithm interface the island loop drives: ask (`step`) and tell (`evaluate`).

An algorithm object holds static configuration only; everything that changes lives in an
immutable state passed in and returned (`init`, `step`, `evaluate`, `from_record`). The island
never looks inside a state: it sees the population through `population(state)` (a
`islands.population.Population` view), applies its own migration policies and figures to that
view (`islands.policies`, `islands.figures`), and hands a changed view back with
`with_population`. So an algorithm never picks emigrants nor merges immigrants, and a new
genome kind (NEAT) plugs in through its `GenomeKind`, not through this interface.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, Sequence, TypeVar

import numpy as np
import torch

from islands.population import Population

State = TypeVar("State")


class Algorithm(ABC, Generic[State]):
    """What the island loop needs from an evolutionary algorithm."""

    genome_kind: str = "vector"  # the pool's name for the genomes it publishes

    def default_population(self) -> int:
        """Population size used when the run does not set one (`--population`)."""
        return 100

    def population_note(self, population: int, islands: Sequence[int]) -> str | None:
        """A word for the launch plan when these islands (numbers) do not all start at `population`."""
        return None

    @abstractmethod
    def init(self, size: int, island: int, gen: torch.Generator) -> State:
        """A random, not yet evaluated population of `size` born on island number `island`."""

    @abstractmethod
    def step(self, state: State, generation: int, gen: torch.Generator) -> State:
        """Ask: the next, not yet evaluated, generation bred from an evaluated state."""

    @abstractmethod
    def evaluate(self, state: State) -> State:
        """Tell: the state with the fitness of every individual filled in."""

    @abstractmethod
    def population(self, state: State) -> Population:
        """The population of `state` as the island's policies and figures see it."""

    @abstractmethod
    def with_population(self, state: State, pop: Population, new_rows: np.ndarray) -> State:
        """`state` with a changed view of its population, whose rows `new_rows` are immigrants.

        The hook for what an algorithm keeps per individual (the GA's steps, DE's F and CR) or
        does with newcomers (CMA-ES samples its queued immigrants next; the ES recentres).
        """

    def basins(self, state: State) -> np.ndarray | None:
        """The basins this algorithm's restarts found, [k, D + 2]: centre and radius in genome
        coordinates, best fitness; None when it keeps none (docs/DESIGN.md, "Shared
        basins"). The island shares them through the run directory."""
        return None

    def with_basins(self, state: State, rows: np.ndarray) -> State:
        """`state` told of the basins the other islands found (rows as `basins` gives them,
        validated by `islands.basins.from_body`); restarts start away from them."""
        return state

    def info(self, state: State) -> dict[str, float | int]:
        """Algorithm-specific figures for history lines (step size, restarts, ...).

        Small scalars only; the default has none.
        """
        return {}

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
