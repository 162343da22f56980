#!/usr/bin/env python3
"""Parallel efficiency of the launcher: N islands on N cores against N times one island.

For each N it runs `islands launch -n N --cores <N cores>` as users do (a fresh run directory,
no migration so islands stay independent), samples every island process's OS thread count
while it runs, and reads each island's own evaluations per second from its final status (the
island's steady rate, without Python and torch start-up). Then

    parallel_efficiency(N) = aggregate evals/s of N islands / (N * evals/s of 1 island)

The SPEC target is >= 0.95. On a machine shared with other work the numbers are noisy;
use --repeats to take the best of several interleaved rounds per point.

    python scripts/bench_scaling.py [--islands 1,2] [--dim 20] [--population 200]
                                    [--generations 1500] [--repeats 2] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import psutil  # noqa: E402

from migration_pool.rundir import RunDir  # noqa: E402


def run_point(n: int, cores: list[int], args: argparse.Namespace) -> dict:
    """One launch of `n` islands; their summed rate and the most threads any island had."""
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        run_dir = os.path.join(tmp, "run")
        cmd = [sys.executable, "-m", "islands", "launch", "-n", str(n), "--run-dir", run_dir,
               "--cores", ",".join(map(str, cores[:n])), "--problem", args.problem, "--dim", str(args.dim),
               "--population", str(args.population), "--generations", str(args.generations),
               "--migrate-every", "0", "--checkpoint-every", str(args.generations), "--plain",
               "--progress-every", "3600"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        threads = 0
        try:
            while proc.poll() is None:
                try:
                    for child in psutil.Process(proc.pid).children():
                        if "evolve" in child.cmdline():
                            threads = max(threads, child.num_threads())
                except psutil.Error:
                    pass
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
            _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"launch of {n} island(s) failed ({proc.returncode}):\n{err.decode(errors='replace')}")
        rundir = RunDir(run_dir)
        rates = [rundir.read_status(i)["evals_per_sec"] for i in rundir.island_ids()]
        return {"islands": n, "evals_per_sec": sum(rates), "per_island": rates, "threads_per_island": threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--islands", default="1,2", help="comma-separated island counts (default 1,2)")
    ap.add_argument("--problem", default="rastrigin")
    ap.add_argument("--dim", type=int, default=20)
    ap.add_argument("--population", type=int, default=200)
    ap.add_argument("--generations", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=2, help="runs per point; the best is kept")
    ap.add_argument("--json", dest="json_path", default=None, help="also write the results here")
    args = ap.parse_args()
    counts = sorted({1, *(int(x) for x in args.islands.split(","))})  # N = 1 is the baseline
    load_before = os.getloadavg()[0]
    cores = sorted(os.sched_getaffinity(0))
    if max(counts) > len(cores):
        raise SystemExit(f"asked for {max(counts)} islands but only {len(cores)} core(s) are available")
    # Rounds interleave the counts (1, 2, 1, 2, ...) so that other work on the machine hits
    # every point alike; each point keeps its best round.
    best: dict[int, dict] = {}
    for _ in range(args.repeats):
        for n in counts:
            p = run_point(n, cores, args)
            if n not in best or p["evals_per_sec"] > best[n]["evals_per_sec"]:
                best[n] = p
    points = [best[n] for n in counts]
    base = points[0]["evals_per_sec"]
    print(f"{'islands':>7} {'evals/s':>12} {'per island':>11} {'efficiency':>10} {'threads/island':>14}")
    for p in points:
        p["parallel_efficiency"] = round(p["evals_per_sec"] / (p["islands"] * base), 4)
        print(f"{p['islands']:>7} {p['evals_per_sec']:>12,.0f} {p['evals_per_sec'] / p['islands']:>11,.0f} "
              f"{p['parallel_efficiency']:>10.3f} {p['threads_per_island']:>14}")
    result = {"benchmark": "scaling", "cores": len(cores), "load_before": load_before,
              "settings": {k: getattr(args, k) for k in ("problem", "dim", "population", "generations", "repeats")},
              "points": points}
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json_path}")
    if load_before > len(cores) / 2:
        print(f"note: load average was {load_before:.1f} on {len(cores)} core(s); other work skews these numbers")


if __name__ == "__main__":
    main()
