#!/usr/bin/env python3
"""Parallel efficiency of the launcher: N islands on N cores against N times one island.

For each N it runs `islands launch -n N --cores <min(N, cores) cores>` as users do (a fresh run
directory, no migration so islands stay independent) and samples every island process's OS
thread count while it runs. The aggregate rate is measured from the islands' histories over
the window in which all N islands were evolving at once (so start-up and stragglers do not
count), and

    parallel_efficiency(N) = aggregate evals/s of N islands / (min(N, cores) * evals/s of 1 island)

which is the N-islands-on-N-cores ratio for N <= cores, and for oversubscribed N says how
much of the cores' capacity the time-shared islands still deliver. The target (README,
"Benchmarks") is >= 0.95.

Trustworthy on a shared machine: every round runs the single-island baseline right
before each N-island launch, so both see the same load, and the efficiency of a round uses
that round's baseline. A point reports the median over rounds and the spread (min, max). An
efficiency above 1.05 cannot be real (N islands never beat N times one), so it is flagged as
noise (`"noise": true`, printed as such) instead of reported as a result.

Run lengths are sized from measurement unless --generations is given: a first single-island
launch measures start-up and seconds per generation, and each N gets enough generations that
its islands evolve together for at least --window seconds after an estimated start-up of N
islands (imports contend for the cores). Should the islands still never overlap (a very
loaded machine), the point is re-run with twice the generations, up to --max-doublings times,
and then recorded as unmeasured rather than failing the benchmark.

    python scripts/bench_scaling.py [--islands 1,2] [--dim 20] [--population 200]
                                    [--generations N] [--window 4] [--repeats 3] [--json FILE]
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


NOISE_ABOVE = 1.05  # a parallel efficiency above this is measurement noise, not a result


class NoOverlap(Exception):
    """The islands of a launch never evolved at the same time (run too short for its start-up)."""


def run_point(n: int, cores: list[int], args: argparse.Namespace, generations: int) -> dict:
    """One launch of `n` islands: their summed rate while all evolved, start-up, threads."""
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        run_dir = os.path.join(tmp, "run")
        cmd = [sys.executable, "-m", "islands", "launch", "-n", str(n), "--run-dir", run_dir,
               "--cores", ",".join(map(str, cores[: min(n, len(cores))])), "--problem", args.problem, "--dim", str(args.dim),
               "--population", str(args.population), "--generations", str(generations),
               "--migrate-every", "0", "--checkpoint-every", str(generations), "--plain",
               "--progress-every", "3600",
               "--target", "1e300"]  # unreachable: an island that solved the problem would stop early
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
        launched = time.time()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        threads = 0
        try:
            while proc.poll() is None:
                try:
                    for child in psutil.Process(proc.pid).children(recursive=True):
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
        histories = [rundir.island(i).read_history() for i in rundir.island_ids()]
        rate, window = _window_rate(histories)
        evolving = [h[-1]["time"] - h[0]["time"] for h in histories]
        return {"islands": n, "evals_per_sec": rate, "window_s": window, "generations": generations,
                "startup_s": max(h[0]["time"] for h in histories) - launched,
                "seconds_per_generation": max(evolving) / max(1, generations), "threads_per_island": threads}


def _window_rate(histories: list[list[dict]]) -> tuple[float, float]:
    """Evaluations per second of all islands together while every one of them was evolving,
    and that window's length in seconds."""
    start = max(h[0]["time"] for h in histories)
    end = min(h[-1]["time"] for h in histories)
    if end <= start:
        raise NoOverlap
    total = 0.0
    for h in histories:
        times = [r["time"] for r in h]
        evals = [r["evaluations"] for r in h]
        total += _interp(end, times, evals) - _interp(start, times, evals)
    return total / (end - start), end - start


def sized_generations(n: int, cores: int, probe: dict, window: float) -> int:
    """Generations for `n` islands to evolve together for about `window` seconds after their
    start-up, from a single-island probe: n islands import torch ceil(n / cores) at a time
    (x2 for margin), and evolve time-shared when oversubscribed."""
    startup = 2 * probe["startup_s"] * -(-n // cores)
    per_gen = probe["seconds_per_generation"] * max(1.0, n / cores)
    return max(50, int((startup + window) / max(per_gen, 1e-6)) + 1)


def measure(n: int, cores: list[int], args: argparse.Namespace, generations: int) -> dict | None:
    """run_point, doubling the generations when the islands never overlapped; None at the end."""
    for _ in range(args.max_doublings + 1):
        try:
            return run_point(n, cores, args, generations)
        except NoOverlap:
            print(f"note: {n} island(s) never evolved at the same time with {generations} generations; "
                  "doubling", file=sys.stderr)
            generations *= 2
    return None


def _interp(t: float, times: list[float], values: list[float]) -> float:
    """Linear interpolation of a monotone series (history times are rounded to 1 ms)."""
    import bisect

    i = bisect.bisect_left(times, t)
    if i <= 0:
        return values[0]
    if i >= len(times):
        return values[-1]
    t0, t1 = times[i - 1], times[i]
    return values[i - 1] + (values[i] - values[i - 1]) * ((t - t0) / (t1 - t0) if t1 > t0 else 1.0)


def _median(values: list[float]) -> float:
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--islands", default="1,2", help="comma-separated island counts (default 1,2)")
    ap.add_argument("--problem", default="rastrigin")
    ap.add_argument("--dim", type=int, default=20)
    ap.add_argument("--population", type=int, default=200)
    ap.add_argument("--generations", type=int, default=None,
                    help="generations per island (default: sized from a measured start-up, see --window)")
    ap.add_argument("--window", type=float, default=4.0, help="seconds all islands should evolve together")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds per point (median and spread)")
    ap.add_argument("--max-doublings", type=int, default=3, help="re-runs with twice the generations if no overlap")
    ap.add_argument("--json", dest="json_path", default=None, help="also write the results here")
    args = ap.parse_args()
    counts = sorted({int(x) for x in args.islands.split(",")} - {1})
    load_before = os.getloadavg()[0]
    cores = sorted(os.sched_getaffinity(0))
    probe = None
    if args.generations is None:
        probe = measure(1, cores, args, 200)
        if probe is None:
            raise SystemExit("a single island never produced two history lines; is the machine this loaded?")
    gens = {n: args.generations or sized_generations(n, len(cores), probe, args.window) for n in [1, *counts]}
    # Each round runs the baseline right before each N, so both see the same load on the machine.
    rounds: dict[int, list[dict]] = {n: [] for n in [1, *counts]}
    for _ in range(args.repeats):
        for n in counts or [1]:
            base = measure(1, cores, args, gens[1])
            p = measure(n, cores, args, gens[n]) if n != 1 else base
            if base is None or p is None:
                continue
            p = dict(p, efficiency=p["evals_per_sec"] / (min(n, len(cores)) * base["evals_per_sec"]))
            rounds[1].append(dict(base, efficiency=1.0))
            if n != 1:
                rounds[n].append(p)
    points = []
    print(f"{'islands':>7} {'evals/s':>12} {'per island':>11} {'efficiency':>22} {'start-up s':>10} {'threads/island':>14}")
    for n in [1, *counts]:
        rs = rounds[n]
        if not rs:
            points.append({"islands": n, "unmeasured": True, "evals_per_sec": None, "parallel_efficiency": None,
                           "oversubscription": round(n / len(cores), 3), "threads_per_island": 0, "noise": False})
            print(f"{n:>7} {'unmeasured: the islands never evolved at the same time':>60}")
            continue
        eff = [r["efficiency"] for r in rs]
        point = {"islands": n, "rounds": len(rs), "generations": rs[-1]["generations"],
                 "evals_per_sec": _median([r["evals_per_sec"] for r in rs]),
                 "parallel_efficiency": round(_median(eff), 4),
                 "parallel_efficiency_min": round(min(eff), 4), "parallel_efficiency_max": round(max(eff), 4),
                 "startup_s": round(_median([r["startup_s"] for r in rs]), 3),
                 "window_s": round(_median([r["window_s"] for r in rs]), 3),
                 "oversubscription": round(n / len(cores), 3),
                 "threads_per_island": max(r["threads_per_island"] for r in rs)}
        point["noise"] = point["parallel_efficiency"] > NOISE_ABOVE
        points.append(point)
        shown = (f"noise ({point['parallel_efficiency']:.2f})" if point["noise"] else f"{point['parallel_efficiency']:.3f}")
        spread = f"{shown} [{point['parallel_efficiency_min']:.2f}-{point['parallel_efficiency_max']:.2f}]"
        print(f"{n:>7} {point['evals_per_sec']:>12,.0f} {point['evals_per_sec'] / n:>11,.0f} {spread:>22} "
              f"{point['startup_s']:>10.2f} {point['threads_per_island']:>14}")
    result = {"benchmark": "scaling", "cores": len(cores), "load_before": load_before, "noise_above": NOISE_ABOVE,
              "probe": probe,
              "settings": {k: getattr(args, k) for k in ("problem", "dim", "population", "generations", "window", "repeats")},
              "points": points}
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json_path}")
    if any(p["noise"] for p in points):
        print(f"note: an efficiency above {NOISE_ABOVE} is noise (other work slowed a baseline); rerun on a quieter machine")
    if load_before > len(cores) / 2:
        print(f"note: load average was {load_before:.1f} on {len(cores)} core(s); other work skews these numbers")


if __name__ == "__main__":
    main()
