#!/usr/bin/env python3
"""Engine overhead: one GA generation of the engine against a bare hand-written torch loop.

Both do the same operators (tournament, SBX, Gaussian mutation, clipping, elitism, Rastrigin
evaluation) on the same population in the same process, interleaved in rounds so machine
noise hits both alike. Reports the ratio engine/bare (target <= 1.25) and evaluations per
second, plus the full island loop (history, status and checkpoint I/O included).

    python scripts/bench_engine.py [--dim 100] [--population 500] [--rounds 7] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from islands.threads import limit_env  # noqa: E402

limit_env()
import torch  # noqa: E402

from islands.algorithms.ga import GeneticAlgorithm  # noqa: E402
from islands.config import GAConfig, RunConfig  # noqa: E402
from islands.island import limit_torch_threads  # noqa: E402
from islands.problems import make_problem  # noqa: E402
from islands.runs import evolve  # noqa: E402


def bare_generation(x: torch.Tensor, f: torch.Tensor, g: torch.Generator, lo: float, hi: float,
                    eta: float, sigma: float, rate: float, elite: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same GA generation written inline, with no engine around it."""
    p, d = x.shape
    kids = p - elite
    pairs = (kids + 1) // 2
    entrants = torch.randint(p, (2 * pairs, 3), generator=g)
    winners = entrants.gather(1, f[entrants].argmax(1, keepdim=True)).squeeze(1)
    a, b = x[winners[:pairs]], x[winners[pairs:]]
    u = torch.rand(a.shape, generator=g)
    power = 1.0 / (eta + 1.0)
    beta = torch.where(u <= 0.5, (2 * u) ** power, (0.5 / (1 - u).clamp_min(1e-12)) ** power)
    beta = torch.where(torch.rand(a.shape, generator=g) < 0.5, beta, torch.ones_like(beta))
    c1, c2 = 0.5 * (a + b) + beta * 0.5 * (a - b), 0.5 * (a + b) - beta * 0.5 * (a - b)
    swap = torch.rand(a.shape, generator=g) < 0.5
    c1, c2 = torch.where(swap, c2, c1), torch.where(swap, c1, c2)
    mate = torch.rand((pairs, 1), generator=g) < 0.9
    y = torch.cat([torch.where(mate, c1, a), torch.where(mate, c2, b)])[:kids]
    hit = torch.rand(y.shape, generator=g) < rate
    y = y + hit * torch.randn(y.shape, generator=g) * (sigma * (hi - lo))
    y = y.clamp(lo, hi)
    x = torch.cat([x[torch.topk(f, elite).indices], y])
    f = -(10 * d + (x * x - 10 * torch.cos(2 * math.pi * x)).sum(1))
    return x, f


def measure(dim: int, population: int, rounds: int, gens: int) -> dict:
    limit_torch_threads()
    problem = make_problem("rastrigin", dim)
    cfg = GAConfig()
    algo = GeneticAlgorithm(problem, cfg)
    g1, g2 = torch.Generator(), torch.Generator()
    g1.manual_seed(0)
    g2.manual_seed(0)
    state = algo.evaluate(algo.init(population, 0, g1))
    x, f = state.genomes.clone(), state.fitness.clone()
    engine_s, bare_s = [], []
    for r in range(rounds + 1):  # round 0 warms up
        t = time.perf_counter()
        for i in range(gens):
            state = algo.evaluate(algo.step(state, i, g1))
        e = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(gens):
            x, f = bare_generation(x, f, g2, problem.lower, problem.upper, cfg.sbx_eta,
                                   cfg.mutation_sigma, 1.0 / dim, cfg.elitism)
        b = time.perf_counter() - t
        if r:
            engine_s.append(e / gens)
            bare_s.append(b / gens)
    engine, bare = sorted(engine_s)[len(engine_s) // 2], sorted(bare_s)[len(bare_s) // 2]
    return {
        "dim": dim,
        "population": population,
        "engine_generation_s": engine,
        "bare_generation_s": bare,
        "engine_overhead_ratio": engine / bare,
        "engine_evals_per_sec": population / engine,
        "bare_evals_per_sec": population / bare,
        "torch_threads": torch.get_num_threads(),
    }


def island_loop(dim: int, population: int, generations: int) -> dict:
    """Throughput of a whole island process loop, with its history/status/checkpoint I/O."""
    with tempfile.TemporaryDirectory() as root:
        cfg = RunConfig(problem="rastrigin", dim=dim, population=population, generations=generations,
                        checkpoint_every=max(1, generations // 4))
        t = time.perf_counter()
        result = evolve("island-00", root, cfg, log=lambda _m: None)
        wall = time.perf_counter() - t
    return {"island_loop_evals_per_sec": result.evaluations / wall, "island_loop_generations": generations}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--population", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--gens", type=int, default=50, help="generations per timed round")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    res = measure(args.dim, args.population, args.rounds, args.gens)
    res.update(island_loop(args.dim, args.population, args.gens * 4))
    print(f"Rastrigin D={res['dim']} P={res['population']}, one thread")
    print(f"  engine generation   {res['engine_generation_s'] * 1e3:8.3f} ms  ({res['engine_evals_per_sec']:,.0f} evals/s)")
    print(f"  bare torch loop     {res['bare_generation_s'] * 1e3:8.3f} ms  ({res['bare_evals_per_sec']:,.0f} evals/s)")
    print(f"  engine_overhead_ratio {res['engine_overhead_ratio']:.3f}  (target <= 1.25)")
    print(f"  whole island loop   {res['island_loop_evals_per_sec']:,.0f} evals/s (history, status, checkpoints included)")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
