#!/usr/bin/env python3
"""Start-up of `islands launch -n N`: seconds from the launch to each island's first generation.

For each N it runs `islands launch -n N` (fresh run directory, no migration, a short GA run)
with the island template (the default: islands forked from one process that imported torch
once, `islands.island_template`) and with `--no-fork-server` (every island a fresh
`python -m islands evolve`), alternating the two in each round so both see the same load.
Per island it reads the time of generation 1 from the island's history and reports

    first_generation_s: per island, seconds from the launch command to its first generation
    startup_max_s:      the slowest island's (every island evolving)
    wall_s:             the whole launch, including the run and the launcher's exit

and the ratio fresh / forked of startup_max_s and wall_s (the median over --repeats rounds).

    python scripts/bench_startup.py [--islands 2,8,20] [--generations 20] [--repeats 1] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from migration_pool.rundir import RunDir  # noqa: E402


def run_once(n: int, args: argparse.Namespace, fork: bool) -> dict:
    """One launch of `n` islands; per-island seconds to generation 1 and the launch's wall time."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        run_dir = os.path.join(tmp, "run")
        cmd = [sys.executable, "-m", "islands", "launch", "-n", str(n), "--run-dir", run_dir,
               "--problem", args.problem, "--dim", str(args.dim), "--population", str(args.population),
               "--generations", str(args.generations), "--migrate-every", "0", "--plain",
               "--progress-every", "3600", "--target", "1e300"]
        if not fork:
            cmd.append("--no-fork-server")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
        launched = time.time()
        out = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        wall = time.time() - launched
        if out.returncode != 0:
            raise SystemExit(f"launch -n {n} failed ({out.returncode}):\n{out.stderr.decode(errors='replace')}")
        rundir = RunDir(run_dir)
        first = {}
        for isl in rundir.island_ids():
            gen1 = [r["time"] for r in rundir.island(isl).read_history() if r.get("generation") == 1]
            first[isl] = round(gen1[0] - launched, 3) if gen1 else None
        known = [v for v in first.values() if v is not None]
        return {"islands": n, "fork_server": fork, "wall_s": round(wall, 3),
                "startup_max_s": max(known) if known else None,
                "startup_median_s": statistics.median(known) if known else None, "first_generation_s": first}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--islands", default="2,8,20")
    ap.add_argument("--problem", default="rastrigin")
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--population", type=int, default=100)
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    points = []
    for n in (int(x) for x in args.islands.split(",")):
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for r in range(args.repeats):
            for fork in ((True, False) if r % 2 == 0 else (False, True)):
                runs[fork].append(run_once(n, args, fork))
        point = {"islands": n, "cpus": os.cpu_count()}
        for fork, key in ((True, "forked"), (False, "fresh")):
            point[key] = {
                "startup_max_s": statistics.median(x["startup_max_s"] for x in runs[fork]),
                "startup_median_s": statistics.median(x["startup_median_s"] for x in runs[fork]),
                "wall_s": statistics.median(x["wall_s"] for x in runs[fork]),
                "first_generation_s": runs[fork][-1]["first_generation_s"],
            }
        point["startup_ratio"] = round(point["fresh"]["startup_max_s"] / point["forked"]["startup_max_s"], 2)
        point["wall_ratio"] = round(point["fresh"]["wall_s"] / point["forked"]["wall_s"], 2)
        points.append(point)
        print(f"N={n:3d}  all evolving after: forked {point['forked']['startup_max_s']:6.2f} s  "
              f"fresh {point['fresh']['startup_max_s']:6.2f} s  (x{point['startup_ratio']});  "
              f"launch wall: forked {point['forked']['wall_s']:6.2f} s  fresh {point['fresh']['wall_s']:6.2f} s "
              f"(x{point['wall_ratio']})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"points": points, "generations": args.generations, "dim": args.dim,
                       "population": args.population}, f, indent=1)


if __name__ == "__main__":
    main()
