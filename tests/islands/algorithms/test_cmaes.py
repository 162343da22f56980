"""CMA-ES / sep-CMA-ES: convergence, the update against hand formulas, restarts, migration."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from islands import figures, policies
from islands.algorithms import make_algorithm
from islands.population import Migrants
from islands.algorithms.cmaes import CMAES, CMAESConfig, CMAState
from islands.config import RunConfig
from islands.errors import ConfigError
from islands.problems import make_problem
from islands.problems.base import Problem
from migration_pool import format as fmt

D = 10


def _ellipsoid(rotated: bool, dim: int = D) -> Problem:
    """f = sum 10^(6 i/(D-1)) z_i^2, z = R x for a fixed random rotation R when `rotated`."""
    rot = torch.as_tensor(np.linalg.qr(np.random.default_rng(0).standard_normal((dim, dim)))[0])
    scale = 10.0 ** (6.0 * torch.arange(dim, dtype=torch.float64) / (dim - 1))

    def fn(x: torch.Tensor) -> torch.Tensor:
        z = x @ rot.T.to(x) if rotated else x
        return -(scale.to(x) * z * z).sum(dim=1)

    return Problem("ellipsoid", dim, -5.0, 5.0, fn)


def _run(algo: CMAES, seed: int, budget: int, target: float = -1e-8,
         state: CMAState | None = None, gen: torch.Generator | None = None):
    """Evolve until best fitness >= target or `budget` evaluations; returns (state, evals, best)."""
    if gen is None:
        gen = torch.Generator().manual_seed(seed)
    s = state if state is not None else algo.evaluate(algo.init(algo.default_population(), 0, gen))
    evals, best, g = algo.population(s).evaluations, figures.stats(algo.population(s)).best, 0
    while best < target and evals < budget:
        s = algo.evaluate(algo.step(s, g, gen))
        g += 1
        evals += algo.population(s).evaluations
        best = max(best, figures.stats(algo.population(s)).best)
    return s, evals, best


# -- configuration ----------------------------------------------------------------------------

def test_config_coerces_text_and_rejects_unknown_or_bad_values():
    cfg = CMAESConfig.from_params({"sigma0": "0.2", "max_population": "64", "ipop_factor": 3})
    assert (cfg.sigma0, cfg.max_population, cfg.ipop_factor) == (0.2, 64, 3.0)
    for bad in ({"sigmaa": 1}, {"sigma0": "big"}, {"sigma0": 0}, {"max_population": 2.5},
                {"ipop_factor": 0.5}, {"tolx": "nan"}):
        with pytest.raises(ConfigError, match="cmaes"):
            CMAESConfig.from_params(bad)


def test_registry_builds_full_and_diagonal_variants():
    prob = make_problem("sphere", 20)
    full = make_algorithm(RunConfig(problem="sphere", dim=20, algorithm="cmaes"), prob)
    sep = make_algorithm(RunConfig(problem="sphere", dim=20, algorithm="sep-cmaes"), prob)
    auto = make_algorithm(RunConfig(problem="sphere", dim=20, algorithm="cmaes",
                                    algorithm_params={"diagonal_above": "10"}), prob)
    assert (full.separable, sep.separable, auto.separable) == (False, True, True)
    assert full.default_population() == 4 + int(3 * math.log(20)) == 12
    assert auto.init(12, 0, torch.Generator().manual_seed(0)).C.shape == (20,)


# -- convergence --------------------------------------------------------------------------------

# Budgets: the worst of seeds 0-9 times about 1.3 (the evaluations each seed needed are in the
# comments); the tests run one seed of them.
@pytest.mark.parametrize("separable", [False, True])
def test_converges_on_sphere_within_2000_evaluations(separable):
    # Seeds 0-9: 1,320-1,530 evaluations (separable: 1,170-1,360).
    algo = CMAES(make_problem("sphere", D), CMAESConfig(), separable=separable)
    _, evals, best = _run(algo, seed=1, budget=2000)
    assert best >= -1e-8, (best, evals)


@pytest.mark.parametrize("rotated,separable,budget", [(False, False, 5600), (True, False, 5600), (False, True, 3000)])
def test_converges_on_ellipsoid_within_its_budget(rotated, separable, budget):
    # Seeds 0-9, no restart in any: 4,140-4,440 evaluations (rotated: 3,920-5,180; separable:
    # 2,030-2,400). Without the active update: 5,580-6,120 (5,780-6,380; 2,180-2,980). The full
    # budgets are tighter than the rule above (1.08x the rotated worst) so that they check the active
    # update too: seed 2 needs over 5,600 without it in both; the separable budget does not.
    algo = CMAES(_ellipsoid(rotated), CMAESConfig(), separable=separable)
    s, evals, best = _run(algo, seed=2, budget=budget)
    assert best >= -1e-8, (best, evals)
    assert s.restarts == 0


# -- the update against Hansen's tutorial, in plain numpy -------------------------------------

def _reference_update(m, sigma, C, pc, ps, g, Y, f, active=True, clipped=None):
    """One CMA-ES generation written from the tutorial; Y: steps [lam, n], f: fitness (max).
    `active`: the 2016 tutorial's negative weights for the lam - mu worst steps, but none for a
    sample in `clipped` (indices) and none at all if one of the mu best is clipped."""
    lam, n = Y.shape
    mu = lam // 2
    w = np.array([math.log(mu + 0.5) - math.log(i + 1) for i in range(mu)])
    w /= w.sum()
    mueff = 1.0 / np.sum(w ** 2)
    cs = (mueff + 2) / (n + mueff + 5)
    ds = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1) + cs
    cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
    c1 = 2 / ((n + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
    chi = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
    best = np.argsort(-f)[:mu]
    yw = sum(w[k] * Y[i] for k, i in enumerate(best))
    evals, vecs = np.linalg.eigh(C)
    c_inv_sqrt = vecs @ np.diag(evals ** -0.5) @ vecs.T
    m2 = m + sigma * yw
    ps2 = (1 - cs) * ps + math.sqrt(cs * (2 - cs) * mueff) * (c_inv_sqrt @ yw)
    h = float(np.linalg.norm(ps2) / math.sqrt(1 - (1 - cs) ** (2 * (g + 1))) < (1.4 + 2 / (n + 1)) * chi)
    pc2 = (1 - cc) * pc + h * math.sqrt(cc * (2 - cc) * mueff) * yw
    rank_mu = sum(w[k] * np.outer(Y[i], Y[i]) for k, i in enumerate(best))
    wsum = 1.0
    if active:
        raw = np.array([math.log((lam + 1) / 2) - math.log(i + 1) for i in range(lam)])[mu:]
        mueff_neg = raw.sum() ** 2 / np.sum(raw ** 2)
        alpha = min(1 + c1 / cmu, 1 + 2 * mueff_neg / (mueff + 2), (1 - c1 - cmu) / (n * cmu))
        wneg = raw * alpha / np.abs(raw).sum()
        worst = np.argsort(-f)[mu:]
        clipped = set() if clipped is None else set(clipped)
        keep = np.array([i not in clipped for i in worst]) & (not clipped & set(best.tolist()))
        for k, i in enumerate(worst):
            rank_mu = rank_mu + keep[k] * wneg[k] * n / np.sum((c_inv_sqrt @ Y[i]) ** 2) * np.outer(Y[i], Y[i])
        wsum += (keep * wneg).sum()
    C2 = (1 - c1 - cmu * wsum) * C + c1 * (np.outer(pc2, pc2) + (1 - h) * cc * (2 - cc) * C) + cmu * rank_mu
    sigma2 = sigma * math.exp(min(1.0, cs / ds * (np.linalg.norm(ps2) / chi - 1)))
    return m2, sigma2, C2, pc2, ps2


@pytest.mark.parametrize("active", [True, False])
def test_first_generations_match_hand_computed_update_in_2d(active):
    prob = Problem("shifted", 2, (-5.0, 0.0), (5.0, 20.0),
                   lambda x: -((x[:, 0] - 1.0) ** 2 + 3.0 * (x[:, 1] - 12.0) ** 2))
    algo = CMAES(prob, CMAESConfig(sigma0=0.02, active=active))
    gen = torch.Generator().manual_seed(3)
    s = algo.evaluate(algo.init(algo.default_population(), 0, gen))
    assert s.lam == 6 and float(s.sigma) == 0.02 and torch.equal(s.C, torch.eye(2, dtype=torch.float64))
    lo, width = np.array([-5.0, 0.0]), np.array([10.0, 20.0])
    m, sigma, C = s.mean.numpy().copy(), 0.02, np.eye(2)
    pc, ps = np.zeros(2), np.zeros(2)
    for g in range(3):
        X, f = s.pop.genomes.numpy(), s.pop.fitness.numpy()
        assert ((X > lo) & (X < lo + width)).all()  # no sample was repaired
        Y = ((X - lo) / width - m) / sigma  # the steps, recomputed from the evaluated genomes
        np.testing.assert_allclose(s.y.numpy(), Y, rtol=0, atol=1e-9)
        m, sigma, C, pc, ps = _reference_update(m, sigma, C, pc, ps, g, Y, f, active)
        s = algo.step(s, g, gen)
        for got, want in ((s.mean, m), (s.sigma, sigma), (s.C, C), (s.pc, pc), (s.ps, ps)):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)
        s = algo.evaluate(s)
    assert sigma != 0.02 and not np.allclose(C, np.eye(2))  # the update did something


@pytest.mark.parametrize("centre,expect_active", [(0.5, True), (1.0, False)])
def test_samples_clipped_onto_the_box_take_no_negative_weight(centre, expect_active):
    """Optimum in the middle: the clipped samples are among the worst and only they drop out of the
    negative update. Optimum at the upper corner: the best samples are the clipped ones, their
    steps shortened, and the generation has no negative update at all (as with active=False)."""
    prob = Problem("box", 2, 0.0, 1.0, lambda x: -((x - centre) ** 2).sum(dim=1))
    states = []
    for active in (True, False):
        algo = CMAES(prob, CMAESConfig(active=active))
        gen = torch.Generator().manual_seed(5)
        s = algo._sample(algo._fresh(6, 0, 0, 200, gen, mean=torch.full((2,), 0.5, dtype=torch.float64), sigma=0.45),
                         0, gen)
        s = algo.evaluate(s)
        X, f = s.pop.genomes.numpy(), s.pop.fitness.numpy()
        on_wall = np.flatnonzero(((X <= 0.0) | (X >= 1.0)).any(axis=1))
        best = set(np.argsort(-f)[:3].tolist())
        assert on_wall.size and (bool(best & set(on_wall.tolist())) != expect_active)  # the case it means
        m, sigma, C, pc, ps = _reference_update(s.mean.numpy(), 0.45, np.eye(2), np.zeros(2), np.zeros(2), 0,
                                                s.y.numpy(), f, active, clipped=on_wall.tolist())
        stepped = algo.step(s, 0, gen)
        np.testing.assert_allclose(stepped.C.numpy(), C, rtol=1e-9, atol=1e-12)
        states.append(stepped.C.numpy())
    assert np.allclose(states[0], states[1]) != expect_active  # the negative update ran only in the first case


# -- restarts ---------------------------------------------------------------------------------------

def test_ipop_restart_on_rastrigin_doubles_lambda_and_is_counted():
    calls = []
    base = make_problem("rastrigin", 5)
    prob = Problem("counted", 5, -5.12, 5.12, lambda x: calls.append(x.shape[0]) or base.fn(x))
    algo = CMAES(prob, CMAESConfig(restarts="ipop"))
    gen = torch.Generator().manual_seed(1)
    s = algo.evaluate(algo.init(algo.default_population(), 0, gen))
    evals, lams, g = algo.population(s).evaluations, [algo.info(s)["lambda"]], 0
    while algo.info(s)["restarts"] < 2 and g < 550:  # seeds 0-9: the second restart at generation 346-403
        s = algo.evaluate(algo.step(s, g, gen))
        g, evals = g + 1, evals + algo.population(s).evaluations
        if algo.info(s)["lambda"] != lams[-1]:
            lams.append(algo.info(s)["lambda"])
            assert s.last_stop  # some criterion fired
    assert lams == [8, 16, 32]
    assert evals == sum(calls)  # evaluated() follows the population size
    assert algo.info(s)["sigma"] == pytest.approx(0.3, rel=0.5)  # sigma reset at the restart


@pytest.mark.parametrize("start,cap,expected", [
    (8, 20, [8, 16, 20, 20, 20]),  # doubles, then stops at the cap, exactly
    (6, 7, [6, 7, 7, 7, 7]),
    (30, 20, [30, 30, 30, 30, 30]),  # a population above the cap never grows (nor shrinks)
])
def test_ipop_restarts_never_grow_lambda_beyond_max_population(start, cap, expected):
    # A flat fitness: tolfun fires as soon as its window is full, so restarts come quickly.
    algo = CMAES(Problem("flat", 2, -1.0, 1.0, lambda x: torch.zeros(x.shape[0], dtype=x.dtype)),
                 CMAESConfig(max_population=cap, restarts="ipop"))
    gen = torch.Generator().manual_seed(0)
    s = algo.evaluate(algo.init(start, 0, gen))
    lams, g = [s.lam], 0  # lambda at the start and after each restart
    while s.restarts < len(expected) - 1:
        assert g < 500, f"only {s.restarts} restarts in 500 generations"
        restarts = s.restarts
        s = algo.evaluate(algo.step(s, g, gen))
        g += 1
        assert s.pop.genomes.shape[0] == s.lam == algo.info(s)["lambda"]
        if s.restarts != restarts:
            lams.append(s.lam)
    assert lams == expected


# -- checkpoints ------------------------------------------------------------------------------------

def _roundtrip(algo: CMAES, state: CMAState) -> CMAState:
    body = fmt.decode(fmt.encode("checkpoint", {"state": algo.to_record(state)}), "checkpoint")
    return algo.from_record(body["state"])


def _assert_same(a: CMAState, b: CMAState) -> None:
    for name in ("y", "mean", "sigma", "C", "pc", "ps", "B", "Ddiag", "best_hist", "median_hist", "ancestry"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("genomes", "fitness", "origin", "birth", "lineage"):
        assert torch.equal(getattr(a.pop, name), getattr(b.pop, name)), name
    assert (a.count, a.eigen_at, a.restarts, a.hist_len, a.island) == (b.count, b.eigen_at, b.restarts,
                                                                       b.hist_len, b.island)


def _generations(algo, s, gen, start, stop):
    for g in range(start, stop):
        s = algo.evaluate(algo.step(s, g, gen))
    return s


@pytest.mark.parametrize("problem,dim,dtype,separable,cut,end", [
    ("rastrigin", 5, torch.float64, False, 170, 215),  # the first restart falls in between
    ("sphere", 30, torch.float32, True, 10, 25),
])
def test_resumed_run_is_bit_identical(problem, dim, dtype, separable, cut, end):
    # ladder=1: island 3 starts at the default lambda, so the first restart falls between cut and end
    algo = CMAES(make_problem(problem, dim), CMAESConfig(ladder=1), dtype=dtype, separable=separable)
    gen = torch.Generator().manual_seed(1)
    s = _generations(algo, algo.evaluate(algo.init(algo.default_population(), 3, gen)), gen, 0, cut)
    s = s if separable else policies.immigrate(algo, s, _migrants(np.zeros((1, dim)), 9), "worst", gen)[0]
    saved, gen_state = _roundtrip(algo, s), gen.get_state()
    straight = _generations(algo, s, gen, cut, end)
    fresh = CMAES(make_problem(problem, dim), CMAESConfig(ladder=1), dtype=dtype, separable=separable)
    gen2 = torch.Generator()
    gen2.set_state(gen_state)
    resumed = _generations(fresh, saved, gen2, cut, end)
    _assert_same(straight, resumed)
    assert straight.y.dtype == dtype
    if not separable:
        assert s.restarts == 0 and straight.restarts >= 1


def test_from_record_rejects_records_that_do_not_fit():
    algo = CMAES(make_problem("sphere", 4), CMAESConfig())
    rec = algo.to_record(algo.init(6, 0, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError):
        CMAES(make_problem("sphere", 5), CMAESConfig()).from_record(rec)
    with pytest.raises(ValueError):
        CMAES(make_problem("sphere", 4), CMAESConfig(), separable=True).from_record(rec)
    with pytest.raises(ValueError):
        algo.from_record({**rec, "C": np.eye(3)})


# -- migration: Hansen's injection ------------------------------------------------------------------

def _migrants(genomes: np.ndarray, origin: int) -> Migrants:
    k = genomes.shape[0]
    return Migrants(genomes=genomes, fitness=np.zeros(k), origin=np.full(k, origin),
                    birth=np.full(k, 2), lineage=(origin << 32) + np.arange(k))


def test_immigrate_screens_and_caps_injections():
    algo = CMAES(make_problem("sphere", D), CMAESConfig())
    gen = torch.Generator().manual_seed(0)
    s = algo.evaluate(algo.init(10, 0, gen))
    offered = np.vstack([np.full((7, D), 0.1) * np.arange(1, 8)[:, None],  # 7 valid, better first
                         np.full((1, D), 9.0),  # out of bounds
                         s.pop.genomes[:1].numpy()])  # already present
    s2, n = policies.immigrate(algo, s, _migrants(offered, 4), "worst", gen)
    assert n == 5  # at most lambda // 2 pending
    np.testing.assert_array_equal(s2.inject.genomes.numpy(), offered[:5])
    assert policies.immigrate(algo, s2, _migrants(offered[5:7], 4), "worst", gen)[1] == 0  # no room left
    assert torch.equal(s2.pop.genomes, s.pop.genomes)  # the evaluated generation is untouched
    s3 = algo.evaluate(algo.step(s2, 0, gen))
    np.testing.assert_array_equal(s3.pop.genomes[:5].numpy(), offered[:5])
    assert s3.pop.origin[:5].tolist() == [4] * 5 and s3.pop.origin[5:].tolist() == [0] * 5
    assert s3.inject.genomes.shape[0] == 0
    # The island loop credits the injected generation's gain to migration from this count.
    assert (algo.population(s).pending, algo.population(s2).pending, algo.population(s3).pending) == (0, 5, 0)


def test_good_immigrant_steers_mean_and_its_lineage_shows():
    algo = CMAES(make_problem("sphere", D), CMAESConfig())
    gen = torch.Generator().manual_seed(5)
    s = _generations(algo, algo.evaluate(algo.init(10, 0, gen)), gen, 0, 3)
    gen_b = torch.Generator()
    gen_b.set_state(gen.get_state())
    with_imm, n = policies.immigrate(algo, s, _migrants(np.zeros((1, D)), 7), "worst", gen)
    assert n == 1
    a = _generations(algo, with_imm, gen, 3, 5)
    b = _generations(algo, s, gen_b, 3, 5)
    dist = lambda st: float(torch.linalg.vector_norm(st.mean - 0.5))  # noqa: E731 (optimum at 0.5)
    assert dist(a) < 0.75 * dist(b)  # one clipped step of weight w_1 toward the optimum
    assert figures.foreign_share(algo.population(a), 0) == 1.0 and figures.foreign_share(algo.population(b), 0) == 0.0
    assert set(a.pop.lineage.tolist()) == {7 << 32}


@pytest.mark.parametrize("separable", [False, True])
def test_an_injected_immigrants_step_is_clipped_to_the_documented_mahalanobis_length(separable):
    """README, "What an immigrant does": the step from the mean is shortened to Mahalanobis length
    sqrt(D) + 2D/(D+2) exactly when longer, its direction kept; a shorter one is left as it is."""
    dim = 6
    algo = CMAES(_ellipsoid(rotated=not separable, dim=dim), CMAESConfig(), separable=separable)
    gen = torch.Generator().manual_seed(3)
    s = _generations(algo, algo.evaluate(algo.init(10, 0, gen)), gen, 0, 25)
    box = lambda z: (algo.lower + algo.width * z).numpy()  # noqa: E731 (normalised -> genome)
    far = box(torch.where(s.mean < 0.5, 1.0, 0.0))  # the farthest corner of the box from the mean
    near = box(s.mean + 1e-3 * s.sigma * s.Ddiag.min())  # well inside the cap
    s2, n = policies.immigrate(algo, s, _migrants(np.vstack([far, near]), 4), "worst", gen)
    assert n == 2
    s3 = algo.step(s2, 25, gen)
    assert s3.restarts == s.restarts  # sampled from the updated distribution, not a fresh one
    B, Dd = s3.B, s3.Ddiag  # C as of its last eigendecomposition, which the clipping uses
    assert float(Dd.max() / Dd.min()) > 2.0  # far from the identity by now: the metric matters
    cov = torch.diag(Dd * Dd) if separable else B @ torch.diag(Dd * Dd) @ B.T
    cap = math.sqrt(dim) + 2.0 * dim / (dim + 2.0)
    for genome in (far, near):  # injected as the first samples, better first
        row = int(np.flatnonzero((s3.pop.genomes.numpy() == genome).all(axis=1))[0])
        assert row < 2
        raw = ((torch.as_tensor(genome) - algo.lower) / algo.width - s3.mean) / s3.sigma
        y = s3.y[row]
        mahal = lambda v: float(torch.sqrt(v @ torch.linalg.solve(cov, v)))  # noqa: E731
        if mahal(raw) > cap:
            assert genome is far
            assert mahal(y) == pytest.approx(cap, rel=1e-9)
            assert torch.allclose(y * (mahal(raw) / cap), raw, rtol=1e-9, atol=0.0)  # same direction
        else:
            assert genome is near
            assert torch.equal(y, raw)


def test_bad_immigrants_do_not_harm_convergence():
    algo = CMAES(make_problem("sphere", D), CMAESConfig())
    gen = torch.Generator().manual_seed(1)
    s = algo.evaluate(algo.init(10, 0, gen))
    corners = np.random.default_rng(0).choice([-5.12, 5.12], size=(400, D))
    evals, g = algo.population(s).evaluations, 0
    while figures.stats(algo.population(s)).best < -1e-8 and evals < 2300:  # seeds 0-9: 1,510-1,650
        s, n = policies.immigrate(algo, s, _migrants(corners[g % 400: g % 400 + 1], 2), "worst", gen)
        assert n == 1
        s = algo.evaluate(algo.step(s, g, gen))
        g, evals = g + 1, evals + algo.population(s).evaluations
        assert s.pop.fitness[0] < -10.0  # the injected corner was evaluated with the generation
    assert figures.stats(algo.population(s)).best >= -1e-8, evals
    assert figures.foreign_share(algo.population(s), 0) == pytest.approx(0.1)  # only the injected row itself


# -- robustness ------------------------------------------------------------------------------------

def test_nan_fitness_ranks_worst():
    nans = []

    def fn(x):
        f = -(x * x).sum(dim=1)
        bad = x[:, 0] > 0.5
        nans.append(int(bad.sum()))
        return torch.where(bad, torch.nan, f)

    algo = CMAES(Problem("nan-half", 5, -5.0, 5.0, fn), CMAESConfig())
    gen = torch.Generator().manual_seed(4)
    s = algo.evaluate(algo.init(8, 0, gen))
    s, evals, best = _run(algo, 4, 1200, state=s, gen=gen)  # seeds 0-9: 704-832 evaluations
    assert best >= -1e-8 and sum(nans) > 0
    assert torch.isfinite(s.mean).all() and torch.isfinite(s.C).all()


@pytest.mark.parametrize("separable", [False, True])
def test_every_evaluated_genome_is_inside_the_box(separable):
    lower, upper = np.array([-1.0, 0.0, 2.0, -5.0]), np.array([1.0, 3.0, 2.5, 5.0])
    seen = []

    def fn(x):  # optimum at a corner of the box, so samples keep hitting the walls
        seen.append(x.clone())
        return -((x - torch.as_tensor(upper)) ** 2).sum(dim=1)

    algo = CMAES(Problem("corner", 4, tuple(lower), tuple(upper), fn), CMAESConfig(), separable=separable)
    _, evals, best = _run(algo, 6, 700)  # seeds 0-9: 48-472 evaluations (separable: 40-304)
    x = torch.cat(seen).numpy()
    assert (x >= lower).all() and (x <= upper).all()
    assert (x == upper).any()  # repairs did happen
    assert best >= -1e-8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_runs_on_cuda(dtype):
    algo = CMAES(make_problem("rastrigin", 5), CMAESConfig(), device="cuda", dtype=dtype)
    gen = torch.Generator(device="cuda").manual_seed(1)
    s = algo.evaluate(algo.init(8, 0, gen))
    s = _generations(algo, s, gen, 0, 300)
    assert s.pop.genomes.device.type == "cuda" and s.y.dtype == dtype
    assert algo.info(s)["restarts"] >= 1
    assert _roundtrip(algo, s).mean.device.type == "cuda"


def test_a_resumed_island_high_on_the_ladder_is_bit_identical():
    """Island 3 starts at 8x lambda and has restarted by generation 170. A resumed state has
    row-major arrays; the eigendecomposition's B must be too, or matmul rounds differently."""
    algo, fresh = (CMAES(make_problem("rastrigin", 5), CMAESConfig()) for _ in range(2))
    gen = torch.Generator().manual_seed(1)
    s = _generations(algo, algo.evaluate(algo.init(algo.default_population(), 3, gen)), gen, 0, 170)
    assert s.restarts >= 1 and s.lam0 == algo.default_population()
    saved, gen2 = _roundtrip(algo, s), torch.Generator()
    gen2.set_state(gen.get_state())
    _assert_same(_generations(algo, s, gen, 170, 200), _generations(fresh, saved, gen2, 170, 200))
