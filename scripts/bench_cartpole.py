#!/usr/bin/env python3
"""CartPole solved by an archipelago: evaluations and time until the champion generalises.

"Solved" is gymnasium's CartPole-v1 criterion on unseen starts: a mean return of 500 over 100
start states no island trained on, without noise (`cartpole_generalisation`; the built-in
simulator is checked step for step against gymnasium's in tests/islands/problems/test_cartpole.py). The
islands train on the built-in `cartpole` as a user runs it (10 new noisy starts every
generation). After every generation, each island whose best training fitness is 500 has
that champion tested on the 100 unseen starts; the first that passes ends the seed. The
tests are the benchmark's, not the search's: they are not counted as evaluations.

The archipelago is run in this process, one island after another on one thread, with the
island process's own code: the same algorithms, the same episode seeds per island and
generation (`episode_seed`), the same migration due rule, emigrant and replacement policies
on a ring (immigrants are re-evaluated, and counted). Only the file exchange is replaced by
handing batches over in memory (bench_migration.py measures what the files add). Times are
therefore those of the whole archipelago on one core: wall time, and CPU time (the same on an
idle core; what counts on a shared machine); N processes on N free cores take about 1/N.

    python scripts/bench_cartpole.py [--quick] [--seeds 5] [--islands 4] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from islands.threads import limit_env  # noqa: E402

limit_env()  # one thread, as in an island, before torch loads

import numpy as np  # noqa: E402
import torch  # noqa: E402

from islands import figures  # noqa: E402
from islands.algorithms import Migrants, make_algorithm  # noqa: E402
from islands.config import MigrationConfig, RunConfig, episode_seed, island_id, island_seed  # noqa: E402
from islands.nets import MLP  # noqa: E402
from islands.problems import make_problem  # noqa: E402
from islands.problems.control import cartpole_generalisation  # noqa: E402
from quality_runners import ring_exchange  # noqa: E402

CPU = torch.device("cpu")
METHODS = {"es (snes) on pure MLP": "es", "neat": "neat"}


def champion_policy(algo, state, index: int, problem):
    """The network `index` of an island's population as a policy of one network."""
    if algo.genome_kind == "neat":
        return algo.compile(state.genomes.take(np.array([index])))
    return MLP(problem.spec, algo.population(state).genomes[index:index + 1].float())


def solve(algorithm: str, seed: int, islands: int, budget: int, unseen: int) -> dict:
    """One archipelago of `islands` islands until a champion generalises or `budget` evaluations."""
    torch.set_num_threads(1)
    mig = MigrationConfig()
    started, cpu = time.perf_counter(), time.process_time()
    isl = []
    evaluations, checks = 0, 0
    for n in range(islands):
        cfg = RunConfig(problem="cartpole", algorithm=algorithm, seed=seed, migration=mig)
        problem = make_problem("cartpole")
        algo = make_algorithm(cfg, problem)
        gen = torch.Generator()
        key = island_seed(seed, island_id(n))
        gen.manual_seed(key)
        problem.reseed(episode_seed(key, 0))
        state = algo.evaluate(algo.init(cfg.population or algo.default_population(), n, gen))
        evaluations += algo.population(state).evaluations
        isl.append([algo, gen, state, problem, key])
    outbox: list[list[Migrants]] = [[] for _ in isl]
    generation = 0
    while True:
        for algo, gen, state, problem, key in isl:
            stats = figures.stats(algo.population(state))
            if stats.best >= problem.solved_at:
                checks += 1
                mean, share = cartpole_generalisation(champion_policy(algo, state, stats.best_index, problem),
                                                      CPU, episodes=unseen)
                if float(mean[0]) >= 500.0:
                    return {"seed": seed, "solved": True, "evaluations": evaluations, "generations": generation,
                            "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
                            "unseen_mean": float(mean[0]),
                            "champion_checks": checks}
        if evaluations >= budget:
            return {"seed": seed, "solved": False, "evaluations": evaluations, "generations": generation,
                    "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
                    "champion_checks": checks}
        if islands > 1 and mig.every:  # as an island process: migration at g, then breed g + 1
            evaluations += ring_exchange(isl, outbox, mig, generation,
                                         on_arrival=lambda i: i[3].reseed(episode_seed(i[4], generation)))[1]
        for i in isl:
            i[3].reseed(episode_seed(i[4], generation + 1))
            i[2] = i[0].evaluate(i[0].step(i[2], generation, i[1]))
            evaluations += i[0].population(i[2]).evaluations
        generation += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, 2 islands, a small budget: a smoke run")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--islands", type=int, default=4)
    ap.add_argument("--budget", type=int, default=200_000, help="evaluations per seed before giving up")
    ap.add_argument("--unseen", type=int, default=100, help="unseen starts a champion must balance")
    ap.add_argument("--methods", default=",".join(METHODS.values()))
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.islands, args.budget = 2, 2, 20_000
    report: dict = {"benchmark": "cartpole", "islands": args.islands, "seeds": args.seeds, "budget": args.budget,
                    "unseen_starts": args.unseen, "torch": torch.__version__, "rows": []}
    print(f"CartPole solved (mean 500 over {args.unseen} unseen starts), {args.islands} islands, "
          f"{args.seeds} seeds, budget {args.budget} evaluations per seed")
    for label, algorithm in METHODS.items():
        if algorithm not in args.methods.split(","):
            continue
        runs = []
        for seed in range(args.seeds):
            r = solve(algorithm, seed, args.islands, args.budget, args.unseen)
            runs.append(r)
            print(f"  {label:22s} seed {seed}: {'solved' if r['solved'] else 'NOT solved'} after "
                  f"{r['evaluations']:7d} evaluations, {r['generations']:4d} generations, {r['seconds']:7.1f} s wall, "
                  f"{r['cpu_seconds']:7.1f} s CPU "
                  f"({r['champion_checks']} champions tested)", flush=True)
        solved = [r for r in runs if r["solved"]]
        row = {"method": label, "algorithm": algorithm, "solved": len(solved), "seeds": args.seeds,
               "median_evaluations": statistics.median(r["evaluations"] for r in runs),
               "median_seconds": statistics.median(r["seconds"] for r in runs),
               "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs), "runs": runs}
        report["rows"].append(row)
        print(f"{label}: solved {len(solved)}/{args.seeds}; median {row['median_evaluations']:.0f} evaluations, "
              f"median {row['median_seconds']:.1f} s wall, {row['median_cpu_seconds']:.1f} s CPU "
              "(unsolved seeds counted at their budget)", flush=True)
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
