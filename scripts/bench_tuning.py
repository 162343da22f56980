#!/usr/bin/env python3
"""Tuning at equal evaluations: islands' tuners (static, asha, pbt, tpe) against Optuna's TPE.

Per case (a problem, an algorithm and the settings searched, as `--vary` texts) and repeat
(a seed), every method spends the same total evaluations E on the same cores:

  static, asha, pbt, tpe  `islands launch -n N --tuner KIND --max-evaluations E --migrate-every 0`
                          (isolated islands; N islands share E)
  <best>+migration        the tuner with the best median result, again with --migrate-every 10
  optuna-tpe              `optuna.create_study(direction="maximize", sampler=TPESampler(seed))`,
                          `study.optimize(objective, n_trials=T, n_jobs=workers)`; each trial is
                          one in-process `islands.runs.evolve` with the trial's settings and E/T
                          evaluations

Reported per method: the best fitness found (maximised: -f), the settings the method reports
as best (islands: the top segment by best, for static the best island's settings; Optuna:
`study.best_params`) re-run alone on `--reruns` new seeds at E/T evaluations (median and
spread of f), how many of the configurations it tried reached the case's good region, and the
wall time: the method's own seconds (a launch's process; Optuna's `study.optimize`) and the
cold wall time of a fresh process running it (Optuna's study in its own Python process, imports
of torch, Optuna and islands included, as a user's tuning script pays them). The good region of a case is f <= GOOD_FACTOR x (the lowest re-run median f of any
method and repeat in that case), with that median floored at GOOD_FLOOR (a control task, whose
fitness is shown as is: fitness >= GOOD_SHARE x the highest re-run median); a configuration is a
segment that ran at least one generation for the islands' tuners (each island for static), a
trial for Optuna. Medians are
over repeats; every row is printed as markdown and written to --out (JSON) and --md.

    python scripts/bench_tuning.py [--quick] [--cases b1,b2,b3,a] [--repeats 3] [--workers 2]
                                   [--out FILE.json] [--md FILE.md]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from islands.threads import limit_env  # noqa: E402

limit_env()

GOOD_FACTOR = 10.0
GOOD_FLOOR = 1e-3  # a best median below this counts as this, so "10x of 0" is still a region
GOOD_SHARE = 0.8  # control tasks (fitness > 0, higher is better): within 80% of the best re-run median
TUNERS = ("static", "asha", "pbt", "tpe")
GA_SPACE = ("mutation_sigma=0.01:0.5:log", "crossover_rate=0.1:0.9", "tournament_size=2:8",
            "crossover=sbx,blx,uniform")
DE_SPACE = ("algo.strategy=current-to-pbest/1,rand/1", "algo.p_best=0.05:0.5:log",
            "algo.archive_rate=0.0:2.0", "algo.memory_size=2:20")
NEAT_SPACE = ("algo.add_node_rate=0.01:0.3:log", "algo.add_conn_rate=0.05:0.8",
              "algo.compat_threshold=1.0:6.0", "algo.weight_mutate_rate=0.3:0.95")


@dataclass(frozen=True)
class Case:
    name: str
    problem: str
    dim: int
    algorithm: str
    population: int
    space: tuple[str, ...]
    evaluations: int  # E: the total per method
    trials: int  # T: Optuna trials; E/T evaluations each, and the islands' count
    rung: int
    reduction: int
    ready: int
    params: tuple[str, ...] = ()  # --param KEY=VALUE
    note: str = ""
    higher: bool = False  # report fitness itself (a control task's steps, higher is better), not f = -fitness

    def value(self, fitness: float) -> float:
        """What the tables show: f = -fitness (lower is better), or fitness when `higher`."""
        return fitness if self.higher else -fitness

    def good(self, value: float, best_median: float) -> bool:
        """In the case's good region: f <= GOOD_FACTOR x the best re-run median (floored at GOOD_FLOOR),
        or for a control task fitness >= GOOD_SHARE x the best re-run median."""
        if self.higher:
            return value >= GOOD_SHARE * best_median
        return value <= GOOD_FACTOR * max(best_median, GOOD_FLOOR)

    def good_text(self, best_median: float) -> str:
        if self.higher:
            return f"fitness >= {GOOD_SHARE:g} x {best_median:.4g} = {GOOD_SHARE * best_median:.4g}"
        return f"f <= {GOOD_FACTOR:g} x {max(best_median, GOOD_FLOOR):.3g} = {GOOD_FACTOR * max(best_median, GOOD_FLOOR):.3g}"


CASES = {
    "b1": Case("b1", "rastrigin", 10, "ga", 50, GA_SPACE, 60_000, 20, 5, 3, 10, note="GA on Rastrigin D=10"),
    "b2": Case("b2", "schwefel", 10, "ga", 50, GA_SPACE, 60_000, 20, 5, 3, 10, note="GA on Schwefel D=10"),
    "b3": Case("b3", "rastrigin", 10, "de", 50, DE_SPACE, 60_000, 20, 5, 3, 10, note="SHADE/jDE on Rastrigin D=10"),
    "a": Case("a", "cartpole", 4, "neat", 20, NEAT_SPACE, 4_000, 10, 3, 3, 5, params=("episodes=3", "noise=0.8"),
              note="NEAT on cart-pole, noise 0.8, 3 episodes (small budget)", higher=True),
}
QUICK = Case("quick", "rastrigin", 10, "ga", 50, GA_SPACE, 6_000, 4, 5, 3, 10, note="quick: GA on Rastrigin")


def base_config(case: Case, seed: int, evaluations: int) -> Any:
    from islands.config import MigrationConfig, RunConfig

    params = dict(p.split("=", 1) for p in case.params)
    from islands.config import parse_cli_value

    return RunConfig(problem=case.problem, dim=case.dim, problem_params={k: parse_cli_value(v) for k, v in params.items()},
                     algorithm=case.algorithm, population=case.population, seed=seed, max_evaluations=evaluations,
                     migration=MigrationConfig(every=0), target=1e300, checkpoint_every=10**6,
                     checkpoint_seconds=1e9)


def evolve_once(case: Case, settings: dict[str, Any], seed: int, evaluations: int) -> float:
    """One island alone, in this process, with `settings` for `evaluations`: its best fitness."""
    return evolve_counted(case, settings, seed, evaluations)[0]


def evolve_counted(case: Case, settings: dict[str, Any], seed: int, evaluations: int) -> tuple[float, int]:
    """As `evolve_once`, with the evaluations the island actually spent."""
    from islands.runs import evolve

    cfg = base_config(case, seed, evaluations).with_overrides(settings)
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as tmp:
        result = evolve("island-00", Path(tmp) / "run", cfg, log=lambda _m: None)
    return float(result.best), int(result.evaluations)


def _evolve_task(args: tuple[Case, dict[str, Any], int, int]) -> float:
    return evolve_once(*args)


# -- the islands' tuners ------------------------------------------------------------------------
def run_launch(case: Case, tuner: str, seed: int, workers: int, migrate: int, tmp: Path) -> dict[str, Any]:
    from islands.tuning import segments
    from migration_pool.rundir import RunDir

    run_dir = tmp / f"{case.name}-{tuner}-m{migrate}-s{seed}"
    cmd = [sys.executable, "-m", "islands", "launch", "-n", str(case.trials), "--problem", case.problem,
           "--dim", str(case.dim), "--algorithm", case.algorithm, "--population", str(case.population),
           "--max-evaluations", str(case.evaluations), "--seed", str(seed), "--migrate-every", str(migrate),
           "--tuner", tuner, "--rung", str(case.rung), "--reduction", str(case.reduction), "--ready", str(case.ready),
           "--cores", f"0-{workers - 1}", "--run-dir", str(run_dir), "--plain", "--target", "1e300",
           "--evaluate", "0", "--progress-every", "60"]
    for p in case.params:
        cmd += ["--param", p]
    for v in case.space:
        cmd += ["--vary", v]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    row: dict[str, Any] = {"command": " ".join(cmd[1:]), "wall_s": wall, "rc": proc.returncode}
    by_island = segments.read_run(RunDir(run_dir))
    if proc.returncode != 0 or not by_island and tuner != "static":
        row["failed"] = (proc.stderr or proc.stdout)[-600:]
        return row
    if tuner == "static":  # no segments: each island is one configuration, its settings the manifest's
        best, settings, values = _static_result(run_dir)
    else:
        ranked = segments.ranked(by_island)
        top = ranked[0]
        best, settings = top.best, dict(top.settings)
        # A segment begun as its island's budget ran out runs no generation (see the report): not a configuration tried.
        values = [s.best for s in ranked if s.generations > 0]
        row["segments"] = len(ranked)
        row["empty_segments"] = sum(1 for s in ranked if s.generations == 0)
        row["top_segment"] = {"key": top.key, "generations": top.generations, "evaluations": top.evaluations,
                              "parent": top.parent, "end": top.end}
        row["ends"] = {e: sum(1 for s in ranked if s.end == e) for e in segments.ENDS}
    row.update(best=best, settings=settings, config_values=values,
               evaluations=_run_evaluations(run_dir))
    shutil.rmtree(run_dir, ignore_errors=True)
    return row


def _static_result(run_dir: Path) -> tuple[float, dict[str, Any], list[float]]:
    """The best island's fitness and settings (static islands keep the launcher's), and every island's best."""
    islands = json.loads((run_dir / "summary.json").read_text())["islands"]
    values = {i: float(v["best_ever"]) for i, v in islands.items() if v.get("best_ever") is not None}
    top = max(values, key=lambda i: values[i])
    return values[top], dict(islands[top]["overrides"]), list(values.values())


def _run_evaluations(run_dir: Path) -> int | None:
    try:
        return int(json.loads((run_dir / "summary.json").read_text()).get("evaluations"))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


# -- Optuna's TPE in-process --------------------------------------------------------------------
def suggest(trial: Any, case: Case) -> dict[str, Any]:
    from islands.tuning.space import parse_space

    out: dict[str, Any] = {}
    for s in parse_space(case.space):
        if s.values is not None:
            out[s.name] = trial.suggest_categorical(s.name, list(s.values))
        elif s.integer:
            out[s.name] = trial.suggest_int(s.name, math.ceil(s.low), math.floor(s.high), log=s.log)
        else:
            out[s.name] = trial.suggest_float(s.name, s.low, s.high, log=s.log)
    return out


def run_optuna(case: Case, seed: int, workers: int) -> dict[str, Any]:
    import optuna
    from optuna.samplers import TPESampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    per = case.evaluations // case.trials
    spent: list[int] = []

    def objective(trial: Any) -> float:
        best, evaluations = evolve_counted(case, suggest(trial, case), seed * 1000 + trial.number, per)
        spent.append(evaluations)
        return best

    t = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=TPESampler(seed=seed))
    study.optimize(objective, n_trials=case.trials, n_jobs=workers)
    wall = time.perf_counter() - t
    done = [tr for tr in study.trials if tr.value is not None]
    return {"wall_s": wall, "rc": 0, "best": study.best_value, "settings": dict(study.best_params),
            "config_values": [tr.value for tr in done], "evaluations": sum(spent),
            "failed_trials": len(study.trials) - len(done)}


# -- the benchmark ----------------------------------------------------------------------------
def rerun(case: Case, settings: dict[str, Any], repeat_seed: int, reruns: int, workers: int) -> list[float]:
    """The reported settings alone on `reruns` seeds none of the runs used, at E/T evaluations."""
    per = case.evaluations // case.trials
    tasks = [(case, settings, 900_000 + repeat_seed * 100 + k, per) for k in range(reruns)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_evolve_task, tasks))


def run_optuna_cold(case: Case, seed: int, workers: int) -> dict[str, Any]:
    """`run_optuna` in a fresh Python process, as a user's tuning script runs: `cold_s` is that
    process's wall time, imports of torch, Optuna and islands included (what a launch's wall
    time includes too); `wall_s` stays the study's own seconds."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--optuna-row", case.name, str(seed),
                           str(workers)], cwd=ROOT, capture_output=True, text=True)
    cold = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"optuna process failed ({proc.returncode}): {proc.stderr[-300:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "cold_s": cold}


def one(case: Case, method: str, seed: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    migrate = 10 if method.endswith("+migration") else 0
    tuner = method.split("+")[0]
    try:
        row = run_optuna_cold(case, seed, args.workers) if method == "optuna-tpe" else \
            run_launch(case, tuner, seed, args.workers, migrate, tmp)
        row.setdefault("cold_s", row["wall_s"])  # a launch is a fresh process already
    except Exception as e:  # a crashed method is a failed row, not a crashed benchmark
        row = {"failed": f"{type(e).__name__}: {e}", "wall_s": math.nan}
    row.update(case=case.name, method=method, seed=seed)
    if "failed" not in row:
        fs = rerun(case, row["settings"], seed, args.reruns, args.workers)
        row["rerun_f"] = [case.value(x) for x in fs]
        row["rerun_median_f"] = statistics.median(row["rerun_f"])
    print(f"  {case.name} {method:18s} seed {seed}: " + (f"FAILED {row['failed'][-200:]!r}" if "failed" in row else
          f"best {case.value(row['best']):.4g}, re-run median f {row['rerun_median_f']:.4g}, {row['wall_s']:.1f} s"),
          flush=True)
    return row


def summarise(case: Case, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = [r for r in rows if "failed" not in r]
    medians = [r["rerun_median_f"] for r in ok]
    best_median = (max if case.higher else min)(medians) if medians else math.nan
    good = case.good_text(best_median)
    for r in ok:
        r["good_region"] = good
        r["good_configs"] = sum(1 for v in r["config_values"] if case.good(case.value(v), best_median))
        r["configs"] = len(r["config_values"])
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        fine = [r for r in mine if "failed" not in r]
        s: dict[str, Any] = {"case": case.name, "method": method, "repeats": len(mine), "failed": len(mine) - len(fine),
                             "good_region": good}
        if fine:
            med = lambda k: statistics.median(r[k] for r in fine)  # noqa: E731
            every_rerun = [x for r in fine for x in r["rerun_f"]]
            best_row = max(fine, key=lambda r: r["best"])
            s.update(best_f=case.value(med("best")), best_f_min=case.value(best_row["best"]),
                     rerun_median_f=med("rerun_median_f"),
                     rerun_spread=[min(every_rerun), max(every_rerun)],
                     good=f"{statistics.median(r['good_configs'] for r in fine):g}/"
                          f"{statistics.median(r['configs'] for r in fine):g}",
                     wall_s=med("wall_s"), cold_s=med("cold_s"), settings_of_best_repeat=best_row["settings"])
        out.append(s)
    return out


def fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.3g}"
    return str(x)


def settings_text(s: dict[str, Any]) -> str:
    return " ".join(f"{k.replace('algo.', '')}={fmt(v) if isinstance(v, float) else v}" for k, v in sorted(s.items()))


def markdown(cases: list[Case], summary: list[dict[str, Any]], rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [f"Workers (cores): {args.workers}; repeats: {args.repeats}; re-runs per reported setting: {args.reruns}; "
             "f = -fitness (minimised; fitness itself, higher better, for a control task); medians over repeats.", ""]
    for case in cases:
        per = case.evaluations // case.trials
        q = "fitness" if case.higher else "f"
        lines += [f"### {case.name}: {case.note} ({case.algorithm}, population {case.population}), "
                  f"E = {case.evaluations:,}, T = {case.trials} (E/T = {per:,})", "",
                  f"Space: `{' '.join('--vary ' + v for v in case.space)}`", "",
                  f"| method | best {q} (median) | best {q} (of repeats) | re-run median {q} | re-run range | good configs | "
                  "wall s | cold wall s | reported settings (best repeat) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for s in summary:
            if s["case"] != case.name:
                continue
            if "best_f" not in s:
                lines.append(f"| {s['method']} | FAILED ({s['failed']}/{s['repeats']}) | | | | | | | |")
                continue
            failed = f" ({s['failed']} failed)" if s["failed"] else ""
            lines.append(f"| {s['method']}{failed} | {fmt(s['best_f'])} | {fmt(s['best_f_min'])} | "
                         f"{fmt(s['rerun_median_f'])} | {fmt(s['rerun_spread'][0])}-{fmt(s['rerun_spread'][1])} | "
                         f"{s['good']} | {fmt(s['wall_s'])} | {fmt(s['cold_s'])} | "
                         f"{settings_text(s['settings_of_best_repeat'])} |")
        good = next((s["good_region"] for s in summary if s["case"] == case.name), "")
        lines += ["", f"Good region: {good} (the best re-run median of the case).", "", "Every repeat:", "",
                  f"| method | seed | best {q} | re-run median {q} | re-runs {q} | good/configs | wall s | evaluations |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if r["case"] != case.name:
                continue
            if "failed" in r:
                lines.append(f"| {r['method']} | {r['seed']} | FAILED: {r['failed'][-120:].replace(chr(10), ' ').replace('|', '/')} "
                             "| | | | | |")
                continue
            lines.append(f"| {r['method']} | {r['seed']} | {fmt(case.value(r['best']))} | {fmt(r['rerun_median_f'])} | "
                         f"{', '.join(fmt(x) for x in r['rerun_f'])} | {r['good_configs']}/{r['configs']} | "
                         f"{fmt(r['wall_s'])} | {r.get('evaluations')} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one tiny case, one repeat (under ~2 minutes)")
    ap.add_argument("--cases", default="b1,b2,b3,a", help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reruns", type=int, default=5)
    ap.add_argument("--workers", "--cores", type=int, default=2, help="cores for every method (islands' --cores 0-W-1, "
                    "Optuna's n_jobs, the re-runs' processes)")
    ap.add_argument("--no-migration-row", action="store_true", help="skip the best tuner's run with migration")
    ap.add_argument("--optuna-row", nargs=3, metavar=("CASE", "SEED", "WORKERS"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help="JSON results")
    ap.add_argument("--md", help="markdown table")
    args = ap.parse_args()
    if args.optuna_row:  # the child of run_optuna_cold: one Optuna study, its row as JSON
        name, seed, workers = args.optuna_row
        case = QUICK if name == QUICK.name else CASES[name]
        print(json.dumps(run_optuna(case, int(seed), int(workers)), default=str))
        return
    if args.quick:
        cases, args.repeats, args.reruns = [QUICK], 1, 3
    else:
        cases = [CASES[c.strip()] for c in args.cases.split(",")]
    methods = (*TUNERS, "optuna-tpe")
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as tmp_:
        tmp = Path(tmp_)
        for case in cases:
            print(f"{case.name}: {case.note}", flush=True)
            mine = [one(case, m, seed, args, tmp) for seed in range(args.repeats) for m in methods]
            if not args.no_migration_row and not args.quick:
                scores = {m: statistics.median(r["rerun_median_f"] for r in mine if r["method"] == m and "failed" not in r)
                          for m in TUNERS if any(r["method"] == m and "failed" not in r for r in mine)}
                if scores:  # the tuner whose reported settings re-ran best
                    best = (max if case.higher else min)(scores, key=scores.get)
                    mine += [one(case, f"{best}+migration", seed, args, tmp) for seed in range(args.repeats)]
            rows += mine
            summary += summarise(case, mine)
    text = markdown(cases, summary, rows, args)
    print()
    print(text)
    print(f"total wall time {time.perf_counter() - t0:.0f} s")
    if args.md:
        Path(args.md).write_text(text + "\n")
    if args.out:
        Path(args.out).write_text(json.dumps({"cases": [c.__dict__ for c in cases], "summary": summary, "rows": rows,
                                              "workers": args.workers, "repeats": args.repeats, "reruns": args.reruns,
                                              "good_factor": GOOD_FACTOR, "good_floor": GOOD_FLOOR,
                                              "wall_s": time.perf_counter() - t0}, indent=2, default=str))


if __name__ == "__main__":
    main()
