"""NEAT as an island algorithm: the `Algorithm` interface over packed genomes.

State in, state out: a `NeatState` holds the population (packed genomes, fitness, provenance)
and the species table; `step` speciates the evaluated population against last generation's
representatives, shares offspring among species, and breeds the next generation. Structural
genes have island-independent identities (`innovation`), so immigrants need no translation:
they are checked, re-evaluated locally and take the place of residents like any genome.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from islands.algorithms.base import Algorithm, Migrants, Stats, numpy_rng
from islands.algorithms.neat import genome as gn
from islands.algorithms.neat import reproduction as rep
from islands.algorithms.neat import speciation as spc
from islands.algorithms.neat.compile import CompiledNets
from islands.algorithms.neat.config import NeatConfig
from islands.errors import ConfigError
from migration_pool import policies

_DIVERSITY_SAMPLE = 24


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

    def evaluated(self, state: NeatState) -> int:
        return len(state.origin)

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

    # -- reports --------------------------------------------------------------------------
    def stats(self, state: NeatState) -> Stats:
        f = np.where(np.isnan(state.fitness), -np.inf, state.fitness)
        best = int(np.argmax(f))
        finite = state.fitness[np.isfinite(state.fitness)]
        return Stats(best=float(f[best]), mean=float(finite.mean()) if finite.size else float("nan"),
                     best_index=best)

    def genome(self, state: NeatState, index: int) -> dict[str, np.ndarray]:
        return state.genomes.record(index)

    def diversity(self, state: NeatState) -> float:
        """Mean d / (d + threshold) over pairs of an evenly spaced sample: 0 for clones.

        Uses no random numbers: status reports happen at wall-clock times, and drawing from
        the generator there would make a run depend on timing.
        """
        n = len(state.genomes)
        if n < 2:
            return 0.0
        idx = np.unique(np.linspace(0, n - 1, min(n, _DIVERSITY_SAMPLE)).astype(np.int64))
        sample = state.genomes.take(idx)
        d = spc.distances(sample, sample, self.cfg)[np.triu_indices(idx.size, 1)]
        return float(np.mean(d / (d + self.cfg.compat_threshold)))

    def foreign_share(self, state: NeatState, island: int) -> float:
        return float((state.origin != island).mean())

    def origins(self, state: NeatState) -> dict[int, int]:
        keys, counts = np.unique(state.origin, return_counts=True)
        return dict(zip(keys.tolist(), counts.tolist()))

    def centroid(self, state: NeatState) -> None:
        return None  # graphs of different shapes have no mean

    # -- migration ------------------------------------------------------------------------
    def emigrants(self, state: NeatState, k: int, policy: str, gen: torch.Generator) -> Migrants:
        rng = numpy_rng(gen)
        idx = policies.select_emigrants(state.fitness, k, policy, rng)
        return Migrants(
            genomes=[state.genomes.record(int(i)) for i in idx],
            fitness=state.fitness[idx].astype(np.float64),
            origin=state.origin[idx].copy(), birth=state.birth[idx].copy(), lineage=state.lineage[idx].copy(),
        )

    def check(self, record: Any) -> str | None:
        """Why a genome record cannot join this population, or None."""
        return gn.check_record(record, self.n_in, self.n_out, recurrent=self.cfg.recurrent,
                               max_nodes=self.cfg.max_nodes, max_conns=self.cfg.max_conns,
                               weight_max=self.cfg.weight_max)

    def immigrate(self, state: NeatState, incoming: Migrants, policy: str,
                  gen: torch.Generator) -> tuple[NeatState, int]:
        records = list(incoming.genomes)
        if not records:
            return state, 0
        rng = numpy_rng(gen)
        seen = set(state.genomes.fingerprints())
        fresh: list[int] = []
        for i, r in enumerate(records):  # a handful of migrants
            if self.check(r) is not None:
                continue
            packed = gn.from_records([r])
            key = packed.fingerprints()[0]
            if key not in seen:
                seen.add(key)
                fresh.append(i)
        if not fresh:
            return state, 0
        newcomers = gn.from_records([records[i] for i in fresh])
        fitness = self.fitness_of(newcomers)  # never trust a claimed fitness
        slots, chosen = policies.replacement_plan(state.fitness, fitness, policy, rng, protect=1)
        if slots.size == 0:
            return state, 0
        # Slot i keeps resident i unless an immigrant takes it; provenance travels along.
        source = np.arange(len(state.genomes))
        source[slots] = len(state.genomes) + chosen
        pick = np.asarray(fresh)[chosen]
        return dataclasses.replace(
            state, genomes=gn.concat([state.genomes, newcomers]).take(source),
            fitness=_put(state.fitness, slots, fitness[chosen]),
            origin=_put(state.origin, slots, incoming.origin[pick]),
            birth=_put(state.birth, slots, incoming.birth[pick]),
            lineage=_put(state.lineage, slots, incoming.lineage[pick]),
        ), int(slots.size)

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


def _put(old: np.ndarray, slots: np.ndarray, new: np.ndarray) -> np.ndarray:
    out = old.copy()
    out[slots] = np.asarray(new, dtype=old.dtype)
    return out
