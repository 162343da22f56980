#!/usr/bin/env python
"""Benchmark `islands status` in CPU seconds on synthetic runs of 1,024 x 2,000 and 4,096 x 10,000.

Each run directory is written with the real writers (`RunDir`: the manifest, `append_history`
with `HistoryLine` bodies, `write_status` with `IslandStatus` bodies, a checkpoint per island)
in the shape a real island leaves: diversity, foreign share and origins on every 10th history
line, a migration event every 10th generation from two ring neighbours. Building the large one
takes minutes and gigabytes, so runs are cached under /tmp (`--cache`) and reused.

Measured: CPU time (`time.process_time`, user + system of this process) of the library call
`build_report`, and the CPU time of `islands status --json` and of the table as fresh processes
(`resource.getrusage(RUSAGE_CHILDREN)`, imports included), each the median of `--repeat` runs;
also the JSON's size and the machine's load average (`os.getloadavg`) before and after, since
the machine is shared. Targets: 1,024 x 2,000 under 1 s of CPU, 4,096 x 10,000 under 3 s.

    python scripts/bench_status.py [--sizes 1024x2000,4096x10000] [--repeat 3] [--json-out F]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from islands.config import RunConfig, island_id  # noqa: E402
from islands.status.record import HistoryLine, IslandStatus, Migration, MigrationEvent  # noqa: E402
from islands.status.reader import sample_records  # noqa: E402
from islands.status.report import build_report  # noqa: E402
from islands.status.summary import DIVERSITY_KEY, HistorySummary  # noqa: E402
from migration_pool.rundir import RunDir  # noqa: E402

TARGETS_S = {(1024, 2000): 1.0, (4096, 10000): 3.0}
CACHE = Path("/tmp/islands-bench-status")
DIVERSITY_EVERY = 10  # islands.recorders.DIVERSITY_EVERY (not imported: it loads torch)


def build(root: Path, islands: int, generations: int, dim: int, seed: int = 0) -> None:
    """A synthetic finished run, written through RunDir with the records' own encoders."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    rundir = RunDir(root)
    ids = [island_id(i) for i in range(islands)]
    run_id = "bench" + "0" * 27
    config = RunConfig(problem="rastrigin", dim=dim, population=100, generations=generations)
    config_dict = config.to_dict()
    config_dict["migration"]["every"] = 10
    rundir.create_or_read_manifest(lambda: {
        "schema": 1, "run_id": run_id, "created": time.time() - 3600, "config": config_dict,
        "islands": ids, "planned_islands": ids, "overrides": {}})
    now = time.time()
    for n, island in enumerate(ids):
        files = rundir.island(island)
        rundir.ensure(island)
        left, right = ids[n - 1], ids[(n + 1) % islands]
        event = MigrationEvent(sent=5, received=10, adopted=7, rejected=3, sources=(left, right), seconds=0.0012)
        chunk = []
        for g in range(generations + 1):
            sampled = g % DIVERSITY_EVERY == 0
            line = HistoryLine(
                generation=g, best=-100.0 / (g + 1) - rng.random(), mean=-200.0 / (g + 1) - rng.random(),
                best_ever=-100.0 / (g + 1), evaluations=100 * (g + 1), time=round(now - 3600 + g * 0.3, 3),
                migration=event if g and sampled else None,
                diversity=round(0.3 / (1 + g / 100) + 0.01 * rng.random(), 6) if sampled else None,
                foreign=round(rng.random(), 4) if sampled else None,
                origins={n: 60, (n + 1) % islands: 40} if sampled else {})
            chunk.append(line.to_body())
            if len(chunk) == 5000:
                files.append_history(chunk)
                chunk = []
        files.append_history(chunk, durable=False)
        files.save_checkpoint(generations, {"generation": generations, "genomes": nrng.random((100, dim))})
        events = generations // 10
        migration = Migration(events=events, sent=5 * events, received=10 * events, adopted=7 * events,
                              rejected=3 * events, micros=1200 * events,
                              received_from={left: 5 * events, right: 5 * events})
        status = IslandStatus(
            island=island, run_id=run_id, state="finished", reason="generations", generation=generations,
            generations=generations, best=-0.1, mean=-0.5, best_ever=-0.1 * (1 + n / islands),
            best_ever_generation=generations - 3, best_genome=nrng.random(dim), evaluations=100 * (generations + 1),
            evals_per_sec=5000.0, diversity=0.02, foreign_share=0.4, centroid=nrng.random(dim),
            origins={n: 60, (n + 1) % islands: 40}, migration=migration, device="cpu", pid=1,
            host=socket.gethostname(), started=now - 3600, heartbeat=now, beat=generations)
        files.write_status(status.to_body())


def summarise(root: Path, run_id: str = "bench" + "0" * 27) -> None:
    """Each island's history summary, as a resumed island rebuilds it from its history
    (`HistoryRecorder.resume`): a live island keeps it as it appends its lines."""
    rundir = RunDir(root)
    for island in rundir.island_ids():
        files = rundir.island(island)
        lines = sample_records(files.history_lines(), 1 << 62, DIVERSITY_KEY)
        files.write_summary(HistorySummary.from_lines(run_id, island, lines).to_body())


def cached_run(islands: int, generations: int, dim: int, cache: Path) -> tuple[Path, float]:
    """The run directory of this size under `cache`, built once (a `.complete` file marks it
    done, a `.summarised` file that its islands' history summaries are written)."""
    root = cache / f"run-{islands}x{generations}"
    done = cache / f"run-{islands}x{generations}.complete"
    summarised = cache / f"run-{islands}x{generations}.summarised"
    if done.exists():
        t = time.perf_counter()
        if not summarised.exists():
            summarise(root)
            summarised.write_text("ok\n")
        return root, time.perf_counter() - t
    if root.exists():
        subprocess.run(["rm", "-rf", "--", str(root)], check=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    build(root, islands, generations, dim)
    done.write_text("ok\n")
    summarise(root)
    summarised.write_text("ok\n")
    return root, time.perf_counter() - t


def cpu_of(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def child_cpu(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """CPU seconds (user + system) of one child process, and the bytes it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:])} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), len(done.stdout)


def bench(islands: int, generations: int, args: argparse.Namespace) -> dict:
    root, built = cached_run(islands, generations, args.dim, args.cache)
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "COLUMNS": "160"}
    cli = [sys.executable, "-m", "islands", "status", "--run-dir", str(root)]
    child_cpu(cli + ["--json"], env)  # warm the page cache and the bytecode cache once
    report = build_report(root)
    assert report["totals"]["islands"] == islands, report["totals"]
    load_before = os.getloadavg()
    lib = [cpu_of(lambda: build_report(root)) for _ in range(args.repeat)]
    js = [child_cpu(cli + ["--json"], env) for _ in range(args.repeat)]
    table = [child_cpu(cli, env)[0] for _ in range(args.repeat)]
    startup = [child_cpu([sys.executable, "-c", "import islands.status.cli"], env)[0] for _ in range(args.repeat)]
    load_after = os.getloadavg()
    return {
        "islands": islands, "generations": generations, "run_dir_mb": round(size / 1e6, 1), "build_s": round(built, 1),
        "target_cpu_s": TARGETS_S.get((islands, generations)),
        "library_cpu_s": _stats(lib), "cli_json_cpu_s": _stats([c for c, _ in js]), "cli_table_cpu_s": _stats(table),
        "import_cpu_s": _stats(startup), "json_bytes": js[0][1],
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }


def _stats(vals: list[float]) -> dict:
    return {"median": round(statistics.median(vals), 3), "max": round(max(vals), 3), "runs": [round(v, 3) for v in vals]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1024x2000,4096x10000", help="ISLANDSxGENERATIONS, comma-separated")
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=CACHE, help="where run directories are built and kept")
    ap.add_argument("--json-out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    results, ok = [], True
    for spec in args.sizes.split(","):
        n, g = (int(x) for x in spec.lower().split("x"))
        r = bench(n, g, args)
        results.append(r)
        target = r["target_cpu_s"]
        print(f"{n} islands x {g} generations: {r['run_dir_mb']} MB" + (f" (built in {r['build_s']} s)" if r["build_s"] else "")
              + f", load average {r['loadavg_before'][0]} -> {r['loadavg_after'][0]} on {r['cpus']} CPUs")
        for key in ("library_cpu_s", "cli_json_cpu_s", "cli_table_cpu_s", "import_cpu_s"):
            med = r[key]["median"]
            verdict = "" if key == "import_cpu_s" or target is None else (
                f"  ok (< {target:g} s)" if med < target else f"  MISSES the target (< {target:g} s)")
            ok &= key == "import_cpu_s" or target is None or med < target
            print(f"  {key:<16} CPU median {med:7.3f} s   max {r[key]['max']:7.3f} s{verdict}")
        print(f"  --json output    {r['json_bytes'] / 1e6:.2f} MB")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
