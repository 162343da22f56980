#!/usr/bin/env python3
"""Does a run's "which setting won" reproduce? The run's ranking against isolated re-runs.

For each mode, a `--vary` launch of N islands (a GA's mutation_sigma and crossover_rate on
Rastrigin), then `islands.tuning.confirm` re-runs every island's settings alone on S new seeds
at the island's budget, and the Spearman correlation between the run's ranking (what
`islands status` / `islands confirm` rank by) and the re-runs' medians is reported. Modes:

    isolated   --migrate-every 0, ranked by best_ever
    migrating  the default migration (every 10, 1 migrant), ranked by own gain (what the status
               report ranks by when migration confounds best_ever)
    migrating-best  the same runs ranked by best_ever (what a user reading the island table sees)

Every repeat is printed; medians over repeats at the end.

    python scripts/bench_ranking.py [--islands 8] [--seeds 5] [--repeats 3] [--evaluations 20000]
        [--dim 10] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from islands.results import open_run  # noqa: E402
from islands.tuning import confirm  # noqa: E402

VARY = ["mutation_sigma=0.003:0.5:log", "crossover_rate=0.1:1.0"]


def launch(run: Path, migrate: bool, seed: int, args: argparse.Namespace) -> None:
    cmd = [sys.executable, "-m", "islands", "launch", "-n", str(args.islands), "--run-dir", str(run),
           "--problem", "rastrigin", "--dim", str(args.dim), "--population", "50", "--seed", str(seed),
           "--max-evaluations-per-island", str(args.evaluations), "--target", "1", "--plain",
           *[a for v in VARY for a in ("--vary", v)], *([] if migrate else ["--migrate-every", "0"])]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"launch failed ({out.returncode}): {out.stdout[-2000:]}{out.stderr[-2000:]}")


def measure(run: Path, by_best: bool, args: argparse.Namespace) -> dict:
    res = open_run(run)
    rows = confirm.confirm(res, top=args.islands, seeds=args.seeds, evaluations=args.evaluations,
                           workers=args.workers)
    scores = [r.candidate.score for r in rows]
    if by_best:  # the island table's view: best_ever whatever migration did
        scores = [res.status(r.candidate.source).best_ever for r in rows]
    return {"spearman": confirm.spearman(scores, [r.median for r in rows]),
            "by": "best_ever" if by_best else rows[0].candidate.by,
            "rows": [{"island": r.candidate.source, "settings": dict(r.candidate.settings), "score": s,
                      "rerun_median": r.median} for r, s in zip(rows, scores)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--islands", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--evaluations", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-ranking-") as tmp:
        for rep in range(args.repeats):
            for migrate in (False, True):
                run = Path(tmp) / f"{'mig' if migrate else 'iso'}-{rep}"
                launch(run, migrate, 100 + rep, args)
                for by_best in ((False, True) if migrate else (False,)):
                    row = measure(run, by_best, args)
                    row["mode"] = ("migrating-best" if by_best else "migrating") if migrate else "isolated"
                    row["repeat"] = rep
                    results.append(row)
                    print(f"repeat {rep}  {row['mode']:<15} ranked by {row['by']:<13} Spearman {row['spearman']}", flush=True)
    print("\n| mode | ranked by | Spearman per repeat | median |\n|---|---|---|---|")
    for mode in ("isolated", "migrating", "migrating-best"):
        rows = [r for r in results if r["mode"] == mode]
        vals = [r["spearman"] for r in rows if r["spearman"] is not None]
        per = ", ".join("n/a" if r["spearman"] is None else f"{r['spearman']:.2f}" for r in rows)
        med = f"{statistics.median(vals):.2f}" if vals else "n/a"
        print(f"| {mode} | {rows[0]['by'] if rows else '?'} | {per} | {med} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
