#!/usr/bin/env python3
"""Neuroevolution on real physics: islands against EvoTorch on MuJoCo, at equal environment steps.

Every method evolves the same network (observation -> 8 tanh -> action) on the same task for
the same number of environment steps on ONE core (its processes pinned to it: with `--jobs 2`
two methods run at a time, one per core), and its final policy is scored on 100 unseen
episodes (the seeds `islands evaluate` uses, from 2^31 up). Methods:

- islands:ALGO:N[:OBS_NORM][:pop=P] - N islands of `ALGO`, each with the algorithm's default
  population (es, pgpe and sep-cmaes: 4 + 3 ln D, about 20, on these tasks) or P (the GA's
  default 100 is cut to a quarter, 25, so its islands run generations at the others' pace) (es = SNES, pgpe = the es algorithm's PGPE variant,
  sep-cmaes, pure = the GA), each an `islands.runs.evolve` process on one run directory with
  the default migration, each stopped once it has taken its 1/N of the steps. The final policy is
  the run's champion (best training return), with the observation transform it was scored with.
  Observation normalisation: the gym task's default for MuJoCo ("run": statistics shared by the
  islands through the run directory), or OBS_NORM (islands:es:4:island keeps each island's own:
  the comparison of the two designs).
- evotorch:pgpe / evotorch:snes - EvoTorch's GymNE in its own venv (`--evotorch-python`, see
  scripts/control_evotorch.py for its settings); the final policy is its centre, as EvoTorch's
  docs use it.

One training episode per evaluation, episodes of `--horizon` steps (the budget here, 2 cores
for everything, would give 1,000-step episodes a handful of generations); the unseen episodes
have the same horizon. Reported per (task, method): the median over seeds of the final mean
return, every run's row, steps used, wall and CPU, CPU per generation, peak memory (summed over
an archipelago's processes), and the best training return against environment steps (`--plot`).

`--lander` runs instead NEAT on LunarLander-v3, islands against neat-python (scripts/
control_lander.py says how): environment steps until the champion solves it (mean >= 200 over
100 unseen episodes), or the best such mean when the budget runs out.

`--floor` measures instead what the islands' evaluation costs per environment step against
stepping the same environments alone with fixed actions (the physical floor), CPU time,
interleaved rounds.

    python scripts/bench_control.py [--tasks HalfCheetah-v5,Hopper-v5] [--steps 700000]
        [--horizon 200] [--seeds 0,1,2] [--methods islands:es:1,islands:es:4,...,evotorch:pgpe]
        [--jobs 2] [--evotorch-python /path/to/venv/bin/python] [--out FILE] [--plot FILE.png]
    python scripts/bench_control.py --lander [--steps 3000000] [--seeds 0,1,2] [--episodes 3]
    python scripts/bench_control.py --floor [--tasks ...] [--population 20] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from islands.threads import limit_env  # noqa: E402

limit_env()  # one thread per process, as an island has

DEFAULT_METHODS = ("islands:es:1,islands:es:4,islands:es:4:island,islands:pgpe:4,islands:sep-cmaes:4,"
                   "islands:pure:4:pop=25,evotorch:pgpe,evotorch:snes")
EVAL_EPISODES = 100


# -- one islands run (a worker process) --------------------------------------------------------
def _island(island: str, root: str, cfg_json: str, budget: int, core: int, out: str) -> None:
    """One island until it has taken `budget` environment steps; its curve and memory to `out`."""
    os.sched_setaffinity(0, {core})
    from islands.config import RunConfig
    from islands.problems.gym import GymTask
    from islands.runs import evolve
    from islands.stopping import StopFlag

    tasks: list = []
    made = GymTask.__init__

    def init(self, *a, **k):  # the harness counts the steps of the task the island builds
        made(self, *a, **k)
        tasks.append(self)

    GymTask.__init__ = init

    class StepBudget(StopFlag):
        def __bool__(self) -> bool:
            return self.requested or sum(t.steps for t in tasks) >= budget

    curve = []
    started = time.perf_counter()

    def on_generation(_island, line):
        curve.append([time.perf_counter() - started, sum(t.steps for t in tasks), line.best_ever])

    result = evolve(island, root, RunConfig.from_dict(json.loads(cfg_json)), stop=StepBudget(),
                    log=lambda _m: None, on_generation=on_generation)
    with open(out, "w") as f:
        json.dump({"curve": curve, "generations": result.generation, "steps": sum(t.steps for t in tasks),
                   "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, f)


def islands_run(task: str, algo: str, n: int, steps: int, horizon: int, seed: int, core: int,
                obs_norm: str = "auto", population: int | None = None) -> dict:
    from islands.config import MigrationConfig, RunConfig
    from islands.evaluate import generalisation

    algorithm, params = ("es", {"variant": "pgpe"}) if algo == "pgpe" else (algo, {})
    cfg = RunConfig(problem=f"gym:{task}", algorithm=algorithm, algorithm_params=params, seed=seed, population=population,
                    generations=10**7, problem_params={"episodes": 1, "max_steps": horizon, "solved_at": None, "obs_norm": obs_norm},
                    migration=MigrationConfig() if n > 1 else MigrationConfig(every=0))
    with tempfile.TemporaryDirectory(prefix="bench_control_") as tmp:
        root = os.path.join(tmp, "run")
        wall0 = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        ctx = multiprocessing.get_context("fork")
        procs, outs = [], []
        for i in range(n):
            out = os.path.join(tmp, f"island-{i:02d}.json")
            p = ctx.Process(target=_island, args=(f"island-{i:02d}", root, json.dumps(cfg.to_dict()),
                                                  steps // n, core, out))
            p.start()
            procs.append(p)
            outs.append(out)
        for p in procs:
            p.join()
            if p.exitcode != 0:
                raise RuntimeError(f"an island of {algo} x{n} on {task} failed (exit {p.exitcode})")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter() - wall0
        parts = [json.load(open(o)) for o in outs]
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        gen = generalisation(root, episodes=EVAL_EPISODES)
    generations = sum(p["generations"] for p in parts)
    name = f"islands:{algo}:{n}" + ("" if obs_norm == "auto" else f":{obs_norm}") + (f":pop={population}" if population else "")
    return {"method": name, "task": task, "seed": seed, "steps": sum(p["steps"] for p in parts),
            "generations": generations, "wall_s": wall, "cpu_s": cpu, "cpu_per_generation_s": cpu / max(generations, 1),
            "peak_rss_mib": sum(p["peak_rss_mib"] for p in parts), "final_mean_return": gen.mean,
            "final_returns": list(gen.returns), "curve": _merged([p["curve"] for p in parts])}


def _merged(curves: list[list]) -> list[list]:
    """The archipelago's (total steps, best so far) at each island's generation, in time order."""
    events = sorted((t, i, s, b) for i, c in enumerate(curves) for t, s, b in c)
    steps, best, out = [0] * len(curves), -float("inf"), []
    for _t, i, s, b in events:
        steps[i] = s
        best = max(best, b if b is not None else -float("inf"))
        out.append([sum(steps), best])
    return out


# -- the floor ---------------------------------------------------------------------------------
def floor(tasks: list[str], population: int, horizon: int, rounds: int) -> list[dict]:
    """CPU per environment step: the islands' evaluation of a population against the same
    environments stepped alone with fixed actions, interleaved rounds."""
    import gymnasium
    import numpy as np
    import torch

    from islands.nets import MLP
    from islands.problems import make_problem

    rows = []
    for task in tasks:
        prob = make_problem(f"gym:{task}", 10, episodes=1, max_steps=horizon)
        genomes = torch.randn(population, prob.dim, generator=torch.Generator().manual_seed(0)) * 0.05
        envs = [gymnasium.make(f"{task}", max_episode_steps=horizon) for _ in range(population)]
        rng = np.random.default_rng(0)
        space = envs[0].action_space
        actions = rng.integers(0, space.n, size=(horizon, population)) if hasattr(space, "n") else \
            rng.uniform(-0.3, 0.3, size=(horizon, population) + space.shape).astype(np.float32)
        ours, alone = [], []
        for r in range(rounds):
            prob.reseed(r)
            if prob.task.obs_norm is not None:  # observed as in a training evaluation
                prob.task.obs_norm.collecting = True
            before, t = prob.task.steps, time.process_time()
            prob.task.returns(MLP(prob.spec, genomes), torch.device("cpu"), [r])
            ours.append((time.process_time() - t) / (prob.task.steps - before))
            n, t = 0, time.process_time()
            for i, env in enumerate(envs):
                env.reset(seed=r * 1000 + i)
            live = list(range(population))
            for s in range(horizon):
                still = []
                for i in live:
                    _, _, term, trunc, _ = envs[i].step(actions[s, i])
                    n += 1
                    if not (term or trunc):
                        still.append(i)
                live = still
                if not live:
                    break
            alone.append((time.process_time() - t) / n)
        ratio = [a / b for a, b in zip(ours, alone)]
        rows.append({"task": task, "population": population, "horizon": horizon,
                     "ours_us": [x * 1e6 for x in ours], "alone_us": [x * 1e6 for x in alone],
                     "ratio_median": statistics.median(ratio), "ratio_min": min(ratio), "ratio_max": max(ratio)})
        print(f"{task:16s} P={population}: {statistics.median(ours) * 1e6:6.1f} us/step against "
              f"{statistics.median(alone) * 1e6:6.1f} alone: {rows[-1]['ratio_median']:.2f}x "
              f"({min(ratio):.2f}-{max(ratio):.2f})", flush=True)
    return rows


# -- the driver ----------------------------------------------------------------------------------
def _job(args: tuple) -> dict:
    kind, task, method, steps, horizon, seed, core, evotorch_python = args
    t0 = time.perf_counter()
    if kind in ("islands", "lander"):  # in a fresh process of its own (islands fork their islands)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = f.name
        done = subprocess.run([sys.executable, __file__, "--one", json.dumps([kind, task, method, steps, horizon, seed, core]),
                               "--out", out], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{method} on {task} failed: {done.stderr.strip().splitlines()[-3:]}")
        row = json.load(open(out))
        os.unlink(out)
    else:
        from islands.problems.gym import evaluation_seeds

        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = f.name
        cmd = [evotorch_python, str(HERE / "control_evotorch.py"), task, "--method", method.split(":")[1],
               "--steps", str(steps), "--horizon", str(horizon), "--seed", str(seed), "--core", str(core),
               "--eval-seeds", ",".join(map(str, evaluation_seeds(0, EVAL_EPISODES))), "--out", out]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{method} on {task} failed: {done.stderr.strip().splitlines()[-1:]}")
        row = json.load(open(out))
        os.unlink(out)
    shown = f"return {row['final_mean_return']:9.1f}" if "final_mean_return" in row else \
        f"{'solved' if row['solved'] else 'unsolved'}, best unseen mean {row['best_test_mean']}"
    print(f"{task:16s} {row['method']:22s} seed {seed}: {shown} after {row['steps']:,} steps, "
          f"{row['cpu_s']:.0f} s CPU ({time.perf_counter() - t0:.0f} s wall)", flush=True)
    return row


def _run_pinned(jobs: list[tuple], cores: list[int], evotorch_python: str) -> list[dict]:
    """Run the jobs (each a process of its own), one per core at a time: a job takes a free
    core and gives it back when it ends, so two jobs never share one."""
    free: queue.Queue[int] = queue.Queue()
    for core in cores:
        free.put(core)

    def run(job: tuple) -> dict:
        core = free.get()
        try:
            return _job((*job, core, evotorch_python))
        finally:
            free.put(core)

    with ThreadPoolExecutor(len(cores)) as pool:
        return list(pool.map(run, jobs))


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for task in sorted({r["task"] for r in rows}):
        for method in sorted({r["method"] for r in rows if r["task"] == task}):
            mine = [r for r in rows if r["task"] == task and r["method"] == method]
            out.append({"task": task, "method": method, "runs": len(mine),
                        "median_return": statistics.median(r["final_mean_return"] for r in mine),
                        "returns": [round(r["final_mean_return"], 1) for r in sorted(mine, key=lambda r: r["seed"])],
                        "median_steps": statistics.median(r["steps"] for r in mine),
                        "median_cpu_s": statistics.median(r["cpu_s"] for r in mine),
                        "median_cpu_per_generation_s": statistics.median(r["cpu_per_generation_s"] for r in mine),
                        "median_peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in mine)})
    return out


def plot(rows: list[dict], path: str) -> None:
    import matplotlib  # lazy: plotting only at the end

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after the backend is chosen

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for method in sorted({r["method"] for r in rows if r["task"] == task}):
            curves = [r["curve"] for r in rows if r["task"] == task and r["method"] == method]
            grid = [i * max(max(c[-1][0] for c in curves), 1) / 50 for i in range(51)]
            med = [statistics.median(max([b for s, b in c if s <= g] or [float("nan")]) for c in curves) for g in grid]
            ax.plot(grid, med, label=method, linestyle="--" if method.startswith("evotorch") else "-")
        ax.set_title(f"{task}: best training return (median of seeds)")
        ax.set_xlabel("environment steps")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="HalfCheetah-v5,Hopper-v5")
    ap.add_argument("--steps", type=int, default=700_000)
    ap.add_argument("--horizon", type=int, default=200)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=DEFAULT_METHODS)
    ap.add_argument("--jobs", type=int, default=2, help="methods run at a time, one core each")
    ap.add_argument("--evotorch-python", default=os.environ.get("EVOTORCH_PYTHON", ""),
                    help="the python of a venv with evotorch and gymnasium[mujoco] (evotorch pulls in ray)")
    ap.add_argument("--floor", action="store_true")
    ap.add_argument("--lander", action="store_true")
    ap.add_argument("--episodes", type=int, default=3, help="--lander: training episodes per network")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # one islands run (a job of the driver)
    ap.add_argument("--out")
    ap.add_argument("--plot")
    a = ap.parse_args()
    tasks = a.tasks.split(",")
    if a.one:
        one = json.loads(a.one)
        kind, task, method, steps, horizon, seed, core = one if len(one) == 7 else ["islands", *one]
        if kind == "lander":
            os.sched_setaffinity(0, {core})
            import control_lander

            run = control_lander.islands_neat if method == "islands:neat" else control_lander.neat_python
            Path(a.out).write_text(json.dumps(run(seed, steps, horizon)))
            return 0
        _, algo, n, *more = method.split(":")
        norm = next((m for m in more if "=" not in m), "auto")
        pop = next((int(m[4:]) for m in more if m.startswith("pop=")), None)
        Path(a.out).write_text(json.dumps(islands_run(task, algo, int(n), steps, horizon, seed, core, norm, pop)))
        return 0
    if a.lander:
        cores = sorted(os.sched_getaffinity(0))
        jobs = [("lander", "LunarLander-v3", m, a.steps, a.episodes, int(s)) for s in a.seeds.split(",")
                for m in ("islands:neat", "neat-python")]
        rows = _run_pinned(jobs, cores[:max(1, min(a.jobs, len(cores)))], "")
        result = {"lander": rows, "steps": a.steps, "episodes": a.episodes, "load": os.getloadavg()}
    elif a.floor:
        result = {"floor": floor(tasks, a.population, a.horizon, a.rounds), "load": os.getloadavg()}
    else:
        methods = a.methods.split(",")
        if any(m.startswith("evotorch") for m in methods) and not a.evotorch_python:
            print("error: evotorch methods need --evotorch-python (a venv with evotorch)", file=sys.stderr)
            return 2
        cores = sorted(os.sched_getaffinity(0))
        jobs = [(m.split(":")[0], t, m, a.steps, a.horizon, int(s)) for s in a.seeds.split(",") for t in tasks
                for m in methods]
        load0 = os.getloadavg()
        rows = _run_pinned(jobs, cores[:max(1, min(a.jobs, len(cores)))], a.evotorch_python)
        result = {"rows": rows, "summary": summary(rows), "load": [load0, os.getloadavg()],
                  "steps": a.steps, "horizon": a.horizon}
        for s in result["summary"]:
            print(f"{s['task']:16s} {s['method']:22s} median return {s['median_return']:9.1f} {s['returns']} "
                  f"CPU {s['median_cpu_s']:.0f} s, {s['median_cpu_per_generation_s']:.2f} s/generation, "
                  f"{s['median_peak_rss_mib']:.0f} MiB")
        if a.plot:
            plot(rows, a.plot)
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
