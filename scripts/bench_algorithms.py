#!/usr/bin/env python3
"""Search quality of every islands algorithm against pycma (BIPOP) and a pygmo DE archipelago.

Every method gets the same evaluation budget (default 2e4 x D) on each problem, dimension and
seed, and stops early once f - f_opt <= 1e-8. Reported per problem and dimension: median
final precision f - f_opt, seeds reaching 1e-8, median evaluations to 1e-2 and to 1e-8 (over
the seeds that reached it), and the target ratios the project sets: the best islands method
against the better peer. Writes JSON, a Markdown table and an ECDF plot (share of
(problem, seed, target) pairs reached against evaluations / D, per method), as COCO draws them.

    python scripts/bench_algorithms.py [--quick] [--out DIR] [--dims 10,20] [--seeds 5]
        [--problems a,b] [--methods "cmaes,de x4,cmaes+de+ga x4,pycma-bipop"] [--budget-per-dim 20000]

Methods: an algorithm name is one island with the whole budget; "NAME xN" is N islands on a
ring (the run's default migration settings); "A+B+C xN" mixes algorithms over N islands.

Peers come from the optional extra (`pip install -e ".[peers]"`); a missing one is skipped.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from islands.threads import limit_env  # noqa: E402

limit_env()
import torch  # noqa: E402

from ecdf import ecdf_plot  # noqa: E402
from quality_runners import method_runner  # noqa: E402

PROBLEMS = ("sphere", "ellipsoid", "rotated_ellipsoid", "bent_cigar", "rosenbrock", "rastrigin",
            "rotated_rastrigin", "schwefel", "rotated_schwefel", "lunacek")
QUICK_PROBLEMS = ("ellipsoid", "rosenbrock", "rastrigin", "rotated_rastrigin", "schwefel")
METHODS = ("ga", "cmaes", "de", "ga x4", "cmaes x4", "de x4", "cmaes+de+ga x4", "pycma-bipop", "pygmo-de x4",
           "pygmo-sade x4")
PEERS = ("pycma-bipop", "pygmo-de x4", "pygmo-sade x4")


def _median(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarise(runs: list[dict]) -> dict:
    prec = [r["precision"] for r in runs]
    return {
        "seeds": len(runs),
        "median_precision": _median(prec),
        "reached_1e-8": sum(r["hits"].get("1e-08") is not None for r in runs),
        "median_evals_to_1e-2": _median([r["hits"].get("1e-02") for r in runs]),
        "median_evals_to_1e-8": _median([r["hits"].get("1e-08") for r in runs]),
        "median_seconds": _median([r["seconds"] for r in runs]),
    }


def targets(rows: list[dict]) -> list[dict]:
    """Per problem and dimension: the best islands method against the better peer."""
    out = []
    for key in sorted({(r["problem"], r["dim"]) for r in rows}):
        cell = [r for r in rows if (r["problem"], r["dim"]) == key]
        ours = [r for r in cell if r["method"] not in PEERS]
        peers = [r for r in cell if r["method"] in PEERS]
        if not ours or not peers:
            continue
        rank = lambda r: (r["median_precision"], r["median_evals_to_1e-8"] or float("inf"))  # noqa: E731
        best_ours, best_peer = min(ours, key=rank), min(peers, key=rank)
        peer_solved = [r for r in peers if r["median_evals_to_1e-8"] is not None and r["reached_1e-8"] * 2 > r["seeds"]]
        fastest_peer = min(peer_solved, key=lambda r: r["median_evals_to_1e-8"]) if peer_solved else None
        ours_solved = [r for r in ours if r["median_evals_to_1e-8"] is not None and r["reached_1e-8"] * 2 > r["seeds"]]
        fastest_ours = min(ours_solved, key=lambda r: r["median_evals_to_1e-8"]) if ours_solved else None
        ratio = None
        if fastest_peer is not None:
            ratio = (fastest_ours["median_evals_to_1e-8"] / fastest_peer["median_evals_to_1e-8"]
                     if fastest_ours else float("inf"))
        out.append({
            "problem": key[0], "dim": key[1],
            "best_islands": best_ours["method"], "best_islands_precision": best_ours["median_precision"],
            "best_peer": best_peer["method"], "best_peer_precision": best_peer["median_precision"],
            "precision_met": best_ours["median_precision"] <= max(best_peer["median_precision"], 1e-8),
            "evals_ratio_to_fastest_peer": ratio,
            "evals_met": ratio is None or ratio <= 1.5,
        })
    return out


def markdown(rows: list[dict], verdicts: list[dict], budget_per_dim: int) -> str:
    lines = [f"Budget {budget_per_dim:,} x D evaluations per run; runs stop at f - f_opt <= 1e-8.", "",
             "| problem | D | method | median f - f_opt | seeds at 1e-8 | median evals to 1e-2 | median evals to 1e-8 | median s |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731
    for r in rows:
        lines.append(f"| {r['problem']} | {r['dim']} | {r['method']} | {r['median_precision']:.2e} | "
                     f"{r['reached_1e-8']}/{r['seeds']} | {fmt(r['median_evals_to_1e-2'])} | "
                     f"{fmt(r['median_evals_to_1e-8'])} | {r['median_seconds']:.1f} |")
    lines += ["", "| problem | D | best islands method | its precision | better peer | its precision | precision target | evals to 1e-8 / fastest peer's (target <= 1.5) |",
              "|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        ratio = v["evals_ratio_to_fastest_peer"]
        lines.append(f"| {v['problem']} | {v['dim']} | {v['best_islands']} | {v['best_islands_precision']:.2e} | "
                     f"{v['best_peer']} | {v['best_peer_precision']:.2e} | {'met' if v['precision_met'] else 'MISSED'} | "
                     f"{'-' if ratio is None else ('never' if ratio == float('inf') else f'{ratio:.2f}')} "
                     f"{'' if v['evals_met'] else 'MISSED'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="D=10, 3 seeds, 5 problems")
    ap.add_argument("--out", default="bench-out", help="output directory (default bench-out/)")
    ap.add_argument("--dims", help="comma-separated dimensions (default 10,20; quick 10)")
    ap.add_argument("--seeds", type=int, help="seeds per cell (default 5; quick 3)")
    ap.add_argument("--problems", help="comma-separated problem names")
    ap.add_argument("--methods", help="comma-separated methods (e.g. 'cmaes,de x4,cmaes+de+ga x4,pycma-bipop')")
    ap.add_argument("--budget-per-dim", type=int, default=20000, help="evaluations per run / D (default 20000)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dims = [int(d) for d in (args.dims or ("10" if args.quick else "10,20")).split(",")]
    seeds = args.seeds or (3 if args.quick else 5)
    problems = args.problems.split(",") if args.problems else list(QUICK_PROBLEMS if args.quick else PROBLEMS)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else list(METHODS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs, rows, skipped = [], [], {}
    total = len(dims) * len(problems) * len(methods) * seeds
    started, done = time.monotonic(), 0
    for dim in dims:
        budget = args.budget_per_dim * dim
        for problem in problems:
            for method in methods:
                if method in skipped:
                    continue
                cell = []
                for seed in range(seeds):
                    t = time.monotonic()
                    try:
                        trace = method_runner(method)(problem, dim, budget, seed)
                    except ImportError as e:
                        skipped[method] = f"not installed ({e.name}); pip install -e '.[peers]'"
                        break
                    run = {"problem": problem, "dim": dim, "method": method, "seed": seed,
                           "seconds": time.monotonic() - t, **trace.summary()}
                    cell.append(run)
                    done += 1
                if not cell:
                    continue
                runs += cell
                row = {"problem": problem, "dim": dim, "method": method, **summarise(cell)}
                rows.append(row)
                eta = (time.monotonic() - started) / max(done, 1) * (total - done)
                print(f"{problem:18s} D={dim:<3d} {method:14s} median {row['median_precision']:.2e}  "
                      f"1e-8 on {row['reached_1e-8']}/{seeds}  evals {row['median_evals_to_1e-8'] or '-'}  "
                      f"[{done}/{total}, ETA {eta / 60:.0f} min]", flush=True)
    verdicts = targets(rows)
    md = markdown(rows, verdicts, args.budget_per_dim)
    if skipped:
        md += "\n" + "\n".join(f"- {m}: skipped, {why}" for m, why in skipped.items()) + "\n"
    (out / "algorithms.json").write_text(json.dumps({"rows": rows, "targets": verdicts, "runs": runs,
                                                     "skipped": skipped, "budget_per_dim": args.budget_per_dim},
                                                    indent=1))
    (out / "algorithms.md").write_text(md)
    ecdf_plot(runs, out / "algorithms-ecdf.png", args.budget_per_dim, pairs="problem, seed", peers=PEERS,
              title=lambda dim, mine: f"D={dim}: targets 1e2..1e-8")
    print(md)
    print(f"wrote {out}/algorithms.json, algorithms.md, algorithms-ecdf.png")


if __name__ == "__main__":
    main()
