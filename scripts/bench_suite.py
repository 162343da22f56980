#!/usr/bin/env python3
"""The whole benchmark suite: run every benchmark script, collect JSON, Markdown and plots.

    python scripts/bench_suite.py [--quick] [--out DIR]      (or: scripts/bench [--quick])

Writes into DIR (default bench-out/): `results.json` (headline keys: `engine_overhead_ratio`,
`loop_overhead_ratio`, `memory` rows, and `scaling` points with `islands`, `parallel_efficiency`
and its spread, and `noise` where an efficiency above 1.05 cannot be real), `results.md` (the tables the
README shows), `scaling.png`, `migration.png`, `quality.png`, and each script's own JSON.
Every figure is a ratio or a rate measured within one run; the machine is named in the output.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run(script: str, out: Path, *args: str) -> dict:
    """Run one benchmark script, echo its output, and return the JSON it wrote."""
    print(f"\n== {script} {' '.join(args)}", flush=True)
    started = time.monotonic()
    subprocess.run([sys.executable, str(HERE / script), *args], check=True, cwd=ROOT)
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    return json.loads(out.read_text())


def machine() -> dict:
    import psutil
    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "torch": torch.__version__, "load_average_at_start": round(os.getloadavg()[0], 2),
            "date": time.strftime("%Y-%m-%d")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the under-5-minute variant")
    ap.add_argument("--out", default="bench-out", help="output directory (default bench-out/)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    cores = len(os.sched_getaffinity(0))
    results: dict = {"quick": quick, "machine": machine(), "out": str(out)}

    engine = run("bench_engine.py", out / "engine.json", "--out", str(out / "engine.json"),
                 *(["--rounds", "3", "--gens", "30", "--loop-rounds", "3", "--loop-scale", "0.5"] if quick
                   else ["--rounds", "9", "--gens", "60", "--loop-rounds", "7"]))
    results["engine_overhead_ratio"] = engine["engine_overhead_ratio"]
    results["loop_overhead_ratio"] = engine["loop_overhead_ratio"]
    results["engine"] = engine

    counts = sorted({*range(1, cores + 1), 2 * cores, 8 * cores})
    scaling = run("bench_scaling.py", out / "scaling.json", "--json", str(out / "scaling.json"),
                  "--islands", ",".join(map(str, counts)),
                  # Run lengths sized from measured start-up (never fails for want of overlap);
                  # each round pairs every N with its own single-island baseline.
                  *(["--window", "2", "--repeats", "2"] if quick else ["--window", "6", "--repeats", "3"]))
    results["scaling"] = scaling["points"]
    results["threads_per_island_max"] = max(p["threads_per_island"] for p in scaling["points"])

    migration = []
    for every in (1, 5, 10, 50):
        path = out / f"migration-{every}.json"
        data = run("bench_migration.py", path, "--every", str(every), "--out", str(path), "--rounds", "1",
                   *(["--quick", "--islands", "2"] if quick else []))
        migration.append(data)
    results["migration"] = migration

    memory = run("bench_memory.py", out / "memory.json", "--json", str(out / "memory.json"),
                 "--generations", "10" if quick else "30")
    results["memory"] = memory["rows"]

    quality = run("bench_quality.py", out / "quality.json", "--out", str(out / "quality.json"),
                  *(["--quick"] if quick else []))
    results["search_quality"] = quality["search_quality"]

    peers = run("bench_peers.py", out / "peers.json", "--out", str(out / "peers.json"),
                *(["--quick"] if quick else []))
    results["peers"] = peers

    algorithms = run("bench_algorithms.py", out / "algorithms.json", "--out", str(out),
                     *(["--seeds", "2", "--problems", "rosenbrock,rastrigin",
                        "--methods", "cmaes,de,ga x4,pycma-bipop,pygmo-de x4"] if quick else ["--quick"]))
    results["algorithms"] = {"rows": algorithms["rows"], "targets": algorithms["targets"],
                             "skipped": algorithms["skipped"]}

    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown(results))
    plots(results, out)
    print(f"\nwrote {out}/results.json, results.md and plots")
    print(markdown(results))


def _share(m: dict) -> float:
    return m.get("mean_share", m.get("share_mean", 0.0))


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}, "
             f"torch {m['torch']}, load average {m['load_average_at_start']} at start, {m['date']}"
             f"{' (quick variant)' if r['quick'] else ''}.", ""]
    e = r["engine"]
    lines += ["| engine (Rastrigin D=100, P=500, one thread) | value |", "|---|---|",
              f"| engine_overhead_ratio (GA generation / bare torch loop; target <= 1.25) | {e['engine_overhead_ratio']:.3f} |",
              f"| evaluations per second, GA generation | {e['engine_evals_per_sec']:,.0f} |",
              f"| evaluations per second, whole island loop (I/O included) | {e['island_loop_evals_per_sec']:,.0f} |",
              *(f"| loop_overhead_ratio D={p['dim']} P={p['population']} (island loop / bare loop; target <= 1.10) | "
                f"{p['loop_overhead_ratio']:.3f} ({p['loop_overhead_ratio_min']:.2f}-{p['loop_overhead_ratio_max']:.2f}) |"
                for p in e.get("loop", [])),
              f"| OS threads per island process (max seen) | {r['threads_per_island_max']} |", ""]
    lines += ["| islands | oversubscription | aggregate evals/s | parallel_efficiency (target >= 0.95 up to the core count) |",
              "|---|---|---|---|"]
    for p in r["scaling"]:
        if p.get("unmeasured"):
            lines.append(f"| {p['islands']} | {p['oversubscription']}x | unmeasured (islands never overlapped) | |")
            continue
        eff = f"{p['parallel_efficiency']:.3f}"
        if "parallel_efficiency_min" in p:
            eff += f" ({p['parallel_efficiency_min']:.2f}-{p['parallel_efficiency_max']:.2f})"
        if p.get("noise"):
            eff = f"noise: {eff} (above 1.05 cannot be real)"
        lines.append(f"| {p['islands']} | {p['oversubscription']}x | {p['evals_per_sec']:,.0f} | {eff} |")
    lines += ["", "| --migrate-every | migration share of island wall time (target < 1% at 10) |", "|---|---|"]
    for mig in r["migration"]:
        lines.append(f"| {mig['settings']['every']} | {100 * _share(mig):.2f}% |")
    if r.get("memory"):
        lines += ["", "| island process | P | peak RSS (MiB) | RSS near the end (MiB) |", "|---|---|---|---|"]
        lines += [f"| {m['algorithm']} | {m['population']} | {m['max_rss_mib']:.0f} | {m['rss_end_mib']:.0f} |"
                  for m in r["memory"]]
    lines += ["", "| problem | mode | median best | reached target | median evals to target |", "|---|---|---|---|---|"]
    for q in r["search_quality"]:
        ev = q["median_evals_to_target"]
        lines.append(f"| {q['problem']} | {q['mode']} | {q['median_best']:.3f} | {q['reached_target']}/{q['seeds']} "
                     f"(target {q['target']}) | {'-' if ev is None else f'{ev:,.0f}'} |")
    lines += ["", (Path(r["out"]) / "algorithms.md").read_text()] if r.get("out") else []
    lines += ["", "| library | ms per generation | time ratio to islands | best fitness |", "|---|---|---|---|"]
    for p in r["peers"]["peers"]:
        if "skipped" in p:
            lines.append(f"| {p['library']} | skipped: {p['skipped']} | | |")
        else:
            lines.append(f"| {p['library']} | {1e3 * p['seconds_per_generation']:.3f} | {p['ratio_to_islands']:.2f} | {p['best']:.3f} |")
    return "\n".join(lines) + "\n"


def plots(r: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    measured = [p for p in r["scaling"] if not p.get("unmeasured")]
    n = [p["islands"] for p in measured]
    ax[0].plot(n, [p["evals_per_sec"] for p in measured], "o-")
    ax[0].set(xscale="log", xlabel="islands", ylabel="aggregate evals/s", title="throughput")
    ax[1].plot(n, [p["parallel_efficiency"] for p in measured], "o-")
    ax[1].axhline(0.95, ls="--", c="gray")
    ax[1].set(xscale="log", xlabel="islands", ylabel="parallel efficiency", ylim=(0, 1.2), title="efficiency")
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=100)

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([m["settings"]["every"] for m in r["migration"]], [100 * _share(m) for m in r["migration"]], "o-")
    ax.axhline(1.0, ls="--", c="gray")
    ax.set(xscale="log", xlabel="--migrate-every", ylabel="% of island wall time", title="migration overhead")
    fig.tight_layout()
    fig.savefig(out / "migration.png", dpi=100)

    problems = sorted({q["problem"] for q in r["search_quality"]})
    fig, axes = plt.subplots(1, len(problems), figsize=(5 * len(problems), 4))
    for ax, prob in zip(axes if len(problems) > 1 else [axes], problems):
        rows = [q for q in r["search_quality"] if q["problem"] == prob]
        ax.bar([q["mode"] for q in rows], [q["median_best"] for q in rows])
        ax.set(title=f"{prob}: median best (same evaluations)", ylabel="fitness (maximised)")
    fig.tight_layout()
    fig.savefig(out / "quality.png", dpi=100)
    plt.close("all")


if __name__ == "__main__":
    main()
