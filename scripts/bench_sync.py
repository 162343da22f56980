#!/usr/bin/env python3
"""What synchronous migration costs: `islands launch` with --migration async and sync, side by side.

Runs the demo's launch (`scripts/demo`: Rastrigin D=30, population 200, 600 generations, 4
islands, the default migration every 10) once per mode per round, the modes interleaved so a
load that comes and goes on a shared machine spreads over both alike. Per run it reports the
launch's wall time (the command, start to exit: torch import and spawn included) and the
islands' evolution rate, generations per second per island (each island's generations over
the time between its first and last history line, averaged over islands). Every row is
printed, then per mode the median over rounds and the distinct champion fitnesses (sync
rounds, all with seed 1, must show one; async rounds usually show several).

    python scripts/bench_sync.py [--rounds 3] [--islands 4] [--generations 600] [--dim 30]
        [--population 200] [--target 1] [--out FILE]

The demo's islands reach Rastrigin's target after ~250 of their 600 generations, so start-up
weighs on its wall time; `--target 1` (never reached) runs every generation.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migration_pool.rundir import RunDir  # noqa: E402


def one(run_dir: Path, mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "islands", "launch", "-n", str(args.islands), "--problem", "rastrigin",
           "--dim", str(args.dim), "--population", str(args.population), "--generations", str(args.generations),
           "--seed", "1", "--migration", mode, "--run-dir", str(run_dir), "--plain",
           *(["--target", str(args.target)] if args.target is not None else [])]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"launch failed ({out.returncode}): {out.stdout[-2000:]}{out.stderr[-2000:]}")
    rd = RunDir(run_dir)
    rates, gens = [], 0
    for island in rd.island_ids():
        lines = rd.island(island).read_history()
        span = lines[-1]["time"] - lines[0]["time"]
        done = lines[-1]["generation"] - lines[0]["generation"]
        gens += done
        rates.append(done / span if span > 0 else float("nan"))
    champion = rd.read_champion() or {}
    return {"mode": mode, "wall_s": round(wall, 2), "gens_per_s_per_island": round(statistics.mean(rates), 1),
            "generations": gens, "champion": champion.get("fitness")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--islands", type=int, default=4)
    ap.add_argument("--generations", type=int, default=600)
    ap.add_argument("--dim", type=int, default=30)
    ap.add_argument("--population", type=int, default=200)
    ap.add_argument("--target", type=float, default=None,
                    help="fitness target (default: the problem's; 1 on Rastrigin: run every generation)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in (("async", "sync") if r % 2 == 0 else ("sync", "async")):
                row = {"round": r, **one(Path(tmp) / f"{mode}-{r}", mode, args)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = {}
    for mode in ("async", "sync"):
        mine = [x for x in rows if x["mode"] == mode]
        summary[mode] = {"wall_s_median": statistics.median(x["wall_s"] for x in mine),
                         "gens_per_s_per_island_median": statistics.median(x["gens_per_s_per_island"] for x in mine),
                         "champions": sorted({x["champion"] for x in mine})}
    summary["sync_over_async_wall"] = round(summary["sync"]["wall_s_median"] / summary["async"]["wall_s_median"], 3)
    summary["sync_over_async_rate"] = round(
        summary["sync"]["gens_per_s_per_island_median"] / summary["async"]["gens_per_s_per_island_median"], 3)
    summary["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
