"""CMA-ES restarts: BIPOP's budget balance, population caps, basins, checkpoints of the books."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from islands.algorithms import cmaes_restarts as rs
from islands.algorithms import make_algorithm
from islands.algorithms.cmaes import CMAES, CMAESConfig, CMAState
from islands.config import RunConfig
from islands.errors import ConfigError
from islands.problems import make_problem
from migration_pool import format as fmt
from support.records import same_record

ROOT = Path(__file__).resolve().parents[3]
FAST = dict(tolfun=1e-6, tolx=1e-4)  # runs end sooner: more restarts per second of test
BOOKS = ("start", "basins", "regime", "lam0", "lam_large", "evals_large", "evals_small", "run_limit")


def _runs(cfg: CMAESConfig, restarts: int, problem: str = "rastrigin", dim: int = 3, seed: int = 1,
          size: int | None = None, dtype: torch.dtype = torch.float64, island: int = 0):
    """Evolve until `restarts` restarts; yields (state before, state after, evaluations so far) at each."""
    algo = CMAES(make_problem(problem, dim, solved_at=None), cfg, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    s = algo.evaluate(algo.init(size or algo.default_population(), island, gen))
    evals, g = s.lam, 0
    while s.restarts < restarts:
        assert g < 20000, "too few restarts"
        before = s
        s = algo.evaluate(algo.step(s, g, gen))
        g, evals = g + 1, evals + s.lam
        if s.restarts != before.restarts:
            yield before, s, evals


# -- configuration ------------------------------------------------------------------------------

def test_restart_regime_is_a_setting_and_bad_values_are_refused():
    assert CMAESConfig().restarts == "bipop"
    assert CMAESConfig.from_params({"restarts": "IPOP"}).restarts == "ipop"
    for bad in ({"restarts": "lpop"}, {"restarts": 2}, {"basin_memory": -1}, {"basin_redraws": "x"},
                {"basin_radius": 0}, {"basin_radius": 1.5}):
        with pytest.raises(ConfigError, match="cmaes"):
            CMAESConfig.from_params(bad)
    with pytest.raises(ConfigError, match="restarts"):  # an algorithm without restart regimes
        make_algorithm(RunConfig(problem="sphere", dim=4, algorithm="de", algorithm_params={"restarts": "bipop"}),
                       make_problem("sphere", 4))


def test_cli_refuses_a_restart_regime_the_algorithm_lacks(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for algo, value in (("de", "bipop"), ("cmaes", "sometimes")):
        run_dir = tmp_path / f"run-{algo}"
        out = subprocess.run([sys.executable, "-m", "islands", "evolve", "island-00", "--run-dir", str(run_dir),
                              "--problem", "sphere", "--dim", "4", "--algorithm", algo,
                              "--algorithm-param", f"restarts={value}"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert "restarts" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert not run_dir.exists()


# -- BIPOP: regimes by evaluations spent ----------------------------------------------------------

def test_bipop_alternates_regimes_by_evaluations_spent():
    cfg = CMAESConfig(**FAST)
    seen, longest = [], 0
    for before, after, evals in _runs(cfg, 12):
        # The books hold every evaluation: finished runs plus the current run's generations.
        assert after.evals_small + after.evals_large + (after.count + 1) * after.lam == evals
        run_evals = before.count * before.lam + before.lam  # its last generation was evaluated too
        longest = max(longest, run_evals)
        small_books = before.evals_small + (run_evals if before.regime != rs.LARGE else 0)
        large_books = before.evals_large + (run_evals if before.regime == rs.LARGE else 0)
        assert (after.evals_small, after.evals_large) == (small_books, large_books)
        # The regime that spent less goes next (the first run is booked as small).
        assert after.regime == (rs.SMALL if small_books < max(1, large_books) else rs.LARGE)
        assert abs(small_books - large_books) <= longest  # balanced up to the longest run
        if before.regime == rs.SMALL:  # a small run spends at most its limit (plus the last generation)
            assert run_evals <= before.run_limit + before.lam
        if after.regime == rs.SMALL:
            assert after.lam0 <= after.lam <= after.lam_large
            assert cfg.sigma0 * 0.01 <= float(after.sigma) <= cfg.sigma0
            assert after.run_limit == max(after.lam, large_books // 2)
        else:
            assert after.lam == after.lam_large and float(after.sigma) == cfg.sigma0 and after.run_limit == 0
        seen.append((after.regime, after.lam))
    regimes = [r for r, _ in seen]
    assert regimes[0] == rs.LARGE and rs.SMALL in regimes
    large = [lam for r, lam in seen if r == rs.LARGE]
    assert large == [7 * 2 ** (k + 1) for k in range(len(large))]  # IPOP within the large regime
    assert len(large) >= 3 and any(lam != 7 for r, lam in seen if r == rs.SMALL)


def test_ipop_grows_every_restart_and_keeps_the_default_step():
    lams = [(a.regime, a.lam, float(a.sigma)) for _, a, _ in _runs(CMAESConfig(restarts="ipop", **FAST), 3)]
    assert lams == [(rs.LARGE, 14, 0.3), (rs.LARGE, 28, 0.3), (rs.LARGE, 56, 0.3)]


@pytest.mark.parametrize("restarts", ["bipop", "ipop"])
def test_max_population_is_respected(restarts):
    lams = [a.lam for _, a, _ in _runs(CMAESConfig(restarts=restarts, max_population=20, **FAST), 8)]
    assert max(lams) == 20 and all(7 <= lam <= 20 for lam in lams)
    # A population set above the cap is never shrunk by a restart, nor grown.
    lams = [a.lam for _, a, _ in _runs(CMAESConfig(restarts=restarts, max_population=20, **FAST), 3, size=24)]
    assert lams == [24, 24, 24]


# -- basins ---------------------------------------------------------------------------------------

def _basins(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _v(*x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def test_remember_adds_merges_caps_and_drops_the_worst():
    empty = torch.zeros((0, 4), dtype=torch.float64)
    start, centre = _v(0.0, 0.0), _v(0.3, 0.4)
    one = rs.remember(empty, centre, start, -5.0, radius_cap=1.0, capacity=3)
    assert one.tolist() == [[0.3, 0.4, pytest.approx(0.5), -5.0]]  # radius: the distance travelled
    capped = rs.remember(empty, centre, start, -5.0, radius_cap=0.1, capacity=3)
    assert float(capped[0, 2]) == pytest.approx(0.1 * math.sqrt(2))  # at most basin_radius x diagonal
    merged = rs.remember(one, _v(0.35, 0.4), _v(0.35, 0.5), -1.0, 1.0, 3)
    assert merged.tolist() == [[0.35, 0.4, pytest.approx(0.5), -1.0]]  # the better run's centre and best
    worse = rs.remember(one, _v(0.35, 0.4), _v(0.35, 0.5), -9.0, 1.0, 3)
    assert worse.tolist() == one.tolist()
    full = _basins([[0.1, 0.1, 0.05, -1.0], [0.5, 0.5, 0.05, -7.0], [0.9, 0.9, 0.05, -3.0]])
    added = rs.remember(full, _v(0.1, 0.9), _v(0.1, 0.8), -2.0, 1.0, 3)
    assert added[:, 3].tolist() == [-1.0, -3.0, -2.0]  # the worst (-7) made room
    assert rs.remember(full, _v(math.nan, 0.9), start, -2.0, 1.0, 3) is full
    assert rs.remember(empty, centre, start, -5.0, 1.0, capacity=0) is empty


def _inside(points: torch.Tensor, basins: torch.Tensor) -> torch.Tensor:
    n = points.shape[1]
    return (torch.cdist(points, basins[:, :n]) <= basins[:, n]).any(dim=1)


def test_starts_are_redrawn_out_of_known_basins():
    basins = _basins([[0.5, 0.5, 0.4, -1.0]])  # covers half of the unit square
    gen = torch.Generator().manual_seed(0)
    draw = lambda redraws: torch.stack([  # noqa: E731
        rs.start_point(basins, 2, redraws, gen, torch.device("cpu"), torch.float64) for _ in range(400)])
    plain, redrawn = draw(0), draw(5)
    assert 0.4 < float(_inside(plain, basins).double().mean()) < 0.6
    assert float(_inside(redrawn, basins).double().mean()) < 0.05  # 0.5^6 expected
    assert ((redrawn >= 0) & (redrawn <= 1)).all()
    # Basins that cover the whole box: after the redraws the candidate deepest out of them is taken.
    everywhere = _basins([[0.2, 0.2, 5.0, -1.0], [0.8, 0.8, 5.0, -1.0]])
    gen.manual_seed(1)
    candidates = torch.rand((6, 2), generator=gen, dtype=torch.float64)
    gen.manual_seed(1)
    pick = rs.start_point(everywhere, 2, 5, gen, torch.device("cpu"), torch.float64)
    depth = (torch.cdist(candidates, everywhere[:, :2]) / 5.0).min(dim=1).values
    assert torch.equal(pick, candidates[int(torch.argmax(depth))])


def test_restarts_remember_basins_and_start_outside_them():
    cfg = CMAESConfig(basin_memory=3, **FAST)
    starts_inside, count = 0, 0
    for before, after, _ in _runs(cfg, 10, dim=3):
        assert 1 <= after.basins.shape[0] <= 3 and after.basins.shape[1] == 5
        assert (after.basins[:, 3] <= cfg.basin_radius * math.sqrt(3) + 1e-12).all()
        assert torch.equal(after.start, after.mean)  # no update yet: the run starts at its start
        starts_inside += int(_inside(after.start.reshape(1, -1), after.basins).any())
        count += 1
    assert starts_inside < count  # most restarts found a candidate outside every known basin


# -- checkpoints ----------------------------------------------------------------------------------

def _roundtrip(record: dict) -> dict:
    return fmt.decode(fmt.encode("checkpoint", {"state": record}), "checkpoint")["state"]


def _continue(algo: CMAES, s: CMAState, gen: torch.Generator, g: int, restarts: int) -> CMAState:
    target = s.restarts + restarts
    while s.restarts < target:
        s = algo.evaluate(algo.step(s, g, gen))
        g += 1
    return s


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_checkpoint_in_a_small_run_resumes_bit_exactly(dtype):
    algo = CMAES(make_problem("rastrigin", 3, solved_at=None), CMAESConfig(**FAST), dtype=dtype)
    gen = torch.Generator().manual_seed(2)
    s, g = algo.evaluate(algo.init(algo.default_population(), 0, gen)), 0
    while not (s.regime == rs.SMALL and s.count >= 3 and s.basins.shape[0] >= 2):
        s = algo.evaluate(algo.step(s, g, gen))
        g += 1
        assert g < 20000
    record = algo.to_record(s)
    restored = CMAES(make_problem("rastrigin", 3, solved_at=None), CMAESConfig(**FAST), dtype=dtype).from_record(
        _roundtrip(record))
    assert same_record(algo.to_record(restored), record)
    gen2 = torch.Generator()
    gen2.set_state(gen.get_state())
    straight, resumed = _continue(algo, s, gen, g, 3), _continue(algo, restored, gen2, g, 3)
    assert same_record(algo.to_record(straight), algo.to_record(resumed))
    assert straight.basins.dtype == dtype and straight.regime in (rs.LARGE, rs.SMALL)


def test_checkpoint_from_before_the_restart_books_still_loads():
    algo = CMAES(make_problem("rastrigin", 5, solved_at=None), CMAESConfig(**FAST))
    gen = torch.Generator().manual_seed(1)
    for restarts in (0, 1):
        s, g = algo.evaluate(algo.init(algo.default_population(), 0, gen)), 0
        while s.restarts < restarts or s.count < 5:
            s = algo.evaluate(algo.step(s, g, gen))
            g += 1
        old = {k: v for k, v in _roundtrip(algo.to_record(s)).items() if k not in BOOKS}
        loaded = algo.from_record(old)
        assert loaded.basins.shape == (0, 7) and torch.equal(loaded.start, s.mean)
        assert (loaded.regime, loaded.lam0, loaded.lam_large) == ((rs.LARGE if restarts else rs.FIRST), s.lam, s.lam)
        assert (loaded.evals_small, loaded.evals_large, loaded.run_limit) == (0, 0, 0)
        assert torch.equal(loaded.C, s.C) and torch.equal(loaded.mean, s.mean)
        after = _continue(algo, loaded, gen, g, 2)  # and it restarts on with the books it starts from
        assert after.basins.shape[0] >= 1 and after.evals_small + after.evals_large > 0


def test_from_record_rejects_bad_books():
    algo = CMAES(make_problem("sphere", 4), CMAESConfig())
    rec = algo.to_record(algo.init(6, 0, torch.Generator().manual_seed(0)))
    for bad in ({"basins": np.zeros((2, 5))}, {"start": np.zeros(3)}, {"regime": 7}, {"lam0": 0}):
        with pytest.raises(ValueError):
            algo.from_record({**rec, **bad})


def test_the_ladder_starts_island_n_that_many_rungs_up_and_climbs_on_from_there():
    """`ladder`: island n's first run has lambda0 * ipop_factor^(n mod ladder) (capped by
    max_population), its BIPOP books keep the default lambda as lambda0 and count that run as
    island 0's first (small budget), so the next run is a large one, doubled; island 0 (and
    every island with ladder=1) starts as before."""
    problem = make_problem("rastrigin", 10, solved_at=None)
    algo = CMAES(problem, CMAESConfig(ladder=4, max_population=50))
    lam0 = algo.default_population()
    starts = [algo.init(lam0, n, torch.Generator().manual_seed(0)) for n in range(6)]
    assert [s.lam for s in starts] == [lam0, 2 * lam0, 4 * lam0, 50, lam0, 2 * lam0]
    assert all(s.lam0 == lam0 and s.lam_large == s.lam for s in starts)
    assert {s.regime for s in starts} == {rs.FIRST}
    flat = CMAES(problem, CMAESConfig(ladder=1))
    assert {flat.init(lam0, n, torch.Generator().manual_seed(0)).lam for n in range(4)} == {lam0}
    # The first run counts as small: BIPOP's next is large, twice its lambda.
    for before, after, _ in _runs(CMAESConfig(ladder=4, **FAST), 1, island=2):
        assert before.regime == rs.FIRST and after.regime == rs.LARGE and after.lam == 2 * before.lam
    with pytest.raises(ConfigError, match="ladder"):
        CMAESConfig(ladder=0)
