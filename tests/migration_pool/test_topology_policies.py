"""Topologies (who reads whom), emigrant selection and immigrant replacement policies.

Property tests over arbitrary island sets and fitness vectors (NaN included), plus the GA's
immigration: duplicates, out-of-bounds and NaN genomes are never adopted, claimed fitness is
never trusted.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from islands import policies
from islands import config as island_config
from islands.population import Migrants
from islands.algorithms.ga import GeneticAlgorithm
from islands.config import GAConfig
from islands.problems import make_problem
from migration_pool.errors import PoolError
from islands.errors import ConfigError
from islands.policies import replacement_plan, select_emigrants
from migration_pool.topology import TOPOLOGIES, neighbours, ordered

island_sets = st.lists(st.integers(0, 150), min_size=1, max_size=24, unique=True).map(
    lambda ns: [f"island-{n:02d}" for n in ns])


def sources(islands: list[str], topology: str, **kw) -> dict[str, list[str]]:
    return {i: neighbours(i, islands, topology, **kw) for i in islands}


# ----------------------------------------------------------------------------- topology

@given(island_sets, st.sampled_from(TOPOLOGIES), st.integers(0, 2**32), st.integers(0, 10**6),
       st.integers(1, 5), st.randoms(use_true_random=False))
def test_every_topology_names_other_known_islands_once_in_island_order(islands, topology, seed,
                                                                       event, k, rnd):
    shuffled = islands * 2
    rnd.shuffle(shuffled)
    order = ordered(islands)
    for island in islands:
        got = neighbours(island, islands, topology, seed=seed, event=event, k=k)
        assert island not in got
        assert set(got) <= set(islands)
        assert len(got) == len(set(got))
        assert got == sorted(got, key=order.index)
        # The order and repetition of the given list never matter.
        assert neighbours(island, shuffled, topology, seed=seed, event=event, k=k) == got


@given(island_sets)
def test_ring_is_one_cycle_through_every_island(islands):
    src = sources(islands, "ring")
    if len(islands) == 1:
        assert src == {islands[0]: []}
        return
    assert all(len(s) == 1 for s in src.values())
    start, here, visited = islands[0], islands[0], []
    for _ in islands:
        visited.append(here)
        here = src[here][0]
    assert here == start and sorted(visited) == sorted(islands)
    # Migrants flow upwards: island i reads island i-1 (the lowest reads the highest).
    order = ordered(islands)
    assert src[order[1]] == [order[0]] and src[order[0]] == [order[-1]]


@given(island_sets)
def test_two_way_ring_reads_both_ring_neighbours_symmetrically(islands):
    src = sources(islands, "ring2")
    one_way = sources(islands, "ring")
    for a in islands:
        assert len(src[a]) == min(2, len(islands) - 1)
        assert set(one_way[a]) <= set(src[a])
        for b in src[a]:
            assert a in src[b]


@given(island_sets)
def test_full_star_and_none(islands):
    order = ordered(islands)
    hub = order[0]
    for island in islands:
        others = [i for i in order if i != island]
        assert neighbours(island, islands, "full") == others
        assert neighbours(island, islands, "none") == []
        assert neighbours(island, islands, "star") == (others if island == hub else [hub])


@given(island_sets, st.integers(0, 2**32), st.integers(1, 4))
def test_random_draws_k_reproducibly_and_redraws_per_event(islands, seed, k):
    n = len(islands)
    island = islands[-1]
    draws = [tuple(neighbours(island, islands, "random", seed=seed, event=e, k=k)) for e in range(60)]
    assert all(len(d) == min(k, n - 1) for d in draws)
    again = [tuple(neighbours(island, list(reversed(islands)), "random", seed=seed, event=e, k=k))
             for e in range(60)]
    assert draws == again  # every island computes the same draw, with no coordination
    if n - 1 > k:
        assert len(set(draws)) > 1  # redrawn per event
        other_seed = [tuple(neighbours(island, islands, "random", seed=seed + 1, event=e, k=k))
                      for e in range(60)]
        assert other_seed != draws
    if 1 < n <= 8:
        drawn = {i for d in draws for i in d}
        assert drawn == set(islands) - {island}  # every other island is a source sometimes


def test_topology_errors_and_agreement_with_the_config():
    assert set(TOPOLOGIES) == set(island_config.TOPOLOGIES)
    with pytest.raises(PoolError, match="unknown topology"):
        neighbours("island-00", ["island-01"], "hypercube")
    with pytest.raises(PoolError, match="k >= 1"):
        neighbours("island-00", ["island-01"], "random", k=0)
    for bad in ("island-1", "island-0x", "../island-01", "island-01\n", "island-٠١"):
        with pytest.raises(PoolError, match="not an island id"):
            neighbours("island-00", [bad], "full")
    # Numeric, not lexicographic, order: island-100 comes after island-99.
    assert ordered(["island-100", "island-99", "island-07"]) == ["island-07", "island-99", "island-100"]


# ----------------------------------------------------------------------------- policies

fitness_vectors = arrays(np.float64, st.integers(1, 40),
                         elements=st.floats(-1e6, 1e6) | st.just(float("nan")))


def rank(f: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(f), -np.inf, f)


@given(fitness_vectors, st.integers(0, 45))
def test_best_emigrants_are_the_top_k(fitness, k):
    idx = select_emigrants(fitness, k, "best")
    assert len(idx) == min(k, len(fitness)) == len(set(idx.tolist()))
    rest = np.setdiff1d(np.arange(len(fitness)), idx)
    if len(idx) and len(rest):
        assert rank(fitness[idx]).min() >= rank(fitness[rest]).max()
    assert list(rank(fitness[idx])) == sorted(rank(fitness[idx]), reverse=True)


@given(fitness_vectors, st.integers(0, 45), st.integers(1, 6), st.integers(0, 2**32))
def test_tournament_emigrants_are_distinct_and_each_beats_its_draw(fitness, k, size, seed):
    idx = select_emigrants(fitness, k, "tournament", np.random.default_rng(seed), size)
    assert len(idx) == min(k, len(fitness)) == len(set(idx.tolist()))
    assert ((0 <= idx) & (idx < len(fitness))).all()


def test_tournament_as_large_as_the_population_is_best_and_size_one_is_not():
    fitness = np.arange(50, dtype=np.float64)
    rng = np.random.default_rng(0)
    assert select_emigrants(fitness, 5, "tournament", rng, 50).tolist() == [49, 48, 47, 46, 45]
    picks = {tuple(sorted(select_emigrants(fitness, 5, "tournament", rng, 1))) for _ in range(20)}
    assert len(picks) > 1 and picks != {(45, 46, 47, 48, 49)}


def test_policy_errors():
    f = np.zeros(4)
    for call, match in [
        (lambda: select_emigrants(f, 2, "roulette"), "unknown emigrant policy"),
        (lambda: select_emigrants(f, -1, "best"), ">= 0"),
        (lambda: select_emigrants(f, 2, "tournament"), "random generator"),
        (lambda: select_emigrants(f, 2, "tournament", np.random.default_rng(), 0), "tournament size"),
        (lambda: replacement_plan(f, f, "oldest"), "unknown replacement policy"),
        (lambda: replacement_plan(f, f, "random"), "random generator"),
        (lambda: replacement_plan(f, f, "worst", protect=-1), "protect"),
    ]:
        with pytest.raises(ConfigError, match=match):
            call()


@given(fitness_vectors, fitness_vectors, st.sampled_from(["worst", "random", "better"]),
       st.integers(0, 10), st.integers(0, 2**32))
def test_replacement_plan_invariants(pop, imm, policy, protect, seed):
    slots, chosen = replacement_plan(pop, imm, policy, np.random.default_rng(seed), protect)
    assert slots.dtype == chosen.dtype == np.int64 and len(slots) == len(chosen)
    assert len(set(slots.tolist())) == len(slots) and len(set(chosen.tolist())) == len(chosen)
    assert not np.isnan(imm[chosen]).any()  # a NaN immigrant is never adopted
    n_ok = int((~np.isnan(imm)).sum())
    assert len(slots) <= min(n_ok, max(0, len(pop) - protect))
    elites = np.argsort(rank(pop), kind="stable")[len(pop) - protect:] if protect else []
    assert not set(slots.tolist()) & set(np.asarray(elites).tolist())
    # The adopted immigrants are the best ones.
    if len(chosen):
        others = np.setdiff1d(np.flatnonzero(~np.isnan(imm)), chosen)
        if len(others):
            assert imm[chosen].min() >= imm[others].max()
    if policy == "worst":
        assert len(slots) == min(n_ok, max(0, len(pop) - protect))
        assert sorted(rank(pop[slots])) == sorted(rank(pop))[: len(slots)]
    if policy == "better":
        assert (imm[chosen] > rank(pop[slots])).all()


@given(fitness_vectors, fitness_vectors)
def test_replace_only_when_better_keeps_the_best_of_residents_and_immigrants(pop, imm):
    slots, chosen = replacement_plan(pop, imm, "better")
    after = rank(pop.copy())
    after[slots] = imm[chosen]
    union = np.concatenate([rank(pop), imm[~np.isnan(imm)]])
    assert sorted(after) == sorted(union)[len(union) - len(pop):]


# ----------------------------------------------------------------------------- GA immigration

def make_ga(dim: int = 5, population: int = 20, elitism: int = 2):
    problem = make_problem("sphere", dim)
    ga = GeneticAlgorithm(problem, GAConfig(elitism=elitism))
    gen = torch.Generator()
    gen.manual_seed(7)
    return ga, ga.evaluate(ga.init(population, 0, gen)), gen


def migrants(genomes, claimed: float = 1e9, origin: int = 3) -> Migrants:
    genomes = np.asarray(genomes, dtype=np.float32)
    k = len(genomes)
    return Migrants(genomes=genomes, fitness=np.full(k, claimed), origin=np.full(k, origin),
                    birth=np.arange(k) + 100, lineage=(origin << 32) + np.arange(k))


def test_immigrate_adopts_each_new_genome_once_and_never_a_duplicate_or_bad_one():
    ga, state, gen = make_ga()
    lo, hi = float(ga.lower[0]), float(ga.upper[0])
    fresh = np.full(5, 0.25)  # near the optimum: better than every random resident
    incoming = migrants([
        state.genomes[4].numpy(),  # already a resident
        fresh,
        fresh,  # the same genome twice in one batch
        np.full(5, hi * 2),  # out of bounds
        np.full(5, np.nan),
        np.full(5, lo / 3),
    ])
    before = [t.clone() for t in (state.genomes, state.fitness, state.origin)]
    after, adopted = policies.immigrate(ga, state, incoming, "worst", gen)
    assert adopted == 2
    foreign = np.flatnonzero(after.origin.numpy() == 3)
    assert len(foreign) == 2
    got = {after.genomes[i].numpy().tobytes() for i in foreign}
    assert got == {incoming.genomes[1].tobytes(), incoming.genomes[5].tobytes()}
    # Claimed fitness is ignored: adopted individuals carry their locally computed fitness.
    assert torch.equal(after.fitness, ga.evaluate(after).fitness)
    assert set(after.birth[foreign].tolist()) == {101, 105}
    # The old state is untouched (states are immutable), and elites were not replaced.
    assert all(torch.equal(a, b) for a, b in zip(before, (state.genomes, state.fitness, state.origin)))
    elites = torch.topk(state.fitness, 2).indices
    assert torch.equal(after.genomes[elites], state.genomes[elites])
    # The same batch again adopts nothing: its genomes are all present now.
    again, adopted_again = policies.immigrate(ga, after, incoming, "worst", gen)
    assert adopted_again == 0 and again is after


def test_immigrate_better_adopts_only_improvements():
    ga, state, gen = make_ga()
    worst = torch.argmin(state.fitness)
    bad = np.full(5, float(ga.upper[0]))  # the corner of the box: worse than every resident
    f_bad = float(ga.problem.evaluate(torch.tensor(bad[None], dtype=torch.float32))[0])
    assert f_bad < float(state.fitness[worst])
    _, adopted = policies.immigrate(ga, state, migrants([bad]), "better", gen)
    assert adopted == 0
    after, adopted = policies.immigrate(ga, state, migrants([bad, np.zeros(5)]), "better", gen)
    assert adopted == 1 and float(after.fitness.max()) == 0.0


def test_immigrate_random_replaces_non_elites_and_is_reproducible():
    ga, state, _ = make_ga(population=30)
    incoming = migrants(np.linspace(-1, 1, 20).reshape(4, 5))
    runs = []
    for _ in range(2):
        gen = torch.Generator()
        gen.manual_seed(11)
        after, adopted = policies.immigrate(ga, state, incoming, "random", gen)
        runs.append(after.genomes)
        assert adopted == 4
    assert torch.equal(runs[0], runs[1])
