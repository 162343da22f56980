#!/usr/bin/env python3
"""NEAT benchmarks: XOR evaluations against the NEAT paper, time per generation, double pole.

1. XOR: one population per seed (default 150 genomes, the paper's size) evolves until every
   output is on the right side of 0.5; evaluations = population x generations evaluated,
   the initial one included, as the island loop counts them. A seed that does not solve
   within --max-generations is a failure: reported, and counted at its full budget in the
   "all runs" mean. Target (README, "Benchmarks"): fewer than the NEAT paper's 4,755 on average.
2. Time per XOR generation (evaluate + speciate + reproduce) at the same population, and
   the same for neat-python if it is importable (it is not a dependency:
   `pip install neat-python` to compare), with the ratio.
3. --dpv: double pole balancing with velocities, solved at 100,000 steps (paper: 3,600
   evaluations on average).

    python scripts/bench_neat.py [--xor-seeds 20] [--population 150] [--dpv] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, ROOT)
from islands.threads import limit_env  # noqa: E402
from neat_python_config import neat_python_config_object  # noqa: E402

limit_env()  # one thread, as in an island, before torch loads

import torch  # noqa: E402

from islands import figures  # noqa: E402
from islands.algorithms.neat import NeatAlgorithm, NeatConfig  # noqa: E402
from islands.problems import make_problem  # noqa: E402

NEAT_PAPER = {"xor": 4755, "double_pole": 3600}


def solve(problem_name: str, seed: int, population: int, max_generations: int, **params) -> dict:
    """One NEAT run until the problem's target; evaluations and time."""
    problem = make_problem(problem_name, **params)
    algo = NeatAlgorithm(problem, NeatConfig())
    gen = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    state = algo.evaluate(algo.init(population, 0, gen))
    for g in range(max_generations + 1):
        stats = figures.stats(algo.population(state))
        if stats.best >= problem.solved_at:
            champion = figures.genome(algo.population(state), stats.best_index)
            return {"seed": seed, "solved": True, "generations": g, "evaluations": population * (g + 1),
                    "hidden_nodes": int(champion["nodes"].size - (problem.task.inputs + 1 + problem.task.outputs)),
                    "connections": int(champion["enabled"].sum()), "seconds": time.perf_counter() - started}
        if g < max_generations:
            state = algo.evaluate(algo.step(state, g, gen))
    return {"seed": seed, "solved": False, "generations": max_generations,
            "evaluations": population * (max_generations + 1), "seconds": time.perf_counter() - started}


def xor_evaluations(args: argparse.Namespace) -> dict:
    runs = []
    for seed in range(args.xor_seeds):
        runs.append(solve("xor", seed, args.population, args.max_generations))
        r = runs[-1]
        print(f"  seed {seed:3d}: {'solved' if r['solved'] else 'FAILED'} after {r['evaluations']:6d} evaluations "
              f"({r['generations']} generations{', %d hidden' % r['hidden_nodes'] if r['solved'] else ''})")
    ok = [r["evaluations"] for r in runs if r["solved"]]
    everything = [r["evaluations"] for r in runs]
    return {
        "seeds": args.xor_seeds, "population": args.population, "failures": len(runs) - len(ok),
        "mean_evaluations_solved": statistics.fmean(ok) if ok else None,
        "mean_evaluations_all": statistics.fmean(everything),
        "median_evaluations": statistics.median(everything),
        "min": min(everything), "max": max(everything), "neat_paper": NEAT_PAPER["xor"], "runs": runs,
    }


def our_time_per_generation(population: int, generations: int) -> float:
    """Seconds per XOR generation, never stopping at the target."""
    algo = NeatAlgorithm(make_problem("xor"), NeatConfig())
    gen = torch.Generator().manual_seed(12345)
    state = algo.evaluate(algo.init(population, 0, gen))
    started = time.perf_counter()
    for g in range(generations):
        state = algo.evaluate(algo.step(state, g, gen))
    return (time.perf_counter() - started) / generations




def neat_python_time_per_generation(population: int, generations: int) -> float | None:
    """Seconds per XOR generation of neat-python's own XOR example setup, or None if absent."""
    try:
        import neat  # type: ignore[import-not-found]
    except ImportError:
        return None
    cases = [((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0)]

    def eval_genomes(genomes, config):  # neat-python's XOR fitness, as in its example
        for _gid, g in genomes:
            net = neat.nn.FeedForwardNetwork.create(g, config)
            g.fitness = 4.0 - sum((net.activate(x)[0] - y) ** 2 for x, y in cases)

    pop = neat.Population(neat_python_config_object(population, inputs=2, threshold=1000))
    started = time.perf_counter()
    pop.run(eval_genomes, generations)
    return (time.perf_counter() - started) / generations


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--xor-seeds", type=int, default=20)
    ap.add_argument("--population", type=int, default=150)
    ap.add_argument("--max-generations", type=int, default=300)
    ap.add_argument("--timing-generations", type=int, default=100)
    ap.add_argument("--dpv", action="store_true", help="also solve double pole balancing with velocities")
    ap.add_argument("--dpv-seeds", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    report: dict = {"python": platform.python_version(), "torch": torch.__version__,
                    "neat_config": NeatConfig().to_params()}

    print(f"XOR, population {args.population}, {args.xor_seeds} seeds:")
    xor = report["xor"] = xor_evaluations(args)
    verdict = "better than" if xor["mean_evaluations_all"] < NEAT_PAPER["xor"] else "NOT better than"
    print(f"XOR: mean {xor['mean_evaluations_all']:.0f} evaluations over all {args.xor_seeds} runs "
          f"(failures counted at {args.population * (args.max_generations + 1)}), median "
          f"{xor['median_evaluations']:.0f}, failures {xor['failures']}; {verdict} the NEAT paper's "
          f"{NEAT_PAPER['xor']:,}")

    ours = our_time_per_generation(args.population, args.timing_generations)
    why = "neat-python is not importable (pip install neat-python)"
    try:
        theirs = neat_python_time_per_generation(args.population, args.timing_generations)
    except Exception as exc:  # a third-party version we cannot configure: report, keep ours
        why = (f"neat-python failed ({type(exc).__name__}: {exc}); this script's config follows "
               "neat-python 0.92's XOR example")
        theirs = None
    report["time_per_generation"] = {"islands": ours, "neat_python": theirs,
                                     "ratio_neat_python_over_islands": None if theirs is None else theirs / ours}
    print(f"time per XOR generation at population {args.population}: islands {ours * 1e3:.2f} ms")
    if theirs is None:
        print(f"neat-python comparison skipped: {why}")
    else:
        print(f"                                 neat-python {theirs * 1e3:.2f} ms  "
              f"(neat-python / islands = {theirs / ours:.2f})")

    if args.dpv:
        runs = []
        for seed in range(args.dpv_seeds):
            r = solve("double_pole", seed, args.population, 100)
            runs.append(r)
            print(f"double pole with velocities, seed {seed}: {'solved' if r['solved'] else 'FAILED'} after "
                  f"{r['evaluations']} evaluations, {r['seconds']:.0f} s")
        report["double_pole"] = {"runs": runs, "neat_paper": NEAT_PAPER["double_pole"]}

    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
