#!/usr/bin/env python3
"""Engine overhead: one GA generation of the engine against a bare hand-written torch loop.

Both do the same operators (tournament, SBX, Gaussian mutation, clipping, elitism, Rastrigin
evaluation) on the same population in the same process, interleaved in rounds so machine
noise hits both alike. Reports the ratio engine/bare (target <= 1.25) and evaluations per
second.

Then the whole island loop (`islands.runs.evolve`: history, status heartbeat and checkpoint
I/O included, default checkpoint settings, migration off: bench_migration.py measures that)
against the bare loop at D=10/P=100 and D=100/P=500, interleaved in rounds, as
`loop_overhead_ratio` (median of the per-round ratios; min and max give the spread; target
<= 1.10). The machine may be shared: only the ratios of one round are comparable. Each
point also gives `step_ratio` (the island's own step and evaluate alone / bare) and
`bookkeeping_ratio` (island loop / step alone), and `_cpu` variants of all three from this
process's CPU time, which a loaded machine disturbs far less than the wall clock, with the
CPU ratio's spread over rounds. Each point also runs the same GA in numpy (`numpy_generation`):
the floor where torch's per-call dispatch outweighs the arithmetic of small tensors. The load
average before and after is printed. `--crowd N` runs N island loops at once as processes (20
on 2 cores: a crowded machine) and reports the share of their CPU spent on the per-generation
record and on heartbeats, with heartbeats paced as they are and by the wall clock alone.

    python scripts/bench_engine.py [--dim 100] [--population 500] [--rounds 7] [--crowd 20] [--out FILE]
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
import numpy as np  # noqa: E402
import torch  # noqa: E402

from islands.algorithms import make_algorithm  # noqa: E402
from islands.algorithms.ga import GeneticAlgorithm  # noqa: E402
from islands.config import GAConfig, MigrationConfig, RunConfig  # noqa: E402
from islands.island import limit_torch_threads  # noqa: E402
from islands.operators import SPARSE_MIN, bernoulli_positions  # noqa: E402
from islands.problems import make_problem  # noqa: E402
from islands.runs import evolve  # noqa: E402


def bare_generation(x: torch.Tensor, f: torch.Tensor, g: torch.Generator, lo: float, hi: float,
                    eta: float, sigma: float, rate: float, elite: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same GA generation written inline, with no engine around it (the same draws as
    `islands.operators`: spread factor in float32, both coins from one draw and, on large
    arrays, noise only for the mutated genes, whose positions come from the same geometric gaps)."""
    p, d = x.shape
    kids = p - elite
    pairs = (kids + 1) // 2
    entrants = torch.randint(p, (2 * pairs, 3), generator=g)
    winners = entrants.gather(1, f[entrants].argmax(1, keepdim=True)).squeeze(1)
    a, b = x[winners[:pairs]], x[winners[pairs:]]
    u = torch.rand(a.shape, generator=g)
    beta = torch.where(u <= 0.5, 2 * u, 0.5 / (1 - u).clamp_min(1e-12)).pow_(1.0 / (eta + 1.0))
    coins = torch.rand(a.shape, generator=g)
    beta = torch.where(coins < 0.5, beta, 1.0)
    spread = torch.where(torch.frac(2 * coins) < 0.5, -beta, beta).to(x.dtype) * (0.5 * (a - b))
    mid = 0.5 * (a + b)
    mate = torch.rand((pairs, 1), generator=g) < 0.9
    y = torch.cat([torch.where(mate, mid + spread, a), torch.where(mate, mid - spread, b)])[:kids]
    if y.numel() < SPARSE_MIN:
        hit = torch.rand(y.shape, generator=g) < rate
        y = y + hit * torch.randn(y.shape, generator=g, dtype=x.dtype) * (sigma * (hi - lo))
    else:
        pos = bernoulli_positions(y.numel(), rate, g)
        y.view(-1).index_add_(0, pos, torch.randn(pos.shape, generator=g, dtype=x.dtype) * (sigma * (hi - lo)))
    y = y.clamp(lo, hi)
    x = torch.cat([x[torch.topk(f, elite).indices], y])
    f = -(10 * d + (x * x - 10 * torch.cos(2 * math.pi * x)).sum(1))
    return x, f


def numpy_generation(x: np.ndarray, f: np.ndarray, rng: np.random.Generator, lo: float, hi: float,
                     eta: float, sigma: float, rate: float, elite: int) -> tuple[np.ndarray, np.ndarray]:
    """The same GA generation in numpy: the floor for small populations, where each torch
    call's dispatch (a few microseconds) outweighs its arithmetic."""
    p, d = x.shape
    kids = p - elite
    pairs = (kids + 1) // 2
    entrants = rng.integers(p, size=(2 * pairs, 3))
    winners = entrants[np.arange(2 * pairs), f[entrants].argmax(1)]
    a, b = x[winners[:pairs]], x[winners[pairs:]]
    u = rng.random(a.shape, dtype=np.float32)
    beta = np.where(u <= 0.5, 2 * u, 0.5 / np.maximum(1 - u, 1e-12)) ** np.float32(1.0 / (eta + 1.0))
    coins = rng.random(a.shape, dtype=np.float32)
    beta = np.where(coins < 0.5, beta, 1.0)
    spread = np.where(np.modf(2 * coins)[0] < 0.5, -beta, beta) * (0.5 * (a - b))
    mid = 0.5 * (a + b)
    mate = rng.random((pairs, 1)) < 0.9
    y = np.concatenate([np.where(mate, mid + spread, a), np.where(mate, mid - spread, b)])[:kids]
    flat = y.reshape(-1)
    if flat.size < SPARSE_MIN:
        hit = np.flatnonzero(rng.random(flat.size) < rate)
    else:  # as `bernoulli_positions`: geometric gaps (1.5x the expected draws: a floor need not be exact)
        gaps = np.floor(np.log1p(-rng.random(int(flat.size * rate * 1.5) + 16)) / math.log1p(-rate)) + 1
        hit = np.cumsum(gaps.astype(np.int64)) - 1
        hit = hit[hit < flat.size]
    flat[hit] += rng.standard_normal(hit.size) * (sigma * (hi - lo))
    np.clip(y, lo, hi, out=y)
    x = np.concatenate([x[np.argpartition(-f, elite)[:elite]], y]).astype(x.dtype, copy=False)
    f = -(10 * d + (x * x - 10 * np.cos(2 * math.pi * x)).sum(1))
    return x, f


def measure(dim: int, population: int, rounds: int, gens: int) -> dict:
    limit_torch_threads()
    problem = make_problem("rastrigin", dim)
    cfg = GAConfig(mutation="fixed")  # the bare loop's operators, in its float32
    algo = GeneticAlgorithm(problem, cfg, dtype=torch.float32)
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


def _cfg(dim: int, population: int, generations: int, migrate_every: int = 0) -> RunConfig:
    # target 1.0: fitness is -f <= 0, so no run stops early at Rastrigin's solved threshold
    # The bare loop does the classic fixed-step GA in float32: the island runs the same.
    return RunConfig(problem="rastrigin", dim=dim, population=population, generations=generations,
                     target=1.0, migration=MigrationConfig(every=migrate_every),
                     ga=GAConfig(mutation="fixed"), dtype="float32")


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # cpu: this process's CPU time, robust to load


def step_loop(dim: int, population: int, generations: int) -> dict[str, float]:
    """Seconds per generation of the island's own algorithm, step and evaluate only (no
    history, status, checkpoint): what the island loop would cost with free bookkeeping."""
    cfg = _cfg(dim, population, generations)
    problem = make_problem(cfg.problem, cfg.dim)
    algo = make_algorithm(cfg, problem, "cpu")
    g = torch.Generator()
    g.manual_seed(2)
    state = algo.evaluate(algo.init(population, 0, g))
    t = {k: c() for k, c in CLOCKS.items()}
    for i in range(generations):
        state = algo.evaluate(algo.step(state, i, g))
    return {k: (c() - t[k]) / generations for k, c in CLOCKS.items()}


def island_loop(dim: int, population: int, generations: int, migrate_every: int = 0) -> float:
    """Seconds per generation of a whole island run (start-up included: a real run pays it)."""
    return island_loop_clocks(dim, population, generations, migrate_every)["wall"]


def island_loop_clocks(dim: int, population: int, generations: int, migrate_every: int = 0) -> dict[str, float]:
    """`island_loop` by the wall clock and by this process's CPU time."""
    with tempfile.TemporaryDirectory() as root:
        # target 1.0: fitness is -f <= 0, so no run stops early at Rastrigin's solved threshold
        # The bare loop does the classic fixed-step GA in float32: the island runs the same.
        cfg = _cfg(dim, population, generations, migrate_every)
        t = {k: c() for k, c in CLOCKS.items()}
        result = evolve("island-00", root, cfg, log=lambda _m: None)
        spent = {k: (c() - t[k]) / generations for k, c in CLOCKS.items()}
        assert result.generation == generations, result
        return spent


def bare_loop(dim: int, population: int, generations: int) -> float:
    """Seconds per generation of the bare torch loop on the same problem."""
    return bare_loop_clocks(dim, population, generations)["wall"]


def _clocked(generation, x, f, rng, dim: int, generations: int) -> dict[str, float]:
    """Seconds per generation of `generation` (the bare torch or numpy one) from (x, f)."""
    lower, upper, cfg = -5.12, 5.12, GAConfig()  # Rastrigin's box
    t = {k: c() for k, c in CLOCKS.items()}
    for _ in range(generations):
        x, f = generation(x, f, rng, lower, upper, cfg.sbx_eta, cfg.mutation_sigma, 1.0 / dim, cfg.elitism)
    return {k: (c() - t[k]) / generations for k, c in CLOCKS.items()}


def bare_loop_clocks(dim: int, population: int, generations: int) -> dict[str, float]:
    """`bare_loop` by the wall clock and by this process's CPU time."""
    g = torch.Generator()
    g.manual_seed(1)
    x = torch.rand((population, dim), generator=g) * 10.24 - 5.12
    f = -(10 * dim + (x * x - 10 * torch.cos(2 * math.pi * x)).sum(1))
    return _clocked(bare_generation, x, f, g, dim, generations)


def numpy_loop_clocks(dim: int, population: int, generations: int) -> dict[str, float]:
    """Seconds per generation of the numpy version of the bare loop (float32, as the others)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-5.12, 5.12, (population, dim)).astype(np.float32)
    f = -(10 * dim + (x * x - 10 * np.cos(2 * math.pi * x)).sum(1))
    return _clocked(numpy_generation, x, f, rng, dim, generations)


def loop_overhead(dim: int, population: int, generations: int, rounds: int, migrate_every: int = 0) -> dict:
    """The island loop against the bare loop, in interleaved rounds (round 0 warms up).

    Also the island's own step and evaluate alone (`step_loop`), which splits the overhead:
    step_ratio = step alone / bare (the engine's per-op cost, large at small sizes) and
    bookkeeping_ratio = island loop / step alone (history, status, checkpoints, start-up:
    what the island loop adds). The `_cpu` figures use this process's CPU time instead of
    the wall clock: on a loaded machine they are the steadier ones (but leave out fsync waits).
    """
    ratios, loops, bares = [], [], []
    cpu: dict[str, list[float]] = {"loop": [], "step": [], "bookkeeping": [], "numpy": [], "loop_numpy": []}
    steps = []
    for r in range(rounds + 1):
        loop = island_loop_clocks(dim, population, generations, migrate_every)
        bare = bare_loop_clocks(dim, population, generations)
        alone = step_loop(dim, population, generations)
        floor = numpy_loop_clocks(dim, population, generations)
        if r:
            loops.append(loop["wall"])
            bares.append(bare["wall"])
            steps.append(alone["wall"])
            ratios.append(loop["wall"] / bare["wall"])
            cpu["loop"].append(loop["cpu"] / bare["cpu"])
            cpu["step"].append(alone["cpu"] / bare["cpu"])
            cpu["bookkeeping"].append(loop["cpu"] / alone["cpu"])
            cpu["numpy"].append(bare["cpu"] / floor["cpu"])
            cpu["loop_numpy"].append(loop["cpu"] / floor["cpu"])
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    return {
        "step_ratio": med([s / b for s, b in zip(steps, bares)]),
        "bookkeeping_ratio": med([lo / s for lo, s in zip(loops, steps)]),
        "loop_overhead_ratio_cpu": med(cpu["loop"]),
        "loop_overhead_ratio_cpu_min": min(cpu["loop"]),
        "loop_overhead_ratio_cpu_max": max(cpu["loop"]),
        "step_ratio_cpu": med(cpu["step"]),
        "bookkeeping_ratio_cpu": med(cpu["bookkeeping"]),
        "bare_over_numpy_cpu": med(cpu["numpy"]),  # the torch loop against the numpy floor
        "loop_over_numpy_cpu": med(cpu["loop_numpy"]),
        "dim": dim, "population": population, "generations": generations, "rounds": rounds,
        "migrate_every": migrate_every,
        "loop_overhead_ratio": med(ratios),
        "loop_overhead_ratio_min": min(ratios),
        "loop_overhead_ratio_max": max(ratios),
        "island_loop_evals_per_sec": population / med(loops),
        "bare_loop_evals_per_sec": population / med(bares),
    }


def _crowd_island(args: tuple[int, int, int, int, float]) -> dict[str, float]:
    """One island of a crowd (a forked process): its loop's CPU, and the part of it spent on
    the per-generation record (figures, history line, heartbeat when due) and on heartbeats."""
    index, dim, population, generations, status_cpu_s = args
    import islands.island as island_mod
    from islands import recorders
    recorders.STATUS_CPU_S = status_cpu_s
    spent = {"record": 0.0, "heartbeat": 0.0, "beats": 0}

    def timed(fn, key):
        def wrapper(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.process_time() - t
                if key == "heartbeat":
                    spent["beats"] += 1
        return wrapper

    island_mod._Loop._record = timed(island_mod._Loop._record, "record")
    recorders.Heartbeat.write = timed(recorders.Heartbeat.write, "heartbeat")
    with tempfile.TemporaryDirectory() as root:
        t = time.process_time()
        evolve(f"island-{index:02d}", root, _cfg(dim, population, generations), log=lambda _m: None)
        spent["total"] = time.process_time() - t
    return spent


def crowd(islands: int, dim: int, population: int, generations: int, status_cpu_s: float) -> dict:
    """`islands` island loops at once as forked processes (more than the cores: a crowded
    machine), each in its own run directory: the median share of an island's CPU spent on
    the per-generation record and on heartbeats (which the record includes)."""
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(islands) as pool:
        rows = pool.map(_crowd_island, [(i, dim, population, generations, status_cpu_s) for i in range(islands)])
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    return {"islands": islands, "cores": len(os.sched_getaffinity(0)), "dim": dim, "population": population,
            "generations": generations, "status_cpu_s": status_cpu_s,
            "record_share": med([r["record"] / r["total"] for r in rows]),
            "heartbeat_share": med([r["heartbeat"] / r["total"] for r in rows]),
            "beats_per_cpu_s": med([r["beats"] / r["total"] for r in rows]),
            "island_cpu_s": med([r["total"] for r in rows])}


LOOP_SIZES = ((10, 100, 2000), (100, 500, 200))  # (dim, population, generations): ~1 s per run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--population", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--gens", type=int, default=50, help="generations per timed round")
    ap.add_argument("--loop-rounds", type=int, default=5, help="interleaved rounds of the island-loop comparison")
    ap.add_argument("--loop-scale", type=float, default=1.0, help="scale the island-loop runs' generations")
    ap.add_argument("--loop-migrate-every", type=int, default=0, help="migration in the island loop (0: off)")
    ap.add_argument("--crowd", type=int, default=0, metavar="N",
                    help="also run N island loops at once (e.g. 20 on 2 cores): bookkeeping's share of their CPU, "
                         "heartbeats paced by CPU and, side by side, by the wall clock alone")
    ap.add_argument("--crowd-generations", type=int, default=4000)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    res = measure(args.dim, args.population, args.rounds, args.gens)
    res["loop"] = [loop_overhead(d, p, max(10, int(g * args.loop_scale)), args.loop_rounds, args.loop_migrate_every)
                   for d, p, g in LOOP_SIZES]
    big = res["loop"][-1]
    res["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # 1-min, before and after
    res["loop_overhead_ratio"] = max(point["loop_overhead_ratio"] for point in res["loop"])  # the worse one
    res["island_loop_evals_per_sec"] = big["island_loop_evals_per_sec"]
    print(f"Rastrigin D={res['dim']} P={res['population']}, one thread")
    print(f"  engine generation   {res['engine_generation_s'] * 1e3:8.3f} ms  ({res['engine_evals_per_sec']:,.0f} evals/s)")
    print(f"  bare torch loop     {res['bare_generation_s'] * 1e3:8.3f} ms  ({res['bare_evals_per_sec']:,.0f} evals/s)")
    print(f"  engine_overhead_ratio {res['engine_overhead_ratio']:.3f}  (target <= 1.25)")
    print("Whole island loop (history, status, checkpoints) against the bare loop, interleaved rounds:")
    for p in res["loop"]:
        print(f"  D={p['dim']:<4} P={p['population']:<4} loop_overhead_ratio {p['loop_overhead_ratio']:.3f} "
              f"(min {p['loop_overhead_ratio_min']:.3f}, max {p['loop_overhead_ratio_max']:.3f}, {p['rounds']} rounds; "
              f"{p['island_loop_evals_per_sec']:,.0f} vs {p['bare_loop_evals_per_sec']:,.0f} evals/s)  (target <= 1.10)")
        print(f"      = step alone/bare {p['step_ratio']:.3f} x loop/step alone {p['bookkeeping_ratio']:.3f};  "
              f"by CPU time: loop/bare {p['loop_overhead_ratio_cpu']:.3f} = {p['step_ratio_cpu']:.3f} x "
              f"{p['bookkeeping_ratio_cpu']:.3f} (loop/bare over rounds {p['loop_overhead_ratio_cpu_min']:.3f}"
              f"-{p['loop_overhead_ratio_cpu_max']:.3f})")
        print(f"      numpy floor: bare torch/numpy {p['bare_over_numpy_cpu']:.3f}, island loop/numpy "
              f"{p['loop_over_numpy_cpu']:.3f} (CPU)")
    if args.crowd:
        from islands.recorders import STATUS_CPU_S
        res["crowd"] = [crowd(args.crowd, 10, 100, args.crowd_generations, cpu_s) for cpu_s in (0.0, STATUS_CPU_S)]
        print(f"A crowd: {args.crowd} island loops at once (D=10, P=100, {args.crowd_generations} generations) "
              f"on {res['crowd'][0]['cores']} cores, medians over islands:")
        for c in res["crowd"]:
            how = "the wall clock only (0.5 s)" if c["status_cpu_s"] == 0 else \
                f"the wall clock and, crowded, {c['status_cpu_s']} s of CPU"
            print(f"  heartbeats paced by {how}: record {c['record_share']:.1%} of island CPU, heartbeats "
                  f"{c['heartbeat_share']:.1%} ({c['beats_per_cpu_s']:.1f} per CPU second)  (target <= 3%)")
    print(f"  load average (1 min) {res['load_average'][0]} before, {res['load_average'][1]} after")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
