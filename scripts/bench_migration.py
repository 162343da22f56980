#!/usr/bin/env python3
"""Migration overhead: time spent migrating as a share of each island's wall time.

Runs N real `islands evolve` processes on one fresh run directory (default: Rastrigin D=100,
P=500, --migrate-every 10, 5 migrants, a ring of 4), then reads each island's status and
history through `migration_pool.RunDir`. The share is per island: the sum of its migration
events' durations (emigrant selection, encode, publish, read, decode, immigration with
re-evaluation, garbage collection) over its wall time from start to its final status.
Target (SPEC section 5): < 1%.

    python scripts/bench_migration.py [--quick] [--islands 4] [--generations 1500] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, ROOT)
from migration_pool.rundir import RunDir  # noqa: E402


def run_islands(root: str, args: argparse.Namespace) -> list[int]:
    """Start the islands together, wait for all; return their exit codes."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    common = ["--run-dir", root, "--problem", "rastrigin", "--dim", str(args.dim),
              "--population", str(args.population), "--generations", str(args.generations),
              "--migrate-every", str(args.every), "--migrants", str(args.migrants),
              "--topology", args.topology, "--checkpoint-every", str(args.generations),
              "--target", "1e9"]  # never stop early: every island runs the same generations
    procs = []
    try:
        for i in range(args.islands):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "islands", "evolve", f"island-{i:02d}", *common],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True))
        return [_wait(p) for p in procs]
    finally:
        for p in procs:  # only on an interruption is any still running
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _wait(proc: subprocess.Popen) -> int:
    _, err = proc.communicate()
    if proc.returncode:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    return proc.returncode


def measure(root: str, islands: int) -> list[dict]:
    rundir = RunDir(root)
    rows = []
    for i in range(islands):
        island = f"island-{i:02d}"
        status = rundir.read_status(island)
        if status is None:
            raise SystemExit(f"{island} wrote no status; see the errors above")
        events = [h["migration"]["seconds"] for h in rundir.iter_history(island) if "migration" in h]
        m = status["migration"]
        wall = status["heartbeat"] - status["started"]
        rows.append({
            "island": island,
            "generations": status["generation"],
            "wall_s": wall,
            "generation_ms": 1e3 * wall / max(1, status["generation"]),
            "events": m.get("events", 0),
            "migration_s": m.get("micros", 0) / 1e6,
            "share": m.get("micros", 0) / 1e6 / wall,
            "event_median_us": 1e6 * statistics.median(events) if events else None,
            "event_max_us": 1e6 * max(events) if events else None,
            "sent": m.get("sent", 0), "received": m.get("received", 0),
            "adopted": m.get("adopted", 0), "bad_files": m.get("bad_files", 0),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="300 generations instead of 1500")
    ap.add_argument("--islands", type=int, default=4)
    ap.add_argument("--generations", type=int, default=None)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--population", type=int, default=500)
    ap.add_argument("--every", type=int, default=10, help="--migrate-every")
    ap.add_argument("--migrants", type=int, default=5)
    ap.add_argument("--topology", default="ring")
    ap.add_argument("--run-dir", help="use (and keep) this run directory instead of a temporary one")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    if args.generations is None:
        args.generations = 300 if args.quick else 1500
    root = args.run_dir or tempfile.mkdtemp(prefix="islands-bench-migration-")
    try:
        started = time.perf_counter()
        codes = run_islands(root, args)
        elapsed = time.perf_counter() - started
        if any(codes):
            raise SystemExit(f"islands exited with {codes}")
        rows = measure(root, args.islands)
    finally:
        if not args.run_dir:
            shutil.rmtree(root, ignore_errors=True)
    shares = [r["share"] for r in rows]
    result = {
        "benchmark": "migration_share",
        "settings": {k: getattr(args, k) for k in
                     ("islands", "generations", "dim", "population", "every", "migrants", "topology")},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before_end": os.getloadavg()[0]},
        "elapsed_s": elapsed,
        "islands": rows,
        "share_mean": statistics.mean(shares),
        "share_max": max(shares),
        "target": 0.01,
    }
    s = result["settings"]
    print(f"Rastrigin D={s['dim']} P={s['population']}, {s['islands']} islands ({s['topology']}), "
          f"--migrate-every {s['every']}, {s['migrants']} migrants, {s['generations']} generations, "
          f"{os.cpu_count()} CPUs")
    print(f"{'island':10s} {'gen ms':>7s} {'events':>6s} {'median us':>9s} {'max us':>8s} "
          f"{'adopted':>7s} {'share':>7s}")
    for r in rows:
        print(f"{r['island']:10s} {r['generation_ms']:7.2f} {r['events']:6d} "
              f"{r['event_median_us'] or 0:9.0f} {r['event_max_us'] or 0:8.0f} "
              f"{r['adopted']:>4d}/{r['received']:<4d} {100 * r['share']:6.2f}%")
    verdict = "meets" if result["share_max"] < 0.01 else "misses"
    print(f"migration share: mean {100 * result['share_mean']:.2f}%, "
          f"max {100 * result['share_max']:.2f}% ({verdict} the < 1% target)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
