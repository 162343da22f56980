"""The one list of algorithms: name -> where it lives, what it needs, one line about it.

Config validation (`islands.config.ALGORITHMS`), the CLI's `--algorithm` choices and help,
the plan check and `make_algorithm` all read this table, so a new algorithm is one entry here
(and the conformance suite, tests/islands/algorithms/test_conformance.py, tests it at once).

Torch-free on purpose: the launcher validates configs and builds its CLI from this table
without loading torch; the classes named here are imported only when an island builds one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class AlgorithmEntry:
    """One registered algorithm."""

    name: str
    module: str  # where the class lives
    cls: str  # the `Algorithm` subclass
    config: str | None  # its config class (with `from_params`) in `module`; None: the GA options
    description: str  # one line, for the CLI's help
    genome_kind: str = "vector"  # what its islands publish: vector genomes or NEAT graphs
    needs_network: bool = False  # only for network tasks (xor, cartpole, ...)
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # fixed arguments of the class
    fixed_population: int | None = None  # a default population that does not depend on D
    population_note: str = ""  # how its default population is chosen, for the CLI's help


REGISTRY: dict[str, AlgorithmEntry] = {e.name: e for e in (
    AlgorithmEntry("ga", "islands.algorithms.ga", "GeneticAlgorithm", None,
                   "a genetic algorithm (tournaments, SBX, self-adaptive Gaussian mutation, elitism)",
                   fixed_population=100),
    AlgorithmEntry("pure", "islands.algorithms.ga", "GeneticAlgorithm", None,
                   "the GA on a network task's weights", needs_network=True, fixed_population=100),
    AlgorithmEntry("cmaes", "islands.algorithms.cmaes", "CMAES", "CMAESConfig",
                   "CMA-ES with BIPOP (or IPOP) restarts", kwargs={"separable": False},
                   population_note="4 + 3 ln D"),
    AlgorithmEntry("sep-cmaes", "islands.algorithms.cmaes", "CMAES", "CMAESConfig",
                   "CMA-ES with a diagonal covariance, for thousands of genes", kwargs={"separable": True},
                   population_note="4 + 3 ln D"),
    AlgorithmEntry("de", "islands.algorithms.de", "DifferentialEvolution", "DEConfig",
                   "SHADE differential evolution", population_note="5 D in [20, 100]"),
    AlgorithmEntry("es", "islands.algorithms.es", "NaturalES", "ESConfig",
                   "SNES natural evolution strategy"),
    AlgorithmEntry("neat", "islands.algorithms.neat", "NeatAlgorithm", "NeatConfig",
                   "NEAT topology evolution", genome_kind="neat", needs_network=True, fixed_population=100),
)}

ALGORITHMS: tuple[str, ...] = tuple(REGISTRY)
"""Every algorithm name, in the order help texts list them."""

FIXED_DEFAULT_POPULATION: dict[str, int] = {
    e.name: e.fixed_population for e in REGISTRY.values() if e.fixed_population is not None}
"""Algorithms whose default population does not depend on the problem (`--vary` needs it)."""


def uses_ga_options(name: str) -> bool:
    """Whether the algorithm takes the GA options (`RunConfig.ga`) rather than `--algorithm-param`."""
    return REGISTRY[name].config is None


def cli_help() -> str:
    """The `--algorithm` help text: one line per algorithm."""
    lines = "; ".join(f"{e.name}: {e.description}" for e in REGISTRY.values())
    return (f"Search algorithm. {lines}. Any vector algorithm runs on a network task's weights too.")


def population_help() -> str:
    """The `--population` help text: each algorithm's default."""
    notes: dict[str, list[str]] = {}
    for e in REGISTRY.values():
        note = str(e.fixed_population) if e.fixed_population is not None else (e.population_note or "100")
        notes.setdefault(note, []).append(e.name)
    said = ", ".join(f"{note} for {'/'.join(names)}" for note, names in notes.items())
    return f"Individuals per island (>= 2); the algorithm's default is {said}."
