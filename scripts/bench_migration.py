#!/usr/bin/env python3
"""Migration overhead: time spent migrating as a share of each island's wall time.

Runs N real `islands evolve` processes on one fresh run directory (default: Rastrigin D=100,
P=500, --migrate-every 10, 5 migrants, a ring of 4), then reads each island's status and
history through `migration_pool.RunDir`. The share is per island: the sum of its migration
events' durations (emigrant selection, encode, publish, read, decode, immigration with
re-evaluation, garbage collection) over its wall time from start to its final status.
Target (README, "Benchmarks"): < 1% at --migrate-every 10.

By default it measures --migrate-every 1, 5, 10 and 50 (docs/MIGRATION_PERF.md) in interleaved
rounds, so a load that comes and goes on a shared machine spreads over every setting alike,
and reports per setting the median over rounds of the islands' mean share with its spread
(min-max over rounds). `--code DIR` (repeatable) runs the same rounds with another checkout's
code on PYTHONPATH, interleaved too: a before/after comparison measured side by side.

The event duration is wall time around the whole step (two perf_counter calls: < 1 us of the
~0.5 ms an event costs); on an oversubscribed machine it includes time the island waited for
a core, as the island's wall time does, so the share is a ratio of like with like.

`--cpu` measures instead what an event costs in CPU time (thread clock, two islands in one
process, also interleaved with --code): on a loaded machine the wall-time share mostly
measures waiting for a core. Its islands are planned, as `islands launch` plans them;
`--hand-started` leaves the plan out, as islands started one per terminal run (they find
their neighbours in the run directory).

    python scripts/bench_migration.py [--quick] [--every 10] [--rounds 3] [--islands 4]
        [--generations 1500] [--code /path/to/other/checkout] [--out FILE]
    python scripts/bench_migration.py --cpu [--sizes 100x500,10x100] [--events 100] [--code DIR]
        [--hand-started]
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
if "--cpu-worker" not in sys.argv:  # a worker imports the code its PYTHONPATH names (--code)
    sys.path.insert(0, ROOT)
from islands.threads import limit_env  # noqa: E402  (no torch: sets variables only)
from migration_pool.rundir import RunDir  # noqa: E402


def run_islands(root: str, args: argparse.Namespace, every: int, code: str = ROOT) -> list[int]:
    """Start the islands together, wait for all; return their exit codes."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [code, os.environ.get("PYTHONPATH")]))}
    common = ["--run-dir", root, "--problem", "rastrigin", "--dim", str(args.dim),
              "--population", str(args.population), "--generations", str(args.generations),
              "--migrate-every", str(every), "--migrants", str(args.migrants),
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
        status = rundir.island(island).read_status()
        if status is None:
            raise SystemExit(f"{island} wrote no status; see the errors above")
        events = [h["migration"]["seconds"] for h in rundir.island(island).iter_history() if "migration" in h]
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


def cpu_worker(dim: int, population: int, events: int, planned: bool = True) -> dict:
    """Thread CPU time of migration events and of generations, two islands in this process.

    The CPU clock of this thread is blind to the time the process waits for a core, so on a
    loaded machine this reads what an event costs where the wall-time share above cannot
    (with load 12 on 2 cores an island gets a sixth of a core and a 0.5 ms event spans
    several scheduler slices). Same code path as `islands evolve` (PoolMigrator, a real pool
    directory), two generations between events; the share is modelled for each interval.
    """
    import tempfile as _tempfile
    from pathlib import Path

    import torch

    from islands.algorithms import make_algorithm
    from islands.checkpoint import Progress
    from islands.config import MigrationConfig, RunConfig, island_id
    from islands.island import IslandSpec
    from islands.migration import PoolMigrator
    from islands.problems.registry import make_problem

    torch.set_num_threads(1)
    root = _tempfile.mkdtemp(prefix="islands-bench-migration-cpu-")
    try:
        cfg = RunConfig(problem="rastrigin", dim=dim, population=population,
                        migration=MigrationConfig(every=10, migrants=5, topology="ring"))
        ids = (island_id(0), island_id(1))
        rundir = RunDir(root)
        algo = make_algorithm(cfg, make_problem("rastrigin", dim), "cpu")
        islands = []
        for number, island in enumerate(ids):
            rundir.ensure(island)
            gen = torch.Generator()
            gen.manual_seed(number)
            spec = IslandSpec(island=island, run_dir=Path(root), run_id="bench", config=cfg,
                              planned=ids if planned else ())
            islands.append([PoolMigrator(spec, rundir, lambda _m: None),
                            algo.evaluate(algo.init(population, number, gen)), Progress(), gen])
        event_cpu, generation_cpu = [], []
        for _ in range(events):
            for isl in islands:
                migrator, state, progress, gen = isl
                t = time.thread_time()
                for _ in range(2):
                    state = algo.evaluate(algo.step(state, progress.generation, gen))
                    progress.generation += 1
                generation_cpu.append((time.thread_time() - t) / 2)
                t = time.thread_time()
                isl[1] = migrator.exchange(algo, state, progress, gen)
                event_cpu.append(time.thread_time() - t)
        adopted = sum(isl[2].migration.get("adopted", 0) for isl in islands)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    event_cpu.sort()
    q = lambda f: event_cpu[int(f * (len(event_cpu) - 1))]  # noqa: E731
    gen_ms = statistics.median(generation_cpu)
    event = statistics.median(event_cpu)
    return {"dim": dim, "population": population, "events": len(event_cpu), "adopted": adopted,
            "event_cpu_us": {"p25": 1e6 * q(0.25), "median": 1e6 * event, "p75": 1e6 * q(0.75)},
            "generation_cpu_us": 1e6 * gen_ms,
            "modelled_share": {str(e): event / (e * gen_ms + event) for e in (1, 5, 10, 50)}}


def cpu_mode(args: argparse.Namespace, codes: list[str], rounds: int) -> None:
    """Run cpu_worker for each code and size, interleaved, each in its own process."""
    sizes = [(args.dim, args.population)] if args.sizes is None else \
        [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    rows: dict[tuple[str, int, int], list[dict]] = {}
    for _ in range(rounds):
        for dim, population in sizes:
            for code in codes:
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                    filter(None, [code, os.environ.get("PYTHONPATH")]))}
                limit_env(env)  # one BLAS/OpenMP thread, as in an island (else the clock lies)
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--cpu-worker",
                     f"{dim}x{population}x{args.events}x{0 if args.hand_started else 1}"],
                    env=env, check=True, capture_output=True, text=True).stdout
                row = json.loads(out)
                if not row["imported"].startswith(code + os.sep):
                    raise SystemExit(f"the worker for {code} imported {row['imported']}")
                rows.setdefault((code, dim, population), []).append(row)
    print(f"CPU time per migration event (thread clock; {rounds} interleaved rounds, "
          f"{args.events} events x 2 {'hand-started' if args.hand_started else 'planned'} islands each; "
          f"load {os.getloadavg()[0]:.1f})")
    print(f"{'code':28s} {'D':>4s} {'P':>5s} {'event us':>9s} {'(rounds)':>15s} {'gen us':>7s} "
          + " ".join(f"{'every ' + str(e):>9s}" for e in (1, 5, 10, 50)))
    points = []
    for (code, dim, population), runs in rows.items():
        events = [r["event_cpu_us"]["median"] for r in runs]
        gens = [r["generation_cpu_us"] for r in runs]
        shares = {e: statistics.median(r["modelled_share"][e] for r in runs) for e in ("1", "5", "10", "50")}
        points.append({"code": code, "dim": dim, "population": population, "event_cpu_us_rounds": events,
                       "generation_cpu_us_rounds": gens, "modelled_share": shares,
                       "adopted": [r["adopted"] for r in runs]})
        print(f"{code[-28:]:28s} {dim:4d} {population:5d} {statistics.median(events):9.0f} "
              f"{min(events):7.0f}-{max(events):<7.0f} {statistics.median(gens):7.0f} "
              + " ".join(f"{100 * shares[e]:8.2f}%" for e in shares))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"benchmark": "migration_event_cpu", "points": points}, f, indent=2)
            f.write("\n")


def one_run(args: argparse.Namespace, every: int, code: str) -> list[dict]:
    root = args.run_dir or tempfile.mkdtemp(prefix="islands-bench-migration-")
    try:
        codes = run_islands(root, args, every, code)
        if any(codes):
            raise SystemExit(f"islands exited with {codes}")
        return measure(root, args.islands)
    finally:
        shutil.rmtree(root, ignore_errors=True) if not args.run_dir else None


def summary(runs: list[list[dict]]) -> dict:
    """Per setting: each round's mean share over islands, their median and spread."""
    means = [statistics.mean(r["share"] for r in rows) for rows in runs]
    events = [r["event_median_us"] for rows in runs for r in rows if r["event_median_us"] is not None]
    return {
        "round_shares": means,
        "share_median": statistics.median(means),
        "share_min": min(means), "share_max_round": max(means),
        "share_max_island": max(r["share"] for rows in runs for r in rows),
        "event_median_us": statistics.median(events) if events else None,
        "generation_ms": statistics.median(r["generation_ms"] for rows in runs for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="300 generations and 2 rounds")
    ap.add_argument("--islands", type=int, default=4)
    ap.add_argument("--generations", type=int, default=None)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--population", type=int, default=500)
    ap.add_argument("--every", type=int, action="append",
                    help="--migrate-every (repeatable; default: 1, 5, 10 and 50)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; quick 2)")
    ap.add_argument("--code", action="append",
                    help="also run with this checkout's code first on PYTHONPATH (repeatable)")
    ap.add_argument("--migrants", type=int, default=5)
    ap.add_argument("--topology", default="ring")
    ap.add_argument("--run-dir", help="use (and keep) this run directory instead of a temporary one")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--cpu", action="store_true",
                    help="measure the thread CPU time of events and generations in-process instead")
    ap.add_argument("--sizes", help="with --cpu: DxP list, e.g. 100x500,10x100")
    ap.add_argument("--events", type=int, default=100, help="with --cpu: events per island")
    ap.add_argument("--hand-started", action="store_true",
                    help="with --cpu: islands without a plan, as started one per terminal")
    ap.add_argument("--cpu-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cpu_worker:
        dim, population, events, planned = (int(x) for x in args.cpu_worker.split("x"))
        import islands
        print(json.dumps({**cpu_worker(dim, population, events, bool(planned)), "imported": islands.__file__}))
        return
    if args.generations is None:
        args.generations = 300 if args.quick else 1500
    rounds = args.rounds or (2 if args.quick else 3)
    everies = args.every or [1, 5, 10, 50]
    codes = [ROOT] + [os.path.abspath(c) for c in args.code or []]
    if args.cpu:
        cpu_mode(args, codes, rounds)
        return
    started = time.perf_counter()
    runs: dict[tuple[str, int], list[list[dict]]] = {(c, e): [] for c in codes for e in everies}
    for _ in range(rounds):  # interleaved: each round visits every setting once
        for e in everies:
            for c in codes:
                runs[(c, e)].append(one_run(args, e, c))
    elapsed = time.perf_counter() - started
    points = [{"code": c, "every": e, **summary(runs[(c, e)]), "islands": runs[(c, e)][-1]}
              for c in codes for e in everies]
    ours = [p for p in points if p["code"] == ROOT]
    settings = {k: getattr(args, k) for k in ("islands", "generations", "dim", "population",
                                              "migrants", "topology")}
    result = {
        "benchmark": "migration_share",
        "settings": {**settings, "every": everies[0] if len(everies) == 1 else everies, "rounds": rounds},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before_end": os.getloadavg()[0]},
        "elapsed_s": elapsed,
        "points": points,
        "target": 0.01,
    }
    if len(everies) == 1:  # the single-setting keys that scripts/bench_suite.py reads
        result.update(islands=ours[0]["islands"], share_mean=ours[0]["share_median"],
                      share_max=ours[0]["share_max_island"])
    s = settings
    print(f"Rastrigin D={s['dim']} P={s['population']}, {s['islands']} islands ({s['topology']}), "
          f"{s['migrants']} migrants, {s['generations']} generations, {rounds} interleaved rounds, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'code':28s} {'every':>5s} {'gen ms':>7s} {'event us':>8s} {'share':>7s} {'spread (rounds)':>17s}")
    for p in points:
        print(f"{p['code'][-28:]:28s} {p['every']:5d} {p['generation_ms']:7.2f} "
              f"{p['event_median_us'] or 0:8.0f} {100 * p['share_median']:6.2f}% "
              f"{100 * p['share_min']:7.2f}-{100 * p['share_max_round']:.2f}%")
    for p in ours:
        if p["every"] == 10:
            verdict = "meets" if p["share_median"] < 0.01 else "misses"
            print(f"migration share at --migrate-every 10: {100 * p['share_median']:.2f}% "
                  f"({verdict} the < 1% target)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
