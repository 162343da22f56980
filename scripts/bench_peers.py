#!/usr/bin/env python3
"""The same GA budget on Rastrigin with islands and with peer libraries, side by side.

Each library runs a real-coded GA (tournament selection, SBX-like crossover, Gaussian or
polynomial mutation) with the same population, dimension and generations, on one thread.
Reports CPU time per generation (this process's, so a shared machine disturbs it less than
the wall clock), the ratio to islands' (peer / islands: above 1 means islands is faster) and
the best fitness (maximised, -f(x)), in interleaved rounds (islands, then each peer, again):
medians over rounds, the ratios' spread beside them. islands runs its default GA
(self-adaptive mutation) in `--dtype` (float64 by default: pygmo and DEAP compute in double,
so equal precision). Peers come from the optional extra `pip install -e ".[peers]"` (deap,
pygmo, evotorch); a missing one is reported as skipped.

    python scripts/bench_peers.py [--quick] [--out FILE]
    python scripts/bench_peers.py --dim 100 --population 500 --generations 100 --rounds 5 --peers pygmo
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from islands.threads import limit_env  # noqa: E402

limit_env()
import numpy as np  # noqa: E402
import torch  # noqa: E402

LOW, HIGH = -5.12, 5.12


def rastrigin_np(x: np.ndarray) -> float:
    return float(10 * x.size + np.sum(x * x - 10 * np.cos(2 * math.pi * x)))


DTYPE = {"float64": torch.float64, "float32": torch.float32}


def run_islands(pop: int, dim: int, gens: int, seed: int, dtype: str = "float64") -> tuple[float, float]:
    from islands import figures
    from islands.algorithms.ga import GeneticAlgorithm
    from islands.config import GAConfig
    from islands.island import limit_torch_threads
    from islands.problems import make_problem

    limit_torch_threads()
    algo = GeneticAlgorithm(make_problem("rastrigin", dim), GAConfig(), dtype=DTYPE[dtype])
    g = torch.Generator()
    g.manual_seed(seed)
    t = time.process_time()
    state = algo.evaluate(algo.init(pop, 0, g))
    for i in range(gens):
        state = algo.evaluate(algo.step(state, i, g))
    return (time.process_time() - t) / gens, figures.stats(algo.population(state)).best


def run_deap(pop: int, dim: int, gens: int, seed: int) -> tuple[float, float]:
    from deap import base, creator, tools

    random.seed(seed)
    if not hasattr(creator, "FitMax"):
        creator.create("FitMax", base.Fitness, weights=(1.0,))
        creator.create("Ind", list, fitness=creator.FitMax)
    tb = base.Toolbox()
    tb.register("ind", tools.initIterate, creator.Ind, lambda: [random.uniform(LOW, HIGH) for _ in range(dim)])
    tb.register("evaluate", lambda ind: (-rastrigin_np(np.asarray(ind)),))
    tb.register("mate", tools.cxSimulatedBinaryBounded, eta=15.0, low=LOW, up=HIGH)
    tb.register("mutate", tools.mutGaussian, mu=0.0, sigma=0.05 * (HIGH - LOW), indpb=1.0 / dim)
    tb.register("select", tools.selTournament, tournsize=3)
    popl = [tb.ind() for _ in range(pop)]
    t = time.process_time()
    for ind in popl:
        ind.fitness.values = tb.evaluate(ind)
    for _ in range(gens):
        elite = tools.selBest(popl, 2)
        kids = [tb.clone(i) for i in tb.select(popl, pop - 2)]
        for a, b in zip(kids[::2], kids[1::2]):
            if random.random() < 0.9:
                tb.mate(a, b)
        for k in kids:
            tb.mutate(k)
            k[:] = [min(HIGH, max(LOW, v)) for v in k]
            k.fitness.values = tb.evaluate(k)
        popl = [tb.clone(e) for e in elite] + kids
    return (time.process_time() - t) / gens, max(i.fitness.values[0] for i in popl)


def run_pygmo(pop: int, dim: int, gens: int, seed: int) -> tuple[float, float]:
    import pygmo as pg

    prob = pg.problem(pg.rastrigin(dim))
    algo = pg.algorithm(pg.sga(gen=gens, cr=0.9, eta_c=15.0, m=1.0 / dim, param_m=0.05,
                               param_s=3, crossover="sbx", mutation="gaussian", selection="tournament", seed=seed))
    p = pg.population(prob, pop, seed=seed)
    t = time.process_time()
    p = algo.evolve(p)
    return (time.process_time() - t) / gens, -float(p.champion_f[0])


def run_evotorch(pop: int, dim: int, gens: int, seed: int) -> tuple[float, float]:
    from evotorch import Problem
    from evotorch.algorithms import GeneticAlgorithm
    from evotorch.operators import GaussianMutation, SimulatedBinaryCrossOver

    torch.manual_seed(seed)
    prob = Problem("max", lambda x: -(10 * dim + (x * x - 10 * torch.cos(2 * math.pi * x)).sum(-1)),
                   solution_length=dim, initial_bounds=(LOW, HIGH), bounds=(LOW, HIGH), vectorized=True)
    ga = GeneticAlgorithm(prob, popsize=pop, operators=[
        SimulatedBinaryCrossOver(prob, tournament_size=3, eta=15.0),
        GaussianMutation(prob, stdev=0.05 * (HIGH - LOW), mutation_probability=1.0 / dim)])
    t = time.process_time()
    ga.run(gens)
    return (time.process_time() - t) / gens, float(ga.status["pop_best_eval"])


PEERS = {"deap": run_deap, "pygmo": run_pygmo, "evotorch": run_evotorch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="population 100, 100 generations, 1 round")
    ap.add_argument("--dim", type=int, default=30)
    ap.add_argument("--population", type=int, default=200)
    ap.add_argument("--generations", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (islands, then each peer)")
    ap.add_argument("--dtype", choices=sorted(DTYPE), default="float64", help="islands' dtype (peers: double)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)}")
    ap.add_argument("--out")
    args = ap.parse_args()
    pop, dim, gens, rounds = args.population, args.dim, args.generations, args.rounds
    if args.quick:
        pop, gens, rounds = 100, 100, 1
    peers = {name: PEERS[name] for name in args.peers.split(",") if name}
    times: dict[str, list[float]] = {"islands": []}
    bests: dict[str, list[float]] = {"islands": []}
    skipped: dict[str, str] = {}
    for r in range(rounds):
        secs, best = run_islands(pop, dim, gens, r, args.dtype)
        times["islands"].append(secs)
        bests["islands"].append(best)
        for name, fn in peers.items():
            if name in skipped:
                continue
            try:
                secs, best = fn(pop, dim, gens, r)
            except ImportError as e:
                skipped[name] = f"not installed ({e.name}); pip install -e '.[peers]'"
                continue
            times.setdefault(name, []).append(secs)
            bests.setdefault(name, []).append(best)
    med = statistics.median
    rows = []
    for name in ["islands", *peers]:
        if name in skipped:
            rows.append({"library": name, "skipped": skipped[name]})
            continue
        ratios = [t / o for t, o in zip(times[name], times["islands"])]
        rows.append({"library": name, "seconds_per_generation": med(times[name]), "ratio_to_islands": med(ratios),
                     "ratio_min": min(ratios), "ratio_max": max(ratios), "best": med(bests[name])})
    print(f"Rastrigin D={dim}, population {pop}, {gens} generations, one thread, CPU time, "
          f"{rounds} interleaved round(s), islands in {args.dtype}")
    for r in rows:
        if "skipped" in r:
            print(f"  {r['library']:9s} skipped: {r['skipped']}")
        else:
            print(f"  {r['library']:9s} {r['seconds_per_generation'] * 1e3:9.3f} ms/gen  "
                  f"x{r['ratio_to_islands']:7.2f} (rounds {r['ratio_min']:.2f}-{r['ratio_max']:.2f})  "
                  f"best {r['best']:9.3f}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"peers": rows, "population": pop, "dim": dim, "generations": gens, "rounds": rounds,
                       "dtype": args.dtype, "load_average": os.getloadavg()[0]}, fh, indent=2)


if __name__ == "__main__":
    main()
