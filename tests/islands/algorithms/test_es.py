"""Natural-gradient ES (SNES / PGPE): shaping, mirrored sampling, convergence, migration, resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from islands import figures, policies
from islands.algorithms import make_algorithm
from islands.population import Migrants
from islands.algorithms.es import ESConfig, ESState, NaturalES, centered_ranks
from islands.config import RunConfig
from islands.errors import ConfigError
from islands.problems import make_problem
from migration_pool import format as fmt

D = 10


def _generations(algo: NaturalES, s: ESState, gen: torch.Generator, start: int, stop: int) -> ESState:
    for g in range(start, stop):
        s = algo.evaluate(algo.step(s, g, gen))
    return s


def _migrants(genomes: np.ndarray, origin: int) -> Migrants:
    k = genomes.shape[0]
    return Migrants(genomes=genomes, fitness=np.zeros(k), origin=np.full(k, origin),
                    birth=np.full(k, 2), lineage=(origin << 32) + np.arange(k))


def _run_until(algo: NaturalES, target: float, budget: int, seed: int) -> tuple[float, int]:
    """Best fitness and evaluations spent, stopping at `target` or after `budget` evaluations."""
    gen = torch.Generator().manual_seed(seed)
    s = algo.evaluate(algo.init(algo.default_population(), 0, gen))
    evals, best, g = algo.population(s).evaluations, figures.stats(algo.population(s)).best, 0
    while best < target and evals < budget:
        s = algo.evaluate(algo.step(s, g, gen))
        evals, best, g = evals + algo.population(s).evaluations, max(best, figures.stats(algo.population(s)).best), g + 1
    return best, evals


# -- fitness shaping ---------------------------------------------------------------------------
def test_centered_ranks_are_centred_and_blind_to_monotone_transforms():
    f = torch.randn(17, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    u = centered_ranks(f)
    assert float(u.sum()) == pytest.approx(0.0, abs=1e-12)
    assert float(u.max()) == 0.5 and float(u.min()) == -0.5
    assert int(torch.argmax(u)) == int(torch.argmax(f))
    for transformed in (torch.exp(3 * f) - 7, f ** 3, torch.sigmoid(f) * 1e6):
        assert torch.equal(centered_ranks(transformed), u)
    assert not torch.equal(centered_ranks(-f), u)  # a decreasing transform reverses it


def test_nan_fitness_ranks_worst():
    u = centered_ranks(torch.tensor([1.0, float("nan"), -5.0, 3.0]))
    assert float(u[1]) == -0.5 and float(u[3]) == 0.5
    assert float(u.sum()) == pytest.approx(0.0, abs=1e-6)


# -- sampling and bounds -----------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["snes", "pgpe"])
def test_antithetic_pairs_mirror_the_center(variant):
    algo = NaturalES(make_problem("sphere", D), ESConfig(variant=variant, sigma_init=0.01), dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    s = algo.evaluate(algo.init(12, 0, gen))
    s = _generations(algo, s, gen, 0, 3)
    n = s.noise.shape[0]
    assert s.pop.genomes.shape == (2 * n, D) and n == 6
    torch.testing.assert_close(s.pop.genomes[:n] + s.pop.genomes[n:], 2 * s.center.expand(n, D))
    torch.testing.assert_close(s.pop.genomes[:n] - s.center, s.sigma * s.noise)
    # samples are born at this generation and carry the center's lineage
    assert torch.all(s.pop.birth == 3) and torch.all(s.pop.lineage == s.provenance[2])


def test_samples_are_clipped_to_the_box_and_the_center_stays_inside():
    problem = make_problem("sphere", D)
    algo = NaturalES(problem, ESConfig(sigma_init=1.0, lr_center=5.0))  # wild steps
    gen = torch.Generator().manual_seed(0)
    s = algo.evaluate(algo.init(20, 0, gen))
    clipped = False
    for g in range(10):
        lower, upper = algo.lower, algo.upper
        assert torch.all(s.pop.genomes >= lower) and torch.all(s.pop.genomes <= upper)
        assert torch.all(s.center >= lower) and torch.all(s.center <= upper)
        clipped |= bool((s.pop.genomes == upper).any() or (s.pop.genomes == lower).any())
        s = algo.evaluate(algo.step(s, g, gen))
    assert clipped  # the test did push samples outside the box


# -- convergence -------------------------------------------------------------------------------
def test_snes_converges_on_sphere_to_1e_8_within_17000_evaluations():
    # Seeds 0-9: 11,900-13,000 evaluations at the default population (100); budget 1.3 x the worst.
    algo = make_algorithm(RunConfig(algorithm="es", problem="sphere"), make_problem("sphere", D))
    best, evals = _run_until(algo, -1e-8, 17000, seed=0)
    assert best >= -1e-8, (best, evals)
    assert algo.info(algo.init(12, 0, torch.Generator().manual_seed(0)))["sigma"] == pytest.approx(1.024, rel=1e-6)


def test_solves_xor_within_6500_evaluations():
    # Seed 2 solves at 2,500 evaluations (seeds 0-9: 200-4,700, median 2,700); 1.4 x the worst.
    problem = make_problem("xor", 1)
    algo = make_algorithm(RunConfig(algorithm="es", problem="xor"), problem)
    best, evals = _run_until(algo, problem.solved_at, 6500, seed=2)
    assert best >= problem.solved_at, (best, evals)


def test_pgpe_solves_xor_within_6000_evaluations():
    # Seed 0 solves at 1,600 evaluations (seeds 0-9: 700-4,100, median 2,300); 1.45 x the worst.
    problem = make_problem("xor", 1)
    algo = make_algorithm(RunConfig(algorithm="es", problem="xor", algorithm_params={"variant": "pgpe"}), problem)
    best, _ = _run_until(algo, problem.solved_at, 6000, seed=0)
    assert best >= problem.solved_at


# -- migration ---------------------------------------------------------------------------------
def test_a_much_better_immigrant_moves_the_center_and_a_worse_one_changes_nothing():
    algo = NaturalES(make_problem("sphere", D), ESConfig(variant="pgpe"), dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    s = _generations(algo, algo.evaluate(algo.init(20, 0, gen)), gen, 0, 3)
    worse = np.full((1, D), 5.0)  # f = 250, worse than any sample near the random center
    kept, adopted = policies.immigrate(algo, s, _migrants(worse, 7), "worst", gen)
    assert adopted == 0 and kept is s
    best = np.full((2, D), 1e-3) * np.array([[1.0], [2.0]])  # both far better; the first best
    moved, adopted = policies.immigrate(algo, s, _migrants(best, 7), "worst", gen)
    assert adopted == 1 and moved.fresh
    assert torch.equal(moved.center, torch.full((D,), 1e-3, dtype=torch.float64))
    assert moved.provenance == (7, 2, 7 << 32)
    assert figures.stats(algo.population(moved)).best == pytest.approx(-D * 1e-6)  # the immigrant is in the population
    assert torch.equal(moved.sigma, s.sigma) and not moved.velocity.any()
    assert not torch.equal(s.pop.genomes, moved.pop.genomes) and s.pop.fitness is not moved.pop.fitness
    # The next generation is sampled around the new center, without an update from old samples.
    nxt = algo.step(moved, 3, gen)
    n = nxt.noise.shape[0]
    torch.testing.assert_close(nxt.pop.genomes[:n] + nxt.pop.genomes[n:], 2 * moved.center.expand(n, D))
    assert not nxt.fresh and torch.all(nxt.pop.origin == 7)


def test_a_convex_immigrant_step_moves_part_of_the_way():
    algo = NaturalES(make_problem("sphere", D), ESConfig(immigrant_step=0.25), dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    s = algo.evaluate(algo.init(12, 0, gen))
    moved, adopted = policies.immigrate(algo, s, _migrants(np.zeros((1, D)), 4), "worst", gen)
    assert adopted == 1
    torch.testing.assert_close(moved.center, 0.75 * s.center)


def test_emigrants_are_the_best_samples():
    algo = NaturalES(make_problem("sphere", D), ESConfig(), dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    s = algo.evaluate(algo.init(12, 0, gen))
    em = policies.emigrate(algo, s, 2, "best", gen)
    top = torch.topk(s.pop.fitness, 2).indices.numpy()
    np.testing.assert_array_equal(em.genomes, s.pop.genomes.numpy()[top])


# -- checkpoints -------------------------------------------------------------------------------
def _roundtrip(algo: NaturalES, state: ESState) -> ESState:
    body = fmt.decode(fmt.encode("checkpoint", {"state": algo.to_record(state)}), "checkpoint")
    return algo.from_record(body["state"])


@pytest.mark.parametrize("variant,problem,dtype", [
    ("snes", "sphere", torch.float64), ("pgpe", "xor", torch.float32),
])
def test_resumed_run_is_bit_identical(variant, problem, dtype):
    def build() -> NaturalES:
        return NaturalES(make_problem(problem, D), ESConfig(variant=variant), dtype=dtype)

    algo = build()
    gen = torch.Generator().manual_seed(5)
    s = _generations(algo, algo.evaluate(algo.init(algo.default_population(), 2, gen)), gen, 0, 4)
    s = policies.immigrate(algo, s, _migrants(np.zeros((1, algo.problem.dim)), 9), "worst", gen)[0]
    saved, gen_state = _roundtrip(algo, s), gen.get_state()
    straight = _generations(algo, s, gen, 4, 12)
    gen2 = torch.Generator()
    gen2.set_state(gen_state)
    resumed = _generations(build(), saved, gen2, 4, 12)
    for name in ("noise", "center", "sigma", "velocity"):
        assert torch.equal(getattr(straight, name), getattr(resumed, name)), name
    for name in ("genomes", "fitness", "origin", "birth", "lineage"):
        assert torch.equal(getattr(straight.pop, name), getattr(resumed.pop, name)), name
    assert (straight.fresh, straight.provenance) == (resumed.fresh, resumed.provenance)
    assert straight.center.dtype == dtype


def test_from_record_rejects_records_that_do_not_fit():
    algo = NaturalES(make_problem("sphere", 4), ESConfig())
    rec = algo.to_record(algo.init(6, 0, torch.Generator().manual_seed(0)))
    assert isinstance(algo.from_record(rec), ESState)
    with pytest.raises(ValueError):
        NaturalES(make_problem("sphere", 5), ESConfig()).from_record(rec)
    for bad in ({"sigma": np.ones(3)}, {"noise": np.ones((2, 4))}, {"provenance": [1, 2]}, {"fresh": 1}):
        with pytest.raises(ValueError):
            algo.from_record({**rec, **bad})


# -- configuration -----------------------------------------------------------------------------
def test_config_coerces_strings_and_rejects_bad_values():
    cfg = ESConfig.from_params({"variant": "PGPE", "sigma_init": "0.2", "lr_center": "auto", "momentum": 0})
    assert (cfg.variant, cfg.sigma_init, cfg.lr_center, cfg.momentum) == ("pgpe", 0.2, None, 0.0)
    for bad, match in (({"variant": "cma"}, "'cma'"), ({"sigma_init": "-1"}, "-1"), ({"lr": 1}, "lr"),
                       ({"momentum": "x"}, "'x'"), ({"immigrant_step": 0}, "0"), ({"center_init": "zero"}, "zero")):
        with pytest.raises(ConfigError, match=match):
            ESConfig.from_params(bad)


def test_default_population_and_center_init():
    snes = NaturalES(make_problem("sphere", D), ESConfig())
    assert snes.default_population() == 100
    assert NaturalES(make_problem("sphere", D), ESConfig(variant="pgpe")).default_population() == 100
    net = NaturalES(make_problem("xor", 1), ESConfig())
    s = net.init(4, 0, torch.Generator().manual_seed(0))
    assert not s.center.any()  # networks start at zero weights (middle of the box)
    assert s.center.dtype == torch.float32
    assert net.init(4, 0, torch.Generator().manual_seed(0)).pop.genomes.shape == (4, net.problem.dim)
    assert snes.init(5, 0, torch.Generator().manual_seed(0)).center.abs().sum() > 0
