#!/usr/bin/env python3
"""Search quality at the same total evaluations: does migration help?

For each problem and seed, four real runs spend the same evaluations:
  single    one population of N x P (one `islands evolve` process)
  isolated  N islands of P, no migration (`islands launch --topology none`)
  ring      N islands of P migrating on a one-way ring
  full      N islands of P migrating fully connected
Reports the median best fitness over seeds and the median evaluations (and seconds) until the
archipelago's best first reached a target.

    python scripts/bench_quality.py [--quick] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from migration_pool.rundir import RunDir  # noqa: E402

TARGETS = {"rastrigin": -0.1, "schwefel": -100.0}  # hard enough at D=20 to tell the modes apart
MODES = ("single", "isolated", "ring", "full")


def _islands(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "islands", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def one_run(mode: str, problem: str, seed: int, n: int, pop: int, gens: int, dim: int, every: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        common = ["--run-dir", str(run_dir), "--problem", problem, "--dim", str(dim),
                  "--generations", str(gens), "--seed", str(seed), "--target", "0",
                  "--checkpoint-every", str(gens)]
        if mode == "single":
            _islands("evolve", "island-00", "--quiet", "--population", str(n * pop), *common)
        else:
            topo = {"isolated": ["--migrate-every", "0"],
                    "ring": ["--migrate-every", str(every), "--topology", "ring"],
                    "full": ["--migrate-every", str(every), "--topology", "full"]}[mode]
            _islands("launch", "-n", str(n), "--population", str(pop), *topo, *common)
        return _summarise(RunDir(run_dir), TARGETS[problem])


def _summarise(rundir: RunDir, target: float) -> dict:
    """Best fitness, and evaluations/seconds until the archipelago first reached `target`."""
    best = float("-inf")
    hits: list[tuple[float, int]] = []  # (seconds since start, archipelago evaluations) per island
    histories = {i: rundir.island(i).read_history() for i in rundir.island_ids()}
    start = min(h[0]["time"] for h in histories.values() if h)
    per_gen_evals = sum(h[1]["evaluations"] - h[0]["evaluations"] for h in histories.values() if len(h) > 1)
    for rows in histories.values():
        for r in rows:
            if r["best_ever"] is not None:
                best = max(best, r["best_ever"])
        hit = next((r for r in rows if r["best_ever"] is not None and r["best_ever"] >= target), None)
        if hit is not None:
            hits.append((hit["time"] - start, hit["generation"] * per_gen_evals))
    first = min(hits) if hits else None
    return {"best": best, "seconds_to_target": first[0] if first else None,
            "evals_to_target": first[1] if first else None}


def _median(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and generations")
    ap.add_argument("--out", help="write JSON results here")
    args = ap.parse_args()
    n, pop, dim, every = 4, 50, 20, 10
    seeds = range(3) if args.quick else range(7)
    gens = 250 if args.quick else 600
    results = []
    for problem in TARGETS:
        for mode in MODES:
            runs = [one_run(mode, problem, s, n, pop, gens, dim, every) for s in seeds]
            row = {
                "problem": problem, "mode": mode, "islands": 1 if mode == "single" else n,
                "population_per_island": n * pop if mode == "single" else pop,
                "total_evaluations": n * pop * (gens + 1), "seeds": len(runs),
                "median_best": _median([r["best"] for r in runs]),
                "target": TARGETS[problem],
                "reached_target": sum(r["evals_to_target"] is not None for r in runs),
                "median_evals_to_target": _median([r["evals_to_target"] for r in runs]),
                "median_seconds_to_target": _median([r["seconds_to_target"] for r in runs]),
            }
            results.append(row)
            print(f"{problem:10s} {mode:9s} median best {row['median_best']:10.3f}   "
                  f"reached {row['target']} in {row['reached_target']}/{row['seeds']} seeds", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"search_quality": results}, indent=2))


if __name__ == "__main__":
    main()
