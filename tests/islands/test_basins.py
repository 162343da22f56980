"""Shared basins: the record (`islands.basins`), CMA-ES taking the other islands' basins into its
restarts, and a real launch whose islands share them (a forged record included) and report the
distinct optima they found."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from islands import basins
from islands.algorithms import make_algorithm
from islands.config import RunConfig
from islands.problems import make_problem
from islands.results import open_run
from migration_pool.rundir import RunDir
from support.procs import child_env


def _rows(*rows):
    return np.array(rows, dtype=np.float64)


def test_a_record_round_trips_and_bad_records_or_rows_are_dropped():
    rows = _rows([1.0, 2.0, 0.5, -3.0], [0.0, 0.0, 1.0, -1.0])
    body = basins.to_body("island-01", "run", rows)
    assert np.array_equal(basins.from_body(body, 2, "run"), rows[::-1])  # the best first
    assert basins.from_body(body, 2, "another run").shape == (0, 4)
    assert basins.from_body(body, 3, "run").shape == (0, 5)  # another dimension
    assert basins.from_body(None, 2).shape == (0, 4)
    bad = dict(body, radius=np.array([np.nan, -1.0]))
    assert basins.from_body(bad, 2, "run").shape == (0, 4)
    assert basins.from_body(dict(body, best=[1, 2]), 2, "run").shape == (0, 4)  # not arrays
    huge = basins.to_body("island-01", "run", np.tile(rows[:1], (1000, 1)))
    assert basins.from_body(huge, 2, "run").shape[0] <= basins.MAX_BASINS


def test_distinct_optima_merge_inside_a_basin_and_keep_the_better():
    records = {
        "island-00": _rows([0.0, 0.0, 1.0, -1.0], [5.0, 5.0, 0.5, -3.0]),
        "island-01": _rows([0.3, 0.0, 0.1, -0.5],  # inside island-00's first basin, better: stands for it
                           [1e-9, 0.0, 0.0, -0.4]),  # a best-ever point in the same basin
        "island-02": _rows([-4.0, 4.0, 0.2, -2.0]),
    }
    found = basins.distinct(records, k=10)
    # island-00's wide basin holds both of island-01's rows: one optimum, the best point standing for it
    assert [(b.island, b.best) for b in found] == [("island-01", -0.4), ("island-02", -2.0), ("island-00", -3.0)]
    assert found[0].radius == 1.0
    assert len(basins.distinct(records, k=2)) == 2


def _cmaes(dim=2):
    cfg = RunConfig(problem="rastrigin", dim=dim, algorithm="cmaes", seed=1)
    problem = make_problem("rastrigin", dim)
    return make_algorithm(cfg, problem), problem


def test_cmaes_restarts_start_outside_the_basins_other_islands_found():
    algo, problem = _cmaes()
    gen = torch.Generator().manual_seed(3)
    state = algo.evaluate(algo.init(8, 0, gen))
    lower, width = float(algo.lower[0]), float(algo.width[0])
    centre = np.full(2, lower + 0.5 * width)
    radius = 0.2 * np.sqrt(2) * width  # the largest radius an island keeps (basin_radius)
    told = algo.with_basins(state, _rows([*centre, radius, -1.0]))
    assert told.foreign.shape == (1, 4)

    def starts(s):
        inside = 0
        for i in range(40):
            g = torch.Generator().manual_seed(100 + i)
            mean = algo._restart(s, ["tolx"], 5, g).mean.numpy()
            inside += np.linalg.norm(mean - 0.5) <= 0.2 * np.sqrt(2)
        return inside

    assert starts(state) >= 3  # a quarter of the box: some uniform starts land in the ball
    assert starts(told) == 0  # told of it, a restart redraws out of it


def test_foreign_basins_survive_a_checkpoint_and_an_older_checkpoint_has_none():
    algo, problem = _cmaes()
    state = algo.evaluate(algo.init(8, 0, torch.Generator().manual_seed(3)))
    told = algo.with_basins(state, _rows([0.0, 0.0, 1.0, -1.0], [1.0, 1.0, 1e9, -2.0]))  # radius capped
    assert float(told.foreign[:, 2].max()) <= 0.2 * np.sqrt(2) + 1e-12
    record = algo.to_record(told)
    assert torch.equal(algo.from_record(record).foreign, told.foreign)
    del record["foreign"]
    assert algo.from_record(record).foreign.shape == (0, 4)
    own = algo.basins(told)  # none of its own yet: the foreign ones are not republished
    assert own is not None and own.shape == (0, 4)


def test_an_island_takes_other_islands_records_bounded_and_validated(tmp_path):
    from islands.basin_exchange import BasinExchange

    algo, _ = _cmaes()
    state = algo.evaluate(algo.init(8, 0, torch.Generator().manual_seed(3)))
    rundir = RunDir(tmp_path)
    many = np.column_stack([np.random.default_rng(0).uniform(-5, 5, (500, 2)), np.full(500, 1e300),
                            np.linspace(-1, 0, 500)])
    many[::7, 0] = np.nan  # some rows not finite
    for island, rows in (("island-01", many), ("island-02", _rows([0.0, 0.0, 1.0, -1.0]))):
        rundir.ensure(island)  # written as a forger would, not through to_body (which keeps MAX_BASINS)
        rundir.island(island).write_basins({"island": island, "run_id": "run", "dim": 2, "centres": rows[:, :2].copy(),
                                            "radius": rows[:, 2].copy(), "best": rows[:, 3].copy()})
    rundir.ensure("island-03")
    rundir.ensure("island-00")
    (rundir.island("island-03").dir / "basins.isld").write_bytes(b"not an envelope")
    lines: list[str] = []
    told = BasinExchange("island-00", rundir, "run", 2, lines.append).exchange(algo, state)
    foreign = told.foreign
    assert 1 <= foreign.shape[0] <= 4 * algo.cfg.basin_memory and bool(torch.isfinite(foreign).all())
    assert float(foreign[:, 2].max()) <= 0.2 * np.sqrt(2) + 1e-12  # radius capped as the island's own
    assert float(foreign[0, 3]) == 0.0  # the best first
    assert RunDir(tmp_path).island("island-00").read_basins() is not None  # its own (none yet) published
    assert not lines


@pytest.mark.timeout(300)
def test_a_launch_shares_basins_survives_a_forged_record_and_reports_distinct_optima(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.ensure("island-07")  # a record no island of this run wrote (another run's id): never taken
    rundir.island("island-07").write_basins({"island": "island-07", "run_id": None, "dim": 4,
                                              "centres": np.zeros((2, 4)), "radius": np.array([1e300, np.nan]),
                                              "best": np.array([1e300, 0.0])})
    out = subprocess.run([sys.executable, "-m", "islands", "launch", "-n", "2", "--run-dir", str(tmp_path),
                          "--problem", "rastrigin", "--dim", "4", "--algorithm", "cmaes", "--target", "1",
                          "--max-evaluations", "60000", "--checkpoint-seconds", "0", "--plain",
                          "--progress-every", "60"],
                         env=child_env(), capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stdout + out.stderr
    run = open_run(tmp_path)
    own = [basins.from_body(RunDir(tmp_path).island(i).read_basins(), 4, run.run_id)
           for i in ("island-00", "island-01")]
    assert all(rows.shape[0] >= 1 for rows in own), own  # rastrigin: each island's restarts found basins
    optima = run.optima(10)
    assert len(optima) >= 2 and [o["best"] for o in optima] == sorted((o["best"] for o in optima), reverse=True)
    assert all(o["island"] in ("island-00", "island-01") and len(o["centre"]) == 4 for o in optima)
    shown = subprocess.run([sys.executable, "-m", "islands", "status", "--run-dir", str(tmp_path)],
                           env=child_env(), capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "distinct basins found" in shown.stdout, shown.stdout + shown.stderr


def test_a_run_of_many_islands_is_read_in_turns_and_every_record_is_reached(tmp_path):
    from islands import basin_exchange
    from islands.basin_exchange import BasinExchange

    algo, _ = _cmaes()
    state = algo.evaluate(algo.init(8, 0, torch.Generator().manual_seed(3)))
    rundir = RunDir(tmp_path)
    n = basin_exchange.READ_AT_ONCE + 8
    for i in range(1, n + 1):
        island = f"island-{i:02d}"
        rundir.ensure(island)
        rundir.island(island).write_basins(basins.to_body(island, "run", _rows([i / 100, 0.0, 0.01, -i])))
    rundir.ensure("island-00")
    ex = BasinExchange("island-00", rundir, "run", 2, lambda line: None)
    reads = []
    real = rundir.island

    def counting(island):
        reads.append(island)
        return real(island)

    rundir.island = counting  # count the records read at each exchange
    state = ex.exchange(algo, state)
    first = [r for r in reads if r != "island-00"]
    assert len(first) == basin_exchange.READ_AT_ONCE
    assert float(state.foreign[:, 3].max()) > -basin_exchange.READ_AT_ONCE - 1  # only those read so far
    ex.read_at = -float("inf")  # READ_S later
    state = ex.exchange(algo, state)
    assert float(state.foreign[:, 3].min()) >= -n and ex.known.shape[0] == n  # every island's reached
    assert -1.0 in set(ex.known[:, 3].tolist()) and float(-n) in set(ex.known[:, 3].tolist())


def test_optima_of_islands_with_genomes_of_different_lengths_are_kept_apart():
    found = basins.distinct({"island-00": _rows([0.0, 0.0, 1.0, -1.0]), "island-01": _rows([0.0, 0.0, 0.0, 1.0, -2.0])})
    assert [(b.island, len(b.centre)) for b in found] == [("island-00", 2), ("island-01", 3)]


def test_an_island_that_only_publishes_reads_no_other_island(tmp_path):
    from islands.basin_exchange import BasinExchange

    algo, _ = _cmaes()
    state = algo.evaluate(algo.init(8, 0, torch.Generator().manual_seed(3)))
    rundir = RunDir(tmp_path)
    for island in ("island-00", "island-01"):
        rundir.ensure(island)
    rundir.island("island-01").write_basins(basins.to_body("island-01", "run", _rows([0.0, 0.0, 1.0, -1.0])))
    told = BasinExchange("island-00", rundir, "run", 2, lambda line: None, read=False).exchange(algo, state)
    assert told.foreign.shape == (0, 4)  # isolated or synchronous: nothing read
    assert rundir.island("island-00").read_basins() is not None  # but its own are published
