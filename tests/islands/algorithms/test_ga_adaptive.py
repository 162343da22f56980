"""The GA's self-adaptive mutation: precision, the step floor, immigrants and checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from islands import figures, policies
from islands import operators as ops
from islands.population import Migrants
from islands.algorithms.ga import STEP_CAP, GeneticAlgorithm, breed
from islands.config import GAConfig
from islands.problems import make_problem


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ga(name: str = "sphere", dim: int = 10, **settings) -> GeneticAlgorithm:
    return GeneticAlgorithm(make_problem(name, dim, solved_at=None), GAConfig(**settings), "cpu", torch.float64)


def run(algo: GeneticAlgorithm, gens: int, size: int = 100, seed: int = 0, start: int = 0, state=None, g=None):
    g = g or gen(seed)
    state = state or algo.evaluate(algo.init(size, 0, g))
    for generation in range(start, start + gens):
        state = algo.evaluate(algo.step(state, generation, g))
    return state, g


def test_self_adaptive_ga_reaches_1e_minus_8_on_sphere_d10_within_19000_evaluations():
    # Seeds 0-9: 11,700-14,700 evaluations (11,400-13,800 before SBX drew both coins at once); the
    # budget is 1.3 x the worst.
    algo = ga()
    state, _ = run(algo, 189)  # 100 + 189 * 100 = 19,000 evaluations
    assert figures.stats(algo.population(state)).best > -1e-8
    # The fixed step alone stays far from it: seeds 0-9 at 19,000 evaluations, -1.2e-6 at best.
    fixed = ga(mutation="fixed")
    fixed_state, _ = run(fixed, 189)
    assert figures.stats(fixed.population(fixed_state)).best < -1e-7


def test_steps_never_fall_below_the_floor_nor_exceed_the_cap():
    algo = ga(dim=4, step_floor=1e-3, mutation_sigma=0.01)
    medians = []
    for seed in range(5):
        state, _ = run(algo, 300, size=30, seed=seed)
        assert float(state.step.min()) >= 1e-3
        medians.append(float(algo.info(state)["step"]))
    # It did shrink, down to the floor, on most seeds (seeds 0-9: 6 end at 0.0012-0.0028; on
    # the others the alternate fixed-scale children keep larger steps alive: 0.04-0.26).
    assert sorted(medians)[2] < 0.01, medians
    steps = ops.lognormal_step(torch.full((1000,), 0.4, dtype=torch.float64), 3.0, 1e-6, gen(), STEP_CAP)
    assert float(steps.max()) == STEP_CAP and float(steps.min()) >= 1e-6


def test_fixed_mutation_keeps_the_initial_step_and_breed_returns_no_steps():
    lo, hi = torch.full((3,), -1.0), torch.full((3,), 1.0)
    pop = torch.rand((10, 3), generator=gen(1)) * 2 - 1
    _, _, _, steps = breed(pop, -(pop * pop).sum(1), GAConfig(mutation="fixed"), lo, hi, gen(2))
    assert steps is None
    algo = ga(dim=3, mutation="fixed")
    state, _ = run(algo, 5, size=10)
    assert torch.equal(state.step, torch.full((10,), 0.05, dtype=torch.float64)) and algo.info(state) == {}


def test_immigrants_take_the_population_median_step():
    algo = ga(dim=4)
    state, g = run(algo, 30, size=20)
    assert float(state.step.std()) > 0  # the steps differ, so the median means something
    incoming = Migrants(genomes=np.full((2, 4), 0.25), fitness=np.array([0.0, 0.0]), origin=np.array([4, 4]),
                        birth=np.array([1, 1]), lineage=np.array([90, 91]))
    after, adopted = policies.immigrate(algo, state, incoming, "worst", g)
    assert adopted == 1  # the second is a repeat of the first
    slot = int(torch.nonzero(after.lineage == 90))
    assert float(after.step[slot]) == float(state.step.median())
    others = torch.arange(20) != slot
    assert torch.equal(after.step[others], state.step[others])


def test_old_checkpoints_without_steps_load_as_the_fixed_initial_step():
    algo = ga("rastrigin", 6, mutation_sigma=0.07)
    state, _ = run(algo, 3, size=12)
    record = algo.to_record(state)
    del record["step"]
    old = algo.from_record(record)
    assert torch.equal(old.step, torch.full((12,), 0.07, dtype=torch.float64))
    assert torch.equal(old.genomes, state.genomes)
    with pytest.raises(ValueError):
        algo.from_record({**algo.to_record(state), "step": np.zeros(5)})


def test_every_other_child_mutates_at_the_classic_scale_and_the_rest_at_their_own_step():
    lo, hi = torch.full((20,), -1.0, dtype=torch.float64), torch.full((20,), 1.0, dtype=torch.float64)
    pop = torch.zeros((41, 20), dtype=torch.float64)
    cfg = GAConfig(elitism=1, crossover_rate=0.0, mutation_rate=1.0, mutation_sigma=0.1)
    kids, _, n_elite, steps = breed(pop, torch.zeros(41, dtype=torch.float64), cfg, lo, hi, gen(3),
                                    torch.full((41,), 1e-6, dtype=torch.float64))
    spread = kids[n_elite:].std(dim=1)  # width 2: classic sigma 0.2, own steps ~2e-6
    assert torch.all(spread[1::2] > 0.05) and torch.all(spread[0::2] < 1e-4)
    assert torch.all(steps[n_elite:] != 1e-6) and steps[0] == 1e-6  # children's steps moved, the elite's kept
