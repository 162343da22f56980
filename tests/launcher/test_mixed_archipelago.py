"""Mixed archipelagos: `--vary` lists, other algorithms and their settings per island.

Unit tests of the parsing and of `RunConfig.with_overrides`, bad `--vary` values refused
before anything is written, and one real launch of CMA-ES, DE and GA islands exchanging
migrants (then resumed, each island with its own algorithm).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from islands.config import RunConfig
from launcher.errors import PlanError
from launcher.plan import check_overrides, island_ids, parse_vary, sample_overrides
from migration_pool.rundir import RunDir
from support.procs import child_env

pytestmark = pytest.mark.timeout(300)


def test_a_list_is_dealt_round_robin_in_island_order():
    specs = [parse_vary("algorithm=cmaes,de,ga"), parse_vary("population=16,32")]
    over = sample_overrides(specs, island_ids(4), seed=7)
    assert [o["algorithm"] for o in over.values()] == ["cmaes", "de", "ga", "cmaes"]
    assert [o["population"] for o in over.values()] == [16, 32, 16, 32]
    check_overrides(RunConfig(), over, specs)
    assert str(specs[0]) == "algorithm=cmaes,de,ga" and parse_vary(str(specs[0])) == specs[0]


def test_algo_and_param_settings_reach_their_maps():
    cfg = RunConfig(algorithm="cmaes", algorithm_params={"max_restarts": 3}, problem_params={"noise": 0})
    eff = cfg.with_overrides({"algo.sigma0": 0.2, "param.hidden": 8, "population": 12})
    assert eff.algorithm_params == {"max_restarts": 3, "sigma0": 0.2}
    assert eff.problem_params == {"noise": 0, "hidden": 8} and eff.population == 12
    assert eff.trajectory_hash() != cfg.trajectory_hash()
    assert parse_vary("param.hidden=4:16").integer and not parse_vary("algo.add_node_rate=0.01:0.2:log").integer


def test_switching_away_from_the_ga_drops_its_default_population_only():
    assert RunConfig().with_overrides({"algorithm": "cmaes"}).population is None
    assert RunConfig(population=40).with_overrides({"algorithm": "de"}).population == 40
    assert RunConfig(algorithm="cmaes").with_overrides({"algorithm": "ga"}).population == 100


@pytest.mark.parametrize("text, words", [
    ("algorithm=0:3", "not a number"),
    ("population=16", "two or more values"),
    ("population=16,big", "takes numbers"),
    ("algorithm=cmaes,nosuch", "algorithm must be one of"),
    ("crossover=sbx,zigzag", "crossover must be one of"),
    ("algo.=1,2", "needs a setting name"),
])
def test_bad_lists_are_plan_errors(text, words):
    with pytest.raises(PlanError, match=None) as e:
        check_overrides(RunConfig(), {}, [parse_vary(text)])
    assert words in str(e.value)


def launch(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "islands", "launch", "--plain", "--progress-every", "60", *args],
                          env=child_env(), capture_output=True, text=True, timeout=timeout, start_new_session=True)


@pytest.mark.parametrize("args, words", [
    (["--vary", "algorithm=cmaes,sep-cmaes", "--vary", "algo.sigma0=0.1,2"], "sigma0 must be in (0, 1]"),
    (["--vary", "algorithm=cmaes,ga", "--vary", "algo.sigma0=0.1,0.2"], "takes no --algorithm-param"),
    (["--vary", "algorithm=cmaes,de", "--algorithm-param", "sigma0=0.2"], "unknown"),
    (["--problem", "xor", "--algorithm", "pure", "--migrate-every", "5", "--vary", "param.hidden=2,4"],
     "different kinds or lengths"),
])
def test_bad_settings_of_other_algorithms_exit_2_and_write_nothing(tmp_path, args, words):
    run = tmp_path / "run"
    out = launch("-n", "2", "--run-dir", str(run), "--generations", "3", *args)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], out.stderr
    assert not run.exists()


def _origins(record: object) -> list[np.ndarray]:
    """Every `origin` array in a checkpoint's state record, however the algorithm nests it."""
    if isinstance(record, dict):
        found = [np.asarray(v) for k, v in record.items() if k == "origin"]
        return found + [a for k, v in record.items() if k != "origin" for a in _origins(v)]
    return []


def test_cmaes_de_and_ga_islands_exchange_migrants_and_resume_with_their_own_algorithm(tmp_path):
    run = tmp_path / "run"
    # The barrier makes the three islands start evolving together whatever their start-up
    # skew, and the delay keeps a generation from being much faster on one of them.
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    args = ["-n", "3", "--run-dir", str(run), "--problem", "slow_problem:make", "--param", "base=rastrigin",
            "--param", "delay=0.01", "--param", f"barrier={barrier}", "--param", "parties=3", "--dim", "6",
            "--generations", "40", "--migrate-every", "5", "--checkpoint-every", "10", "--seed", "3",
            "--vary", "algorithm=cmaes,de,ga"]
    out = launch(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    rundir = RunDir(run)
    manifest = rundir.read_manifest()
    assert manifest["overrides"] == {"island-00": {"algorithm": "cmaes"}, "island-01": {"algorithm": "de"},
                                     "island-02": {"algorithm": "ga"}}
    assert manifest["plan"]["vary"] == ["algorithm=cmaes,de,ga"]
    foreign = 0
    for n, (isl, algo) in enumerate(zip(island_ids(3), ("cmaes", "de", "ga"))):
        st = rundir.island(isl).read_status()
        assert st["state"] == "finished" and st["overrides"] == {"algorithm": algo}
        assert st["migration"]["received"] > 0 and st["migration"]["adopted"] > 0, (isl, st["migration"])
        record, _ = rundir.island(isl).load_checkpoint()
        expected = RunConfig.from_dict(manifest["config"]).with_overrides({"algorithm": algo})
        assert record["settings_hash"] == expected.trajectory_hash()
        assert ("sigma" in record["state"]) == (algo == "cmaes")
        foreign += sum(int((o != n).sum()) for o in _origins(record["state"]))
    assert foreign > 0  # provenance crossed algorithms
    summary = json.loads((run / "summary.json").read_text())
    assert summary["migration"]["adopted"] > 0
    # Resuming loads each island's checkpoint into its own algorithm (a CMA-ES state would not
    # fit a GA): `evolve` of each island resumes from its last generation and stops there.
    for isl in island_ids(3):
        res = subprocess.run([sys.executable, "-m", "islands", "evolve", isl, "--run-dir", str(run), "--quiet"],
                             env=child_env(), capture_output=True, text=True, timeout=120, start_new_session=True)
        assert res.returncode == 0 and "resumed from generation 40" in res.stdout, res.stdout + res.stderr


def test_a_parallel_ipop_is_cmaes_islands_of_growing_populations():
    specs = [parse_vary("population=8,16,32,64")]
    over = sample_overrides(specs, island_ids(4), seed=0)
    cfg = RunConfig(algorithm="cmaes", migration=RunConfig().migration.__class__(every=10))
    check_overrides(cfg, over, specs)
    assert [cfg.with_overrides(o).population for o in over.values()] == [8, 16, 32, 64]
    assert len({cfg.with_overrides(o).trajectory_hash() for o in over.values()}) == 4
