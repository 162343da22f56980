#!/usr/bin/env python
"""Benchmark `islands status` on a synthetic run: 128 islands x 1,000 generations of history.

The run directory is built with `RunDir` methods only (manifest, statuses, histories and a
few checkpoints per island), in the worst case for the report: every history line carries a
diversity sample and every island has migration counters from two neighbours. It then times
the library call `build_report` and `islands status --json` (and the table) end to end as a
fresh process, which includes interpreter start-up and imports. Target: under one second.

    python scripts/bench_status.py [--islands 128] [--generations 1000] [--repeat 5] [--json-out F]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from islands.config import RunConfig, island_id  # noqa: E402
from islands.status.report import build_report  # noqa: E402
from migration_pool.rundir import RunDir  # noqa: E402

TARGET_S = 1.0


def build(root: Path, islands: int, generations: int, dim: int, seed: int = 0) -> None:
    """A synthetic finished-or-running run with full histories, written through RunDir."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    rundir = RunDir(root)
    ids = [island_id(i) for i in range(islands)]
    config = RunConfig(problem="rastrigin", dim=dim, population=100, generations=generations)
    config_dict = config.to_dict()
    config_dict["migration"]["every"] = 10
    rundir.create_or_read_manifest(lambda: {
        "schema": 1, "run_id": "bench" + "0" * 27, "created": time.time() - 3600, "config": config_dict,
        "islands": ids, "overrides": {}})
    now = time.time()
    for n, island in enumerate(ids):
        rundir.ensure(island)
        records = []
        for g in range(generations + 1):
            rec = {"generation": g, "best": -100.0 / (g + 1) - rng.random(), "mean": -200.0 / (g + 1) - rng.random(),
                   "best_ever": -100.0 / (g + 1), "evaluations": 100 * (g + 1), "time": round(now - 3600 + g, 3)}
            if g and g % 10 == 0:
                rec["migration"] = {"sent": 5, "received": 10, "adopted": 7, "rejected": 3, "bad_files": 0,
                                    "sources": [ids[n - 1], ids[(n + 1) % islands]], "seconds": 0.0012}
            rec.update(diversity=round(0.3 / (1 + g / 100) + 0.01 * rng.random(), 6), foreign=round(rng.random(), 4))
            records.append(rec)
        rundir.island(island).append_history(records)
        for g in (generations - 50, generations - 25, generations):
            rundir.island(island).save_checkpoint(g, {"generation": g, "genomes": nrng.random((100, dim))})
        events = generations // 10
        migration = {"events": events, "sent": 5 * events, "received": 10 * events, "adopted": 7 * events,
                     "rejected": 3 * events, "bad_files": 0, "micros": 1200 * events,
                     f"from:{ids[n - 1]}": 5 * events, f"from:{ids[(n + 1) % islands]}": 5 * events}
        rundir.island(island).write_status({
            "island": island, "run_id": "bench" + "0" * 27, "state": "finished", "reason": "generations",
            "generation": generations, "generations": generations, "best": -0.1, "mean": -0.5,
            "best_ever": -0.1 * (1 + n / islands), "best_ever_generation": generations - 3,
            "best_genome": nrng.random(dim), "evaluations": 100 * (generations + 1), "evals_per_sec": 5000.0,
            "diversity": 0.02, "foreign_share": 0.4, "centroid": nrng.random(dim), "migration": migration,
            "overrides": {}, "device": "cpu", "pid": 1, "host": socket.gethostname(), "started": now - 3600,
            "heartbeat": now, "beat": generations, "target": None,
        })


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--islands", type=int, default=128)
    ap.add_argument("--generations", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--run-dir", type=Path, default=None, help="build here and keep it (default: a temporary folder)")
    ap.add_argument("--json-out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        root = args.run_dir or Path(tmp) / "run"
        t = time.perf_counter()
        if not RunDir(root).is_run():
            build(root, args.islands, args.generations, args.dim)
        built = time.perf_counter() - t
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        cli = [sys.executable, "-m", "islands", "status", "--run-dir", str(root)]

        def run_cli(extra: list[str]) -> None:
            done = subprocess.run(cli + extra, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if done.returncode != 0:
                raise SystemExit(f"islands status failed ({done.returncode}): {done.stderr.decode()[-500:]}")

        run_cli(["--json"])  # warm the page cache and the bytecode cache once
        report = build_report(root)
        assert report["totals"]["islands"] == args.islands, report["totals"]
        figures = {
            "islands": args.islands,
            "generations": args.generations,
            "run_dir_mb": round(size / 1e6, 1),
            "build_s": round(built, 2),
            "library_s": timed(lambda: build_report(root), args.repeat),
            "cli_json_s": timed(lambda: run_cli(["--json"]), args.repeat),
            "cli_table_s": timed(lambda: run_cli([]), args.repeat),
            "startup_s": timed(lambda: subprocess.run([sys.executable, "-c", "pass"], env=env), args.repeat),
        }
    print(f"synthetic run: {args.islands} islands x {args.generations} generations, "
          f"{figures['run_dir_mb']} MB (built in {figures['build_s']} s)")
    ok = True
    for key in ("library_s", "cli_json_s", "cli_table_s", "startup_s"):
        vals = figures[key]
        med = statistics.median(vals)
        figures[key] = {"median": round(med, 4), "max": round(max(vals), 4), "runs": [round(v, 4) for v in vals]}
        verdict = "" if key == "startup_s" else ("  ok (< 1 s)" if med < TARGET_S else "  SLOW (target < 1 s)")
        ok &= key == "startup_s" or med < TARGET_S
        print(f"  {key:<12} median {med * 1000:7.1f} ms   max {max(vals) * 1000:7.1f} ms{verdict}")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
