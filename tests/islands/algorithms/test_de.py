"""Differential evolution (SHADE and jDE): convergence, parameter memory, archive, checkpoints."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from islands import figures, policies
from islands.algorithms import make_algorithm
from islands.population import Migrants
from islands.algorithms.de import (DEConfig, DifferentialEvolution, draw_excluding, truncated_cauchy,
                                   update_memory)
from islands.config import RunConfig
from islands.errors import ConfigError
from islands.problems import Problem, make_problem


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ellipsoid(dim: int) -> Problem:
    """Axis-parallel ellipsoid, condition 1e6: f = sum 10^(6 i / (D - 1)) x_i^2."""
    scale = 10.0 ** (6.0 * torch.arange(dim, dtype=torch.float64) / (dim - 1))

    def fn(x: torch.Tensor) -> torch.Tensor:
        return -(scale.to(x) * x * x).sum(dim=1)

    return Problem(name="ellipsoid", dim=dim, lower=-5.0, upper=5.0, fn=fn, optimum=0.0)


def run(algo: DifferentialEvolution, gens: int, seed: int = 0, size: int | None = None):
    g = gen(seed)
    state = algo.evaluate(algo.init(size or algo.default_population(), 0, g))
    for generation in range(gens):
        state = algo.evaluate(algo.step(state, generation, g))
    return state, g


def de(problem: Problem, **params) -> DifferentialEvolution:
    return DifferentialEvolution(problem, DEConfig.from_params(params), "cpu", torch.float64)


# Budgets: the worst of seeds 0-9 times about 1.35, in generations of 50 (the tests run seed 0).
@pytest.mark.parametrize("problem, generations", [(make_problem("sphere", 10, solved_at=None), 219),
                                                  (ellipsoid(10), 299)], ids=["sphere", "ellipsoid"])
def test_shade_reaches_1e_minus_8_at_d10_within_its_budget(problem, generations):
    # Seeds 0-9: 7,000-8,200 evaluations on the sphere, 9,800-10,950 on the ellipsoid.
    algo = de(problem)
    assert algo.default_population() == 50
    state, _ = run(algo, generations)  # 50 + 219 * 50 = 11,000 evaluations; 15,000 on the ellipsoid
    assert figures.stats(algo.population(state)).best > -1e-8


def test_jde_rand_1_reaches_1e_minus_8_on_sphere_d10_within_14000_evaluations():
    # Seeds 0-9: 9,350-10,600 evaluations.
    algo = de(make_problem("sphere", 10, solved_at=None), strategy="rand/1")
    state, _ = run(algo, 279)
    assert figures.stats(algo.population(state)).best > -1e-8


def test_memory_entry_k_becomes_the_weighted_lehmer_mean_of_successful_f_and_mean_of_cr():
    memory_f, memory_cr = torch.full((4,), 0.5, dtype=torch.float64), torch.full((4,), 0.5, dtype=torch.float64)
    f = torch.tensor([0.2, 0.8, 0.9, 0.4], dtype=torch.float64)
    cr = torch.tensor([0.1, 0.9, 0.3, 0.7], dtype=torch.float64)
    gain = torch.tensor([1.0, 3.0, 0.0, 0.0], dtype=torch.float64)  # two successes, weights 1/4, 3/4
    k = torch.tensor(2)
    new_f, new_cr, new_k = update_memory(memory_f, memory_cr, k, f, cr, gain)
    # Lehmer: (0.25 * 0.04 + 0.75 * 0.64) / (0.25 * 0.2 + 0.75 * 0.8) = 0.49 / 0.65
    assert new_f.tolist() == pytest.approx([0.5, 0.5, 0.49 / 0.65, 0.5])
    assert new_cr.tolist() == pytest.approx([0.5, 0.5, 0.25 * 0.1 + 0.75 * 0.9, 0.5])
    assert int(new_k) == 3
    assert memory_f.tolist() == [0.5] * 4  # inputs untouched
    # No success: nothing moves, not even k; and k wraps around.
    same = update_memory(memory_f, memory_cr, k, f, cr, torch.zeros(4, dtype=torch.float64))
    assert torch.equal(same[0], memory_f) and torch.equal(same[1], memory_cr) and int(same[2]) == 2
    assert int(update_memory(memory_f, memory_cr, torch.tensor(3), f, cr, gain)[2]) == 0


def test_memory_moves_toward_successful_parameters_in_a_run():
    algo = de(make_problem("sphere", 10, solved_at=None))
    state, _ = run(algo, 30)
    assert not torch.equal(state.memory_f, torch.full_like(state.memory_f, 0.5))
    assert torch.all((state.memory_f > 0) & (state.memory_f <= 1))
    assert torch.all((state.memory_cr >= 0) & (state.memory_cr <= 1))
    assert set(algo.info(state)) == {"F", "CR"}


def test_archive_fills_up_to_the_population_size_and_holds_former_parents():
    algo = de(make_problem("rastrigin", 5, solved_at=None))
    g = gen(1)
    state = algo.evaluate(algo.init(20, 0, g))
    seen = set(map(tuple, state.pop.genomes.tolist()))
    sizes = []
    for generation in range(60):
        state = algo.evaluate(algo.step(state, generation, g))
        seen |= set(map(tuple, state.pop.genomes.tolist()))
        sizes.append(int(state.archive_size))
        assert state.archive.shape == (20, 5)
    assert max(sizes) == 20 and sizes == sorted(sizes)
    assert all(tuple(row) in seen for row in state.archive.tolist())  # every row was a population member


def test_archive_takes_exactly_the_parents_strictly_beaten_by_their_trials():
    """SHADE: a trial that ties its parent replaces it (DE drifts across plateaus), but only a
    parent strictly beaten goes to the archive, and only strict wins feed the memory."""
    # Fitness in steps of 1: many trials tie their parent, some beat it, some lose.
    problem = Problem(name="steps", dim=3, lower=-4.0, upper=4.0,
                      fn=lambda x: -torch.floor((x * x).sum(dim=1) / 4.0))
    algo = de(problem, archive_rate=5.0)  # room for 200 rows: none is dropped at random here
    g = gen(7)
    state = algo.evaluate(algo.init(40, 0, g))
    kinds = set()
    for generation in range(5):
        stepped = algo.step(state, generation, g)
        parents, size_before = state.pop, int(state.archive_size)
        trial_fit = problem.evaluate(stepped.trials.pop.genomes)
        won, tied = trial_fit > parents.fitness, trial_fit == parents.fitness
        kinds |= {"won"} if won.any() else set()
        kinds |= {"tied"} if tied.any() else set()
        after = algo.evaluate(stepped)
        # Selection: ties and wins move in, losses stay out.
        assert torch.equal(after.pop.genomes, torch.where((won | tied)[:, None], stepped.trials.pop.genomes,
                                                          parents.genomes))
        # The archive: what it held plus exactly the beaten parents.
        assert size_before + int(won.sum()) <= state.archive.shape[0] == 200
        assert int(after.archive_size) == size_before + int(won.sum())
        held = sorted(map(tuple, after.archive[: int(after.archive_size)].tolist()))
        expected = sorted([tuple(r) for r in state.archive[:size_before].tolist()]
                          + [tuple(r) for r in parents.genomes[won].tolist()])
        assert held == expected
        assert not after.archive[int(after.archive_size):].any()  # unfilled rows stay zero
        if not won.any():  # only ties: the memory does not move either
            assert torch.equal(after.memory_f, state.memory_f) and int(after.k) == int(state.k)
        state = after
    assert kinds == {"won", "tied"}  # both cases happened


def test_trials_tying_at_nan_neither_archive_their_parents_nor_move_the_memory():
    """NaN ranks worst, so a NaN trial "ties" a NaN parent: it moves in, but it is no success."""
    algo = de(Problem(name="nan", dim=3, lower=-1.0, upper=1.0,
                      fn=lambda x: torch.full((x.shape[0],), torch.nan, dtype=x.dtype)))
    state, _ = run(algo, 4, size=12)
    assert int(state.archive_size) == 0 and not state.archive.any()
    assert torch.equal(state.memory_f, torch.full_like(state.memory_f, 0.5)) and int(state.k) == 0
    assert torch.equal(state.memory_cr, torch.full_like(state.memory_cr, 0.5))


def test_index_draws_avoid_the_excluded_indices():
    n, size = 7, 5000
    rows = torch.arange(size) % n
    r1 = draw_excluding(n, [rows], gen(2), size, torch.device("cpu"))
    r2 = draw_excluding(n + 3, [rows, r1], gen(3), size, torch.device("cpu"))
    assert torch.all(r1 != rows) and torch.all(r2 != rows) and torch.all(r2 != r1)
    assert r1.min() == 0 and r1.max() == n - 1 and r2.max() == n + 2


def test_truncated_cauchy_stays_in_0_1_and_centres_on_its_location():
    f = truncated_cauchy(torch.full((20000,), 0.5, dtype=torch.float64), 0.1, gen(4))
    assert torch.all((f > 0) & (f <= 1))
    assert abs(float(f.median()) - 0.5) < 0.01


def test_trials_stay_in_bounds_and_never_modify_the_parents():
    # Fitness grows towards the upper corner, so trials keep pushing past the bound.
    problem = Problem(name="corner", dim=4, lower=-1.0, upper=(1.0, 2.0, 3.0, 4.0), fn=lambda x: x.sum(dim=1))
    for strategy in ("current-to-pbest/1", "rand/1"):
        algo = de(problem, strategy=strategy)
        g = gen(5)
        state = algo.evaluate(algo.init(12, 0, g))
        for generation in range(40):
            before = [t.clone() for t in (state.pop.genomes, state.pop.fitness, state.f, state.archive)]
            stepped = algo.step(state, generation, g)
            assert stepped.trials is not None
            after = (state.pop.genomes, state.pop.fitness, state.f, state.archive)
            assert all(torch.equal(a, b) for a, b in zip(before, after))
            assert stepped.pop is state.pop
            trial = stepped.trials.pop.genomes
            assert torch.all(trial >= algo.lower) and torch.all(trial <= algo.upper)
            state = algo.evaluate(stepped)
            assert all(torch.equal(a, b) for a, b in zip(before, (stepped.pop.genomes, stepped.pop.fitness)))
        assert float(state.pop.genomes[:, 3].mean()) > 3.0  # pushed towards the face (start: ~1.5)


def test_selection_keeps_the_better_of_trial_and_parent():
    algo = de(make_problem("rastrigin", 6, solved_at=None))
    state, g = run(algo, 5, size=30)
    stepped = algo.step(state, 5, g)
    chosen = algo.evaluate(stepped)
    trial_fit = algo.problem.evaluate(stepped.trials.pop.genomes)
    assert torch.equal(chosen.pop.fitness, torch.maximum(trial_fit, state.pop.fitness))
    assert algo.population(chosen).evaluations == 30


def test_a_record_between_step_and_evaluate_carries_the_trials():
    algo = de(make_problem("rastrigin", 5, solved_at=None))
    state, g = run(algo, 5, size=16)
    fresh = de(make_problem("rastrigin", 5, solved_at=None))
    stepped = algo.step(state, 5, g)
    again = fresh.from_record(fresh.to_record(stepped))
    assert torch.equal(algo.evaluate(stepped).pop.genomes, fresh.evaluate(again).pop.genomes)


def test_records_that_do_not_fit_are_refused():
    algo = de(make_problem("sphere", 4, solved_at=None))
    state, _ = run(algo, 3, size=10)
    record = algo.to_record(state)
    with pytest.raises(ValueError):
        algo.from_record({**record, "memory_f": np.zeros(3)})
    with pytest.raises(ValueError):
        algo.from_record({**record, "k": 6})
    with pytest.raises(ValueError):
        de(make_problem("sphere", 4, solved_at=None), memory_size=3).from_record(record)


def test_immigrants_replace_residents_and_take_the_median_parameters():
    algo = de(make_problem("sphere", 4, solved_at=None), strategy="rand/1")
    state, g = run(algo, 10, size=10)
    incoming = Migrants(genomes=np.zeros((1, 4)), fitness=np.array([-5.0]), origin=np.array([3]),
                        birth=np.array([2]), lineage=np.array([77]))
    after, adopted = policies.immigrate(algo, state, incoming, "worst", g)
    assert adopted == 1
    slot = int(torch.nonzero(after.pop.lineage == 77))
    assert float(after.pop.fitness[slot]) == 0.0 and figures.stats(algo.population(after)).best == 0.0
    assert float(after.f[slot]) == float(state.f.median()) and float(after.cr[slot]) == float(state.cr.median())
    assert torch.equal(after.archive, state.archive) and torch.equal(after.memory_f, state.memory_f)
    assert algo.evaluate(algo.step(after, 10, g)).pop.genomes.shape == (10, 4)


def test_config_coerces_command_line_strings_and_refuses_bad_values():
    cfg = DEConfig.from_params({"strategy": "rand/1", "memory_size": "10", "archive_rate": "2.6", "p_best": 0.1})
    assert cfg == DEConfig(strategy="rand/1", memory_size=10, archive_rate=2.6, p_best=0.1)
    for bad in ({"strategy": "best/2"}, {"memory_size": "2.5"}, {"memory_size": 0}, {"archive_rate": "x"},
                {"p_best": "0"}, {"p_best": "nan"}, {"populaton": 5}):
        with pytest.raises(ConfigError, match=r"\bde\b"):
            DEConfig.from_params(bad)
    with pytest.raises(ConfigError):
        de(make_problem("sphere", 3), strategy="rand/1").init(3, 0, gen())


def test_make_algorithm_builds_de_from_run_settings():
    cfg = RunConfig(problem="sphere", dim=30, algorithm="de", algorithm_params={"memory_size": "5"})
    algo = make_algorithm(cfg, make_problem("sphere", 30))
    assert isinstance(algo, DifferentialEvolution) and algo.cfg.memory_size == 5
    assert algo.dtype == torch.float64 and algo.default_population() == 100
    assert dataclasses.replace(cfg, dim=2) and de(make_problem("sphere", 2)).default_population() == 20
