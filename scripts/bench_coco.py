#!/usr/bin/env python3
"""COCO's bbob functions: islands archipelagos against pycma BIPOP and pygmo archipelagos.

The public suite (`pip install coco-experiment`, in the `peers` extra), functions f2, f4-f7,
f9-f14, f16-f19, f21, f23, f24 only: f1, f3, f8, f15, f20 and f22 are held out for an
independent check and this script refuses to run them. Each method gets the same budget per
run (default 2e4 x D evaluations, the archipelago's islands share it) on every (function, D,
instance) and stops early at f - f_opt <= 1e-8, COCO's final target. Methods are those of
scripts/quality_runners.py: 'cmaes x4' is four islands on a ring with the run's default
migration, in one process (the island's own algorithm and policy code, the file exchange
replaced by handing batches over in memory); 'pycma-bipop' is `cma.fmin2(restarts=9,
bipop=True)`; 'pygmo-sade x4' is four pygmo populations of 20 on a ring. A COCO function is
given to every method as an islands `Problem` (fitness -(f - f_opt), box [-5, 5]^D); f_opt is
read from the point COCO names as the optimum.

Reported per (function, D) and method: runs reaching 1e-8 (of the instances), median
evaluations to 1e-2 and to 1e-8 (over the runs that reached it), median final f - f_opt; per
(function, D) the better peer (more runs at 1e-8, then fewer evaluations) and whether each
islands method met the targets (at least as many runs at 1e-8; evaluations to 1e-8 no more
than the better peer's). Writes coco.json, coco.md and coco-ecdf.png (share of (function,
instance, target 1e2..1e-8) reached against evaluations / D, per D) to --out.

    python scripts/bench_coco.py --quick                      # D=10, 2 instances, 6 functions
    python scripts/bench_coco.py [--dims 10,20] [--instances 1-5] [--functions 2,4-7]
        [--methods "cmaes x4,pycma-bipop"] [--budget-per-dim 20000] [--out DIR]
    python scripts/bench_coco.py --merge a/coco.json b/coco.json --out DIR   # one table from parts
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from islands.threads import limit_env  # noqa: E402

limit_env()
import numpy as np  # noqa: E402
import torch  # noqa: E402

from islands.problems import Problem  # noqa: E402
from ecdf import ecdf_plot  # noqa: E402
from quality_runners import method_runner  # noqa: E402

FUNCTIONS = (2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 21, 23, 24)
HELD_OUT = (1, 3, 8, 15, 20, 22)
QUICK_FUNCTIONS = (2, 10, 12, 16, 21, 24)  # separable and rotated ill-conditioned, rugged, weak structure
METHODS = ("cmaes x4", "cmaes+de+ga x4", "pycma-bipop", "pygmo-de x4", "pygmo-sade x4")
QUICK_METHODS = ("cmaes x4 restarts=bipop", "cmaes x4 restarts=ipop", "pycma-bipop", "pygmo-sade x4")
PEERS = ("pycma-bipop", "pygmo-de x4", "pygmo-sade x4")
NAMES = {2: "ellipsoid", 4: "Bueche-Rastrigin", 5: "linear slope", 6: "attractive sector", 7: "step ellipsoid",
         9: "Rosenbrock rotated", 10: "ellipsoid rotated", 11: "discus", 12: "bent cigar", 13: "sharp ridge",
         14: "different powers", 16: "Weierstrass", 17: "Schaffers F7", 18: "Schaffers F7 ill-cond.",
         19: "Griewank-Rosenbrock", 21: "Gallagher 101 peaks", 23: "Katsuura", 24: "Lunacek bi-Rastrigin"}


class UsageError(Exception):
    """Bad command-line input: one line, exit code 2."""


def int_list(text: str, what: str) -> list[int]:
    """'2,4-7' -> [2, 4, 5, 6, 7]."""
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out += list(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise UsageError(f"{what}: expected numbers and ranges like 2,4-7, got {text!r}") from None
    return out


def coco_problem(function: int, dim: int, instance: int) -> Problem:
    """bbob f`function` as a maximised islands Problem with optimum 0 (fitness -(f - f_opt))."""
    import cocoex  # lazy: an optional extra, reported when missing

    suite = cocoex.Suite("bbob", "", f"dimensions:{dim} instance_indices:{instance} function_indices:{function}")
    coco = suite[0]
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:  # COCO writes the optimum's location to a file
        os.chdir(tmp)
        try:
            coco._best_parameter("print")
            xopt = np.loadtxt("._bbob_problem_best_parameter.txt")
        finally:
            os.chdir(here)
    fopt = float(coco(xopt))

    def fitness(x: torch.Tensor) -> torch.Tensor:
        rows = x.detach().cpu().double().numpy()
        return torch.tensor([fopt - coco(r) for r in rows], dtype=x.dtype, device=x.device)

    return Problem(coco.id, dim, -5.0, 5.0, fitness, optimum=0.0, description=coco.name)


def _median(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarise(runs: list[dict]) -> list[dict]:
    """One row per (function, D, method)."""
    rows = []
    for key in dict.fromkeys((r["function"], r["dim"], r["method"]) for r in runs):
        cell = [r for r in runs if (r["function"], r["dim"], r["method"]) == key]
        rows.append({
            "function": key[0], "dim": key[1], "method": key[2], "runs": len(cell),
            "reached_1e-8": sum(r["hits"].get("1e-08") is not None for r in cell),
            "median_evals_to_1e-2": _median([r["hits"].get("1e-02") for r in cell]),
            "median_evals_to_1e-8": _median([r["hits"].get("1e-08") for r in cell]),
            "median_precision": _median([r["precision"] for r in cell]),
            "seconds": sum(r["seconds"] for r in cell),
        })
    return sorted(rows, key=lambda r: (r["dim"], r["function"]))


def _rank(row: dict) -> tuple:
    return (-row["reached_1e-8"], row["median_evals_to_1e-8"] or float("inf"), row["median_precision"])


def verdicts(rows: list[dict]) -> list[dict]:
    """Per (function, D) and islands method: against the better peer of that cell."""
    out = []
    for key in dict.fromkeys((r["function"], r["dim"]) for r in rows):
        cell = [r for r in rows if (r["function"], r["dim"]) == key]
        peers = [r for r in cell if r["method"] in PEERS]
        if not peers:
            continue
        peer = min(peers, key=_rank)
        for ours in (r for r in cell if r["method"] not in PEERS):
            both = ours["reached_1e-8"] and peer["reached_1e-8"]
            out.append({
                "function": key[0], "dim": key[1], "method": ours["method"], "peer": peer["method"],
                "reached": ours["reached_1e-8"], "peer_reached": peer["reached_1e-8"], "runs": ours["runs"],
                "reached_met": ours["reached_1e-8"] >= peer["reached_1e-8"],
                "evals_ratio": (ours["median_evals_to_1e-8"] / peer["median_evals_to_1e-8"]) if both else None,
            })
    return out


def _evals(v: float | None) -> str:
    return "-" if v is None else (f"{v / 1000:,.1f}k" if v >= 1000 else f"{v:,.0f}")


def markdown(rows: list[dict], verdict: list[dict], header: str) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [header, "", "Each cell: runs reaching 1e-8 / runs · median evaluations to 1e-2 · to 1e-8 "
             "(over the runs that reached it).", "",
             "| f | D | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    by = {(r["function"], r["dim"], r["method"]): r for r in rows}
    for f, d in dict.fromkeys((r["function"], r["dim"]) for r in rows):
        cells = []
        for m in methods:
            r = by.get((f, d, m))
            cells.append("" if r is None else f"{r['reached_1e-8']}/{r['runs']} · {_evals(r['median_evals_to_1e-2'])}"
                         f" · {_evals(r['median_evals_to_1e-8'])}")
        lines.append(f"| f{f} {NAMES.get(f, '')} | {d} | " + " | ".join(cells) + " |")
    totals = [sum(r["reached_1e-8"] for r in rows if r["method"] == m) for m in methods]
    counts = [sum(r["runs"] for r in rows if r["method"] == m) for m in methods]
    lines.append("| **all** | | " + " | ".join(f"**{t}/{c}**" for t, c in zip(totals, counts)) + " |")
    best_peer = sum(max((r["reached_1e-8"] for r in rows if (r["function"], r["dim"]) == key and r["method"] in PEERS),
                        default=0) for key in dict.fromkeys((r["function"], r["dim"]) for r in rows))
    lines += ["", f"Better peer per cell, summed: {best_peer} runs reaching 1e-8.", ""]
    for m in dict.fromkeys(v["method"] for v in verdict):
        mine = [v for v in verdict if v["method"] == m]
        met = [v for v in mine if v["reached_met"]]
        missed = [f"f{v['function']} D={v['dim']} ({v['reached']} vs {v['peer_reached']} {v['peer']})"
                  for v in mine if not v["reached_met"]]
        ratios = [v["evals_ratio"] for v in mine if v["evals_ratio"] is not None]
        faster = sum(r <= 1.0 for r in ratios)
        lines.append(f"- **{m}**: at least as many runs at 1e-8 as the better peer on {len(met)}/{len(mine)} cells"
                     f"{' (missed: ' + ', '.join(missed) + ')' if missed else ''}; evaluations to 1e-8 <= the better "
                     f"peer's on {faster}/{len(ratios)} cells both solve (target 2/3"
                     f"{', met' if ratios and faster * 3 >= 2 * len(ratios) else ', missed' if ratios else ''})"
                     + (f", ratios {', '.join(f'{r:.2f}' for r in ratios)}" if ratios else "") + ".")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="D=10, instances 1-2, six functions, the restart variants")
    ap.add_argument("--out", default="bench-out/coco", help="results folder (default bench-out/coco)")
    ap.add_argument("--dims", help="comma-separated dimensions (default 10,20; quick 10)")
    ap.add_argument("--instances", help="instances, e.g. 1-5 (default 1-5; quick 1-2)")
    ap.add_argument("--functions", help="bbob function numbers, e.g. 2,4-7 (default: all 18 not held out)")
    ap.add_argument("--methods", help="comma-separated methods (default: " + ", ".join(METHODS) + ")")
    ap.add_argument("--budget-per-dim", type=int, default=20000, help="evaluations per run / D (default 20000)")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="only merge earlier coco.json files into one table")
    args = ap.parse_args(argv)
    args.dim_list = int_list(args.dims or ("10" if args.quick else "10,20"), "--dims")
    args.instance_list = int_list(args.instances or ("1-2" if args.quick else "1-5"), "--instances")
    args.function_list = (int_list(args.functions, "--functions") if args.functions
                          else list(QUICK_FUNCTIONS if args.quick else FUNCTIONS))
    held = sorted(set(args.function_list) & set(HELD_OUT))
    if held:
        raise UsageError(f"bbob f{', f'.join(map(str, held))} held out for an independent check; "
                         f"run only {', '.join(f'f{f}' for f in FUNCTIONS)}")
    if not set(args.function_list) <= set(FUNCTIONS):
        raise UsageError(f"--functions: bbob has f1-f24; this benchmark runs {', '.join(f'f{f}' for f in FUNCTIONS)}")
    if any(d not in (2, 3, 5, 10, 20, 40) for d in args.dim_list):
        raise UsageError(f"--dims: bbob has D in 2, 3, 5, 10, 20, 40, got {args.dims}")
    if any(not 1 <= i <= 15 for i in args.instance_list) or args.budget_per_dim < 1:
        raise UsageError("--instances must lie in 1-15 and --budget-per-dim be >= 1")
    args.method_list = ([m.strip() for m in args.methods.split(",")] if args.methods
                        else list(QUICK_METHODS if args.quick else METHODS))
    return args


def run(args: argparse.Namespace, command: str) -> dict:
    """Every (D, function, instance, method) run, in that order, with progress on stdout."""
    torch.set_num_threads(1)
    runs: list[dict] = []
    total = len(args.dim_list) * len(args.function_list) * len(args.instance_list) * len(args.method_list)
    started = time.monotonic()
    for dim in args.dim_list:
        budget = args.budget_per_dim * dim
        for function in args.function_list:
            for instance in args.instance_list:
                for method in args.method_list:
                    problem = coco_problem(function, dim, instance)
                    t = time.monotonic()
                    trace = method_runner(method)(problem, dim, budget, instance)
                    runs.append({"function": function, "dim": dim, "instance": instance, "method": method,
                                 "seconds": time.monotonic() - t, **trace.summary()})
                    r = runs[-1]
                    eta = (time.monotonic() - started) / len(runs) * (total - len(runs))
                    print(f"f{function:<2d} D={dim:<2d} i{instance} {method:24s} f-fopt {r['precision']:9.2e} "
                          f"evals {r['evaluations']:7d} {r['seconds']:6.1f}s  [{len(runs)}/{total}, "
                          f"ETA {eta / 60:.0f} min]", flush=True)
    return {"command": command, "date": datetime.date.today().isoformat(), "budget_per_dim": args.budget_per_dim,
            "runs": runs}


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(argv)
    except UsageError as e:
        print(f"bench_coco: {e}", file=sys.stderr)
        return 2
    command = "python scripts/bench_coco.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.merge:
        try:
            parts = [json.loads(Path(p).read_text()) for p in args.merge]
        except (OSError, ValueError) as e:
            print(f"bench_coco: cannot read a --merge file ({e})", file=sys.stderr)
            return 2
        data = {"command": "; ".join(p["command"] for p in parts), "date": max(p["date"] for p in parts),
                "budget_per_dim": parts[0]["budget_per_dim"], "runs": [r for p in parts for r in p["runs"]]}
    else:
        try:
            import cocoex  # noqa: F401  # lazy: an optional extra, checked before any run
        except ImportError:
            print("bench_coco: needs COCO: pip install coco-experiment (or pip install -e '.[peers]')", file=sys.stderr)
            return 2
        data = run(args, command)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = summarise(data["runs"])
    verdict = verdicts(rows)
    header = (f"`{data['command']}` ({data['date']}): budget {data['budget_per_dim']:,} x D evaluations per run, "
              "runs stop at f - f_opt <= 1e-8.")
    md = markdown(rows, verdict, header)
    (out / "coco.json").write_text(json.dumps({**data, "rows": rows, "verdicts": verdict}, indent=1))
    (out / "coco.md").write_text(md)
    ecdf_plot(data["runs"], out / "coco-ecdf.png", data["budget_per_dim"], pairs="function, instance", peers=PEERS,
              title=lambda dim, mine: (f"bbob D={dim}, {len({r['function'] for r in mine})} functions, "
                                       "targets 1e2..1e-8"))
    print(md)
    print(f"wrote {out}/coco.json, coco.md, coco-ecdf.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
