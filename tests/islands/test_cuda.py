"""Every algorithm and the island process on a CUDA device.

Skipped, with the reason printed, on machines without a GPU (CI has none); run on a GPU
machine with `python -m pytest tests/islands/test_cuda.py -rs`.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from islands import figures, policies
from islands.algorithms import make_algorithm
from islands.config import RunConfig
from islands.problems import make_problem
from migration_pool.rundir import RunDir

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible)")

VECTOR = ["ga", "cmaes", "sep-cmaes", "de", "es"]


def _run(cfg: RunConfig, device: str, generations: int, seed: int = 0):
    problem = make_problem(cfg.problem, cfg.dim, solved_at=None)
    algo = make_algorithm(cfg, problem, device)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    state = algo.evaluate(algo.init(cfg.population or algo.default_population(), 0, gen))
    first = figures.stats(algo.population(state)).best
    for g in range(generations):
        state = algo.evaluate(algo.step(state, g, gen))
    return algo, state, gen, first


@pytest.mark.parametrize("name", VECTOR)
def test_cuda_and_cpu_reach_comparable_quality(name):
    cfg = RunConfig(problem="sphere", dim=10, algorithm=name)
    gpu = [_run(cfg, "cuda", 150, seed)[0:2] for seed in range(2)]
    cpu = [_run(cfg, "cpu", 150, seed)[0:2] for seed in range(2)]
    best = lambda runs: max(figures.stats(a.population(s)).best for a, s in runs)  # noqa: E731
    # Different random streams, same algorithm: within a few orders of magnitude of each other.
    assert best(gpu) > -1e-1 and best(cpu) > -1e-1


def test_network_tasks_on_cuda():
    for algorithm, problem in (("pure", "cartpole"), ("es", "xor"), ("cmaes", "xor"), ("neat", "xor")):
        cfg = RunConfig(problem=problem, algorithm=algorithm, population=50)
        algo, state, _, _ = _run(cfg, "cuda", 10)
        assert np.isfinite(figures.stats(algo.population(state)).best) and algo.population(state).evaluations > 0  # non-elitist ones may dip


def test_an_archipelago_runs_on_cuda_with_migration(tmp_path):
    root = tmp_path / "run"
    cmd = [sys.executable, "-m", "islands", "launch", "-n", "2", "--run-dir", str(root), "--device", "cuda",
           "--algorithm", "cmaes", "--problem", "rastrigin", "--dim", "10", "--generations", "300",
           "--migrate-every", "5", "--plain"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rd = RunDir(root)
    statuses = [rd.island(island).read_status() for island in ("island-00", "island-01")]
    for status in statuses:
        assert status["state"] == "finished" and status["device"].startswith("cuda")
        assert status["migration"]["sent"] > 0
    # Islands are asynchronous: the one that starts later reads what the other published.
    assert sum(s["migration"]["received"] for s in statuses) > 0
