#!/usr/bin/env python3
"""EvoTorch's side of scripts/bench_control.py, run in EvoTorch's own virtual environment.

`pip install evotorch` pulls in ray, so EvoTorch lives in a separate venv (bench_control.py's
`--evotorch-python`); this file imports nothing of islands. One run: GymNE on a gymnasium task
with the network every method of the benchmark uses (obs -> 8 tanh -> actions), EvoTorch's
observation normalisation on, its actors off (one process: the benchmark gives every method
one core), until the environment-step budget is spent; then the final centre on the unseen
episodes the benchmark names. Settings (EvoTorch's own, not tuned here):

- pgpe: the PGPE settings of EvoTorch's README MuJoCo example (popsize 200, centre learning
  rate 0.01125, stdev learning rate 0.1, ClipUp max speed 0.015, radius 0.27), without its
  adaptive population (`num_interactions`/`popsize_max`), which at this budget would leave a
  handful of generations.
- snes: EvoTorch's SNES defaults (popsize 4 + 3 ln n, its learning rates) with the same radius.

    python control_evotorch.py TASK --method pgpe|snes --steps N --horizon T --seed S
        --eval-seeds A,B,... --core C --out FILE.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("task")
    ap.add_argument("--method", choices=("pgpe", "snes"), required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--horizon", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-seeds", required=True)
    ap.add_argument("--core", type=int, default=None)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.core is not None:
        os.sched_setaffinity(0, {a.core})
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import gymnasium
    import numpy as np
    import torch
    from evotorch.algorithms import PGPE, SNES
    from evotorch.neuroevolution import GymNE

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    problem = GymNE(env=a.task, network="Linear(obs_length, 8) >> Tanh() >> Linear(8, act_length)",
                    observation_normalization=True, episode_length=a.horizon, num_actors=0)
    if a.method == "pgpe":
        searcher = PGPE(problem, popsize=200, center_learning_rate=0.01125, stdev_learning_rate=0.1,
                        optimizer_config={"max_speed": 0.015}, radius_init=0.27)
    else:
        searcher = SNES(problem, radius_init=0.27)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    curve, best, generations = [], -float("inf"), 0
    while problem.interaction_count < a.steps:
        searcher.step()
        generations += 1
        best = max(best, float(searcher.status["pop_best_eval"]))
        curve.append([int(problem.interaction_count), best])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    policy = problem.to_policy(searcher.status["center"])
    env = gymnasium.make(a.task, max_episode_steps=a.horizon)
    returns = []
    for s in (int(x) for x in a.eval_seeds.split(",")):
        obs, _ = env.reset(seed=s)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                act = policy(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            obs, r, term, trunc, _ = env.step(np.clip(act, env.action_space.low, env.action_space.high))
            total, done = total + float(r), term or trunc
        returns.append(total)
    out = {"method": f"evotorch:{a.method}", "task": a.task, "seed": a.seed, "steps": int(problem.interaction_count),
           "generations": generations, "wall_s": wall, "cpu_s": cpu, "cpu_per_generation_s": cpu / max(generations, 1),
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "final_mean_return": float(np.mean(returns)), "final_returns": returns, "curve": curve}
    with open(a.out, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
