"""NEAT as an island algorithm: the `Algorithm` interface over packed genomes.

State in, state out: a `NeatState` holds the population (packed genomes, fitness, provenance)
and the species table; `step` speciates the evaluated population against last generation's
representatives, shares offspring among species, and breeds the next generation. Structural
genes have island-independent identities (`innovation`), so immigrants need no translation:
they are checked, re-evaluated locally and take the place of residents like any genome
(the island's policies do it through `NeatKind`, islands.algorithms.neat.kind).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from islands.algorithms.base import Algorithm, numpy_rng
from islands.algorithms.neat import genome as gn
from islands.algorithms.neat import reproduction as rep
from islands.algorithms.neat import speciation as spc
from islands.algorithms.neat.compile import CompiledNets
from islands.algorithms.neat.config import NeatConfig
from islands.algorithms.neat.kind import NeatKind
from islands.errors import ConfigError
from islands.population import Population

@dataclass(frozen=True, eq=False)
class NeatState:
    """A NEAT population; `fitness` is None until evaluated."""

    genomes: gn.Genomes
    fitness: np.ndarray | None  # float64 [P]
    origin: np.ndarray  # int64 [P] island where the lineage began
    birth: np.ndarray  # int64 [P]
    lineage: np.ndarray  # int64 [P]
    species: spc.Species
    threshold: float
    next_species: int


class NeatAlgorithm(Algorithm[NeatState]):
    """NEAT on a network task (`problem.task`, see islands.problems.control)."""

    genome_kind = "neat"

    def __init__(self, problem: Any, cfg: NeatConfig, device: torch.device | str = "cpu") -> None:
        task = getattr(problem, "task", None)
        if task is None:
            raise ConfigError(f"algorithm 'neat' evolves networks; {problem.name!r} is not a network task "
                              "(try xor, cartpole, double_pole, double_pole_nv)")
        if getattr(task, "memory", False) and not cfg.recurrent:
            cfg = dataclasses.replace(cfg, recurrent=True)  # a memory task needs cycles
        self.problem, self.task, self.cfg = problem, task, cfg
        self.device = torch.device(device)
        self.n_in, self.n_out = int(task.inputs), int(task.outputs)
        self.kind = NeatKind(self)

    # -- evolution ------------------------------------------------------------------------
    def init(self, size: int, island: int, gen: torch.Generator) -> NeatState:
        rng = numpy_rng(gen)
        idx = np.arange(size, dtype=np.int64)
        return NeatState(
            genomes=gn.minimal(size, self.n_in, self.n_out, rng, self.cfg.weight_init_std),
            fitness=None, origin=np.full(size, island, dtype=np.int64), birth=np.zeros(size, np.int64),
            lineage=(np.int64(island) << np.int64(32)) + idx, species=spc.empty_species(),
            threshold=self.cfg.compat_threshold, next_species=0,
        )

    def compile(self, genomes: gn.Genomes) -> CompiledNets:
        return CompiledNets(genomes, self.n_in, self.n_out, recurrent=self.cfg.recurrent,
                            steepness=self.cfg.steepness, device=self.device)

    def fitness_of(self, genomes: gn.Genomes) -> np.ndarray:
        if len(genomes) == 0:
            return np.zeros(0)
        fit = self.task.evaluate(self.compile(genomes), self.device)
        return fit.detach().to("cpu", torch.float64).numpy().copy()

    def evaluate(self, state: NeatState) -> NeatState:
        return dataclasses.replace(state, fitness=self.fitness_of(state.genomes))

    def step(self, state: NeatState, generation: int, gen: torch.Generator) -> NeatState:
        assert state.fitness is not None, "step needs an evaluated population"
        cfg, rng, size = self.cfg, numpy_rng(gen), len(state.genomes)
        row, table, next_id = spc.speciate(state.genomes, state.species, state.threshold,
                                           state.next_species, generation, cfg)
        table, counts = rep.offspring_counts(state.fitness, row, table, generation, size, cfg)
        elites, pa, pb, cross = rep.choose_parents(state.fitness, row, counts, cfg, rng)
        kids = rep.mutate(rep.crossover(state.genomes, pa, pb, cross, cfg, rng), self.n_in, cfg, rng)
        children = gn.concat([state.genomes.take(elites), kids])
        parents = np.concatenate([elites, pa])
        # The species that breed keep a representative from this generation for the next one.
        table = dataclasses.replace(table, reps=spc.next_representatives(state.genomes, row, table, cfg))
        table = table.take(np.flatnonzero(counts > 0))
        threshold = state.threshold
        if cfg.target_species:
            if len(table) > cfg.target_species:
                threshold += cfg.threshold_step
            elif len(table) < cfg.target_species:
                threshold = max(cfg.threshold_step, threshold - cfg.threshold_step)
        birth = state.birth[parents].copy()
        birth[elites.size:] = generation + 1
        return NeatState(children, None, state.origin[parents].copy(), birth, state.lineage[parents].copy(),
                         table, threshold, next_id)

    # -- the island's view ----------------------------------------------------------------
    def population(self, state: NeatState) -> Population:
        # elites=1: the best resident is never replaced by an immigrant
        return Population(self.kind, state.genomes, state.fitness, state.origin, state.birth, state.lineage,
                          evaluations=len(state.origin), elites=1)

    def with_population(self, state: NeatState, pop: Population, new_rows: np.ndarray) -> NeatState:
        return dataclasses.replace(state, genomes=pop.genomes, fitness=pop.fitness, origin=pop.origin,
                                   birth=pop.birth, lineage=pop.lineage)

    def check(self, record: Any) -> str | None:
        """Why a genome record cannot join this population, or None."""
        return gn.check_record(record, self.n_in, self.n_out, recurrent=self.cfg.recurrent,
                               max_nodes=self.cfg.max_nodes, max_conns=self.cfg.max_conns,
                               weight_max=self.cfg.weight_max)

    # -- checkpoints ----------------------------------------------------------------------
    def to_record(self, state: NeatState) -> dict[str, Any]:
        return {
            **state.genomes.to_arrays(),
            "fitness": state.fitness, "origin": state.origin, "birth": state.birth, "lineage": state.lineage,
            **state.species.reps.to_arrays("rep_"),
            "species_ids": state.species.ids, "species_best": state.species.best,
            "species_improved": state.species.improved, "species_created": state.species.created,
            "threshold": float(state.threshold), "next_species": int(state.next_species),
        }

    def from_record(self, record: dict[str, Any]) -> NeatState:
        genomes = gn.Genomes.from_arrays(record)
        reps = gn.Genomes.from_arrays(record, "rep_")
        n, s = len(genomes), len(reps)
        arr = lambda name, dt, size: _sized(record[name], dt, size, name)  # noqa: E731
        fit = record.get("fitness")
        return NeatState(
            genomes=genomes, fitness=None if fit is None else arr("fitness", np.float64, n),
            origin=arr("origin", np.int64, n), birth=arr("birth", np.int64, n),
            lineage=arr("lineage", np.int64, n),
            species=spc.Species(arr("species_ids", np.int64, s), reps, arr("species_best", np.float64, s),
                                arr("species_improved", np.int64, s), arr("species_created", np.int64, s)),
            threshold=float(record["threshold"]), next_species=int(record["next_species"]),
        )


def _sized(value: Any, dtype: Any, size: int, name: str) -> np.ndarray:
    a = np.asarray(value)
    if a.shape != (size,):
        raise ValueError(f"{name} has shape {a.shape}, expected ({size},)")
    return a.astype(dtype)
