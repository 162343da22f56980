"""The GA's pure tensor operators and one generation of `breed`."""
from __future__ import annotations

import pytest
import torch

from islands import figures, policies
from islands import operators as ops
from islands.algorithms.ga import GeneticAlgorithm, breed
from islands.config import GAConfig
from islands.problems import make_problem


def gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def parents(p: int = 64, d: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(123)
    return torch.rand((p, d), generator=g) * 4 - 2, torch.rand((p, d), generator=g) * 4 - 2


def test_tournament_never_picks_nan_over_a_number_and_picks_the_best_when_everyone_enters():
    fitness = torch.tensor([1.0, float("nan"), 3.0, 2.0])
    winners = ops.tournament(fitness, 200, 50, gen())
    assert set(winners.tolist()) == {2}
    assert ops.top_k(fitness, 2).tolist() == [2, 3]


def test_tournament_of_size_one_is_uniform_selection():
    fitness = torch.arange(10, dtype=torch.float32)
    counts = torch.bincount(ops.tournament(fitness, 10_000, 1, gen()), minlength=10)
    assert counts.min() > 800  # each index ~1000 times


@pytest.mark.parametrize("name", ["sbx", "uniform"])
def test_sbx_and_uniform_preserve_the_parents_midpoint(name):
    a, b = parents()
    a0, b0 = a.clone(), b.clone()
    c1, c2 = ops.sbx(a, b, 15.0, gen()) if name == "sbx" else ops.uniform_crossover(a, b, gen())
    torch.testing.assert_close(c1 + c2, a + b)
    assert not torch.equal(c1, a)  # something was recombined
    assert torch.equal(a, a0) and torch.equal(b, b0)  # inputs untouched


def test_blx_children_stay_in_the_widened_interval():
    a, b = parents()
    alpha = 0.5
    c1, c2 = ops.blx_alpha(a, b, alpha, gen())
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    span = high - low
    for c in (c1, c2):
        assert torch.all(c >= low - alpha * span - 1e-6) and torch.all(c <= high + alpha * span + 1e-6)


def test_gaussian_mutation_rate_controls_how_many_genes_change():
    x = torch.zeros((200, 50))
    assert torch.equal(ops.gaussian_mutation(x, 0.0, torch.tensor(1.0), gen()), x)
    changed = (ops.gaussian_mutation(x, 0.1, torch.tensor(1.0), gen()) != 0).float().mean()
    assert 0.08 < changed < 0.12
    assert torch.equal(x, torch.zeros((200, 50)))


def test_bound_handlers_land_inside_and_leave_inside_points_alone():
    lower, upper = torch.full((3,), -1.0), torch.full((3,), 2.0)
    x = torch.tensor([[-7.5, 0.5, 9.0], [0.0, 1.0, 2.0]])
    for handler in (ops.clip, ops.reflect):
        y = handler(x, lower, upper)
        assert torch.all(y >= lower) and torch.all(y <= upper)
        torch.testing.assert_close(y[1], x[1])
    torch.testing.assert_close(ops.reflect(torch.tensor([[2.5, -1.5, 0.0]]), lower, upper),
                               torch.tensor([[1.5, -0.5, 0.0]]))


def test_same_generator_seed_gives_the_same_children_and_other_seeds_differ():
    problem = make_problem("rastrigin", 10)
    lo, hi = problem.bounds("cpu", torch.float32)
    g = gen(5)
    pop = lo + torch.rand((50, 10), generator=g) * (hi - lo)
    fit = problem.evaluate(pop)
    cfg = GAConfig()
    one, *_ = breed(pop, fit, cfg, lo, hi, gen(1))
    two, *_ = breed(pop, fit, cfg, lo, hi, gen(1))
    other, *_ = breed(pop, fit, cfg, lo, hi, gen(2))
    assert torch.equal(one, two)
    assert not torch.equal(one, other)


@pytest.mark.parametrize("crossover", ["sbx", "blx", "uniform"])
def test_breed_keeps_elites_bounds_and_parent_indices(crossover):
    problem = make_problem("rastrigin", 6)
    lo, hi = problem.bounds("cpu", torch.float32)
    pop = lo + torch.rand((31, 6), generator=gen(9)) * (hi - lo)
    fit = problem.evaluate(pop)
    cfg = GAConfig(crossover=crossover, elitism=3, mutation_sigma=0.5, bounds="reflect")
    children, parents_idx, n_elite, _ = breed(pop, fit, cfg, lo, hi, gen(3))
    assert children.shape == pop.shape and n_elite == 3
    assert torch.equal(children[:3], pop[ops.top_k(fit, 3)])
    assert torch.all(children >= lo) and torch.all(children <= hi)
    assert parents_idx.shape == (31,) and parents_idx.min() >= 0 and parents_idx.max() < 31


def test_the_ga_solves_sphere_and_tracks_provenance():
    problem = make_problem("sphere", 5)
    algo = GeneticAlgorithm(problem, GAConfig(mutation_rate=0.3, mutation_sigma=0.02))
    g = gen(0)
    state = algo.evaluate(algo.init(60, island=7, gen=g))
    first = figures.stats(algo.population(state)).best
    for generation in range(40):  # seeds 0-9 pass -1e-3 at generations 19-28
        state = algo.evaluate(algo.step(state, generation, g))
    assert first < -1.0
    assert figures.stats(algo.population(state)).best > -1e-3
    assert torch.all(state.origin == 7)
    assert int(state.birth.max()) == 40
    assert figures.foreign_share(algo.population(state), 7) == 0.0 and figures.foreign_share(algo.population(state), 1) == 1.0
    assert 0.0 <= figures.diversity(algo.population(state)) < 0.05  # converged (seeds 0-9: < 0.01)


def test_immigrants_are_reevaluated_and_duplicates_are_not_adopted():
    problem = make_problem("sphere", 4)
    algo = GeneticAlgorithm(problem, GAConfig(elitism=1))
    g = gen(0)
    state = algo.evaluate(algo.init(20, island=0, gen=g))
    em = policies.emigrate(algo, state, 3, "best", g)
    # The same genomes come back: all duplicates, nothing adopted.
    state2, adopted = policies.immigrate(algo, state, em, "worst", g)
    assert adopted == 0 and torch.equal(state2.genomes, state.genomes)
    # A perfect genome that lies about its fitness is re-evaluated; it is adopted as itself.
    import numpy as np
    from islands.population import Migrants
    liar = Migrants(genomes=np.zeros((1, 4), np.float32), fitness=np.array([-1e9]),
                    origin=np.array([5]), birth=np.array([3]), lineage=np.array([42]))
    state3, adopted = policies.immigrate(algo, state, liar, "worst", g)
    assert adopted == 1
    slot = int(torch.nonzero(state3.lineage == 42))
    assert float(state3.fitness[slot]) == 0.0 and int(state3.origin[slot]) == 5


def test_sbx_exchanges_genes_between_children_so_building_blocks_mix():
    """With a huge eta children equal their parents gene by gene; half the genes must swap."""
    a, b = torch.zeros((200, 50)), torch.ones((200, 50))
    c1, _ = ops.sbx(a, b, 1e9, gen())
    from_b = (c1 > 0.5).float().mean()
    assert 0.4 < from_b < 0.6


def test_the_ga_beats_a_plain_budget_on_rastrigin_30():
    """A quality floor that caught SBX without gene exchange (it stalled near -100)."""
    problem = make_problem("rastrigin", 30)
    algo = GeneticAlgorithm(problem, GAConfig())
    bests = []
    for seed in range(3):
        g = gen(seed)
        state = algo.evaluate(algo.init(100, 0, g))
        for generation in range(150):
            state = algo.evaluate(algo.step(state, generation, g))
        bests.append(figures.stats(algo.population(state)).best)
    assert sorted(bests)[1] > -30.0, bests  # seeds 0-9: -5.6 to -21.1


@pytest.mark.parametrize("chunk", [None, 3])
def test_bernoulli_positions_are_distinct_ascending_and_hit_each_gene_at_the_rate(chunk):
    """The sparse mutation's positions: exact Bernoulli trials, also across several draws of
    gaps (chunk 3 forces the loop that a default chunk almost never takes)."""
    n, rate, rounds = 400, 0.05, 2000
    g = gen()
    counts = torch.zeros(n)
    for _ in range(rounds):
        pos = ops.bernoulli_positions(n, rate, g, chunk=chunk)
        assert pos.dtype == torch.long and (pos.numel() == 0 or (pos.min() >= 0 and pos.max() < n))
        assert torch.all(pos[1:] > pos[:-1])  # ascending, so no gene is drawn twice
        counts[pos] += 1
    per_gene = counts / rounds
    assert abs(float(per_gene.mean()) - rate) < 0.003
    # each gene alone: binomial(2000, 0.05) has sd 0.0049; 5 sd either side
    assert float(per_gene.min()) > rate - 0.025 and float(per_gene.max()) < rate + 0.025
    assert ops.bernoulli_positions(n, 0.0, g).numel() == 0
    assert torch.equal(ops.bernoulli_positions(5, 1.0, g), torch.arange(5))


def test_sparse_and_dense_mutation_draw_the_same_noise_distribution():
    """Below DENSE_RATE only the mutated genes draw noise; the mutated share and the noise's
    spread (per-gene sigma broadcast) must match the dense path's."""
    x = torch.zeros((400, 50), dtype=torch.float64)
    assert x.numel() >= ops.SPARSE_MIN
    per_gene = torch.linspace(0.5, 2.0, 50, dtype=torch.float64)
    per_child = per_gene * torch.linspace(0.2, 3.0, 400, dtype=torch.float64)[:, None]  # rows differ too
    per_row = torch.linspace(0.2, 3.0, 400, dtype=torch.float64)[:, None]
    one = torch.full((1, 1), 0.7, dtype=torch.float64)
    for rate, sigma in ((0.1, per_gene), (0.1, per_child), (0.1, per_row), (0.1, one), (ops.DENSE_RATE, per_gene)):
        y = ops.gaussian_mutation(x, rate, sigma, gen(3))
        hit = y != 0
        assert abs(float(hit.double().mean()) - rate) < 0.01
        z = (y / sigma.expand(400, 50))[hit]  # standard normal whichever path drew it
        assert abs(float(z.std()) - 1.0) < 0.05 and abs(float(z.mean())) < 0.05
        assert y.dtype == torch.float64
    assert torch.equal(x, torch.zeros((400, 50), dtype=torch.float64))  # the input untouched
