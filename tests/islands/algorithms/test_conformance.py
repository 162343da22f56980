"""The contract every registered algorithm keeps, run over the registry (a new one is tested at once).

Per algorithm, dtype (vector genomes: float32 and float64) and device (cpu; cuda where present):
init -> evaluate -> step round trips; the population view agrees with itself and the figures
read it; a checkpoint record, through the checkpoint file codec, continues bit-exactly as the
uninterrupted run; and immigrants, through the island's policies, are adopted when better and
refused when duplicates, out of bounds or NaN, their claimed fitness never trusted.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from islands import checkpoint as ckpt
from islands import figures, policies
from islands.algorithms import REGISTRY, make_algorithm
from islands.config import MigrationConfig, RunConfig
from islands.population import Migrants
from islands.problems import make_problem
from migration_pool import format as fmt
from support.records import same_record

SIZE, DIM, GENERATIONS = 12, 4, 3
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CASES = [
    pytest.param(name, dtype, device, id=f"{name}-{dtype or 'own'}-{device}",
                 marks=[CUDA] if device == "cuda" else [])
    for name, entry in REGISTRY.items()
    for dtype in (("float32", "float64") if entry.genome_kind == "vector" else (None,))
    for device in ("cpu", "cuda")
]


def build(name: str, dtype: str | None, device: str):
    problem_name = "xor" if REGISTRY[name].needs_network else "sphere"
    cfg = RunConfig(problem=problem_name, dim=DIM, algorithm=name, population=SIZE, dtype=dtype,
                    migration=MigrationConfig(min_distance=0.0))
    return make_algorithm(cfg, make_problem(problem_name, DIM), device)


def island(algo, number: int, device: str, generations: int = GENERATIONS):
    gen = torch.Generator(device=device)
    gen.manual_seed(1000 + number)
    state = algo.evaluate(algo.init(SIZE, number, gen))
    for g in range(generations):
        state = algo.evaluate(algo.step(state, g, gen))
    return state, gen


def column(values) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


@pytest.mark.parametrize("name, dtype, device", CASES)
def test_round_trip_and_population_view(name, dtype, device):
    algo = build(name, dtype, device)
    state, gen = island(algo, 2, device)
    pop = algo.population(state)
    n = len(pop)
    assert n == pop.evaluations and column(pop.fitness).shape == (n,) and pop.pending == 0
    for values in (pop.origin, pop.birth, pop.lineage):
        assert column(values).shape == (n,) and column(values).dtype == np.int64
    assert len(pop.genomes) == n
    if pop.kind.name == "vector":
        assert pop.genomes.shape == (n, algo.problem.dim) and pop.genomes.dtype == algo.dtype
        assert pop.genomes.device.type == device
    stats = figures.stats(pop)
    fitness = column(pop.fitness)
    assert stats.best == fitness.max() and fitness[stats.best_index] == stats.best
    assert np.isfinite(stats.mean)
    assert figures.diversity(pop) >= 0.0 and figures.foreign_share(pop, 2) == 0.0
    assert figures.origins(pop) == {2: n}
    centre = figures.centroid(pop)
    assert centre is None or centre.shape == (algo.problem.dim,)
    assert figures.genome(pop, stats.best_index) is not None
    assert isinstance(algo.info(state), dict) and algo.default_population() >= 2


@pytest.mark.parametrize("name, dtype, device", CASES)
def test_checkpoint_continues_bit_exactly(name, dtype, device):
    algo = build(name, dtype, device)
    state, gen = island(algo, 1, device)
    body = ckpt.make_record("run", "island-01", "hash", algo.to_record(state), gen, ckpt.Progress(generation=3))
    record = fmt.decode(fmt.encode("checkpoint", body), "checkpoint")
    gen2 = torch.Generator(device=device)
    state_record, progress = ckpt.restore(record, "run", "island-01", "hash", gen2, "memory")
    restored = algo.from_record(state_record)
    for g in range(progress.generation, progress.generation + 3):
        state = algo.evaluate(algo.step(state, g, gen))
        restored = algo.evaluate(algo.step(restored, g, gen2))
    assert same_record(algo.to_record(state), algo.to_record(restored))
    assert torch.equal(gen.get_state(), gen2.get_state())


def _lowered(algo, state):
    """`state` whose residents all claim a very low fitness: any fitting immigrant is better."""
    pop = algo.population(state)
    return algo.with_population(state, dataclasses.replace(pop, fitness=pop.fitness * 0 - 1e9),
                                np.zeros(0, dtype=np.int64))


def _best(algo, state, gen) -> Migrants:
    return policies.emigrate(algo, state, 1, "best", gen)


def _joined(batches: list[Migrants]) -> Migrants:
    """One batch of several islands' emigrants, as the pool hands them over."""
    def cat(values):
        return np.concatenate(values) if isinstance(values[0], np.ndarray) else [g for v in values for g in v]
    return Migrants(*(cat([getattr(b, f.name) for b in batches]) for f in dataclasses.fields(Migrants)))


def _lying(em: Migrants) -> Migrants:
    return dataclasses.replace(em, fitness=np.full(len(em), 1e12))  # never trusted


def _spoiled(em: Migrants) -> Migrants:
    """The same migrants, unfit: NaN and out of the box (vectors), NaN and huge weights (NEAT)."""
    if isinstance(em.genomes, np.ndarray):
        genomes = em.genomes.copy()
        genomes[0, 0], genomes[1, 0] = np.nan, 1e30
        return dataclasses.replace(em, genomes=genomes)
    genomes = [dict(g) for g in em.genomes]
    for g, bad in zip(genomes, (np.nan, 1e30)):
        g["weight"] = np.full_like(g["weight"], bad)
    return dataclasses.replace(em, genomes=genomes)


@pytest.mark.parametrize("name, dtype, device", CASES)
def test_immigrants_through_the_policies(name, dtype, device):
    algo = build(name, dtype, device)
    here, gen = island(algo, 0, device)
    incoming = _lying(_joined([_best(algo, *island(algo, n, device)) for n in (5, 6)]))
    assert len(incoming) == 2 and incoming.origin.tolist() == [5, 6]
    low = _lowered(algo, here)
    adopts = algo.population(low).adopts

    after, adopted = policies.immigrate(algo, low, incoming, "better", gen)
    assert adopted == (1 if adopts == "center" else 2)
    pop = algo.population(after)
    joined = pop.queued if adopts == "queue" else pop
    origin, fitness = column(joined.origin), column(joined.fitness)
    foreign = origin >= 5
    assert foreign.sum() == adopted
    assert (fitness[foreign] < 1e12).all()  # recomputed here, not the claimed 1e12
    assert policies.immigrate(algo, low, incoming, "better", gen)[0] is not low  # out of place
    assert same_record(algo.to_record(low), algo.to_record(_lowered(algo, here)))

    copies = policies.emigrate(algo, here, 2, "best", gen)  # residents already present
    assert policies.immigrate(algo, low, copies, "worst", gen)[1] == 0
    first = Migrants(*(getattr(incoming, f.name)[:1] for f in dataclasses.fields(Migrants)))
    twice = _joined([first, first])
    assert policies.immigrate(algo, low, twice, "worst", gen)[1] == 1  # the batch repeats itself
    assert policies.immigrate(algo, low, _spoiled(incoming), "worst", gen)[1] == 0
    unchanged, none = policies.immigrate(algo, here, copies, "worst", gen)
    assert none == 0 and unchanged is here
