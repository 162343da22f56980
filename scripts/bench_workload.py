#!/usr/bin/env python3
"""The seeds' workload: NEAT and pure MLPs at population 500 on cart-pole, against peers.

Rows, each a fresh child process on one thread (so its memory is its own), run in turn in
every round and summarised by medians over the rounds:

- islands neat: NEAT (islands.algorithms.neat) on the built-in `cartpole` (10 new noisy
  starts per generation, up to 500 steps), population 500;
- neat-python: its NEAT (feed-forward, minimal fully connected start, the settings of
  scripts/bench_neat.py) on the same episodes: the same starts and observation noise each
  generation, the same physics written out in Python, one genome at a time (its way);
- islands pure / islands es: the GA (`--algorithm pure`) and SNES on the cart-pole MLP
  (4-4-1, 25 weights), population 500;
- EvoTorch (pure with its ES) is not measured: `pip install evotorch` pulls in ray, a
  cluster framework (checked with `pip install --dry-run evotorch`: evotorch 0.6.1 wants
  ray 2.60, pandas, protobuf).

Figures per row: ms of CPU time per generation (evaluate + breed, from a fresh population;
CPU time rather than wall time so that other work on a shared machine does not count: with
one thread the two agree on an idle core). The cost grows as networks balance longer, so
the network-steps simulated per generation are reported beside it and "us per network-step"
divides by them. Memory: the child's peak RSS (MiB), what one island process of that kind needs.

    python scripts/bench_workload.py [--quick] [--rounds 3] [--generations 10] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, ROOT)
from islands.threads import limit_env  # noqa: E402
from neat_python_config import neat_python_config_object  # noqa: E402

limit_env()  # one thread, as in an island, before torch loads

ROWS = ("islands neat", "neat-python", "islands pure", "islands es")
NOT_MEASURED = {"evotorch es": "pip install evotorch pulls in ray (a cluster framework): not installed"}
POPULATION = 500


def islands_row(row: str, generations: int, seed: int) -> dict:
    import torch

    from islands import figures
    from islands.algorithms import make_algorithm
    from islands.config import RunConfig, episode_seed, island_seed
    from islands.problems import make_problem

    torch.set_num_threads(1)
    algorithm = {"islands neat": "neat", "islands pure": "pure", "islands es": "es"}[row]
    cfg = RunConfig(problem="cartpole", algorithm=algorithm, population=POPULATION, seed=seed)
    problem = make_problem("cartpole")
    algo = make_algorithm(cfg, problem)
    gen = torch.Generator()
    key = island_seed(seed, "island-00")
    gen.manual_seed(key)
    problem.reseed(episode_seed(key, 0))
    state = algo.evaluate(algo.init(POPULATION, 0, gen))
    episodes = problem.task.episodes
    times, steps = [], []
    for g in range(generations):
        t = time.process_time()
        problem.reseed(episode_seed(key, g + 1))
        state = algo.evaluate(algo.step(state, g, gen))
        times.append(time.process_time() - t)
        fitness = state.fitness if algorithm == "neat" else algo.population(state).fitness.numpy()
        steps.append(float(fitness.sum()) * episodes)
    return {"seconds": times, "steps": steps, "best": float(figures.stats(algo.population(state)).best)}




def write_episodes(path: str, generations: int, seed: int) -> None:
    """The starts and noise an island plays at generations 0..G (CartPole.evaluate's draws),
    saved for the neat-python child, which then never imports torch (its memory is its own)."""
    import numpy as np
    import torch

    from islands.config import episode_seed, island_seed
    from islands.problems.control import CartPole

    task, key = CartPole(), island_seed(seed, "island-00")
    starts, noise = [], []
    for g in range(generations + 1):
        s = episode_seed(key, g)
        gen = torch.Generator().manual_seed(s ^ 0x5EED)
        draw = torch.randn((task.max_steps, task.episodes, 4), generator=gen, dtype=torch.float64) * task.noise
        starts.append(task.starts(torch.device("cpu"), s).numpy())
        noise.append(draw.permute(1, 0, 2).numpy())
    np.savez(path, starts=np.stack(starts), noise=np.stack(noise), max_steps=task.max_steps)


def neat_python_row(generations: int, seed: int, episodes_path: str) -> dict:
    import neat  # type: ignore[import-not-found]
    import numpy as np

    with np.load(episodes_path) as z:
        all_starts, all_noise, max_steps = z["starts"].tolist(), z["noise"].tolist(), int(z["max_steps"])
    scale = (1 / 2.4, 1 / 2.0, 1 / (12 * 2 * math.pi / 360), 1 / 2.0)
    limit = 12 * 2 * math.pi / 360
    counter = {"g": 0}
    times, steps = [], []

    def play(net, start: list, noise: list) -> int:
        x, xd, th, thd = start
        for t in range(max_steps):
            obs = [v * c + n for v, c, n in zip((x, xd, th, thd), scale, noise[t])]
            force = 10.0 if net.activate(obs)[0] > 0.5 else -10.0
            sin, cos = math.sin(th), math.cos(th)
            temp = (force + 0.05 * thd * thd * sin) / 1.1
            thdd = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos * cos / 1.1))
            xdd = temp - 0.05 * thdd * cos / 1.1
            x, xd, th, thd = x + 0.02 * xd, xd + 0.02 * xdd, th + 0.02 * thd, thd + 0.02 * thdd
            if abs(x) > 2.4 or abs(th) > limit:
                return t
        return max_steps

    def eval_genomes(genomes, config) -> None:
        starts, noise = all_starts[counter["g"]], all_noise[counter["g"]]
        total = 0
        for _gid, g in genomes:
            net = neat.nn.FeedForwardNetwork.create(g, config)
            balanced = [play(net, s, n) for s, n in zip(starts, noise)]
            total += sum(balanced)
            g.fitness = sum(balanced) / len(balanced)
        counter["g"] += 1
        steps.append(float(total))
        times.append(time.process_time())

    pop = neat.Population(neat_python_config_object(POPULATION, inputs=4, threshold=1e9), seed=seed)
    pop.run(eval_genomes, generations + 1)  # generation 0, then `generations` bred ones, as for islands
    # Time of generation g: from the end of g-1's evaluation to the end of g's (breed + evaluate).
    return {"seconds": [b - a for a, b in zip(times, times[1:])], "steps": steps[1:],
            "best": float(max(g.fitness for g in pop.population.values() if g.fitness is not None))}


def child(row: str, generations: int, seed: int, episodes_path: str | None) -> None:
    if row == "neat-python":
        out = neat_python_row(generations, seed, episodes_path or "")
    else:
        out = islands_row(row, generations, seed)
    out["max_rss_mib"] = peak_rss_mib()
    print(json.dumps(out))


def peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM, which starts afresh at exec (getrusage's ru_maxrss
    does not: a child inherits its parent's peak through fork and exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(row: str, generations: int, seed: int) -> dict | str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryDirectory(prefix="bench-workload-") as tmp:
        extra = []
        if row == "neat-python":
            extra = ["--episodes", os.path.join(tmp, "episodes.npz")]
            write_episodes(extra[1], generations, seed)
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", row, "--generations",
                               str(generations), "--seed", str(seed), *extra], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"failed: {last}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(r: dict) -> dict:
    ms = statistics.median(r["seconds"]) * 1000
    per_step = sum(r["seconds"]) / max(1.0, sum(r["steps"])) * 1e6
    return {"ms_per_generation": ms, "us_per_network_step": per_step,
            "steps_per_generation": statistics.median(r["steps"]), "max_rss_mib": r["max_rss_mib"], "best": r["best"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round of 3 generations: a smoke run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--episodes", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.generations, args.seed, args.episodes)
        return 0
    if args.quick:
        args.rounds, args.generations = 1, 3
    rows = [r for r in args.rows.split(",") if r]
    print(f"cart-pole, population {POPULATION}, {args.generations} generations from a fresh population, "
          f"{args.rounds} rounds, one thread per child process")
    results: dict[str, list[dict]] = {r: [] for r in rows}
    failures: dict[str, str] = {}
    for k in range(args.rounds):
        for row in rows:
            r = run_child(row, args.generations, seed=k)
            if isinstance(r, str):
                failures[row] = r
                print(f"  round {k} {row:14s} {r}", flush=True)
                continue
            s = summary(r)
            results[row].append(s)
            print(f"  round {k} {row:14s} {s['ms_per_generation']:9.1f} ms/generation "
                  f"{s['us_per_network_step']:7.3f} us/network-step  {s['steps_per_generation']:10.0f} steps/generation "
                  f"peak RSS {s['max_rss_mib']:6.0f} MiB  best {s['best']:.1f}", flush=True)
    table = []
    print("\n| row | ms/generation | us per network-step | steps/generation | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for row in rows:
        if not results[row]:
            print(f"| {row} | {failures.get(row, 'no result')} | | | |")
            continue
        med = {k: statistics.median(s[k] for s in results[row]) for k in results[row][0]}
        table.append({"row": row, **med, "rounds": results[row]})
        print(f"| {row} | {med['ms_per_generation']:.1f} | {med['us_per_network_step']:.3f} | "
              f"{med['steps_per_generation']:.0f} | {med['max_rss_mib']:.0f} |")
    for row, why in NOT_MEASURED.items():
        print(f"| {row} | not measured: {why} | | | |")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"benchmark": "workload", "population": POPULATION, "generations": args.generations,
                       "rounds": args.rounds, "rows": table, "not_measured": NOT_MEASURED,
                       "failures": failures}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
