"""The end of a launch: the champion and the run's summary, from the islands' statuses.

The statuses come from the one run reader (`islands.status.reader.read_status`, its error
policy: a torn or foreign status is left out); this module reads no file itself.

The champion is picked by the one rule of `islands.status.record.champion`. It is
saved as `champion.isld` through `RunDir.write_champion`: the run directory's envelope of kind
"champion" around one msgpack map, never pickle::

    island      str     e.g. "island-03"
    fitness     float   best-ever fitness (maximised; minimisation problems report -f(x))
    genome      ndarray the genome, float, shape [dim]; for NEAT a map of arrays
                        (nodes, conn_in, conn_out, weight, enabled)
    problem     str     the problem name or import path of the run
    dim         int
    run_id      str
    generation  int     the island generation at which it was found
    overrides   map     that island's --vary values
    problem_params   map   that island's problem parameters (--param, with its overrides)
    algorithm        str   that island's algorithm
    algorithm_params map   its --algo-param values (with its overrides)
    population       int   its population (None: the algorithm's default)
    dtype            str   None: the problem's own
    created     float   unix time

Load it with `islands.status.reader.open_run(run_dir).champion_file()`.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Sequence

from islands.status import lineage
from islands.status.record import MIGRATION_COUNTERS, HistoryLine, IslandStatus, champion
from islands.status.record import champion_record  # noqa: F401  (the launcher's champion file)
from migration_pool.errors import FormatError


MILESTONE_DECADES = range(6, -9, -1)  # distances to the target: 1e6 ... 1e-8


def time_to_target(
    histories: Mapping[str, Iterable[Any]],
    targets: Mapping[str, float | None],
    started: float,
) -> dict[str, Any] | None:
    """When the run first reached its target and each milestone before it, and the cost.

    `histories` holds each island's history records (in order; one that cannot be read to its
    end, e.g. a FIFO, counts with the records read before), `targets` each island's
    target, `started` the run's start (unix time). The cost of a level is every island's
    evaluations at the instant one island first reached it (each island's last history line
    at or before it), summed, which is what `--stop-when first` saves on. Milestones are the
    levels `target - 10^k` (k from 6 down to -8) that the run's first generation had not yet
    reached, so the list reads as the run's progress in decades. None when no island has a
    target or no island reached it.
    """
    lines = {isl: _readable(recs) for isl, recs in histories.items()}
    goals = [t for t in targets.values() if t is not None]
    if not goals:
        return None
    target = max(goals)  # islands share the run's target; the hardest (highest: fitness is maximised) if not
    hit = _first_reach(lines, target)
    if hit is None:
        return None
    at, island, line = hit
    start_best = max((h[0].best_ever for h in lines.values() if h and h[0].best_ever is not None),
                     default=float("-inf"))
    milestones = []
    for k in MILESTONE_DECADES:
        level = target - 10.0 ** k
        if level <= start_best or level >= target or (target and 10.0 ** k < abs(target) / 10):
            continue  # reached at the start, or too close to the target to be a step of its own
        reached = _first_reach(lines, level)
        if reached is not None:
            milestones.append({"level": level, "island": reached[1], "generation": reached[2].generation,
                               "evaluations": _cost_at(lines, reached[0]),
                               "wall_s": round(max(0.0, reached[0] - started), 3)})
    return {"island": island, "generation": line.generation, "evaluations": _cost_at(lines, at),
            "wall_s": round(max(0.0, at - started), 3), "time": at, "target": target, "milestones": milestones}


def _readable(records: Iterable[Any]) -> list[HistoryLine]:
    """An island's history lines up to where it could be read: a history that is not a regular
    file, or past its cap (`IslandFiles.iter_history`), counts as what came before."""
    out: list[HistoryLine] = []
    try:
        for body in records:
            out.append(HistoryLine.from_body(body))
    except (FormatError, OSError):
        pass
    return out


def _first_reach(lines: Mapping[str, list[HistoryLine]], level: float) -> tuple[float, str, HistoryLine] | None:
    """The earliest history line of any island whose best-ever is at least `level`."""
    first: tuple[float, str, HistoryLine] | None = None
    for isl, hist in lines.items():
        hit = next((h for h in hist if h.best_ever is not None and h.time is not None and h.best_ever >= level), None)
        if hit is not None and (first is None or hit.time < first[0]):  # type: ignore[operator]
            first = (hit.time, isl, hit)  # type: ignore[assignment]
    return first


def _cost_at(lines: Mapping[str, list[HistoryLine]], at: float) -> int:
    """Evaluations of all islands at instant `at`, each from its last line at or before it."""
    total = 0
    for hist in lines.values():
        before = [h.evaluations for h in hist if h.time is not None and h.time <= at and h.evaluations is not None]
        total += before[-1] if before else 0
    return total


def summarize(
    *,
    run_id: str,
    run_dir: str,
    problem: str,
    dim: int,
    state: str,
    wall_s: float,
    statuses: Mapping[str, IslandStatus | None],
    baseline: Mapping[str, int],
    watches: Mapping[str, Mapping[str, Any]],
    to_target: Mapping[str, Any] | None = None,
    budget: int | None = None,
    lineage_trend: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The summary of one launch, JSON-ready.

    `baseline` holds each island's evaluations when this launch began, so the rate counts
    only the work done now; `watches` holds the launcher's per-island bookkeeping; `budget`
    is what the whole run may spend (`islands.budget.run_total`; None: no budget);
    `lineage_trend` the archipelago's origins over time (`lineage.over_time`, from the
    histories), which tells a takeover before the target from one after it.
    """
    islands: dict[str, Any] = {}
    origins: list[dict[int, int]] = []
    ours: dict[str, IslandStatus] = {}
    migration = dict.fromkeys(MIGRATION_COUNTERS, 0)
    total = done_now = 0
    for isl in sorted(set(statuses) | set(watches)):
        st = statuses.get(isl) or IslandStatus()
        if st.run_id not in (None, run_id):
            st = IslandStatus()
        w = watches.get(isl, {})
        evals = st.evaluations or 0
        total += evals
        done_now += max(0, evals - int(baseline.get(isl, 0)))
        for k in MIGRATION_COUNTERS:
            migration[k] += getattr(st.migration, k)
        if st.origins:
            origins.append(dict(st.origins))
        ours[isl] = st
        islands[isl] = {
            "state": w.get("state", st.state or "unknown"),
            "reason": w.get("reason") or st.reason,
            "generation": st.generation,
            "best_ever": st.best_ever,
            "evaluations": evals,
            "restarts": int(w.get("restarts", 0)),
            "hangs": int(w.get("hangs", 0)),
            "overrides": dict(st.overrides),
        }
    champ = champion(statuses.values(), run_id)
    counts = {s: sum(1 for v in islands.values() if v["state"] == s) for s in ("finished", "stopped", "failed")}
    return {
        "run_id": run_id,
        "run_dir": run_dir,
        "problem": problem,
        "dim": dim,
        "state": state,
        "wall_s": round(wall_s, 3),
        "islands": islands,
        **counts,
        "champion": None if champ is None else {
            "island": champ.island, "fitness": champ.best_ever,
            "generation": champ.best_ever_generation, "file": "champion.isld"},
        "evaluations": total,
        "evaluation_budget": budget,
        "to_target": None if to_target is None else dict(to_target),
        "evaluations_this_launch": done_now,
        "evals_per_sec": round(done_now / wall_s, 3) if wall_s > 0 else 0.0,
        "migration": migration,
        "lineage": _lineage(origins, sorted(set(statuses) | set(watches)), _reach(ours, to_target), lineage_trend),
        "restarts": sum(v["restarts"] for v in islands.values()),
        "hangs": sum(v["hangs"] for v in islands.values()),
        "ended": time.time(),
    }


def _reach(statuses: Mapping[str, IslandStatus], to_target: Mapping[str, Any] | None) -> lineage.TargetReach:
    """When the target was first reached: the statuses say whether and at which generation,
    `time_to_target` (from the full histories) when."""
    reach = lineage.target_reach(statuses)
    if to_target is None or to_target.get("time") is None:
        return reach
    return lineage.TargetReach(reach.target, to_target["island"], to_target["generation"], to_target["time"])


def _lineage(origins: list[dict[int, int]], ids: list[str], reach: lineage.TargetReach,
             trend: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The archipelago's effective origins at the end (`islands.status.lineage`), with a warning
    for a takeover while no island had reached the target and a note for one after it."""
    counts = lineage.name_origins(lineage.pooled(origins), ids)
    top, share = lineage.dominant(counts)
    verdict = lineage.takeover_verdict(counts, len(origins), reach, trend)
    line = lineage.verdict_line(verdict)
    fine = verdict is not None and verdict["kind"] == "after-target"
    return {"effective_origins": lineage.effective_origins(counts) if counts else None,
            "islands_counted": len(origins), "dominant_origin": top, "dominant_share": share,
            "warning": None if fine else line, "note": line if fine else None}


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary as a few lines for people."""
    n = len(summary["islands"])
    lines = [f"run {summary['run_id']} {summary['state']}: {summary['finished']}/{n} island(s) finished, "
             f"{summary['stopped']} stopped, {summary['failed']} failed"]
    champ = summary["champion"]
    if champ:
        lines.append(f"champion: {champ['island']} fitness {champ['fitness']:.6g} "
                     f"(generation {champ['generation']}), genome in {summary['run_dir']}/champion.isld")
    hit = summary.get("to_target")
    if hit:
        lines.append(f"target first reached by {hit['island']} at generation {hit['generation']}: "
                     f"{hit['evaluations']:,} evaluations over all islands, {hit['wall_s']:.1f} s after the run started")
        if hit.get("milestones"):
            lines.append("milestones (best >= level: evaluations over all islands, seconds): " + ", ".join(
                f"{m['level']:.4g}: {m['evaluations']:,}, {m['wall_s']:.1f} s" for m in hit["milestones"]))
    m = summary["migration"]
    spent = summary.get("evaluation_budget")
    lines.append(f"evaluations: {summary['evaluations']:,} in total"
                 + (f" of a budget of {spent:,} ({summary['evaluations'] / spent:.0%})" if spent else "")
                 + f", {summary['evaluations_this_launch']:,} "
                 f"in this launch over {summary['wall_s']:.1f} s ({summary['evals_per_sec']:,.0f}/s)")
    lines.append(f"migration: {m['events']} events, {m['sent']} sent, {m['received']} received, "
                 f"{m['adopted']} adopted, {m['bad_files']} bad files"
                 + (f", {m['publish_errors']} failed publishes" if m["publish_errors"] else "")
                 + f"; restarts {summary['restarts']}, "
                 f"hangs {summary['hangs']}")
    lin = summary["lineage"]
    if lin["effective_origins"] is not None:
        lines.append(f"lineages: {lin['effective_origins']:.1f} effective origins of {lin['islands_counted']} "
                     f"island(s); largest: {lin['dominant_origin']} {lin['dominant_share']:.0%}")
        if lin["warning"] or lin.get("note"):
            lines.append(lin["warning"] or lin["note"])
    for isl, v in summary["islands"].items():
        if v["state"] == "failed":
            lines.append(f"failed: {isl}: {v['reason']}")
    return lines
