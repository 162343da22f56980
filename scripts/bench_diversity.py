"""Which migration keeps an archipelago diverse without costing quality?

For N islands (20 and 4) at equal total evaluations, compares one big population, isolated
islands and each migration policy (today's takeover default: every 10, the 5 best replacing
the 5 worst; fair replace; random replacement; one migrant; probability; delayed start;
near-duplicate rejection; combinations) on several problems with the GA and an adaptive
algorithm. For each: the median best precision (f - f_opt) and the median effective number
of origins at the end, exp(Shannon entropy) of the origin island over every individual of the
archipelago (N: every island's lineages equally alive; 1: one island took over).

Runs in-process (`quality_runners.run_archipelago`: the island's own algorithm, due rule and
immigration code; batches handed over in memory). Runs never stop early: the problems'
solved thresholds are off and the precision floor is -inf, so every method spends the same
evaluations.

    PYTHONPATH=. python3 scripts/bench_diversity.py --quick --out bench_out/diversity
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from islands.config import MigrationConfig  # noqa: E402
from scripts.quality_runners import FLOOR, effective_origins, run_archipelago  # noqa: E402

PROBLEMS = ("rastrigin", "schwefel", "rotated_rastrigin", "rosenbrock", "lunacek", "ellipsoid")
TAKEOVER = dict(every=10, migrants=5, emigrants="best", replacement="worst", probability=1.0, start=0,
                min_distance=0.0)  # the takeover default before bench_diversity


def policies(generations: int) -> dict[str, MigrationConfig | None]:
    """Name -> migration settings; None is one big population, every=0 is isolated."""
    late = generations // 4
    m = lambda **kw: MigrationConfig(**{**TAKEOVER, **kw})  # noqa: E731
    return {
        "one population": None,
        "isolated": MigrationConfig(every=0),
        "takeover (10, 5, best->worst)": m(),
        "fair replace (better)": m(replacement="better"),
        "random replacement": m(replacement="random"),
        "1 migrant": m(migrants=1),
        "probability 0.5": m(probability=0.5),
        f"start {late}": m(start=late),
        "near-dup 0.01": m(min_distance=0.01),
        "near-dup 0.05": m(min_distance=0.05),
        "1 migrant, random": m(migrants=1, replacement="random"),
        "1 migrant, near-dup 0.01": m(migrants=1, min_distance=0.01),
        "1 migrant, every 20": m(migrants=1, every=20),
        "2 migrants, random, near-dup 0.01": m(migrants=2, replacement="random", min_distance=0.01),
        "defaults": MigrationConfig(),
    }


def one_run(problem: str, dim: int, algo: str, n: int, pop: int, generations: int, seed: int,
            mig: MigrationConfig | None, sample_every: int) -> dict[str, Any]:
    budget = n * pop * (generations + 1)
    if "+" in algo:  # a mixed archipelago: the algorithms cycled over the islands, each at its default size
        names = algo.split("+")
        a = run_archipelago(problem, dim, budget, seed, [names[i % len(names)] for i in range(n)],
                            mig or MigrationConfig(every=0), sample_every=sample_every, floor=-math.inf)
    elif mig is None:
        a = run_archipelago(problem, dim, budget, seed, [algo], MigrationConfig(every=0),
                            population=n * pop, floor=-math.inf)
    else:
        a = run_archipelago(problem, dim, budget, seed, [algo] * n, mig, population=pop,
                            sample_every=sample_every, floor=-math.inf)
    return {"best": max(a.trace.best, 0.0), "origins": effective_origins(a.origins),
            "alive": len(a.origins), "adopted": a.adopted, "received": a.received,
            "timeline": a.timeline}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 problems, 2 seeds, the GA only, 20 islands")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--generations", type=int, default=200)
    ap.add_argument("--islands", type=int, nargs="+", default=[20, 4])
    ap.add_argument("--algorithms", nargs="+", default=["ga", "de", "cmaes+de+ga"],
                    help="algorithms; A+B+C is a mixed archipelago (the algorithms cycled over the islands)")
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--only", nargs="*", default=None, help="policy names to run (default all)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/diversity"))
    ap.add_argument("--render", type=Path, nargs="+", default=None,
                    help="only rewrite the Markdown of these diversity.json files (merged) into --out")
    args = ap.parse_args(argv)
    if args.render:
        merged = [r for f in args.render for r in json.loads(f.read_text())["results"]]
        args.out.mkdir(parents=True, exist_ok=True)
        names = list(dict.fromkeys(r["policy"] for r in merged))
        (args.out / "diversity.md").write_text(markdown(merged, names))
        plot(merged, args.out / "origins_over_time.png")
        return 0
    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.islands, args.algorithms = 2, [20], ["ga"]
        args.problems = args.problems[:3] if args.problems == list(PROBLEMS) else args.problems
    pols = policies(args.generations)
    if args.only:
        pols = {k: v for k, v in pols.items() if k in args.only or k == "takeover (10, 5, best->worst)"}
    pop = {"ga": 100, "de": 50, "cmaes": 10, "es": 100, "cmaes+de+ga": 53}  # mixed: their mean default
    results: list[dict[str, Any]] = []
    started = time.time()
    for algo in args.algorithms:
        for n in args.islands:
            for problem in args.problems:
                for name, mig in pols.items():
                    if mig is None and "+" in algo:
                        continue  # one population of a mixed archipelago means nothing
                    runs = [one_run(problem, args.dim, algo, n, pop.get(algo, 100), args.generations, s, mig,
                                    sample_every=10 if s == 0 else 0) for s in range(args.seeds)]
                    row = {"algorithm": algo, "islands": n, "problem": problem, "policy": name,
                           "settings": None if mig is None else {k: getattr(mig, k) for k in (
                               "every", "migrants", "emigrants", "replacement", "probability", "start",
                               "min_distance")},
                           "median_best": statistics.median(r["best"] for r in runs),
                           "median_origins": statistics.median(r["origins"] for r in runs),
                           "min_origins": min(r["origins"] for r in runs),
                           "bests": [r["best"] for r in runs], "origins": [r["origins"] for r in runs],
                           "timeline": runs[0]["timeline"]}
                    results.append(row)
                    print(f"{algo:5} x{n:<3} {problem:18} {name:36} best {row['median_best']:.3g}  "
                          f"origins {row['median_origins']:.1f}  ({time.time() - started:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "diversity.json").write_text(json.dumps(
        {"dim": args.dim, "generations": args.generations, "seeds": args.seeds, "results": results}, indent=1))
    (args.out / "diversity.md").write_text(markdown(results, list(pols)))
    plot(results, args.out / "origins_over_time.png")
    print(f"wrote {args.out}/diversity.json, diversity.md")
    return 0


def markdown(results: list[dict[str, Any]], names: list[str]) -> str:
    """Per (algorithm, islands): a row per policy, median best / median effective origins per problem,
    and how many problems it matches the takeover default's median quality on."""
    out = ["# Migration and diversity", "",
           "Cells: median best precision (f - f_opt, lower is better) / median effective origins at the end.",
           "'>= takeover': problems where the median best is at most the takeover default's x1.05",
           "(precisions below 1e-8, the benchmarks' 'solved' floor, count as equal).", ""]
    groups = sorted({(r["algorithm"], r["islands"]) for r in results})
    for algo, n in groups:
        rows = [r for r in results if r["algorithm"] == algo and r["islands"] == n]
        problems = list(dict.fromkeys(r["problem"] for r in rows))
        cell = {(r["policy"], r["problem"]): r for r in rows}
        out += [f"## {algo}, {n} islands", "",
                "| policy | " + " | ".join(problems) + " | >= takeover | min origins |",
                "|---" * (len(problems) + 3) + "|"]
        for name in names:
            if (name, problems[0]) not in cell:
                continue
            cells, wins, lows = [], 0, []
            for p in problems:
                r, base = cell[(name, p)], cell.get(("takeover (10, 5, best->worst)", p))
                cells.append(f"{r['median_best']:.3g} / {r['median_origins']:.1f}")
                wins += base is not None and max(r["median_best"], FLOOR) <= max(base["median_best"], FLOOR) * 1.05
                lows.append(r["median_origins"])
            out.append(f"| {name} | " + " | ".join(cells) + f" | {wins}/{len(problems)} | {min(lows):.1f} |")
        out.append("")
    return "\n".join(out)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Effective origins over generations per policy (GA, most islands, first problem, seed 0)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [r for r in results if r["timeline"]]
    if not rows:
        return
    algo, n, problem = rows[0]["algorithm"], max(r["islands"] for r in rows), rows[0]["problem"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        if (r["algorithm"], r["islands"], r["problem"]) == (algo, n, problem):
            g, e = zip(*r["timeline"])
            ax.plot(g, e, label=r["policy"])
    ax.set(xlabel="generation", ylabel="effective origins", title=f"{algo}, {n} islands, {problem}")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
