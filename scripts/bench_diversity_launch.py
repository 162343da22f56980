"""Does migration keep an archipelago diverse on real launches, not only in the simulator?

Runs real archipelagos (`islands launch` in a subprocess, one process per island, pinned
round-robin to this machine's cores) for each migration policy, reads the end state with
`islands status --json` (the figures `islands status` prints) and reports every run: effective
origins at the end, live lineages (origins with any individual left), the largest lineage's
share, whether the takeover warning fired, the champion's precision (f - f_opt = -fitness),
wall time, and the machine's 1-minute load average before and after. Medians per policy and
problem follow.

Real launches differ from the in-process simulator (`scripts/bench_diversity.py`) in timing:
islands start one after another and, on an oversubscribed machine, run at different speeds,
so an island may read a neighbour that is far ahead of it. `--beside` starts a second
archipelago (same settings, another seed, its own run directory) at the same time as each
measured run, the "beside another archipelago" condition; only the measured run is reported.

    PYTHONPATH=. python3 scripts/bench_diversity_launch.py --seeds 3 --beside 1 \
        --out bench_out/diversity_launch      # the users' 20-island Rastrigin command

Extra launch options go after `--`; a policy is a name and its launch options (POLICIES).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

POLICIES: dict[str, list[str]] = {
    "default": [],
    # The takeover policy: every 10 generations, the 5 best replace the 5 worst, no screen,
    # batches taken however far ahead their neighbour is (the defaults before bench_diversity).
    "takeover": ["--migrants", "5", "--migration-min-distance", "0", "--migration-max-lead", "-1"],
    # The simulator-chosen defaults without the lead limit: 1 migrant, near-duplicate screen 0.05.
    "no lead limit": ["--migration-max-lead", "-1"],
    "isolated": ["--migrate-every", "0"],
    "sync": ["--migration", "sync"],
}


def _python() -> list[str]:
    return [sys.executable, "-m", "islands"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def launch_cmd(run_dir: Path, islands: int, problem: str, dim: int, generations: int, seed: int,
               options: list[str], extra: list[str]) -> list[str]:
    return [*_python(), "launch", "-n", str(islands), "--problem", problem, "--dim", str(dim),
            "--generations", str(generations), "--seed", str(seed), "--run-dir", str(run_dir),
            "--plain", "--progress-every", "60", *options, *extra]


def read_end(run_dir: Path) -> dict[str, Any]:
    """The end state as `islands status --json` reports it."""
    out = subprocess.run([*_python(), "status", "--run-dir", str(run_dir), "--json"], env=_env(),
                         capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    arch = d["archipelago"]
    lin = arch["lineage"]
    champ = arch.get("champion") or {}
    return {
        "origins": lin["effective_origins"],
        "alive": sum(1 for v in lin["origins"].values() if v > 0),
        "largest": lin["dominant_share"],
        "warning": bool(lin.get("warning")),
        "best": -champ["fitness"] if champ.get("fitness") is not None else None,
        "evaluations": d["totals"]["evaluations"],
        "adopted": arch["migrants"]["adopted"],
        "received": arch["migrants"]["received"],
    }


def one_run(work: Path, name: str, options: list[str], args: argparse.Namespace, problem: str, seed: int,
            beside: bool) -> dict[str, Any]:
    run_dir = work / f"{name.replace(' ', '_')}-{problem}-{seed}{'-beside' if beside else ''}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = launch_cmd(run_dir, args.islands, problem, args.dim, args.generations, seed, options, args.extra)
    other = None
    load_before = os.getloadavg()[0]
    if beside:  # the other archipelago: same settings, another seed, started at the same time
        other_dir = work / f"beside-{problem}-{seed}"
        shutil.rmtree(other_dir, ignore_errors=True)
        other = subprocess.Popen(launch_cmd(other_dir, args.islands, problem, args.dim, args.generations,
                                            seed + 1000, options, args.extra),
                                 env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    wall = time.monotonic() - started
    load_after = os.getloadavg()[0]
    if other is not None:
        other.wait()
    if done.returncode != 0:
        raise SystemExit(f"launch failed ({done.returncode}): {shlex.join(cmd)}\n{done.stderr[-2000:]}")
    row = {"policy": name, "problem": problem, "seed": seed, "beside": beside, **read_end(run_dir),
           "wall_s": round(wall, 1), "load_before": round(load_before, 2), "load_after": round(load_after, 2),
           "command": shlex.join(["islands", *cmd[3:]])}
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return row


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


SOLVED = 1e-8  # precisions below this count as equal (the benchmarks' "solved" floor)


def at_least_as_good(best: float | None, other: float | None) -> bool:
    """Whether a median best precision is at least as good as another's (x1.05, or both solved)."""
    if best is None or other is None:
        return other is None
    return best <= max(other * 1.05, SOLVED)


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = ("policy", "problem", "seed", "beside", "origins", "alive", "largest", "warning", "best",
            "evaluations", "wall_s", "load_before", "load_after")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    lines += ["", "Medians (precision f - f_opt; origins: effective origins at the end):", "",
              "| policy | problem | runs | median best | median origins | min origins | warnings | >= takeover |",
              "|---|---|---|---|---|---|---|---|"]
    medians: dict[tuple[str, str], float | None] = {}
    for key in dict.fromkeys((r["policy"], r["problem"]) for r in rows):
        bests = [r["best"] for r in rows if (r["policy"], r["problem"]) == key and r["best"] is not None]
        medians[key] = statistics.median(bests) if bests else None
    for key, best in medians.items():
        sel = [r for r in rows if (r["policy"], r["problem"]) == key]
        versus = ("yes" if at_least_as_good(best, medians[("takeover", key[1])]) else "no") \
            if ("takeover", key[1]) in medians and key[0] != "takeover" else ""
        lines.append(f"| {key[0]} | {key[1]} | {len(sel)} | {_fmt(best)} | "
                     f"{statistics.median(r['origins'] for r in sel):.1f} | {min(r['origins'] for r in sel):.1f} | "
                     f"{sum(r['warning'] for r in sel)} | {versus} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--islands", type=int, default=20)
    ap.add_argument("--problems", nargs="+", default=["rastrigin"])
    ap.add_argument("--dim", type=int, default=30)
    ap.add_argument("--generations", type=int, default=600)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per policy and problem")
    ap.add_argument("--beside", type=int, default=0,
                    help="how many of the seeds (the last ones) run beside another archipelago")
    ap.add_argument("--policies", nargs="+", default=["default", "takeover"],
                    help=f"policy names ({', '.join(POLICIES)}) or NAME=OPTIONS (launch options, quoted)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/diversity_launch"))
    ap.add_argument("--keep", action="store_true", help="keep the run directories (under --out/runs)")
    ap.add_argument("--render", type=Path, nargs="+", default=None,
                    help="only print the Markdown of these diversity_launch.json files (merged)")
    ap.add_argument("extra", nargs="*", help="after --: options for every launch (e.g. --target 1)")
    args = ap.parse_args(argv)
    if args.render:
        print(markdown([r for f in args.render for r in json.loads(f.read_text())["rows"]]), end="")
        return 0
    pols: dict[str, list[str]] = {}
    for p in args.policies:
        name, _, opts = p.partition("=")
        if not opts and name not in POLICIES:
            ap.error(f"unknown policy {name!r}; known: {', '.join(POLICIES)} (or NAME=OPTIONS)")
        pols[name] = shlex.split(opts) if opts else POLICIES[name]
    if not 0 <= args.beside <= args.seeds:
        ap.error("--beside must be between 0 and --seeds")
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "runs" if args.keep else Path(tempfile.mkdtemp(prefix="bench_div_launch-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    started = time.time()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cores": os.cpu_count(), "argv": sys.argv[1:]}
    try:
        for problem in args.problems:
            for seed in range(args.seeds):
                for name, opts in pols.items():
                    beside = seed >= args.seeds - args.beside
                    row = one_run(work, name, opts, args, problem, seed, beside)
                    rows.append(row)
                    print(f"{name:16} {problem:18} seed {seed}{' beside' if beside else '       '} "
                          f"origins {row['origins']:5.1f}  alive {row['alive']:2}  largest {row['largest']:.2f}  "
                          f"best {_fmt(row['best']):>9}  {row['wall_s']:6.1f} s  load {row['load_before']:.1f}->"
                          f"{row['load_after']:.1f}  ({time.time() - started:.0f} s)", flush=True)
                    (args.out / "diversity_launch.json").write_text(json.dumps({**meta, "rows": rows}, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    (args.out / "diversity_launch.md").write_text(
        f"{meta['date']}, {meta['cores']} cores, `scripts/bench_diversity_launch.py {shlex.join(meta['argv'])}`\n\n"
        + markdown(rows))
    print(markdown(rows))
    print(f"wrote {args.out}/diversity_launch.json, diversity_launch.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
